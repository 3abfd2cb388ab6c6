package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reprobox/reprobox/sandbox/internal/diskwatch"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
)

// cleanupTimeout bounds the removal of a job's container, snapshots and
// mounts once the job is over (or cancelled).
const cleanupTimeout = time.Minute

// Run runs job as a containerd task and removes its task, container,
// snapshots, lease and host mounts before it returns. See [sandbox.Backend]
// for the contract.
func (b *Backend) Run(ctx context.Context, job *sandbox.Job) (res *sandbox.Result, err error) {
	if job == nil {
		return nil, errors.New("containerd: nil job")
	}
	id := job.ID
	if id == "" {
		id = sandbox.NewID()
	}
	if err := sandbox.CheckID(id); err != nil {
		return nil, fmt.Errorf("containerd: %w", err)
	}
	defer func() {
		if err != nil {
			res = nil
			if ctx.Err() != nil && !errors.Is(err, context.Cause(ctx)) {
				// Cancelled while the daemon was busy: the daemon's
				// error says only "context canceled".
				err = fmt.Errorf("killed: %w (%w)", context.Cause(ctx), err)
			}
			err = fmt.Errorf("containerd: run %s: %w", id, err)
		}
	}()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("not started: %w", context.Cause(ctx))
	}
	if err := checkJob(job); err != nil {
		return nil, err
	}
	ctx = b.nsCtx(ctx)

	chain, err := b.ensureImage(ctx, job.Image)
	if err != nil {
		return nil, err
	}
	srcLayer, err := b.sourceLayer(ctx, job.Source)
	if err != nil {
		return nil, err
	}

	r := &run{b: b, id: id, job: job}
	defer func() {
		// Cleaning up must not stop because ctx is done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := r.cleanup(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	if err := r.prepare(ctx, chain, srcLayer.name); err != nil {
		return nil, err
	}
	res, err = r.start(ctx)
	if err != nil {
		return nil, err
	}
	if job.Collect != nil {
		if err := r.collect(ctx, res); err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("killed: %w", context.Cause(ctx))
	}
	return res, nil
}

// A run is one job's state: what it made, for cleanup.
type run struct {
	b   *Backend
	id  string
	job *sandbox.Job

	dir       string // host directory of the job's mounts and files
	cancel    func(context.Context) error
	rootKey   string
	srcKey    string
	srcMount  string // the source snapshot, mounted on the host
	upper     string // its overlay's upper directory (what the job wrote), or ""
	disorder  string // disorderfs over srcMount, or ""
	container client.Container
	task      client.Task
	cgroup    string
}

// prepare makes the job's directory, lease, snapshots, host mounts and
// container.
func (r *run) prepare(ctx context.Context, chain, srcLayer string) error {
	b, job := r.b, r.job
	labels := b.labels(r.id)
	dir, err := os.MkdirTemp(b.jobsDir(), jobDirPrefix(b.owner)+r.id+"_")
	if err != nil {
		return err
	}
	r.dir = dir
	// Reachable by the build's user: disorderfs reads the source as the
	// caller, through this directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	base := filepath.Base(dir)
	lctx, cancel, err := b.withLease(ctx, "reprobox/job/"+base, labels)
	if err != nil {
		return err
	}
	r.cancel = cancel
	sn := b.client.SnapshotService(b.snapshotter)

	r.rootKey = "reprobox/job/" + base + "/root"
	if _, err := sn.Prepare(lctx, r.rootKey, chain, snapshots.WithLabels(labels)); err != nil {
		return fmt.Errorf("root snapshot: %w", err)
	}
	r.srcKey = "reprobox/job/" + base + "/source"
	mounts, err := sn.Prepare(lctx, r.srcKey, srcLayer, snapshots.WithLabels(labels))
	if err != nil {
		return fmt.Errorf("source snapshot: %w", err)
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return err
	}
	// The job writes into this mount: on the host it must not give a
	// setuid binary or a device node the build made any meaning.
	for i := range mounts {
		mounts[i].Options = append(mounts[i].Options, "nosuid", "nodev")
		for _, o := range mounts[i].Options {
			if d, ok := strings.CutPrefix(o, "upperdir="); ok {
				r.upper = d
			}
		}
	}
	if err := mount.All(mounts, src); err != nil {
		return fmt.Errorf("mount the source snapshot: %w", err)
	}
	r.srcMount = src
	bindSrc := src
	if job.FileOrdering == "reverse" {
		r.disorder = filepath.Join(dir, "disorder")
		if err := mountDisorder(ctx, src, r.disorder); err != nil {
			r.disorder = ""
			return err
		}
		bindSrc = r.disorder
	}

	spec, err := cloneSpec(job.Spec)
	if err != nil {
		return err
	}
	spec.Root = &specs.Root{Path: "rootfs", Readonly: true}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: job.BuildPath, Type: "bind", Source: bindSrc,
		Options: []string{"rbind", "rw", "nosuid", "nodev"},
	})
	if len(job.Files) > 0 {
		fdir := filepath.Join(dir, "files")
		if err := os.Mkdir(fdir, 0o711); err != nil {
			return err
		}
		for i, f := range job.Files {
			p := filepath.Join(fdir, fmt.Sprint(i))
			if err := os.WriteFile(p, f.Data, f.Mode.Perm()); err != nil {
				return err
			}
			if err := os.Chmod(p, f.Mode.Perm()); err != nil { // whatever the umask
				return err
			}
			spec.Mounts = append(spec.Mounts, specs.Mount{
				Destination: f.Path, Type: "bind", Source: p,
				Options: []string{"bind", "ro", "nosuid", "nodev"},
			})
		}
	}
	if err := r.applyPersonality(spec); err != nil {
		return err
	}
	if err := r.applyLastPID(spec); err != nil {
		return err
	}
	if err := applyDomainname(spec); err != nil {
		return err
	}
	r.cgroup = "/reprobox-containerd/" + b.ns + "/" + r.id
	spec.Linux.CgroupsPath = r.cgroup

	c, err := b.client.NewContainer(lctx, r.id,
		client.WithSnapshotter(b.snapshotter),
		client.WithSnapshot(r.rootKey),
		client.WithRuntime(b.runtime, nil),
		client.WithContainerLabels(labels),
		client.WithSpec(spec),
	)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	r.container = c
	return nil
}

// start starts the task, waits for it and reads how it ended. It kills the
// task when ctx is done or the job writes more than DiskBytes.
func (r *run) start(ctx context.Context) (*sandbox.Result, error) {
	b, job := r.b, r.job
	fifos := filepath.Join(r.dir, "fifo")
	// Both writers always: containerd 1.6's shim fails to open an empty
	// FIFO path for a stream left out.
	stdout, stderr := job.Stdout, job.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if sameWriter(stdout, stderr) {
		// containerd copies the two streams in two goroutines.
		w := &lockedWriter{w: stdout}
		stdout, stderr = w, w
	}
	task, err := r.container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(fifos)))
	if err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	r.task = task
	statusC, err := task.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for task: %w", err)
	}
	t0 := time.Now()
	if err := task.Start(ctx); err != nil {
		return nil, fmt.Errorf("start task: %w", err)
	}
	b.log.Debug("task started", "id", r.id, "pid", task.Pid())

	var over <-chan struct{}
	stopWatch := func() {}
	if job.DiskBytes > 0 {
		wctx, cancel := context.WithCancel(ctx)
		stopWatch = cancel
		over = r.watchDisk(wctx)
	}
	defer stopWatch()

	kill := func(why string) (client.ExitStatus, error) {
		b.log.Debug("killing task", "id", r.id, "why", why)
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := task.Kill(kctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return client.ExitStatus{}, fmt.Errorf("kill task: %w", err)
		}
		select {
		case st := <-statusC:
			return st, nil
		case <-kctx.Done():
			return client.ExitStatus{}, fmt.Errorf("task did not end after SIGKILL: %w", kctx.Err())
		}
	}

	var st client.ExitStatus
	res := &sandbox.Result{}
	select {
	case st = <-statusC:
	case <-ctx.Done():
		if _, err := kill(context.Cause(ctx).Error()); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("killed: %w", context.Cause(ctx))
	case <-over:
		res.DiskExceeded = true
		if st, err = kill(fmt.Sprintf("wrote more than %d bytes", job.DiskBytes)); err != nil {
			return nil, err
		}
	}
	res.Duration = time.Since(t0)
	code, _, err := st.Result()
	if err != nil {
		return nil, fmt.Errorf("task exit status: %w", err)
	}
	// What the job wrote after the watchdog's last look.
	if job.DiskBytes > 0 && !res.DiskExceeded && r.diskUsage(ctx) > job.DiskBytes {
		res.DiskExceeded = true
	}
	// containerd reports a process killed by a signal as 128+signal.
	res.ExitCode = int(code)
	if code > 128 && code < 128+65 {
		res.Signal = int(code) - 128
	}
	// Read before runc removes the cgroup.
	if res.OOMKilled, err = oomKilled(r.cgroup); err != nil {
		b.log.Warn("cannot tell whether the kernel killed a process at the memory limit", "id", r.id, "err", err)
	}
	// Deleting the task waits until its output is copied.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := task.Delete(dctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("delete task: %w", err)
	}
	r.task = nil
	b.log.Debug("task exited", "id", r.id, "exit", res.ExitCode, "duration", res.Duration)
	return res, nil
}

// watchDisk closes the returned channel when the job's source snapshot
// holds more than DiskBytes (the root is read-only; tmpfs mounts have their
// own sizes).
func (r *run) watchDisk(ctx context.Context) <-chan struct{} {
	over := make(chan struct{})
	go func() {
		t := time.NewTicker(r.b.diskPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if r.diskUsage(ctx) > r.job.DiskBytes {
				close(over)
				return
			}
		}
	}()
	return over
}

// diskUsage is what the job wrote: its overlay's upper directory measured
// as libcontainer's is (package diskwatch: a tree too deep to measure counts
// as over any limit), or the snapshotter's own count where there is no upper
// directory, and over any limit when it cannot be measured.
func (r *run) diskUsage(ctx context.Context) int64 {
	if r.upper != "" {
		return diskwatch.Usage(r.upper)
	}
	u, err := r.b.client.SnapshotService(r.b.snapshotter).Usage(ctx, r.srcKey)
	if err != nil {
		return diskwatch.Unmeasurable
	}
	return u.Size
}

// collect hands the job's tree, mounted read-only, to job.Collect.
func (r *run) collect(ctx context.Context, res *sandbox.Result) error {
	tree := filepath.Join(r.dir, "tree")
	if err := os.Mkdir(tree, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(r.srcMount, tree, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the tree for collection: %w", err)
	}
	defer func() { _ = unmount(tree) }()
	if err := unix.Mount("", tree, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount the tree read-only: %w", err)
	}
	if err := r.job.Collect(ctx, res, tree); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}

// cleanup removes everything the run made, whatever state it got to.
func (r *run) cleanup(ctx context.Context) error {
	var errs []error
	if r.task != nil {
		if err := r.task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsFailedPrecondition(err) {
			errs = append(errs, fmt.Errorf("kill task: %w", err))
		}
		if _, err := r.task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete task: %w", err))
		}
	}
	if r.container != nil {
		if err := r.container.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container: %w", err))
		}
	}
	if r.disorder != "" {
		if err := unmount(r.disorder); err != nil {
			errs = append(errs, err)
		}
	}
	if r.srcMount != "" {
		if err := unmount(r.srcMount); err != nil {
			errs = append(errs, err)
		}
	}
	sn := r.b.client.SnapshotService(r.b.snapshotter)
	for _, key := range []string{r.srcKey, r.rootKey} {
		if key == "" {
			continue
		}
		if err := sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove snapshot %s: %w", key, err))
		}
	}
	if r.cancel != nil {
		if err := r.cancel(ctx); err != nil {
			errs = append(errs, fmt.Errorf("delete lease: %w", err))
		}
	}
	if r.dir != "" && len(errs) == 0 {
		if err := os.RemoveAll(r.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// applyDomainname sets the spec's domainname with a createContainer hook,
// the host's domainname(1) (Debian's hostname package), run in the
// container's UTS namespace: runc 1.1 ignores spec.domainname (1.2 sets it;
// the hook then sets the same name again).
func applyDomainname(spec *specs.Spec) error {
	if spec.Domainname == "" {
		return nil
	}
	uts := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UTSNamespace && ns.Path == "" {
			uts = true
		}
	}
	if !uts {
		return unsupported("domainname without a new UTS namespace")
	}
	p, err := exec.LookPath("domainname")
	if err != nil {
		return unsupported("domainname: runc 1.1 ignores it and this host has no domainname(1) to set it (apt-get install hostname): %v", err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return err
	}
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	spec.Hooks.CreateContainer = append(spec.Hooks.CreateContainer, specs.Hook{
		Path: p, Args: []string{"domainname", spec.Domainname},
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	return nil
}

// checkJob reports what in job cannot be run as given: an invalid job is a
// plain error, something valid this backend cannot apply wraps
// errors.ErrUnsupported.
func checkJob(job *sandbox.Job) error {
	spec := job.Spec
	if err := sandbox.CheckSpec(spec); err != nil {
		return err
	}
	switch {
	case spec.Process.Terminal:
		return unsupported("process.terminal (output goes to the job's writers)")
	case spec.Windows != nil, spec.Solaris != nil, spec.VM != nil, spec.ZOS != nil:
		return unsupported("a spec for another platform (windows, solaris, vm or zos section)")
	case spec.Linux == nil:
		return unsupported("a spec without a linux section")
	case spec.Linux.CgroupsPath != "":
		return unsupported("linux.cgroupsPath %q (each job gets its own cgroup under /reprobox-containerd)", spec.Linux.CgroupsPath)
	case job.BuildPath == "" || !filepath.IsAbs(job.BuildPath) || filepath.Clean(job.BuildPath) == "/":
		return fmt.Errorf("build path %q is not an absolute path below /", job.BuildPath)
	case job.Source.Dir == "":
		return errors.New("no source directory")
	case job.Image.Digest == "":
		return errors.New("no image digest")
	}
	switch job.FileOrdering {
	case "", "native":
	case "reverse":
		if _, err := exec.LookPath("disorderfs"); err != nil {
			return unsupported("file ordering \"reverse\" without disorderfs (apt-get install disorderfs)")
		}
	default:
		return fmt.Errorf("unknown file ordering %q", job.FileOrdering)
	}
	if job.Personality&^sandbox.AllPersonalityFlags != 0 {
		return fmt.Errorf("personality %#x has bits that are not personality flags", job.Personality)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		if m.Type == "bind" || hasOption(m.Options, "bind") || hasOption(m.Options, "rbind") {
			return fmt.Errorf("the spec bind-mounts %s at %s: a job's spec holds no host path (give files as Job.Files)", m.Source, m.Destination)
		}
	}
	for _, f := range job.Files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("file path %q is not a clean absolute path", f.Path)
		}
	}
	if err := checkPersonality(spec, job.Personality); err != nil {
		return err
	}
	return nil
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
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

// lockedWriter serializes the writes of two streams to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cloneSpec deep-copies a spec, which Run then changes.
func cloneSpec(s *specs.Spec) (*specs.Spec, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	var c specs.Spec
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	return &c, nil
}

// jobDirPrefix names the owner in the directories a job makes on the host
// (a job directory is <pid>.<start>_<id>_<random>).
func jobDirPrefix(owner string) string { return strings.ReplaceAll(owner, ":", ".") + "_" }

// mountDisorder mounts disorderfs over src at mnt, listing every directory in
// reverse order.
func mountDisorder(ctx context.Context, src, mnt string) error {
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "disorderfs", "--multi-user=yes", "--reverse-dirents=yes", "--shuffle-dirents=no",
		"-o", "allow_other,default_permissions", src, mnt)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("disorderfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unmount unmounts path, waiting a little while it is busy, then detaching
// it. A path that is not mounted is fine.
func unmount(path string) error {
	for i := 0; ; i++ {
		err := unix.Unmount(path, 0)
		switch {
		case err == nil:
			continue // stacked mounts: until none is left
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && i < 50:
			time.Sleep(20 * time.Millisecond)
		default:
			if derr := unix.Unmount(path, unix.MNT_DETACH); derr != nil && !errors.Is(derr, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", path, errors.Join(err, derr))
			}
			return nil
		}
	}
}

// oomKilled reports whether the kernel killed a process in the job's cgroup
// at its memory limit.
func oomKilled(path string) (bool, error) {
	m, err := manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		return false, err
	}
	n, err := m.OOMKillCount()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}
