package runner

import (
	"time"

	"golang.org/x/sys/unix"
)

// lutimes sets a symlink's own times.
func lutimes(path string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
