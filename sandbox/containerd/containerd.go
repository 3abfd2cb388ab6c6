// Package containerd runs sandbox jobs as containerd tasks, through a running
// containerd daemon on this host (Debian's 1.6 or a 2.x) and its Go client.
//
// The job's image goes from reprobox's OCI layout (Job.Image.Layout) into the
// daemon's content store by digest, blob by blob (no registry), and is
// unpacked once into the snapshotter (overlayfs). The job's source is copied
// once into a committed snapshot named after its digest, reused by every later
// job with that source; each job gets a fresh active snapshot of it, mounted
// on the host under the backend's state directory and bind-mounted at
// BuildPath, so the job's writes land in that snapshot and never in
// Source.Dir. Its root is a fresh active snapshot of the image, read-only in
// the container. Files are written to the job's state directory and
// bind-mounted read-only. FileOrdering "reverse" puts disorderfs between the
// source snapshot and the container.
//
// runc (1.1 and later) sets no personality flags, so a job with
// Job.Personality runs through a small static program (compiled once with the
// host's C compiler, as the time shim is) that calls personality(2) and then
// executes the job's command in its place; the job's seccomp profile gets one
// rule allowing exactly that personality(2) call. Under UNAME26 a
// createContainer hook (the host's mount(8)) binds the 2.6 release over
// /proc/sys/kernel/osrelease, so that it agrees with uname(2).
//
// Differences from the libcontainer backend: containerd reports a process
// killed by a signal as exit status 128+signal, so Result.Signal is derived
// from statuses 129 to 192 (a build that exits 137 by itself reads as killed
// by SIGKILL); a command missing from the image is a Result with exit status
// 127 when the personality program runs it (it says so on stderr), not an
// error wrapping exec.ErrNotFound.
//
// Everything a job makes (container, task, snapshots, lease, host mounts)
// carries the label io.reprobox.owner naming the process that made it (pid and
// start time). [New] removes what dead owners left behind: after reprobox is
// SIGKILLed mid-build, the next run kills the task and removes it all.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/reprobox/reprobox/sandbox"
)

const backendName = "containerd"

// Labels on everything a Backend creates in containerd.
const (
	// LabelOwner is "<pid>:<start time>" of the process that made it.
	LabelOwner = "io.reprobox.owner"
	// LabelJob is the job's ID.
	LabelJob = "io.reprobox.job"
	// LabelSource is the source digest of a cached source snapshot.
	LabelSource = "io.reprobox.source"
	// LabelImage is the manifest digest of an imported image.
	LabelImage = "io.reprobox.image"
)

// Defaults of Config.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "reprobox"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "io.containerd.runc.v2"
)

// Config configures a Backend.
type Config struct {
	// Address is the daemon's socket; "" means DefaultAddress.
	Address string
	// Namespace is the containerd namespace of everything the backend
	// makes; "" means DefaultNamespace.
	Namespace string
	// Snapshotter is the snapshotter for images, sources and roots; ""
	// means DefaultSnapshotter. It must give mounts this host can mount.
	Snapshotter string
	// Runtime is the task runtime; "" means DefaultRuntime (runc).
	Runtime string
	// StateDir is a host directory for the jobs' mounts, files and output
	// FIFOs, for example <data-dir>/containerd. It is created if missing;
	// backends in several processes may share it. "" means
	// <os.TempDir()>/reprobox-containerd.
	StateDir string
	// DiskPoll is how often a job's disk use is measured when it has
	// DiskBytes; 0 means one second.
	DiskPoll time.Duration
	// Logger receives debug lines and warnings about removed leftovers. Nil
	// discards them.
	Logger *slog.Logger
}

// A Backend runs jobs as containerd tasks. It is safe for concurrent use.
type Backend struct {
	client      *client.Client
	ns          string
	snapshotter string
	runtime     string
	stateDir    string
	diskPoll    time.Duration
	owner       string
	log         *slog.Logger

	imageMu sync.Mutex
	images  map[string]*imageOnce

	srcMu   sync.Mutex
	sources map[string]*sync.Mutex

	helperOnce sync.Once
	helper     string
	helperErr  error
	// The PID entry program (pid.go), compiled once.
	pidOnce   sync.Once
	pidHelper string
	pidErr    error
}

var (
	_ sandbox.Backend  = (*Backend)(nil)
	_ sandbox.Features = (*Backend)(nil)
)

// New connects to the daemon at cfg.Address and removes what jobs of dead
// reprobox processes left behind (tasks are killed; containers, snapshots,
// leases, host mounts and directories removed), and the cached source
// snapshots no job used for SourceMaxAge. Close the Backend when done.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("containerd: namespace %q: %w", cfg.Namespace, err)
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.Runtime == "" {
		cfg.Runtime = DefaultRuntime
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "reprobox-containerd")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("containerd: state directory: %w", err)
	}
	if strings.ContainsAny(dir, ",:\\") {
		return nil, fmt.Errorf("containerd: state directory %q: overlayfs cannot take a comma, colon or backslash in a path", dir)
	}
	owner, err := processOwner(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	b := &Backend{
		ns:          cfg.Namespace,
		snapshotter: cfg.Snapshotter,
		runtime:     cfg.Runtime,
		stateDir:    dir,
		diskPoll:    cfg.DiskPoll,
		owner:       owner,
		log:         cfg.Logger,
		images:      map[string]*imageOnce{},
		sources:     map[string]*sync.Mutex{},
	}
	if b.diskPoll <= 0 {
		b.diskPoll = time.Second
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	// 0711: disorderfs reads the source as the build's user, through
	// these directories.
	for _, d := range []string{dir, b.jobsDir(), b.binDir()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if _, err := os.Stat(cfg.Address); err != nil {
		return nil, fmt.Errorf("containerd: no daemon socket at %s (start containerd, or give its socket with --containerd-address): %w", cfg.Address, err)
	}
	c, err := client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace), client.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd: connect to %s: %w", cfg.Address, err)
	}
	b.client = c
	if err := b.cleanStale(b.nsCtx(ctx)); err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd: remove leftovers of dead runs: %w", err)
	}
	if err := b.pruneSources(b.nsCtx(ctx), time.Now().Add(-SourceMaxAge)); err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd: %w", err)
	}
	return b, nil
}

// Close closes the connection to the daemon.
func (b *Backend) Close() error { return b.client.Close() }

// Features is what the backend can apply; reverse directory order needs
// disorderfs on the host.
var Features = sandbox.AllFeatures

// Features reports what the backend applies: Features, but reverse
// directory order only when disorderfs is installed.
func (b *Backend) Features() []sandbox.Feature {
	_, err := exec.LookPath("disorderfs")
	return slices.DeleteFunc(slices.Clone(Features), func(f sandbox.Feature) bool {
		return f == sandbox.FeatureReverseDirents && err != nil
	})
}

func (b *Backend) jobsDir() string { return filepath.Join(b.stateDir, "jobs") }
func (b *Backend) binDir() string  { return filepath.Join(b.stateDir, "bin") }

func (b *Backend) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, b.ns)
}

// labels are the labels of everything job id makes.
func (b *Backend) labels(id string) map[string]string {
	return map[string]string{LabelOwner: b.owner, LabelJob: id}
}

// processOwner is "<pid>:<start time>" of process pid: the start time (in
// clock ticks since boot, /proc/<pid>/stat field 22) tells a live owner
// from a later process that reused its pid.
func processOwner(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	start, err := statStartTime(string(b))
	if err != nil {
		return "", fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return strconv.Itoa(pid) + ":" + start, nil
}

// statStartTime returns field 22 (starttime) of a /proc/<pid>/stat line.
func statStartTime(s string) (string, error) {
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it follow the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", errors.New("no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	if _, err := strconv.ParseUint(f[19], 10, 64); err != nil {
		return "", fmt.Errorf("start time %q: %w", f[19], err)
	}
	return f[19], nil
}

// ownerAlive reports whether the process an owner label names still runs.
// A malformed label counts as alive: it is not ours to remove.
func ownerAlive(owner string) bool {
	pidStr, _, ok := strings.Cut(owner, ":")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || pid <= 0 {
		return true
	}
	now, err := processOwner(pid)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ESRCH)
	}
	return now == owner
}

// withLease returns ctx holding a new lease with labels, and its removal.
func (b *Backend) withLease(ctx context.Context, id string, labels map[string]string) (context.Context, func(context.Context) error, error) {
	ls := b.client.LeasesService()
	l, err := ls.Create(ctx, leases.WithID(id), leases.WithLabels(labels))
	if err != nil {
		return nil, nil, fmt.Errorf("create lease: %w", err)
	}
	return leases.WithLease(ctx, l.ID), func(ctx context.Context) error {
		err := ls.Delete(ctx, l, leases.SynchronousDelete)
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}, nil
}

func unsupported(what string, args ...any) error {
	return sandbox.Unsupported(backendName, fmt.Sprintf(what, args...))
}
