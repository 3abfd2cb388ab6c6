package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/rootless"
)

// staleAfter is how old an unmarked work directory must be to be pruned.
const staleAfter = 24 * time.Hour

var nowFunc = time.Now

// ownerFile marks a work directory with the process that made it: its pid and
// start time, so that a reused pid is not mistaken for the owner.
const ownerFile = ".owner"

// markOwned records this process as dir's owner.
func markOwned(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(selfIdentity()), 0o644)
}

func selfIdentity() string {
	// The host's pid: a rootless reprobox is pid 1 of a namespace of its own.
	return processIdentity(rootless.HostPID())
}

// processIdentity is "pid starttime", or "" when there is no such process.
func processIdentity(pid int) string {
	b, err := rootless.ProcStat(pid)
	if err != nil {
		return ""
	}
	// The command name may hold spaces; fields resume after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + " " + fields[19]
}

// alive reports whether the owner recorded in dir is still running.
func alive(dir string) bool {
	owner := readOwner(dir)
	if owner == "" {
		// No owner yet: a directory being created right now, or one
		// from before owners were recorded. Leave it unless it is old.
		st, err := os.Lstat(dir)
		return err == nil && st.ModTime().After(nowFunc().Add(-staleAfter))
	}
	return ownerAlive(owner)
}

// Prune removes work directories left by runs that were killed: it unmounts
// what they mounted (source overlays, disorderfs) and deletes them. Directories
// of live runs are left alone. It returns the directories it removed.
func (r *Runner) Prune() ([]string, error) {
	entries, err := os.ReadDir(r.WorkDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runner: prune: %w", err)
	}
	var removed []string
	for _, e := range entries {
		dir := filepath.Join(r.WorkDir, e.Name())
		if !e.IsDir() || alive(dir) {
			continue
		}
		if err := unmountBelow(dir); err != nil {
			return removed, fmt.Errorf("runner: prune %s: %w", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("runner: prune %s: %w", dir, err)
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(dir string) error {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	slices.SortFunc(infos, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range infos {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
