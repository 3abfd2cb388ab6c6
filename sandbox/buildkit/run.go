package buildkit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/errdefs"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	sessioncontent "github.com/moby/buildkit/session/content"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/entitlements"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/cprog"
)

// entrySource is the C source of the entry program.
//
//go:embed entry/entry.c
var entrySource []byte

// ociStoreID names the session's content store holding the job's image.
const ociStoreID = "reprobox"

// Run runs job as one BuildKit solve and removes its control directory and
// exported tree before it returns. See [sandbox.Backend] for the contract.
func (b *Backend) Run(ctx context.Context, job *sandbox.Job) (res *sandbox.Result, err error) {
	if job == nil {
		return nil, errors.New("buildkit: nil job")
	}
	id := job.ID
	if id == "" {
		id = sandbox.NewID()
	}
	if err := sandbox.CheckID(id); err != nil {
		return nil, fmt.Errorf("buildkit: %w", err)
	}
	defer func() {
		if err != nil {
			res = nil
			if ctx.Err() != nil && !errors.Is(err, context.Cause(ctx)) {
				err = fmt.Errorf("killed: %w (%w)", context.Cause(ctx), err)
			}
			err = fmt.Errorf("buildkit: run %s on %s: %w", id, b.address, err)
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
	conf, prog, err := entryConfig(job)
	if err != nil {
		return nil, err
	}
	entry, err := b.entryProgram()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(b.jobsDir(), strconv.Itoa(os.Getpid())+"_"+id+"_")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", rerr))
		}
	}()
	ctl := filepath.Join(dir, "ctl")
	if err := writeControl(ctl, entry, conf, prog, job.Spec.Process.Env, job.Files); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		return nil, err
	}
	jobFS, err := jobContext(ctl, job.Source.Dir)
	if err != nil {
		return nil, err
	}
	store, err := layoutStore(job.Image.Layout)
	if err != nil {
		return nil, err
	}
	def, err := b.definition(ctx, id, job)
	if err != nil {
		return nil, err
	}
	stdout, stderr := job.Stdout, job.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// The job's own session: the client's would send every file of a
	// local context as owned by root, and a source's owners are part of it.
	sess, err := session.NewSession(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	sess.Allow(filesync.NewFSSyncProvider(filesync.StaticDirSource{"job": jobFS}))
	sess.Allow(sessioncontent.NewAttachable(map[string]content.Store{"oci:" + ociStoreID: store}))
	sess.Allow(filesync.NewFSSyncTarget(filesync.WithFSSyncDir(0, out)))
	opt := client.SolveOpt{
		Exports:               []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}},
		LocalMounts:           map[string]fsutil.FS{"job": jobFS},
		SharedSession:         sess,
		SessionPreInitialized: true,
		AllowedEntitlements:   []string{string(entitlements.EntitlementSecurityInsecure)},
	}
	b.log.Debug("solve", "id", id, "address", b.address)
	ch := make(chan *client.SolveStatus)
	var tail tailBuffer // the last of the output, for a sandbox failure's error
	eg, ectx := errgroup.WithContext(ctx)
	sessDone := make(chan struct{})
	go func() {
		defer close(sessDone)
		_ = sess.Run(context.WithoutCancel(ctx), b.client.Dialer())
	}()
	defer func() {
		sess.Close()
		<-sessDone
	}()
	eg.Go(func() error {
		_, err := b.client.Solve(ectx, def, opt, ch)
		return err
	})
	eg.Go(func() error {
		for st := range ch {
			for _, l := range st.Logs {
				tail.Write(l.Data)
				switch l.Stream {
				case 1:
					_, _ = stdout.Write(l.Data)
				case 2:
					_, _ = stderr.Write(l.Data)
				}
			}
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("killed: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("solve: %w%s", err, insecureHint(err, tail.String()))
	}
	res, err = readStatus(filepath.Join(out, "status"))
	if err != nil {
		return nil, err
	}
	b.log.Debug("job exited", "id", id, "exit", res.ExitCode, "duration", res.Duration)
	if job.Collect != nil {
		tree := ""
		if job.BuildPath != "" {
			tree = filepath.Join(out, "tree")
		}
		if err := job.Collect(ctx, res, tree); err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("killed: %w", context.Cause(ctx))
	}
	return res, nil
}

// insecureHint explains a refused security.insecure entitlement.
func insecureHint(err error, out string) string {
	s := err.Error()
	if strings.Contains(s, "security.insecure") || strings.Contains(s, "entitlement") {
		return " (reprobox's entry program needs the daemon started with --allow-insecure-entitlement security.insecure)"
	}
	if out = strings.TrimSpace(out); out != "" {
		return "; its output ended with: " + out
	}
	return ""
}

// definition is the job's LLB: the entry program, as root, on the image,
// with the job directory mounted, network none, never from the cache.
func (b *Backend) definition(ctx context.Context, id string, job *sandbox.Job) (*llb.Definition, error) {
	d, err := digest.Parse(job.Image.Digest)
	if err != nil {
		return nil, fmt.Errorf("image digest %q: %w", job.Image.Digest, err)
	}
	img := llb.OCILayout("reprobox/job@"+d.String(), llb.OCIStore("", ociStoreID),
		llb.WithCustomName("image "+d.String()))
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	jobSt := llb.Local("job", llb.LocalUniqueID(id+"-"+hex.EncodeToString(nonce)),
		llb.WithCustomName("job "+id+" source"))
	spec := job.Spec
	opts := []llb.RunOption{
		llb.Args(append([]string{entryPath}, spec.Process.Args...)),
		llb.User("0:0"),
		llb.Dir("/"),
		llb.Network(pb.NetMode_NONE),
		llb.Security(pb.SecurityMode_INSECURE),
		llb.IgnoreCache,
		llb.WithCustomName("job " + id),
	}
	if spec.Hostname != "" {
		opts = append(opts, llb.Hostname(spec.Hostname))
	}
	// The job's environment is the entry program's to give (ctl/env):
	// BuildKit adds variables of its own (tracing) to what LLB sets.
	st := img.Run(opts...)
	out := st.AddMount(jobMount, jobSt)
	return out.Marshal(ctx)
}

// checkJob reports what in job cannot be run as given.
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
		return unsupported("linux.cgroupsPath %q (BuildKit places each job's cgroup)", spec.Linux.CgroupsPath)
	case len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0:
		return unsupported("user namespace mappings")
	case spec.Hooks != nil:
		return unsupported("OCI hooks")
	case len(spec.Linux.Devices) > 0:
		return unsupported("extra devices")
	case len(spec.Linux.Sysctl) > 0:
		return unsupported("sysctls")
	case spec.Process.ApparmorProfile != "" || spec.Process.SelinuxLabel != "":
		return unsupported("an AppArmor profile or SELinux label")
	case job.BuildPath == "" || !filepath.IsAbs(job.BuildPath) || filepath.Clean(job.BuildPath) == "/":
		return fmt.Errorf("build path %q is not an absolute path below /", job.BuildPath)
	case strings.HasPrefix(filepath.Clean(job.BuildPath)+"/", jobMount+"/"):
		return fmt.Errorf("build path %q is reprobox's own job directory", job.BuildPath)
	case job.Source.Dir == "":
		return errors.New("no source directory")
	case job.Image.Digest == "":
		return errors.New("no image digest")
	case job.Image.Layout == "":
		return errors.New("no OCI layout holding the image (Job.Image.Layout)")
	}
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			return unsupported("joining the %s namespace at %s", ns.Type, ns.Path)
		case ns.Type == "user", ns.Type == "time":
			return unsupported("a new %s namespace", ns.Type)
		}
	}
	switch job.FileOrdering {
	case "", "native":
	case "reverse":
		return unsupported("file ordering \"reverse\" (BuildKit's local context gives no way to put disorderfs under the build)")
	default:
		return fmt.Errorf("unknown file ordering %q", job.FileOrdering)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		for _, o := range m.Options {
			if m.Type == "bind" || o == "bind" || o == "rbind" {
				return fmt.Errorf("the spec bind-mounts %s at %s: a job's spec holds no host path (give files as Job.Files)", m.Source, m.Destination)
			}
		}
	}
	for _, f := range job.Files {
		if !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("file path %q is not a clean absolute path", f.Path)
		}
	}
	return nil
}

// writeControl fills the job's control directory: the entry program, its
// configuration and seccomp program, and the job's files.
func writeControl(ctl, entry, conf string, prog []byte, env []string, files []sandbox.File) error {
	if err := os.MkdirAll(filepath.Join(ctl, "files"), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(entry)
	if err != nil {
		return err
	}
	write := func(name string, data []byte, mode os.FileMode) error {
		p := filepath.Join(ctl, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			return err
		}
		return os.Chmod(p, mode) // whatever the umask
	}
	if err := write("entry", data, 0o755); err != nil {
		return err
	}
	if err := write("config", []byte(conf), 0o644); err != nil {
		return err
	}
	// BuildKit keys a vertex by the content of its inputs and merges two
	// running vertices with one key, even marked IgnoreCache: a random
	// file makes every job's context, and so the job, its own.
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	if err := write("nonce", []byte(hex.EncodeToString(nonce)+"\n"), 0o644); err != nil {
		return err
	}
	var envData []byte
	for _, kv := range env {
		envData = append(append(envData, kv...), 0)
	}
	if err := write("env", envData, 0o644); err != nil {
		return err
	}
	if len(prog) > 0 {
		if err := write("seccomp", prog, 0o644); err != nil {
			return err
		}
	}
	for i, f := range files {
		if err := write(filepath.Join("files", strconv.Itoa(i)), f.Data, f.Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// jobContext is the local context of a job: the control directory as ctl
// and the source as tree, with the source's own root mode and owner.
func jobContext(ctl, src string) (fsutil.FS, error) {
	ctlFS, err := fsutil.NewFS(ctl)
	if err != nil {
		return nil, err
	}
	srcFS, err := fsutil.NewFS(src)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", src)
	}
	uid, gid := ownerOf(st)
	return fsutil.SubDirFS([]fsutil.Dir{
		{Stat: &fstypes.Stat{Path: "ctl", Mode: uint32(os.ModeDir | 0o755), ModTime: st.ModTime().UnixNano()}, FS: ctlFS},
		{Stat: &fstypes.Stat{Path: "tree", Mode: uint32(os.ModeDir | st.Mode().Perm()), Uid: uid, Gid: gid, ModTime: st.ModTime().UnixNano()}, FS: srcFS},
	})
}

// readOnlyStore serves an OCI layout's blobs and refuses every write: the
// image store is never changed by a job.
type readOnlyStore struct{ content.Store }

func (readOnlyStore) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, fmt.Errorf("reprobox's image layout is read-only: %w", errdefs.ErrNotImplemented)
}

func (readOnlyStore) Delete(context.Context, digest.Digest) error {
	return fmt.Errorf("reprobox's image layout is read-only: %w", errdefs.ErrNotImplemented)
}

func (readOnlyStore) Update(context.Context, content.Info, ...string) (content.Info, error) {
	return content.Info{}, fmt.Errorf("reprobox's image layout is read-only: %w", errdefs.ErrNotImplemented)
}

func (readOnlyStore) Abort(context.Context, string) error {
	return fmt.Errorf("reprobox's image layout is read-only: %w", errdefs.ErrNotImplemented)
}

// layoutStore is the content store of an existing OCI layout.
func layoutStore(layout string) (content.Store, error) {
	if _, err := os.Stat(filepath.Join(layout, "oci-layout")); err != nil {
		return nil, fmt.Errorf("image layout %s: %w", layout, err)
	}
	s, err := local.NewStore(layout)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", layout, err)
	}
	return readOnlyStore{s}, nil
}

// maxStatus bounds the status file read back.
const maxStatus = 4096

// readStatus reads how the build ended, as the entry program wrote it.
func readStatus(path string) (*sandbox.Result, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("the entry program left no status: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxStatus {
		return nil, fmt.Errorf("status %s is not a small regular file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseStatus(data)
}

// parseStatus parses the entry program's status: "key value" lines exit,
// signal, duration_ns and disk, each once.
func parseStatus(data []byte) (*sandbox.Result, error) {
	res := &sandbox.Result{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 || seen[k] {
			return nil, fmt.Errorf("bad status line %q", sc.Text())
		}
		seen[k] = true
		switch k {
		case "exit":
			if n > 255+128 {
				return nil, fmt.Errorf("bad exit status %d", n)
			}
			res.ExitCode = int(n)
		case "signal":
			if n > 64 {
				return nil, fmt.Errorf("bad signal %d", n)
			}
			res.Signal = int(n)
		case "duration_ns":
			res.Duration = time.Duration(n)
		case "disk":
			if n > 1 {
				return nil, fmt.Errorf("bad disk flag %d", n)
			}
			res.DiskExceeded = n == 1
		default:
			return nil, fmt.Errorf("unknown status key %q", k)
		}
	}
	for _, k := range []string{"exit", "signal", "duration_ns", "disk"} {
		if !seen[k] {
			return nil, fmt.Errorf("status has no %s", k)
		}
	}
	return res, nil
}

// entryProgram compiles the entry program once per Backend.
func (b *Backend) entryProgram() (string, error) {
	b.entryOnce.Do(func() {
		b.entry, b.entryErr = cprog.Build(b.binDir(), "entry", entrySource)
		if errors.Is(b.entryErr, cprog.ErrNoCompiler) {
			b.entryErr = fmt.Errorf("%w (%w)", b.entryErr, sandbox.ErrUnsupported)
		}
	})
	return b.entry, b.entryErr
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 2048

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = t.buf[len(t.buf)-tailMax:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
