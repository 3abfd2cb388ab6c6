// Package runner orchestrates builds: one hermetic build, and a check that
// rebuilds with the environment perturbed and searches for the culprit factors.
package runner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/internal/safefs"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// A Runner runs builds in a backend, from images in a store.
type Runner struct {
	Store   *images.Store
	Backend sandbox.Backend
	// WorkDir holds each build's private source copy while it runs.
	WorkDir string
	// LibDir caches what reprobox compiles for builds (the time shim).
	LibDir string
	// CrateCache holds the crates the fetch phase downloads, by checksum
	// (see fetch.go); empty: no fetch phase.
	CrateCache string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Progress receives notes on slow steps outside the build itself (copying
	// the source into a snapshot); nil discards them.
	Progress io.Writer
	// Now is the clock for durations in records; nil means time.Now.
	Now func() time.Time
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// A Plan is what every build of a project shares: the source, the image, the
// command and the artifacts.
type Plan struct {
	// Project is the source directory on the host; it is never written.
	Project string
	Config  Config
	// Image is the resolved, pinned image.
	Image images.Image
	// Rootfs is the image's unpacked root filesystem.
	Rootfs string
	// Base is the normalized environment.
	Base policies.Settings
	// SourceDateEpochFrom says where Base.SourceDateEpoch came from: config,
	// flag, git or default.
	SourceDateEpochFrom string
	// Limits bound every build of the plan (the config's, defaults filled).
	Limits policies.Limits
	// Dependencies are the crates the fetch phase gave the builds (sorted).
	Dependencies []Dependency
	// OutDir is excluded from the source copy when it lies inside Project.
	outRel string
	vendor *vendorSet
	snaps  snapshots
	shim   []byte
}

// NewPlan resolves the image, the source date and the normalized environment
// for a project, after checking outDir (when not empty) with CheckOut. The config's image must be pinned (an unpinned reference is
// refused naming the digest it would resolve to) unless imageFromFlag is set,
// in which case a local name is resolved and its digest recorded.
func (r *Runner) NewPlan(ctx context.Context, project string, cfg Config, imageFromFlag bool, outDir string) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(project)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: project directory %s does not exist", ErrConfig, project)
	}
	if outDir != "" {
		// Before anything is built: a run must not fail only at the end
		// because --out names a directory reprobox may not replace.
		if err := CheckOut(outDir); err != nil {
			return nil, err
		}
	}
	ref, err := images.ParseReference(cfg.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %w", ErrConfig, cfg.Image, err)
	}
	img, err := r.Store.Resolve(cfg.Image)
	if errors.Is(err, images.ErrNotFound) {
		return nil, fmt.Errorf("runner: image %s: %w in %s; %s", cfg.Image, err, r.Store.Dir(), images.WhereFrom(ref))
	} else if err != nil {
		return nil, fmt.Errorf("runner: image %s: %w", cfg.Image, err)
	}
	if !ref.Pinned() && !imageFromFlag {
		return nil, fmt.Errorf("%w: image %q in %s is not pinned by digest; it resolves here to %s: write that in the config: %w",
			ErrConfig, cfg.Image, ConfigFile, img.Reference(), images.ErrNotPinned)
	}
	rootfs, err := r.Store.Rootfs(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("runner: unpack %s: %w", img.Reference(), err)
	}
	sde, from := int64(policies.DefaultSourceDateEpoch), "default"
	if cfg.SourceDateEpoch != nil {
		sde, from = *cfg.SourceDateEpoch, "config"
	} else if t, ok := gitCommitTime(ctx, abs); ok {
		sde, from = t, "git"
	}
	base := policies.Normalized(sde)
	if r.LibDir == "" {
		return nil, errors.New("runner: no LibDir for the time shim")
	}
	shimPath, err := policies.BuildTimeShim(r.LibDir)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	shim, err := os.ReadFile(shimPath)
	if err != nil {
		return nil, fmt.Errorf("runner: the time shim: %w", err)
	}
	if cfg.CPUs != 0 {
		base.CPUs = cfg.CPUs
	}
	base.Env = cfg.envList()
	lim, err := cfg.limits()
	if err != nil {
		return nil, err
	}
	vendor, deps, err := r.fetch(ctx, abs)
	if err != nil {
		return nil, err
	}
	p := &Plan{Project: abs, Config: cfg, Image: img, Rootfs: rootfs, Base: base, SourceDateEpochFrom: from, Limits: lim.WithDefaults(), shim: shim,
		Dependencies: deps, vendor: vendor}
	if outDir != "" {
		if absOut, err := filepath.Abs(outDir); err == nil {
			if rel, err := filepath.Rel(abs, absOut); err == nil && !strings.HasPrefix(rel, "..") && !strings.Contains(rel, "/") {
				p.outRel = rel
			}
		}
	}
	return p, nil
}

// gitCommitTime is the committer time of HEAD, when project is in a git work
// tree.
func gitCommitTime(ctx context.Context, project string) (int64, bool) {
	cmd := exec.CommandContext(ctx, "git", "-C", project, "log", "-1", "--format=%ct")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		return 0, false
	}
	t, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	return t, err == nil
}

// An Outcome is the result of one build.
type Outcome struct {
	Settings policies.Settings
	// Result is how the build's process ended.
	Result *sandbox.Result
	// Artifacts maps each artifact's path (relative to the build directory,
	// sorted) to its file in Dir.
	Artifacts []Artifact
	// Missing lists artifact globs that matched nothing.
	Missing []string
	// Refused says why artifacts were refused (a link, a FIFO, a name with
	// a control character, more than max_output): the build failed.
	Refused []string
	// Dir is the build's private work directory (its log and collected
	// artifacts); Remove deletes it.
	Dir string
	// Log is the build's output.
	Log      string
	Started  time.Time
	Duration time.Duration
	// TimedOut is the build's timeout when the build was killed for
	// running longer.
	TimedOut time.Duration
	// Limits are the limits the build ran under.
	Limits policies.Limits
	// DiskExceeded is set when the build wrote more than Limits.DiskBytes
	// into its build directory (it was killed then, or it ended before the
	// watchdog saw it): such a build is never OK.
	DiskExceeded bool

	// tree is the build's tree while it can be read: set during the job's
	// Collect (see keepFunc). Unset, treeDir reads Dir/upper.
	tree string
	// inter and interErr are the build's intermediates when a keepFunc kept
	// them in Dir.
	inter    *Intermediates
	interErr error
}

// treeDir is the directory holding the build's tree for localization: the
// backend's while the build's Collect runs, else a tree kept under Dir/upper.
func (o *Outcome) treeDir() string {
	if o.tree != "" {
		return o.tree
	}
	return filepath.Join(o.Dir, "upper")
}

// An Artifact is one file a build produced.
type Artifact struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// File is reprobox's own copy, in the outcome's Dir, while that exists.
	File string `json:"-"`
}

// OK reports whether the build exited 0 within its disk limit and produced
// every artifact, none refused.
func (o *Outcome) OK() bool {
	return o.Result.Success() && !o.DiskExceeded && len(o.Missing) == 0 && len(o.Refused) == 0
}

// Failure describes why a build is not OK.
func (o *Outcome) Failure() string {
	switch {
	case o.TimedOut > 0:
		return fmt.Sprintf("the build ran longer than its timeout of %s and was killed", o.TimedOut)
	case o.DiskExceeded:
		return fmt.Sprintf("the build wrote more than its disk limit of %s into its build directory (disk in %s)", human.Bytes(o.Limits.DiskBytes), ConfigFile)
	case !o.Result.Success() && o.Result.OOMKilled && o.Result.Signal == int(syscall.SIGKILL):
		return fmt.Sprintf("the build was killed: out of memory (limit %s; memory in %s)", human.Bytes(o.Limits.MemoryBytes), ConfigFile)
	case !o.Result.Success() && o.Result.OOMKilled:
		return fmt.Sprintf("the build exited with status %d after the kernel killed one of its processes: out of memory (limit %s; memory in %s)",
			o.Result.ExitCode, human.Bytes(o.Limits.MemoryBytes), ConfigFile)
	case !o.Result.Success() && o.Result.Signal != 0:
		return fmt.Sprintf("the build was killed by signal %d", o.Result.Signal)
	case !o.Result.Success():
		return fmt.Sprintf("the build exited with status %d", o.Result.ExitCode)
	case len(o.Refused) > 0:
		return strings.Join(o.Refused, "; ")
	case len(o.Missing) > 0:
		return "no file matches artifact " + strings.Join(o.Missing, ", ")
	}
	return ""
}

// Remove deletes the build's work directory.
func (o *Outcome) Remove() error {
	return os.RemoveAll(o.Dir)
}

// Build runs one build of the plan with settings s in a fresh container from a
// pristine copy of the source. Output streams to stream (nil discards it) and to
// the outcome's log. The caller removes the outcome's Dir.
func (r *Runner) Build(ctx context.Context, p *Plan, s policies.Settings, stream io.Writer) (*Outcome, error) {
	return r.build(ctx, p, s, stream, nil)
}

// A keepFunc keeps what a caller needs of a successful build's tree (its
// cargo intermediates) while the tree exists: it is called from the job's
// Collect, with o.tree set.
type keepFunc func(ctx context.Context, o *Outcome)

// build is Build, calling keep (when not nil) on an OK build's tree before
// the backend removes it.
func (r *Runner) build(ctx context.Context, p *Plan, s policies.Settings, stream io.Writer, keep keepFunc) (_ *Outcome, err error) {
	if err := os.MkdirAll(r.WorkDir, 0o711); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	id := newID()
	// While the lease is held, `image rm` refuses to remove the image.
	lease, err := r.Store.Lease(p.Image, "rbx-"+id)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer lease.Release()
	dir := filepath.Join(r.WorkDir, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if err := markOwned(dir); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	src, err := p.snapshot(ctx, r.WorkDir, s.SourceDateEpoch, s.UID, s.GID, r.Progress)
	if err != nil {
		return nil, err
	}
	spec, files, personality, err := policies.Render(s, policies.Host{
		Rootfs:   p.Rootfs,
		Args:     p.Config.Command,
		TimeShim: p.shim,
		Limits:   p.Limits,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	logPath := filepath.Join(dir, "build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer logFile.Close()
	var w io.Writer = logFile
	if stream != nil {
		w = io.MultiWriter(logFile, stream)
	}
	timeout, _ := p.Config.timeout()
	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("the build ran longer than its timeout of %s", timeout))
		defer cancel()
	}
	o := &Outcome{Settings: s, Dir: dir, Log: logPath, Limits: p.Limits}
	maxOut, _ := p.Config.maxOutput()
	job := &sandbox.Job{
		ID:           "rbx-" + id,
		Image:        sandbox.Image{Digest: p.Image.Digest.String(), Layout: r.Store.Layout(), Rootfs: p.Rootfs},
		Source:       src,
		BuildPath:    s.BuildPath,
		FileOrdering: s.FileOrdering,
		Spec:         spec,
		Personality:  personality,
		DiskBytes:    p.Limits.DiskBytes,
		Stdout:       w,
		Stderr:       w,
		// Runs after the build's process exits, before the backend removes
		// its tree: the artifacts and what localization needs are taken
		// from the tree here.
		Collect: func(ctx context.Context, res *sandbox.Result, tree string) error {
			o.Result, o.DiskExceeded = res, res.DiskExceeded
			if !res.Success() {
				return nil
			}
			if err := o.collect(ctx, tree, p.Config.Artifacts, maxOut); err != nil {
				return err
			}
			if keep != nil && o.OK() {
				o.tree = tree
				keep(ctx, o)
				o.tree = ""
			}
			return nil
		},
	}
	for _, f := range files {
		job.Files = append(job.Files, sandbox.File{Path: f.Path, Mode: f.Mode, Data: f.Data})
	}
	r.logger().Info("build", "id", id, "build_path", s.BuildPath, "source", src.Digest)
	started := r.now()
	res, err := r.Backend.Run(runCtx, job)
	timedOut := err != nil && ctx.Err() == nil && errors.Is(runCtx.Err(), context.DeadlineExceeded)
	if timedOut {
		// The build's own limit: a failed build, not a failed sandbox.
		fmt.Fprintf(w, "\nreprobox: killed after the build's timeout of %s\n", timeout)
		res, err = &sandbox.Result{ExitCode: 128 + 9, Signal: 9, Duration: r.now().Sub(started)}, nil
		o.TimedOut = timeout
	}
	if err != nil {
		return nil, fmt.Errorf("runner: build in sandbox: %w", err)
	}
	if err := lease.Check(); err != nil { // never a success on a changed root
		return nil, fmt.Errorf("runner: %w", err)
	}
	o.Result, o.DiskExceeded = res, res.DiskExceeded
	o.Started, o.Duration = started, r.now().Sub(started)
	if res.DiskExceeded {
		verb := "killed: the build wrote"
		if res.Signal == 0 {
			verb = "the build wrote"
		}
		fmt.Fprintf(w, "\nreprobox: %s more than its disk limit of %s into its build directory\n", verb, human.Bytes(p.Limits.DiskBytes))
	}
	if res.OOMKilled {
		fmt.Fprintf(w, "\nreprobox: the kernel killed a process of the build: out of memory (limit %s)\n", human.Bytes(p.Limits.MemoryBytes))
	}
	return o, nil
}

// collect finds the artifacts in the build directory src, copies each into
// the outcome's own directory and hashes it from the same descriptor.
//
// src is the build's tree, which the build controlled: every path is resolved
// inside it without following a link (package safefs), so a link to a host
// path (target -> /etc, /proc/self/root/...) is never read. What reprobox
// refuses makes the build fail with a message in o.Refused: a path through a
// symbolic link, a FIFO, socket or device, a name with a control character, or
// artifacts larger than max in total (checked on the size before anything is
// read, then on the bytes copied). A wildcard does not match links or
// directories.
func (o *Outcome) collect(ctx context.Context, src string, globs []string, max int64) error {
	root, err := safefs.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("runner: collect artifacts: %w", err)
	}
	defer root.Close()
	stageDir := filepath.Join(o.Dir, "artifacts")
	if err := os.Mkdir(stageDir, 0o700); err != nil {
		return fmt.Errorf("runner: collect artifacts: %w", err)
	}
	stage, err := safefs.OpenRoot(stageDir)
	if err != nil {
		return fmt.Errorf("runner: collect artifacts: %w", err)
	}
	defer stage.Close()
	refuse := func(format string, args ...any) { o.Refused = append(o.Refused, fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	var total int64
globs:
	for _, g := range globs {
		matches, err := root.Glob(g)
		var pe *fs.PathError
		if errors.Is(err, safefs.ErrSymlink) && errors.As(err, &pe) {
			refuse("artifact %s: %s: %v", quoteName(g), quoteName(pe.Path), pe.Err)
			continue
		}
		if err != nil {
			return fmt.Errorf("runner: artifact %s: %w", quoteName(g), err)
		}
		n := 0
		for _, rel := range matches {
			mode, err := root.Lstat(rel)
			if err != nil {
				return fmt.Errorf("runner: artifact %s: %w", quoteName(rel), err)
			}
			wildcard := rel != path.Clean(g)
			switch {
			case mode.IsDir() || (wildcard && mode&fs.ModeSymlink != 0):
				continue // directories are not artifacts; a wildcard does not follow links
			case mode&fs.ModeSymlink != 0:
				refuse("artifact %s is a symbolic link, which reprobox does not follow on the host: name the file it points to", quoteName(rel))
				continue
			case !mode.IsRegular():
				refuse("artifact %s is not a regular file: it is a %s", quoteName(rel), safefs.TypeName(mode))
				continue
			}
			n++
			if seen[rel] {
				continue
			}
			seen[rel] = true
			if why := badName(rel); why != "" {
				refuse("artifact %s: its name %s; rename it in the build", quoteName(rel), why)
				continue
			}
			a, size, err := o.stage(ctx, root, stage, rel, max-total)
			if errors.Is(err, errTooLarge) {
				refuse("artifacts total more than max_output (%s) with %s (%s); raise max_output in %s if the build really makes that much",
					human.Bytes(max), quoteName(rel), human.Bytes(size), ConfigFile)
				break globs
			}
			var pe *fs.PathError
			if errors.As(err, &pe) && (errors.Is(err, safefs.ErrSymlink) || errors.Is(err, safefs.ErrNotRegular) || errors.Is(err, safefs.ErrChanged)) {
				refuse("artifact %s: %v", quoteName(rel), pe.Err)
				continue
			}
			if err != nil {
				return fmt.Errorf("runner: artifact %s: %w", quoteName(rel), err)
			}
			total += size
			o.Artifacts = append(o.Artifacts, a)
		}
		if n == 0 {
			o.Missing = append(o.Missing, g)
		}
	}
	slices.SortFunc(o.Artifacts, func(a, b Artifact) int { return strings.Compare(a.Path, b.Path) })
	return nil
}

var errTooLarge = errors.New("larger than the output limit")

// ctxReader stops a long copy when ctx is done (Ctrl-C during the copy of
// a large artifact).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// stage copies the regular file rel of root to the same path in stage and
// hashes it on the way, reading at most budget bytes: a larger file (its size
// says so before any read, or it grows while read) is errTooLarge.
func (o *Outcome) stage(ctx context.Context, root, stage *safefs.Root, rel string, budget int64) (Artifact, int64, error) {
	in, info, err := root.Open(rel)
	if err != nil {
		return Artifact{}, 0, err
	}
	defer in.Close()
	if info.Size() > budget {
		return Artifact{}, info.Size(), errTooLarge
	}
	if err := stage.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return Artifact{}, 0, err
	}
	out, err := stage.Create(rel, info.Mode().Perm())
	if err != nil {
		return Artifact{}, 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, io.LimitReader(in, budget+1)})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Artifact{}, 0, err
	}
	if n > budget {
		return Artifact{}, n, errTooLarge
	}
	return Artifact{Path: rel, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, File: filepath.Join(stage.Name(), rel)}, n, nil
}

// badName says why an artifact's name cannot be written safely: a control
// character (a newline would forge a line of SHA256SUMS, an escape sequence
// would rewrite the terminal) or bytes that are not UTF-8 (record.json could
// not hold the name as it is). "" means the name is fine.
func badName(name string) string {
	if !utf8.ValidString(name) {
		return "is not valid UTF-8"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Sprintf("holds the control character %U", r)
		}
	}
	return ""
}

// quoteName quotes a name from the build for a message when it holds
// anything unusual, so no name can write its own lines.
func quoteName(name string) string {
	if badName(name) != "" || strings.ContainsAny(name, " \\\"'") {
		return strconv.Quote(name)
	}
	return name
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
