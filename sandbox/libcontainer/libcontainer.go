// Package libcontainer runs sandbox jobs with runc's libcontainer, in process, with no daemon.
//
// A program that uses it must call [MaybeInit] first thing in main (and in
// TestMain of tests that start containers): libcontainer starts each container
// by re-executing the program itself with the argument "init". It needs cgo
// (the nsenter package) and root, or root of a user namespace (an ordinary
// user's reprobox, see rootless.go: cgroup limits are then left out and
// named in sandbox.Result.Unavailable). Importing it locks the main goroutine to the
// main thread for the life of the program (see the init function for why).
//
// Each run gets a private overlay of the image's root filesystem
// (Job.Image.Rootfs), so the image directory is never written, a private
// writable overlay of the source snapshot (Job.Source.Dir) bind-mounted at the
// build path, with disorderfs over it for the "reverse" file ordering, the
// job's files written into the run's directory and bind-mounted read-only,
// and a cgroup /reprobox/<id> in every cgroup hierarchy (cgroupfs driver, no
// systemd). A disk watchdog (Job.DiskBytes) measures both overlays' upper
// directories. Everything a run makes is removed
// when Run returns. If the process calling Run dies without returning (SIGKILL),
// its container keeps running (libcontainer's parent-death signal does not
// reach the container's init) until the next [New] with the same state
// directory kills it and removes what the run left behind.
//
// What libcontainer cannot apply exactly is refused with an error wrapping
// errors.ErrUnsupported: a terminal, seccomp when the program was built
// without the seccomp build tag and libseccomp, linux.cgroupsPath (the backend
// places runs), a spec without a new mount namespace, an environment without a
// non-empty HOME or with duplicate variables (libcontainer would add HOME and
// drop duplicates), kernel memory limits, unknown capabilities and personality
// flags, personality flags the kernel would clear when it executes the
// command, SELinux and AppArmor settings on hosts without them, and cgroup
// limits for controllers the host lacks.
//
// A process of the job killed by the kernel at the memory limit sets
// sandbox.Result.OOMKilled (the memory cgroup's oom_kill count).
package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	// Needed to apply device rules in the devices cgroup.
	_ "github.com/opencontainers/cgroups/devices"
	lc "github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

	// Joins the namespaces in the re-executed init, before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/diskwatch"
)

func init() {
	// Keep the main goroutine on the main thread for good, so that no other
	// goroutine ever runs there. libcontainer starts each container with a
	// goroutine that locks its thread, joins the container's mount
	// namespace and returns without unlocking, so that Go ends the thread.
	// Go cannot end the main thread: if that goroutine ran there, the main
	// thread would stay in the container's mount namespace for the life of
	// the process, keeping the namespace and its mounts alive and changing
	// what /proc/self/mountinfo (read by the cgroup code) shows.
	runtime.LockOSThread()
}

// MaybeInit runs libcontainer's container init and never returns when the
// program was started as one (os.Args[1] == "init" and libcontainer's
// _LIBCONTAINER_SYNCPIPE in the environment, so that a user's `reprobox init`
// reaches the command of that name); otherwise it does nothing. Call it first
// thing in main, and in TestMain of any package that starts containers.
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_SYNCPIPE") != "" {
		lc.Init()
	}
	maybeHook()
}

// Config configures a Backend.
type Config struct {
	// StateDir holds libcontainer's state and each run's overlay directories,
	// for example <data-dir>/run. It is created if missing. Backends in any
	// number of processes may share it.
	StateDir string
	// Logger receives debug lines about runs and warnings about removed
	// stale state. Nil discards them.
	Logger *slog.Logger
	// FUSEDir, when set, is a directory that every uid can search, where
	// each run's source is bind-mounted for disorderfs (which serves
	// requests with the build user's ids) when StateDir is not reachable by
	// them: a rootless reprobox's private data directory (see rootless.go).
	FUSEDir string
}

// A Backend runs jobs in containers made with libcontainer. It is safe for
// concurrent use.
type Backend struct {
	stateDir string
	lcRoot   string
	runsDir  string
	log      *slog.Logger
	// rootless: no writable cgroup tree (see rootless.go); noFUSE says why
	// disorderfs cannot run, when it cannot.
	rootless bool
	noFUSE   string
	fuseDir  string
	// pidHelper is the PID entry program, compiled once per backend into
	// its state directory (pid.go).
	pidHelper struct {
		once sync.Once
		path string
		err  error
	}
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a Backend that keeps its state in cfg.StateDir. It first removes
// the state left there by runs whose process died (containers still running
// are killed), so that their mounts, cgroups and directories do not pile up.
func New(cfg Config) (*Backend, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("libcontainer: no state directory")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("libcontainer: state directory: %w", err)
	}
	if strings.ContainsAny(dir, ",:\\") {
		return nil, fmt.Errorf("libcontainer: state directory %q: overlayfs cannot take a comma, colon or backslash in a path", dir)
	}
	b := &Backend{
		stateDir: dir,
		lcRoot:   filepath.Join(dir, "libcontainer"),
		runsDir:  filepath.Join(dir, "runs"),
		log:      cfg.Logger,
		fuseDir:  cfg.FUSEDir,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.rootless = rootlessCgroups()
	if b.rootless || os.Geteuid() != 0 {
		if ok, why := fuseUsable(); !ok {
			b.noFUSE = why
		}
	}
	// 0711: the root of a container in a user namespace must be able to
	// reach its rootfs.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("libcontainer: %w", err)
	}
	for _, d := range []string{b.lcRoot, b.runsDir} {
		if err := os.Mkdir(d, 0o711); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("libcontainer: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil { // whatever the umask
			return nil, fmt.Errorf("libcontainer: %w", err)
		}
	}
	if err := b.cleanStale(); err != nil {
		return nil, fmt.Errorf("libcontainer: remove stale state: %w", err)
	}
	// libcontainer seals its own binary for each container's init with an
	// overlay of the binary's directory over the container's state
	// directory; overlayfs refuses nested layers and libcontainer falls back
	// to copying the whole binary, several milliseconds a start.
	if exe, err := os.Executable(); err == nil {
		if d := filepath.Dir(exe); within(b.lcRoot, d) || within(d, b.lcRoot) {
			b.log.Info("the state directory and the program's directory nest: each container start copies the program",
				"state", b.lcRoot, "program", exe)
		}
	}
	return b, nil
}

// within reports whether path is dir or beneath it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

func validID(id string) error {
	if strings.HasPrefix(id, ".lock-") {
		return fmt.Errorf("invalid job id %q", id)
	}
	return sandbox.CheckID(id)
}

// Run runs job in a new container and removes the container, its cgroups,
// mounts and state before it returns. See [sandbox.Backend] for the contract.
func (b *Backend) Run(ctx context.Context, job *sandbox.Job) (res *sandbox.Result, err error) {
	if job == nil {
		return nil, errors.New("libcontainer: nil job")
	}
	id := job.ID
	if id == "" {
		id = sandbox.NewID()
	}
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("libcontainer: %w", err)
	}
	defer func() {
		if err != nil {
			res = nil
			var ce *commandError
			if !errors.As(err, &ce) {
				err = fmt.Errorf("libcontainer: run %s: %w", id, err)
			}
		}
	}()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("not started: %w", context.Cause(ctx))
	}
	if err := checkJob(job); err != nil {
		return nil, err
	}
	if job, err = b.withLastPID(job); err != nil {
		return nil, err
	}
	if job.FileOrdering == "reverse" && b.noFUSE != "" {
		return nil, unsupported("file ordering reverse rootless: disorderfs needs FUSE, and %s", b.noFUSE)
	}
	var cpus string
	var dropped []string
	cgPath := cgroupPath(id)
	if b.rootless {
		j, spec := *job, *job.Spec
		if cpus, dropped, err = rootlessResources(&spec); err != nil {
			return nil, err
		}
		j.Spec = &spec
		job = &j
		cgPath = ""
	}

	r, err := b.acquire(id)
	if err != nil {
		return nil, err
	}
	r.fuseDir = b.fuseDir
	defer func() {
		cerr := b.clean(r)
		if cerr == nil {
			cerr = b.unlock(r)
		} else {
			r.lock.Close()
		}
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()

	if err := r.mountOverlay(job.Image.Rootfs); err != nil {
		return nil, err
	}
	mounts, err := r.writeFiles(job.Files)
	if err != nil {
		return nil, err
	}
	watched := []string{r.upper()}
	if job.BuildPath != "" {
		src, err := r.mountSource(ctx, job)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, specs.Mount{Destination: job.BuildPath, Type: "bind", Source: src, Options: []string{"bind", "rw", "nosuid", "nodev"}})
		watched = append(watched, r.srcUpper())
	}
	config, proc, err := convert(job, id, r.rootfs(), cgPath, mounts)
	if err != nil {
		return nil, err
	}
	if b.rootless {
		if err := rootlessConfig(config, cpus); err != nil {
			return nil, err
		}
	}
	if config.Namespaces.Contains(configs.NEWUSER) {
		if err := checkReachable(r.dir, config); err != nil {
			return nil, err
		}
	}
	container, err := lc.Create(b.lcRoot, id, config)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	r.container = container

	out, err := newOutput(job.Stdout, job.Stderr)
	if err != nil {
		return nil, err
	}
	defer out.close()
	// A nil *os.File in an io.Writer would not be nil: set only real files.
	if out.stdout != nil {
		proc.Stdout = out.stdout
	}
	if out.stderr != nil {
		proc.Stderr = out.stderr
	}

	// The disk watchdog kills the job through runCtx; ctx itself stays
	// the caller's.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var diskFull atomic.Bool
	endWatch := diskwatch.Watch(runCtx, job.DiskBytes, func(used int64) {
		b.log.Debug("killing container: disk limit", "id", id, "used", used, "limit", job.DiskBytes)
		diskFull.Store(true)
		stopRun()
	}, watched...)
	b.log.Debug("starting container", "id", id, "args", proc.Args)
	res, err = b.start(runCtx, container, proc, out)
	endWatch()
	if err == nil && b.rootless {
		res.Unavailable = append(dropped, "out-of-memory report: not available (rootless: no memory cgroup)")
		slices.Sort(res.Unavailable)
	} else if err == nil {
		// Read before the cgroup goes.
		if res.OOMKilled, err = oomKilled(id); err != nil {
			b.log.Warn("cannot tell whether the kernel killed a process at the memory limit", "id", id, "err", err)
			err = nil
		}
	}
	// Without a PID namespace the init's children outlive it: kill them
	// with the rest of the container now, so that the output ends.
	if derr := killAndDestroy(container); derr != nil {
		return nil, errors.Join(err, derr)
	}
	r.container = nil
	if err != nil {
		return nil, startError(id, proc, err)
	}
	b.log.Debug("container exited", "id", id, "exit", res.ExitCode, "signal", res.Signal, "duration", res.Duration)
	if err := out.wait(ctx); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("killed: %w", context.Cause(ctx))
	}
	// What the job wrote after the watchdog's last look counts too.
	res.DiskExceeded = diskFull.Load() || job.DiskBytes > 0 && diskwatch.Usage(watched...) > job.DiskBytes
	if job.Collect != nil {
		tree := ""
		if job.BuildPath != "" {
			tree = r.srcMerged()
		}
		if err := job.Collect(ctx, res, tree); err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
	}
	return res, nil
}

// start runs proc as container's init and waits for it, killing the container
// when ctx is done. It returns an error only if the process did not start.
func (b *Backend) start(ctx context.Context, c *lc.Container, proc *lc.Process, out *output) (*sandbox.Result, error) {
	type waited struct {
		state *os.ProcessState
		err   error
	}
	t0 := time.Now()
	if err := c.Run(proc); err != nil {
		return nil, err
	}
	// Our copies of the write ends must go, or the readers never see EOF.
	out.closeWriters()
	exited := make(chan waited, 1)
	go func() {
		st, err := proc.Wait()
		exited <- waited{st, err}
	}()

	var w waited
	select {
	case w = <-exited:
	case <-ctx.Done():
		b.log.Debug("killing container", "id", c.ID(), "cause", context.Cause(ctx))
		// With a PID namespace, killing the init kills the rest; without
		// one, Signal kills the whole cgroup.
		if err := c.Signal(unix.SIGKILL); err != nil && !errors.Is(err, lc.ErrNotRunning) {
			if perr := proc.Signal(unix.SIGKILL); perr != nil {
				return nil, fmt.Errorf("kill container: %w", errors.Join(err, perr))
			}
		}
		w = <-exited
	}
	d := time.Since(t0)
	if w.state == nil {
		return nil, fmt.Errorf("wait: %w", w.err)
	}
	ws, ok := w.state.Sys().(syscall.WaitStatus)
	if !ok {
		return nil, fmt.Errorf("wait: unexpected status %v", w.state)
	}
	res := &sandbox.Result{Duration: d}
	switch {
	case ws.Exited():
		res.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal
	default:
		return nil, fmt.Errorf("wait: unexpected status %v", w.state)
	}
	return res, nil
}

// execErrRE matches the error of libcontainer's init when it cannot find the
// command (os/exec's LookPath error, sent back as text).
var execErrRE = regexp.MustCompile(`exec: ("(?:[^"\\]|\\.)*"): (.*)$`)

// A commandError says the job's command is not in the container.
type commandError struct {
	id, name, path, detail string
}

func (e *commandError) Error() string {
	return fmt.Sprintf("libcontainer: run %s: command %s not found in the container (PATH=%s): %s", e.id, e.name, e.path, e.detail)
}

func (e *commandError) Unwrap() error { return exec.ErrNotFound }

func startError(id string, proc *lc.Process, err error) error {
	if m := execErrRE.FindStringSubmatch(err.Error()); m != nil {
		path := ""
		for _, kv := range proc.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		return &commandError{id: id, name: m[1], path: path, detail: m[2]}
	}
	return fmt.Errorf("start container: %w", err)
}

// output carries a job's stdout and stderr through pipes of our own: handing
// libcontainer an *os.File would let it chown the file to the container user.
type output struct {
	stdout, stderr *os.File // write ends, for the container; nil = /dev/null
	readers        []*os.File
	wg             sync.WaitGroup
	errs           []error
	mu             sync.Mutex
}

func newOutput(stdout, stderr io.Writer) (*output, error) {
	o := &output{}
	var err error
	if stdout != nil {
		if o.stdout, err = o.pipe(stdout); err != nil {
			o.close()
			return nil, err
		}
	}
	if stderr != nil {
		if sameWriter(stdout, stderr) {
			o.stderr = o.stdout
		} else if o.stderr, err = o.pipe(stderr); err != nil {
			o.close()
			return nil, err
		}
	}
	return o, nil
}

func (o *output) pipe(w io.Writer) (*os.File, error) {
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	o.readers = append(o.readers, r)
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		if _, err := io.Copy(w, r); err != nil {
			o.mu.Lock()
			o.errs = append(o.errs, fmt.Errorf("copy output: %w", err))
			o.mu.Unlock()
			// Keep draining so the container never blocks on a full pipe.
			_, _ = io.Copy(io.Discard, r)
		}
	}()
	return pw, nil
}

// sameWriter reports whether a and b are the same writer, as os/exec does for
// Stdout and Stderr.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false // not comparable
		}
	}()
	return a == b
}

func (o *output) closeWriters() {
	if o.stdout != nil {
		o.stdout.Close()
	}
	if o.stderr != nil && o.stderr != o.stdout {
		o.stderr.Close()
	}
}

// wait waits until all output is copied, which is when every write end is
// closed: soon after the container is gone, unless a process outside it holds
// one.
func (o *output) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(outputGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("killed: %w", context.Cause(ctx))
	case <-t.C:
		return fmt.Errorf("output still open %v after the container ended", outputGrace)
	}
	return errors.Join(o.errs...)
}

const outputGrace = 10 * time.Second

// close ends the copying even if a write end is still open somewhere.
func (o *output) close() {
	o.closeWriters()
	for _, r := range o.readers {
		r.Close()
	}
	o.wg.Wait()
}
