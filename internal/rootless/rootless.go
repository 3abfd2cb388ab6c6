// Package rootless runs reprobox as an ordinary user: it re-executes the
// program inside a new user, mount and PID namespace whose root is the
// invoking user and whose other ids are the user's subordinate ids
// (/etc/subuid and /etc/subgid, mapped by the setuid helpers newuidmap and
// newgidmap of Debian's uidmap package).
//
// Inside, reprobox is root of its own namespaces: it mounts the overlays of
// each run, unpacks images with their owners (the image's root is the
// invoking user, its other users are subordinate ids), and libcontainer
// starts containers as it does for root, with rootless cgroups (the host's
// cgroup tree is not writable). This is how podman runs rootless (its
// "pause" process holds such a namespace) and how runc behaves when it runs
// in one (euid 0 in a user namespace: RootlessEUID false, RootlessCgroups
// true, see runc's rootless_linux.go).
//
// The namespace lives exactly as long as the command: the inner process is
// PID 1 of its PID namespace, so when it ends, however it ends, the kernel
// kills every process of every build it started, and its mounts go with its
// mount namespace. The outer process only waits, forwards signals and exits
// with the inner one's status.
package rootless

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// stageEnv tells the re-executed program where it is: "wait" in the child
// before its id maps are written, "inside" once it runs as root of the
// namespace.
const stageEnv = "_REPROBOX_ROOTLESS"

// Inside reports whether this process is reprobox inside its rootless
// namespace (started by an ordinary user).
func Inside() bool { return os.Getenv(stageEnv) == "inside" }

// Rootless reports whether reprobox runs for an ordinary user: inside its
// namespace, or outside one that could not be made.
func Rootless() bool { return Inside() || os.Geteuid() != 0 }

// unavailable is why the namespace could not be entered, when it could not.
var unavailable error

// Err returns why an ordinary user's reprobox could not enter its namespace
// (no subordinate ids, no newuidmap), or nil. Commands that need containers,
// mounts or image unpacking fail with it.
func Err() error { return unavailable }

// MaybeEnter moves an ordinary user's reprobox into its namespace: in the
// outer process it never returns (it exits with the inner process's status);
// in the inner one it finishes the namespace's set-up and returns. As root it
// does nothing. When the namespace cannot be made, it records why (see Err)
// and returns, so that commands that need no containers still work.
//
// check is called first in the outer process, with the host's view of owners
// (inside the namespace, host root and other users all look like nobody):
// it checks the directories reprobox will use.
func MaybeEnter(check func() error) {
	switch os.Getenv(stageEnv) {
	case "wait":
		waitForMaps()
	case "inside":
		if err := setupInside(); err != nil {
			fmt.Fprintln(os.Stderr, "reprobox: rootless namespace:", err)
			os.Exit(3)
		}
		return
	}
	if os.Geteuid() == 0 {
		return
	}
	m, err := idMaps()
	if err != nil {
		unavailable = err
		return
	}
	if check != nil {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, "reprobox:", err)
			os.Exit(2)
		}
	}
	os.Exit(runOuter(m))
}

// maps are the id maps of the namespace, as newuidmap and newgidmap take
// them: triples of inside id, outside id, count.
type maps struct{ uid, gid []string }

// A Range is one line of /etc/subuid or /etc/subgid that belongs to a user.
type Range struct{ Start, Count uint32 }

// idMaps reads the invoking user's subordinate ranges and checks the helpers.
func idMaps() (maps, error) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	var m maps
	for _, f := range []struct {
		file, helper string
		id           int
		out          *[]string
	}{{"/etc/subuid", "newuidmap", uid, &m.uid}, {"/etc/subgid", "newgidmap", gid, &m.gid}} {
		if _, err := exec.LookPath(f.helper); err != nil {
			return maps{}, fmt.Errorf("rootless: %s is not installed (Debian package uidmap): an ordinary user's reprobox needs it to map its subordinate ids", f.helper)
		}
		rs, err := subIDs(f.file, name, uid)
		if err != nil {
			return maps{}, fmt.Errorf("rootless: %w", err)
		}
		if len(rs) == 0 {
			return maps{}, fmt.Errorf("rootless: no subordinate ids for user %s in %s: ask root to add some (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s)", name, f.file, name)
		}
		*f.out = []string{"0", strconv.Itoa(f.id), "1"}
		next := uint64(1)
		for _, r := range rs {
			*f.out = append(*f.out, strconv.FormatUint(next, 10), strconv.FormatUint(uint64(r.Start), 10), strconv.FormatUint(uint64(r.Count), 10))
			next += uint64(r.Count)
		}
	}
	return m, nil
}

// subIDs returns the ranges of file (/etc/subuid format: name-or-id:start:count)
// that belong to the user name with id uid, in file order.
func subIDs(file, name string, uid int) ([]Range, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSubIDs(io.LimitReader(f, 1<<20), name, uid)
}

// ParseSubIDs reads /etc/subuid or /etc/subgid content and returns the ranges
// of the user name with id uid, in order. Malformed lines and empty ranges
// are skipped, as shadow's own reader does.
func ParseSubIDs(r io.Reader, name string, uid int) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 {
			continue
		}
		if parts[0] != name && parts[0] != strconv.Itoa(uid) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32-1 {
			continue
		}
		out = append(out, Range{Start: uint32(start), Count: uint32(count)})
	}
	return out, sc.Err()
}

// runOuter starts the inner process in new namespaces, maps its ids, forwards
// signals to it and returns its exit status.
func runOuter(m maps) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reprobox: rootless:", err)
		return 3
	}
	// The FUSE lane (see FUSEDir): a private directory under /tmp, which
	// every id can search; the namespace mounts a tmpfs on it.
	removeStaleLanes()
	lane, err := os.MkdirTemp("/tmp", lanePrefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reprobox: rootless:", err)
		return 3
	}
	defer os.Remove(lane)
	// Held for the life of this process: a lane that nobody holds was left by
	// a reprobox killed with SIGKILL.
	if f, err := lockLane(lane); err == nil {
		defer f.Close()
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), stageEnv+"=wait", laneEnv+"="+lane)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		Pdeathsig:  syscall.SIGKILL,
		// A process group of its own: a terminal's Ctrl-C reaches this
		// process only, which forwards it once (in one group, the inner
		// process would get it twice and take the second for a repeat).
		Setpgid: true,
	}
	// Catch the signals that stop a run before the child exists, so that
	// none kills this process and leaves the child alone. A signal this
	// process was started with ignored stays ignored (nohup), in the child
	// too.
	sigs := make(chan os.Signal, 8)
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "reprobox: rootless: start in a new user namespace:", err)
		return 3
	}
	r.Close()
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, h := range []struct {
		helper string
		args   []string
	}{{"newuidmap", m.uid}, {"newgidmap", m.gid}} {
		out, err := exec.Command(h.helper, append([]string{pid}, h.args...)...).CombinedOutput()
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			fmt.Fprintf(os.Stderr, "reprobox: rootless: %s %s %s: %v: %s\n", h.helper, pid, strings.Join(h.args, " "), err, strings.TrimSpace(string(out)))
			return 3
		}
	}
	if _, err := w.Write([]byte{'x'}); err != nil {
		_ = cmd.Process.Kill()
	}
	w.Close()
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "reprobox: rootless:", err)
		return 3
	}
}

// waitForMaps is the child before its maps are written: it waits for the
// parent, then executes itself again, now as root of the namespace (an
// execve by a process whose ids were unmapped gave it no capabilities).
func waitForMaps() {
	f := os.NewFile(3, "rootless-sync")
	var b [1]byte
	if n, _ := f.Read(b[:]); n != 1 {
		os.Exit(3) // the parent failed and said why
	}
	f.Close()
	env := os.Environ()
	for i, kv := range env {
		if strings.HasPrefix(kv, stageEnv+"=") {
			env[i] = stageEnv + "=inside"
		}
	}
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	fmt.Fprintln(os.Stderr, "reprobox: rootless: re-execute:", err)
	os.Exit(3)
}

// setupInside finishes the namespace: a parent-death signal (the one given at
// clone was cleared when the exec gave capabilities), mounts that do not
// propagate to the host, and a /proc of the new PID namespace (libcontainer
// reads /proc/<pid> of the processes it starts).
func setupInside() error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	if os.Getpid() != 1 {
		return errors.New("not the first process of its PID namespace")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The host's /proc stays reachable through a descriptor: other
	// reprobox processes of the user, each in its own PID namespace, are
	// known by their host pids (see HostPID).
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	hostProc = fd
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if lane := FUSEDir(); lane != "" {
		if err := unix.Mount("tmpfs", lane, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0711,size=1m"); err != nil {
			return fmt.Errorf("mount a tmpfs on %s: %w", lane, err)
		}
	}
	return nil
}

// laneEnv carries the FUSE lane's path from the outer process to the inner.
const laneEnv = "_REPROBOX_FUSE_LANE"

// FUSEDir is, inside the namespace, a directory that every id of the
// namespace can search (a tmpfs of mode 0711 that only this namespace sees,
// on an empty directory of the user's under /tmp), or "" outside.
//
// disorderfs, which serves the build user's requests with that user's ids,
// resolves its source from an absolute path (it takes the real path of what
// it is given): beneath the user's private data directory (mode 0700, owned
// by the namespace's root) every build user is refused. The backend
// bind-mounts each run's source there instead.
func FUSEDir() string {
	if !Inside() {
		return ""
	}
	if d := os.Getenv(laneEnv); strings.HasPrefix(d, "/tmp/"+lanePrefix) && !strings.Contains(d[len("/tmp/"):], "/") {
		return d
	}
	return ""
}

const lanePrefix = "reprobox-fuse-"

// lockLane opens and locks the lane directory dir (never through a link).
func lockLane(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), dir)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// removeStaleLanes removes the empty lane directories of this user that no
// live reprobox holds (left by one killed with SIGKILL). A lane in use is
// locked; removing it would detach the tmpfs of its namespace.
func removeStaleLanes() {
	dirs, _ := filepath.Glob("/tmp/" + lanePrefix + "*")
	for _, d := range dirs {
		var st unix.Stat_t
		if unix.Lstat(d, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Getuid() {
			continue
		}
		if f, err := lockLane(d); err == nil {
			_ = os.Remove(d) // only if empty
			f.Close()
		}
	}
}

// hostProc is the host's /proc (O_PATH) inside the namespace, else -1.
var hostProc = -1

// HostPID is this process's pid on the host. Inside the namespace,
// os.Getpid is 1 for every rootless reprobox; identities that other reprobox
// processes check (the owner of a work directory) must use the host's pid
// and ProcStat.
func HostPID() int {
	if hostProc >= 0 {
		buf := make([]byte, 32)
		if n, err := unix.Readlinkat(hostProc, "self", buf); err == nil {
			if pid, err := strconv.Atoi(string(buf[:n])); err == nil {
				return pid
			}
		}
	}
	return os.Getpid()
}

// ProcStat reads /proc/PID/stat of a host pid (see HostPID).
func ProcStat(pid int) ([]byte, error) {
	if hostProc < 0 {
		return os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	}
	fd, err := unix.Openat(hostProc, strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: fmt.Sprintf("/proc/%d/stat", pid), Err: err}
	}
	f := os.NewFile(uintptr(fd), "stat")
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}
