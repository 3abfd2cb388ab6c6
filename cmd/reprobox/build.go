package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newBuildCmd) }

// projectFlags are the flags build and check share: they override reprobox.toml.
type projectFlags struct {
	image     string
	artifacts []string
	sde       int64
	cpus      int
	timeout   string
	out       string
	progress  time.Duration
}

func (f *projectFlags) register(cmd *cobra.Command, defaultOut string) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "image reference (NAME, NAME@sha256:…); overrides the config's image; a name is resolved to a local image and its digest recorded")
	fl.StringArrayVar(&f.artifacts, "artifact", nil, "artifact glob relative to the build directory (repeatable); overrides the config's artifacts")
	fl.Int64Var(&f.sde, "source-date-epoch", 0, "SOURCE_DATE_EPOCH (default: the config's, else the git HEAD commit time, else 1700000000)")
	fl.IntVar(&f.cpus, "cpus", 0, "CPU count of the normalized build (default: the config's, else 2)")
	fl.StringVar(&f.timeout, "timeout", "", "time limit of one build, such as 90m (default: the config's, else none)")
	fl.StringVar(&f.out, "out", defaultOut, "output directory")
	fl.DurationVar(&f.progress, "progress", 30*time.Second, "how often a running build reports its elapsed time and current step on stderr (0: never)")
}

// load reads DIR/reprobox.toml and applies the flags and the command after --.
func (f *projectFlags) load(cmd *cobra.Command, args []string) (dir string, cfg runner.Config, imageFromFlag bool, err error) {
	dir = "."
	dash := cmd.ArgsLenAtDash()
	pos := args
	var command []string
	if dash >= 0 {
		pos, command = args[:dash], args[dash:]
	}
	if len(pos) > 1 {
		return "", cfg, false, usageErrorf("at most one project directory, got %q (put the build command after --)", pos)
	}
	if len(pos) == 1 {
		dir = pos[0]
	}
	if dash >= 0 && len(command) == 0 {
		return "", cfg, false, usageErrorf("nothing after --: give the build command after -- (or leave out -- to use the command in %s)", runner.ConfigFile)
	}
	if st, err := os.Stat(dir); err != nil {
		return "", cfg, false, usageErrorf("project directory %s: %v", dir, errors.Unwrap(err))
	} else if !st.IsDir() {
		return "", cfg, false, usageErrorf("project %s is not a directory: give the directory that holds %s", dir, runner.ConfigFile)
	}
	if cmd.Flags().Changed("cpus") && f.cpus < 1 {
		return "", cfg, false, usageErrorf("--cpus %d: a build needs at least 1 CPU", f.cpus)
	}
	if f.out == "" {
		return "", cfg, false, usageErrorf("--out is empty: give the output directory")
	}
	cfg, found, err := runner.LoadConfig(dir)
	if err != nil {
		return "", cfg, false, err
	}
	if f.image != "" {
		cfg.Image, imageFromFlag = f.image, true
	}
	if len(f.artifacts) > 0 {
		cfg.Artifacts = f.artifacts
	}
	if cmd.Flags().Changed("source-date-epoch") {
		cfg.SourceDateEpoch = &f.sde
	}
	if f.cpus != 0 {
		cfg.CPUs = f.cpus
	}
	if f.timeout != "" {
		cfg.Timeout = f.timeout
	}
	if len(command) > 0 {
		cfg.Command = command
	}
	if !found {
		if err := autoconfigure(cmd, dir, &cfg); err != nil {
			return "", cfg, false, err
		}
	}
	// Checked before anything is opened or written.
	if err := cfg.Validate(); err != nil {
		return "", cfg, false, err
	}
	return dir, cfg, imageFromFlag, nil
}

// newRunner opens the image store and the default backend under the data
// directory.
func newRunner(cmd *cobra.Command) (*runner.Runner, error) {
	dd := dataDir(cmd)
	store, err := images.Open(dd)
	if err != nil {
		return nil, err
	}
	backend, _, err := openBackend(cmd.Context(), cmd, dd, nil)
	if err != nil {
		return nil, err
	}
	r := &runner.Runner{
		Store:   store,
		Backend: backend,
		WorkDir: filepath.Join(dd, "work"),
		LibDir:  filepath.Join(dd, "lib"),
		// The fetch phase's crates, by checksum: <data-dir>/cache/crates/sha256/.
		CrateCache: filepath.Join(dd, "cache", "crates"),
		Logger:     slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	// Work directories of runs that were killed (SIGKILL, a crash) are
	// unmounted and removed before anything else runs.
	if _, err := r.Prune(); err != nil {
		return nil, err
	}
	return r, nil
}

func newBuildCmd() *cobra.Command {
	var f projectFlags
	cmd := &cobra.Command{
		Use:   "build [DIR] [flags] [-- COMMAND ARGS...]",
		Short: "Run one hermetic build and collect its artifacts",
		Long: `build runs the project's build once inside its pinned image with every
environmental input normalized, copies the artifacts to --out with SHA256SUMS,
record.json (image digest, command, every normalized setting, exit status,
duration) and build.log. The build's output streams to stderr.

The project is DIR (default .), configured by DIR/reprobox.toml:

  image = "reprobox/rust@sha256:…"                 # pinned
  command = ["cargo", "build", "--release", "--offline"]
  artifacts = ["target/release/hello"]
  source_date_epoch = 1700000000                   # optional

Flags override the file; a build command after -- overrides command.
Without reprobox.toml, in a cargo project, what no flag gives is: the image
reprobox/rust resolved to its digest, cargo build --release --locked --offline
(no --locked without a Cargo.lock), and target/release/NAME for each bin
target; the first lines say so (reprobox init writes them down, pinned).
Exit status: 0 built, 1 the build failed or an artifact is missing, 2 usage or
config error, 3 reprobox or the sandbox failed, 130 interrupted (SIGINT, SIGTERM,
SIGHUP, or SIGPIPE on a closed stdout or stderr; the build is killed and
everything it made removed).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, cfg, fromFlag, err := f.load(cmd, args)
			if err != nil {
				return err
			}
			return runBuild(cmd.Context(), cmd, dir, cfg, fromFlag, f.out, f.progress)
		},
	}
	f.register(cmd, "reprobox-out")
	addBackendFlags(cmd)
	return cmd
}

func runBuild(ctx context.Context, cmd *cobra.Command, dir string, cfg runner.Config, fromFlag bool, out string, progress time.Duration) error {
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	r, err := newRunner(cmd)
	if err != nil {
		return err
	}
	r.Progress = stderr // the fetch phase's and the snapshot's notes
	plan, err := r.NewPlan(ctx, dir, cfg, fromFlag, out)
	if err != nil {
		return err
	}
	defer plan.Close()
	fmt.Fprintf(stderr, "reprobox: building %s in %s (SOURCE_DATE_EPOCH=%d from %s)\n",
		plan.Project, plan.Image.Reference(), plan.Base.SourceDateEpoch, plan.SourceDateEpochFrom)
	stream, stop := io.Writer(stderr), func() {}
	if progress > 0 {
		var steps io.Writer
		steps, stop = runner.Watch(stderr, progress, "reprobox: build")
		stream = io.MultiWriter(stderr, steps)
	}
	o, err := r.Build(ctx, plan, plan.Base, stream)
	stop()
	if err != nil {
		return err
	}
	defer o.Remove()
	if o.OK() {
		var size int64
		for _, a := range o.Artifacts {
			size += a.Size
		}
		fmt.Fprintf(stderr, "reprobox: copying %d artifact(s), %s, to %s\n", len(o.Artifacts), human.Bytes(size), out)
	}
	if err := runner.WriteOut(ctx, plan, o, out); err != nil {
		return err
	}
	if !o.OK() {
		fmt.Fprintf(stderr, "reprobox: build failed: %s\n", o.Failure())
		if !o.Result.Success() {
			fmt.Fprintf(stderr, "reprobox: last lines of %s:\n", filepath.Join(out, "build.log"))
			tail(stderr, filepath.Join(out, "build.log"), 20)
		}
		fmt.Fprintf(stderr, "reprobox: log and record in %s (no SHA256SUMS: the build is not complete)\n", out)
		return &exitError{exitUnreproducible}
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "reprobox: built in %.1fs; artifacts, SHA256SUMS, record.json and build.log in %s\n", o.Duration.Seconds(), out)
	_, err = stdout.Write(sums)
	return err
}

// tail prints the last n lines of a file, indented.
func tail(w io.Writer, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	for _, l := range lines {
		fmt.Fprintln(w, "  | "+strings.TrimRight(l, "\r"))
	}
}
