package libcontainer

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	lc "github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// State directory layout:
//
//	<StateDir>/libcontainer/<id>/   libcontainer's own state (state.json, exec fifo)
//	<StateDir>/runs/<id>.lock       owner lock: flock(2)ed by the running process, holds its pid
//	<StateDir>/runs/<id>/upper      overlay upper directory
//	<StateDir>/runs/<id>/work       overlay work directory
//	<StateDir>/runs/<id>/rootfs     overlay mount, the container's root
//	<StateDir>/runs/<id>/files/     the job's files (Job.Files), bind-mounted read-only
//	<StateDir>/runs/<id>/src/upper  the source overlay's upper directory (the build's writes)
//	<StateDir>/runs/<id>/src/work   its work directory
//	<StateDir>/runs/<id>/src/merged the source overlay mount (Source.Dir below), the build's tree
//	<StateDir>/runs/<id>/src/reverse disorderfs over src/merged, for FileOrdering "reverse"
//
// Every mount of a run is beneath its directory, so removing the run (after
// a SIGKILL of its owner too) unmounts them all, disorderfs's FUSE mount
// with them (its server exits when its mount goes).
//
// A run owns its id while it holds the lock on <id>.lock. The lock file appears
// already locked (it is locked under a temporary name, then linked into place)
// and is removed last, so any state without a held lock belongs to a process
// that died, and New removes it.

// cgroupParent is the cgroup (in every hierarchy) under which each run gets
// its own cgroup, named after its id.
const cgroupParent = "/reprobox"

func cgroupPath(id string) string { return cgroupParent + "/" + id }

// A run is the host-side state of one job.
type run struct {
	id        string
	dir       string
	lock      *os.File
	container *lc.Container // nil until created, and once destroyed
	stale     bool          // the run's owner died
	fuseDir   string        // Config.FUSEDir
}

func (r *run) rootfs() string { return filepath.Join(r.dir, "rootfs") }
func (r *run) upper() string  { return filepath.Join(r.dir, "upper") }

// acquire takes ownership of id and creates its run directory. It fails if id
// is in use, by a live run or by stale state that New has not removed yet.
func (b *Backend) acquire(id string) (*run, error) {
	lock, err := b.lockNew(id)
	if err != nil {
		return nil, err
	}
	r := &run{id: id, dir: filepath.Join(b.runsDir, id), lock: lock}
	if err := os.Mkdir(r.dir, 0o711); err != nil {
		b.unlock(r)
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("stale state for id %s in %s (a new Backend removes it)", id, r.dir)
		}
		return nil, err
	}
	return r, nil
}

// lockNew creates and locks <id>.lock. It fails with fs.ErrExist if the file
// exists.
func (b *Backend) lockNew(id string) (*os.File, error) {
	f, err := os.CreateTemp(b.runsDir, ".lock-")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	_, err = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if err == nil {
		err = os.Link(f.Name(), b.lockPath(id))
	}
	os.Remove(f.Name())
	if err != nil {
		f.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("id %s is in use: %w", id, fs.ErrExist)
		}
		return nil, err
	}
	return f, nil
}

func (b *Backend) lockPath(id string) string { return filepath.Join(b.runsDir, id+".lock") }

// lockStale locks the existing <id>.lock of a dead owner. It returns nil and
// no error when the owner is alive or the file has gone.
func (b *Backend) lockStale(id string) (*os.File, error) {
	path := b.lockPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The file may have been removed (and maybe recreated by a new run)
	// between the open and the lock: the lock only counts if it is on the
	// file at path.
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Stat(path, &now); err != nil || now.Ino != held.Ino || now.Dev != held.Dev {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// unlock removes the lock file and releases it.
func (b *Backend) unlock(r *run) error {
	err := os.Remove(b.lockPath(r.id))
	r.lock.Close()
	return err
}

// mountOverlay mounts an overlay of lower with a fresh upper directory on the
// run's rootfs directory.
func (r *run) mountOverlay(lower string) error {
	st, err := os.Stat(lower)
	if err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("root filesystem %s is not a directory", lower)
	}
	upper, work := r.upper(), filepath.Join(r.dir, "work")
	for _, d := range []string{upper, work, r.rootfs()} {
		if err := os.Mkdir(d, 0o711); err != nil {
			return err
		}
	}
	// The merged root directory takes its owner, mode and times from the
	// upper directory: make them the image's.
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Lchown(upper, int(sys.Uid), int(sys.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(upper, st.Mode()&fs.ModePerm|st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if err := os.Chtimes(upper, time.Unix(sys.Atim.Unix()), time.Unix(sys.Mtim.Unix())); err != nil {
		return err
	}
	// volatile: the upper directory is thrown away, so skip syncing it.
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",volatile" + overlayUserxattr()
	if err := unix.Mount("overlay", r.rootfs(), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", r.rootfs(), &os.SyscallError{Syscall: "mount", Err: err})
	}
	return nil
}

// removeRunDir unmounts everything beneath the run directory dir (the
// disorderfs mount, the source overlay, the root overlay: the latest first)
// and removes the directory. It refuses to remove anything while a mount
// remains beneath the directory.
func removeRunDir(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	// Deepest first: a mount beneath another goes before it.
	slices.SortFunc(mounts, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, m := range mounts {
		if err := unmount(m); err != nil {
			return err
		}
	}
	if mounts, err = mountsUnder(dir); err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("not removing %s: still mounted: %s", dir, strings.Join(mounts, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove run directory: %w", err)
	}
	return nil
}

// unmount unmounts the mount point m, waiting a while for it to be no longer
// busy, then detaching it so that its directory can go.
func unmount(m string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(m, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount %s: %w", m, &os.SyscallError{Syscall: "umount", Err: err})
		}
		if i == 50 {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", m, &os.SyscallError{Syscall: "umount", Err: err})
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountsUnder returns the mount points at or beneath dir in the calling
// thread's mount namespace (moby's mountinfo reads /proc/thread-self, not the
// main thread's, which libcontainer may have left in a container's namespace;
// see init).
func mountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(infos))
	for i, m := range infos {
		out[i] = m.Mountpoint
	}
	return out, nil
}

// checkReachable says clearly what libcontainer would report as "permission
// denied" while preparing the rootfs: that the root of a container in a user
// namespace, unprivileged on the host, cannot search a directory on the way to
// the run's directory dir.
func checkReachable(dir string, config *configs.Config) error {
	uid, err := config.HostRootUID()
	if err != nil {
		return err
	}
	gid, err := config.HostRootGID()
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return &os.PathError{Op: "stat", Path: d, Err: err}
		}
		ok := st.Mode&0o001 != 0 ||
			int(st.Uid) == uid && st.Mode&0o100 != 0 ||
			int(st.Gid) == gid && st.Mode&0o010 != 0
		if !ok {
			return fmt.Errorf("the container's root (host uid %d) cannot reach the state directory: %s has mode %#o; make it searchable (o+x)",
				uid, d, st.Mode&0o7777)
		}
		if d == "/" {
			return nil
		}
	}
}

// oomKilled reports whether the kernel killed a process of run id at the
// memory limit of its cgroup (the oom_kill count of memory.oom_control on
// cgroup v1, of memory.events on v2).
func oomKilled(id string) (bool, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(id), Resources: &cgroups.Resources{}})
	if err != nil {
		return false, fmt.Errorf("cgroup %s: %w", cgroupPath(id), err)
	}
	n, err := m.OOMKillCount()
	if err != nil {
		return false, fmt.Errorf("cgroup %s: oom_kill count: %w", cgroupPath(id), err)
	}
	return n > 0, nil
}

// destroyCgroup kills whatever is left in the run's cgroups and removes them.
func destroyCgroup(id string) error {
	m, err := manager.New(&cgroups.Cgroup{Path: cgroupPath(id), Resources: &cgroups.Resources{}})
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", cgroupPath(id), err)
	}
	if pids, err := m.GetAllPids(); err == nil {
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", cgroupPath(id), err)
	}
	return nil
}

// cleanStale removes the state of every run whose owner has died.
func (b *Backend) cleanStale() error {
	entries, err := os.ReadDir(b.runsDir)
	if err != nil {
		return err
	}
	ids := make(map[string]bool)
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".lock-"):
			// A lock that never got its name: remove it if its owner died.
			if f, err := os.Open(filepath.Join(b.runsDir, name)); err == nil {
				if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
					os.Remove(f.Name())
				}
				f.Close()
			}
		case e.IsDir():
			ids[name] = true
		case strings.HasSuffix(name, ".lock") && e.Type().IsRegular():
			ids[strings.TrimSuffix(name, ".lock")] = true
		}
	}
	// Runs that died before making their state directory.
	if entries, err := os.ReadDir(b.lcRoot); err == nil {
		for _, e := range entries {
			ids[e.Name()] = true
		}
	}
	var errs []error
	for id := range ids {
		if err := validID(id); err != nil {
			continue
		}
		lock, err := b.lockStale(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if lock == nil {
			if _, err := os.Lstat(b.lockPath(id)); err == nil {
				continue // alive
			}
			// No lock file at all: the owner died while removing its state.
			// Take the id like a new run would.
			if lock, err = b.lockNew(id); err != nil {
				continue // a new run took it, or it is gone
			}
		}
		r := &run{id: id, dir: filepath.Join(b.runsDir, id), lock: lock, stale: true}
		b.log.Warn("removing state of a dead run", "id", id)
		err = b.clean(r)
		if err == nil {
			err = b.unlock(r)
		} else {
			r.lock.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// clean removes everything run r made: its container (killing it if it still
// runs), cgroups, overlay mount and directories. It leaves the lock. For a
// stale run, the container is found in libcontainer's state, and if there is
// none, whatever a run that died while starting may have left is removed.
func (b *Backend) clean(r *run) error {
	var errs []error
	if r.container == nil && r.stale {
		c, err := lc.Load(b.lcRoot, r.id)
		switch {
		case err == nil:
			r.container = c
		case errors.Is(err, lc.ErrNotExist):
			// Died before libcontainer saved its state.
			if b.rootless {
				// No cgroup was made.
			} else if err := destroyCgroup(r.id); err != nil {
				errs = append(errs, err)
			}
			if err := os.RemoveAll(filepath.Join(b.lcRoot, r.id)); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("load container: %w", err))
		}
	}
	if r.container != nil {
		if err := killAndDestroy(r.container); err != nil {
			errs = append(errs, err)
		} else {
			r.container = nil
		}
	}
	if len(errs) == 0 {
		// Never remove the directory of a container that may still run.
		if err := removeRunDir(r.dir); err != nil {
			errs = append(errs, err)
		} else if err := r.removeFUSESource(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAndDestroy kills a container that may still run, not necessarily a child
// of this process, waits for it to stop and destroys it.
func killAndDestroy(c *lc.Container) error {
	if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, lc.ErrNotRunning) {
		return fmt.Errorf("kill container: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status()
		if err != nil {
			return fmt.Errorf("container status: %w", err)
		}
		if st == lc.Stopped {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container still %s 10s after SIGKILL", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Destroy(); err != nil {
		return err
	}
	return nil
}

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// Leftovers lists what remains on the host of the run with the given id: its
// lock file, run directory, libcontainer state, mounts and cgroup directories.
// It is empty once Run has returned. Conformance tests use it to check that a
// cancelled run cleaned up.
func (b *Backend) Leftovers(id string) ([]string, error) {
	var out []string
	for _, p := range []string{b.lockPath(id), filepath.Join(b.runsDir, id), filepath.Join(b.lcRoot, id)} {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	mounts, err := mountsUnder(filepath.Join(b.runsDir, id))
	if err != nil {
		return nil, err
	}
	out = append(out, mounts...)
	cgs, err := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupPath(id)))
	if err != nil {
		return nil, err
	}
	cgs2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", cgroupPath(id)))
	return append(append(out, cgs...), cgs2...), nil
}
