package buildkit

import (
	"os"
	"syscall"
)

// ownerOf is a file's uid and gid.
func ownerOf(fi os.FileInfo) (uint32, uint32) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return 0, 0
}
