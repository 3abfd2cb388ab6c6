// Package diskwatch measures what a job writes to disk and stops it when it
// goes past its bound (sandbox.Job.DiskBytes), for the backends that keep a
// job's writes in host directories (overlay upper directories).
//
// It is a watchdog, not a quota: between two measurements a job can write
// more than its limit, by as much as it writes in PollMin (or in 1/PollRatio
// of a walk). The host file system gives no per-directory quota that works
// everywhere (XFS project quotas, a loop-mounted image would), and a job's
// own tmpfs mounts have their own sizes.
package diskwatch

import (
	"context"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Watch timing: the directories are measured at most every PollMin, and
// never more than 1/PollRatio of the time (a tree of many files takes a while
// to walk).
const (
	PollMin   = time.Second
	PollRatio = 20
)

// Watch measures dirs (Usage) until ctx is done or the returned stop is
// called, and calls exceeded once, with the bytes used, when they hold more
// than limit bytes; then it stops measuring. A limit of zero or less watches
// nothing. stop ends the watch and waits for it: exceeded is never called
// after stop returns.
func Watch(ctx context.Context, limit int64, exceeded func(used int64), dirs ...string) (stop func()) {
	if limit <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		for {
			t0 := time.Now()
			if used := Usage(dirs...); used > limit {
				exceeded(used)
				return
			}
			wait := max(PollMin, PollRatio*time.Since(t0))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// maxDepth bounds how deep Usage descends: each level holds one directory
// descriptor open. A tree deeper than that cannot be measured and counts as
// Unmeasurable, so that nesting cannot hide what a build writes.
const maxDepth = 2048

// Unmeasurable is the usage of a tree deeper than Usage descends: more than
// any limit.
const Unmeasurable = math.MaxInt64

// Usage is the space allocated to the files under dirs (by allocated blocks,
// so a sparse file counts what it really uses), each hard-linked file once. A
// directory that does not exist counts zero, and entries that vanish during
// the walk are skipped. The trees are the job's, changing while they are
// measured, so the walk is relative to directory descriptors and never
// follows a link: each entry is stat'ed with AT_SYMLINK_NOFOLLOW and each
// directory opened with O_NOFOLLOW from its parent's descriptor (a directory
// swapped for a link meanwhile fails to open and is skipped). A tree nested
// deeper than maxDepth directories is Unmeasurable.
func Usage(dirs ...string) int64 {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	tooDeep := false
	var walk func(fd int, name string, depth int)
	walk = func(fd int, name string, depth int) {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			total += st.Blocks * 512
		}
		names, _ := f.Readdirnames(-1)
		for _, name := range names {
			if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue
			}
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if depth >= maxDepth {
					tooDeep = true
					continue
				}
				sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err == nil {
					walk(sub, name, depth+1)
				}
				continue
			}
			if st.Nlink > 1 {
				k := inode{st.Dev, st.Ino}
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			total += st.Blocks * 512
		}
	}
	for _, dir := range dirs {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		walk(fd, dir, 0)
	}
	if tooDeep {
		return Unmeasurable
	}
	return total
}
