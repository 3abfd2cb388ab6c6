package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/jsonout"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newExperimentCmd) }

type experimentOptions struct {
	file     string
	seed     uint64
	jobs     int
	out      string
	html     string
	htmlCell string
	junit    string
	dryRun   bool
}

func newExperimentCmd() *cobra.Command {
	var o experimentOptions
	cmd := &cobra.Command{
		Use:   "experiment FILE [flags]",
		Short: "Build projects across images and factor levels, and measure how often outputs differ",
		Long: `experiment runs the design of an experiment file (TOML): every project in
every image, under combinations of factor levels, each cell built repeats
times, and reports per artifact how often its output differs from the
baseline (the cell with every factor at its first level, in the same image),
with a 95% Wilson score interval, and where repetitions of one cell disagree
(nondeterminism).

  projects = ["crates/locale"]            # with a reprobox.toml; relative to FILE
  images   = ["reprobox/rust", "reprobox/rust-old"]   # names or NAME@sha256:…
  design   = "one-at-a-time"              # or "factorial", or "sample"
  samples  = 4                            # cells drawn from the factorial (sample)
  repeats  = 2                            # builds per cell
  command  = ["cargo", "build", "--release", "--offline"]   # optional override

  [factors]                               # the first level is the baseline
  locale   = ["C.UTF-8", "fr_FR.UTF-8", "de_DE.UTF-8"]
  num_cpus = [2, 1]                       # also: cpus
  umask    = ["0022", "0002", "0077"]
  time     = [0, "-398d", "+2h"]          # clock shift from SOURCE_DATE_EPOCH
  build_path = ["/build/src", "/b/src", "/build/a/much/deeper/path/src"]

Factors are those of reprobox factors; their levels: time (seconds, or with a
unit s, m, h, d), build_path and home (absolute directories), locale,
timezone, hostname, domainname, exec_path (strings), umask (octal), num_cpus,
user (a uid), fileordering (native, reverse), kernel (host, 2.6), aslr (off,
on), env (KEY=VALUE, or "" for none); "normalized" and "perturbed" are levels
of every factor (the values of build and of check's variant). An unknown
factor, level or key is an error naming its line (exit 2).

one-at-a-time builds the baseline, then each other level of each factor with
the rest at baseline; factorial every combination; sample the baseline and
samples cells drawn from the factorial with the seed. The seed (--seed,
default derived from FILE's contents) is printed; the same file and seed give
the same cells in the same order.

Results go to --out (default FILE without .toml, plus -results): runs/ holds
one JSON file per finished build, written atomically, and a run that is
already there is not built again, so an interrupted experiment resumes where it
stopped. blobs/ keeps each distinct artifact once, by sha256. Then
results.csv (one row per build and artifact: cell, factor levels, image and
its digest, artifact, sha256, exit status, duration), summary.csv (per cell
and artifact: builds, distinct outputs, differing from the baseline, share and
interval, nondeterministic) and results.json (both, with the heat map and
the baselines compared across images). Everything but the durations is
deterministic. Progress (a line per build: cells done, builds left, ETA)
goes to stderr, as one live status line on a terminal. --html FILE writes a
self-contained page: the heat map of artifacts against factor levels, the
nondeterminism rates, and the structural diff of one cell (--html-cell ID,
default the first that differs) against its baseline. --junit FILE writes
JUnit XML: a test case per project, image and artifact, failing where it
differs.

Exit status: 0 every artifact equal to its baseline in every cell, 1 some
artifact differs or is nondeterministic, 2 usage or experiment file error, 3
reprobox or the sandbox failed, 130 interrupted (finished builds are kept).`,
		Args: exactArgs(1, "the experiment file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			if cmd.Flags().Changed("jobs") && o.jobs < 1 {
				return usageErrorf("--jobs %d: at least one build must run at a time", o.jobs)
			}
			return runExperiment(cmd.Context(), cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&o.seed, "seed", 0, "seed of the sample and of perturbed levels (default: derived from the file's contents, printed)")
	fl.IntVar(&o.jobs, "jobs", 1, "builds at once")
	fl.StringVar(&o.out, "out", "", "results directory; finished builds in it are not redone (default: FILE without .toml, plus -results)")
	fl.StringVar(&o.html, "html", "", "write a self-contained HTML report to this file")
	fl.StringVar(&o.htmlCell, "html-cell", "", "cell whose structural diff against its baseline the HTML report shows (default: the first that differs)")
	fl.StringVar(&o.junit, "junit", "", "write JUnit XML to this file: a test case per artifact")
	fl.BoolVar(&o.dryRun, "dry-run", false, "print the cells (ID, project, image, levels) and build nothing")
	addBackendFlags(cmd)
	return cmd
}

func runExperiment(ctx context.Context, cmd *cobra.Command, o experimentOptions) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	data, err := os.ReadFile(o.file)
	if err != nil {
		return usageErrorf("experiment file %s: %v", o.file, errors.Unwrap(err))
	}
	e, err := runner.ParseExperiment(o.file, data, o.seed)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = strings.TrimSuffix(o.file, ".toml") + "-results"
	}
	for _, f := range e.Factors {
		if f.Name != "num_cpus" {
			continue
		}
		for _, l := range f.Levels {
			var n int
			if _, err := fmt.Sscan(l, &n); err == nil && n > runtime.NumCPU() {
				return usageErrorf("%s: num_cpus level %d: this machine has %d CPUs (nproc)", o.file, n, runtime.NumCPU())
			}
		}
	}
	cells := e.Cells()
	fmt.Fprintf(stderr, "reprobox: experiment %s: design %s, %d cell(s) × %d repeat(s) = %d build(s), seed %d\n",
		o.file, e.Design, len(cells), e.Repeats, len(cells)*e.Repeats, e.Seed)
	if o.dryRun {
		for _, c := range cells {
			fmt.Fprintf(stdout, "%s  %s  %s  %s\n", c.ID, c.Project, c.Image, c.Label())
		}
		return nil
	}
	if o.htmlCell != "" {
		found := false
		for _, c := range cells {
			found = found || c.ID == o.htmlCell
		}
		if !found {
			return usageErrorf("--html-cell %s: no such cell in %s (--dry-run lists them)", o.htmlCell, o.file)
		}
	}
	if err := checkExperimentOut(o.out); err != nil {
		return err
	}
	r, err := newRunner(cmd)
	if err != nil {
		return err
	}
	plans, err := r.NewExperimentPlans(ctx, e)
	if err != nil {
		return err
	}
	defer plans.Close()
	for _, img := range e.Images {
		for k, p := range plans {
			if k[1] == img {
				fmt.Fprintf(stderr, "reprobox: image %s is %s\n", img, p.Image.Digest)
				break
			}
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, runner.OutMarker), []byte("reprobox experiment results\n"), 0o644); err != nil {
		return err
	}
	progress := newStatusLine(stderr)
	runs, err := runner.RunExperiment(ctx, e, runner.ExperimentOptions{Out: o.out, Jobs: o.jobs, Progress: progress},
		r.ExperimentBuilder(e, plans, o.out))
	doneStatus(progress)
	if err != nil {
		return err
	}
	res := e.Results(runs)
	files := map[string]func(io.Writer) error{
		"results.csv": res.WriteCSV,
		"summary.csv": res.WriteSummaryCSV,
		"results.json": func(w io.Writer) error {
			return jsonout.Write(w, res)
		},
	}
	for name, write := range files {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(o.out, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.html != "" {
		var b bytes.Buffer
		if err := runner.WriteExperimentHTML(ctx, &b, e, res, runner.BlobsDir(o.out), o.htmlCell); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(o.html, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.junit != "" {
		var b bytes.Buffer
		if err := runner.WriteExperimentJUnit(&b, res); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(o.junit, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	printExperiment(stdout, res, o.out)
	if res.Differing() {
		return &exitError{exitUnreproducible}
	}
	return nil
}

// checkExperimentOut refuses a results directory reprobox did not write
// (one holding files but no marker).
func checkExperimentOut(out string) error {
	st, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return usageErrorf("--out %s: %v", out, err)
	}
	if !st.IsDir() {
		return usageErrorf("--out %s exists and is not a directory", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return usageErrorf("--out %s: %v", out, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, runner.OutMarker)); err != nil {
		return usageErrorf("--out %s holds files reprobox did not write; choose another directory", out)
	}
	return nil
}

// printExperiment writes the summary: per artifact and image, the levels that
// differ from the baseline, and the nondeterministic cells.
func printExperiment(w io.Writer, res *runner.ExperimentResults, out string) {
	for _, hr := range res.HeatMap {
		fmt.Fprintf(w, "%s %s in %s:", hr.Project, hr.Artifact, hr.Image)
		var diffs []string
		for _, hc := range hr.Levels {
			if !hc.Baseline && hc.Differing > 0 {
				diffs = append(diffs, fmt.Sprintf("%s=%s %d/%d (%.0f%%, 95%% CI %.0f–%.0f%%)", hc.Factor, hc.Level, hc.Differing, hc.Builds,
					hc.Share*100, hc.CILow*100, hc.CIHigh*100))
			}
		}
		if len(diffs) == 0 {
			fmt.Fprintf(w, " equal to the baseline at every level")
		}
		fmt.Fprintln(w)
		for _, d := range diffs {
			fmt.Fprintf(w, "  differs: %s\n", d)
		}
		if hr.NondeterministicCells > 0 {
			fmt.Fprintf(w, "  nondeterministic in %d of %d repeated cells\n", hr.NondeterministicCells, hr.RepeatedCells)
		}
	}
	for _, ic := range res.ImageComparisons {
		if len(ic.Outputs) < 2 {
			continue
		}
		verdict := "the same in every image"
		if !ic.Same {
			verdict = "differs between images"
		}
		fmt.Fprintf(w, "%s %s baseline: %s\n", ic.Project, ic.Artifact, verdict)
	}
	fmt.Fprintf(w, "results.csv, summary.csv and results.json in %s (seed %d)\n", out, res.Seed)
}
