package runner

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

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

// diskUsage is the space allocated to the files under dir, each hard-linked
// file once. Entries that vanish during the walk are skipped.
func diskUsage(dir string) int64 {
	type inode struct{ dev, ino uint64 }
	var total int64
	seen := map[inode]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: skip it
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !info.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total
}
