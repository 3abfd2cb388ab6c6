package runner

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/human"
)

// A diskLimitError is the cause of a build killed for writing more than its
// disk limit.
type diskLimitError struct{ used, limit int64 }

func (e *diskLimitError) Error() string {
	return fmt.Sprintf("the build wrote %s into its build directory, more than its disk limit of %s",
		human.Bytes(e.used), human.Bytes(e.limit))
}

// Disk watchdog timing: the upper directory is measured at most every
// diskPollMin, and never more than 1/diskPollRatio of the time (a build tree
// of many files takes a while to walk).
const (
	diskPollMin   = time.Second
	diskPollRatio = 20
)

// watchDisk measures what a build has written into its build directory (the
// overlay upper directory, by allocated blocks, so a sparse file counts what
// it really uses) until ctx is done, and calls stop with a *diskLimitError once it exceeds limit bytes. The returned function stops the
// watch and waits for it.
//
// This is a watchdog, not a quota: between two measurements a build can
// write more than its limit, by as much as it writes in diskPollMin (or in
// 1/diskPollRatio of a walk). The host file system gives no per-directory
// quota that works everywhere (XFS project quotas, a loop-mounted image
// would), and the build's own tmpfs mounts have their own sizes.
func watchDisk(ctx context.Context, upper string, limit int64, stop context.CancelCauseFunc) func() {
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		for {
			t0 := time.Now()
			used := diskUsage(upper)
			if used > limit {
				stop(&diskLimitError{used: used, limit: limit})
				return
			}
			wait := max(diskPollMin, diskPollRatio*time.Since(t0))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// maxDiskDepth bounds how deep diskUsage descends: each level holds one
// directory descriptor open.
const maxDiskDepth = 2048

// diskUsage is the space allocated to the files under dir, each hard-linked
// file once. Entries that vanish during the walk are skipped. The tree is the
// build's, changing while it is measured, so the walk is relative to
// directory descriptors and never follows a link: each entry is stat'ed with
// AT_SYMLINK_NOFOLLOW and each directory opened with O_NOFOLLOW from its
// parent's descriptor (a directory swapped for a link meanwhile fails to open
// and is skipped).
func diskUsage(dir string) int64 {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	var walk func(fd, depth int)
	walk = func(fd, depth int) {
		f := os.NewFile(uintptr(fd), dir)
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
				if depth >= maxDiskDepth {
					continue
				}
				sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err == nil {
					walk(sub, depth+1)
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
	walk(fd, 0)
	return total
}
