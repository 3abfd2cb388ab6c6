package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/human"
)

// snapshots holds pristine copies of a plan's source, one per owner and source
// date: every build of the plan mounts a private overlay over one, so a check
// copies the tree once per build user rather than once per build, and no build
// sees another's writes.
type snapshots struct {
	mu   sync.Mutex
	dir  string
	byID map[string]string
}

// snapshot returns the pristine copy of the source owned by uid:gid with
// mtimes clamped to sde, making it on first use and saying so on progress
// (nil: silently).
func (p *Plan) snapshot(ctx context.Context, workDir string, sde int64, uid, gid uint32, progress io.Writer) (string, error) {
	p.snaps.mu.Lock()
	defer p.snaps.mu.Unlock()
	if p.snaps.byID == nil {
		if err := os.MkdirAll(workDir, 0o711); err != nil {
			return "", fmt.Errorf("runner: %w", err)
		}
		dir, err := os.MkdirTemp(workDir, "source-")
		if err != nil {
			return "", fmt.Errorf("runner: %w", err)
		}
		if err := markOwned(dir); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("runner: %w", err)
		}
		p.snaps.dir, p.snaps.byID = dir, map[string]string{}
	}
	key := fmt.Sprintf("%d-%d-%d", uid, gid, sde)
	if path, ok := p.snaps.byID[key]; ok {
		return path, nil
	}
	path := filepath.Join(p.snaps.dir, key)
	if progress != nil {
		fmt.Fprintf(progress, "reprobox: copying the source into a pristine snapshot owned by %d:%d\n", uid, gid)
	}
	start := time.Now()
	files, bytes, err := copyTree(ctx, p.Project, path, p.Config.excludes(p.outRel), sde, int(uid), int(gid))
	if err == nil && p.vendor != nil {
		// The fetched crates, vendored (fetch.go).
		err = p.vendor.install(ctx, path, sde, int(uid), int(gid))
	}
	if err != nil {
		os.RemoveAll(path)
		return "", err
	}
	if progress != nil {
		fmt.Fprintf(progress, "reprobox: snapshot of %d files, %s, in %s\n", files, human.Bytes(bytes), time.Since(start).Round(100*time.Millisecond))
	}
	p.snaps.byID[key] = path
	return path, nil
}

// Close removes the plan's source snapshots.
func (p *Plan) Close() error {
	p.snaps.mu.Lock()
	defer p.snaps.mu.Unlock()
	if p.snaps.dir == "" {
		return nil
	}
	err := os.RemoveAll(p.snaps.dir)
	p.snaps.dir, p.snaps.byID = "", nil
	return err
}

// mountOverlay mounts a writable overlay of lower at dir/src, with its upper
// and work directories in dir, the root owned like lower's. It returns the
// merged directory and the function that unmounts it.
func mountOverlay(lower, dir string) (string, func() error, error) {
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "ovlwork"), filepath.Join(dir, "src")
	st, err := os.Stat(lower)
	if err != nil {
		return "", nil, fmt.Errorf("runner: %w", err)
	}
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", nil, fmt.Errorf("runner: %w", err)
		}
	}
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Chown(upper, int(sys.Uid), int(sys.Gid)); err != nil {
		return "", nil, fmt.Errorf("runner: %w", err)
	}
	if err := os.Chmod(upper, st.Mode().Perm()); err != nil {
		return "", nil, fmt.Errorf("runner: %w", err)
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_NODEV|unix.MS_NOSUID, opts); err != nil {
		return "", nil, fmt.Errorf("runner: mount the source overlay: %w", err)
	}
	unmount := func() error {
		var err error
		for i := 0; i < 20; i++ {
			if err = unix.Unmount(merged, 0); err == nil || err == unix.EINVAL {
				return nil
			}
			if err != unix.EBUSY {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("runner: unmount %s: %w", merged, err)
		}
		return nil
	}
	return merged, unmount, nil
}
