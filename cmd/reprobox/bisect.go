package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newBisectCmd) }

// bisectFlags are bisect's own flags and the project settings that override
// each commit's reprobox.toml.
type bisectFlags struct {
	good, bad  string
	vary       string
	seed       uint64
	confidence float64
	jobs       int
	jsonOut    string
	timings    bool
	evidence   int
	resume     bool
	noCache    bool
	cacheDir   string

	image     string
	artifacts []string
	sde       int64
	cpus      int
	timeout   string
}

func newBisectCmd() *cobra.Command {
	var f bisectFlags
	k99, _ := runner.BuildsForConfidence(0.99)
	k999, _ := runner.BuildsForConfidence(0.999)
	k90, _ := runner.BuildsForConfidence(0.9)
	cmd := &cobra.Command{
		Use:   "bisect --good REV [--bad REV] [DIR] [flags] [-- COMMAND ARGS...]",
		Short: "Find the commit that made the build stop reproducing",
		Long: `bisect searches the first-parent history between --good (reproducible) and
--bad (default HEAD) of the git repository holding DIR (default .) for the first
commit whose output is not reproducible. Each tested commit is exported with
git archive into a pristine snapshot: the work tree, the index and HEAD are
never touched, and uncommitted changes are ignored. It is built in its pinned
image with every factor normalized, with SOURCE_DATE_EPOCH the commit's
committer time unless the config or --source-date-epoch sets one.

A commit is bad when:
  - (default) two identical normalized builds disagree: nondeterminism;
  - with --vary FACTORS, normalized builds and builds with those factors
    perturbed (values from --seed) are not all identical. Normalized and
    perturbed builds alternate; after a disagreement between the two kinds,
    one more of each tells "varies" (each kind agrees with itself: the
    factors change the output) from "nondeterministic".
One disagreement makes a commit bad. A commit is good only after enough
identical builds that a commit whose output is one of two at random would
have disagreed with probability --confidence: k builds with 2^-(k-1) <= 1 -
confidence, so ` + fmt.Sprintf("0.99 (the default) means %d builds, 0.9 means %d, 0.999 means %d", k99, k90, k999) + `.
Builds of one commit run --jobs at a time; a batch stops at the first
disagreement.

The bad revision is tested first: when it reproduces, nothing in the range is
bad. Then the commit nearest the middle of the range still in question, as
git bisect does. A commit that does not build is skipped (as git bisect skip)
and reported; when skipped commits hide the answer, the result is the
smallest range that holds it.

The configuration of each commit is its reprobox.toml, or the bad revision's
when the commit has none; the flags here override it, and a build command
after -- overrides command.

Verdicts (every build's artifact digests) are cached per commit, image,
command, artifacts and settings under --cache-dir (default DATA-DIR/bisect-cache), so a re-run or a
narrowed range reuses them; --no-cache ignores the cache. Ctrl-C stops the
running builds and removes them; --resume continues the last bisection of
the repository (its --good, --bad, --vary, --seed and --confidence) from the
cache.

The result on stdout: the first bad commit (hash, subject, author, author
date, files changed) and the evidence: for a cargo build, the first cargo
unit where two of its disagreeing builds diverge, then their structural diff. Progress on stderr: each step, the remaining range and
the estimated steps left, and each build. --json writes every step's commit,
builds and verdict (deterministic; wall-clock timings only with --timings).

Exit status: 0 the first bad commit was found, 1 nothing in the range is bad
or skipped commits leave a range, 2 usage or config error (including a --bad
that does not build), 3 reprobox or the sandbox failed, 130 interrupted.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runBisect(cmd, args, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.good, "good", "", "a revision that reproduces (required unless --resume)")
	fl.StringVar(&f.bad, "bad", "HEAD", "a revision that does not reproduce, descending from --good")
	fl.StringVar(&f.vary, "vary", "", "factors to perturb: bad then means they change the output (default: none, bad means nondeterministic)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the perturbed values (with --vary)")
	fl.Float64Var(&f.confidence, "confidence", 0.99, fmt.Sprintf("confidence of a good verdict; sets the identical builds it takes (0.99: %d)", k99))
	fl.IntVar(&f.jobs, "jobs", 0, "builds of one commit at once (default: host CPUs / build CPUs, at least 1)")
	fl.StringVar(&f.jsonOut, "json", "", "write every step's commit, builds and verdict as JSON to this file")
	fl.BoolVar(&f.timings, "timings", false, "include wall-clock timings in the JSON report")
	fl.IntVar(&f.evidence, "evidence-lines", 40, "lines of structural diff shown for the first bad commit")
	fl.BoolVar(&f.resume, "resume", false, "continue the last bisection of this repository, reusing its cached verdicts")
	fl.BoolVar(&f.noCache, "no-cache", false, "neither read nor write the verdict cache (nor the --resume state)")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "where verdicts and the --resume state are kept (default DATA-DIR/bisect-cache)")
	fl.StringVar(&f.image, "image", "", "image reference; overrides the configs' image; a name is resolved to a local image")
	fl.StringArrayVar(&f.artifacts, "artifact", nil, "artifact glob (repeatable); overrides the configs' artifacts")
	fl.Int64Var(&f.sde, "source-date-epoch", 0, "SOURCE_DATE_EPOCH of every commit (default: the config's, else the commit's committer time)")
	fl.IntVar(&f.cpus, "cpus", 0, "CPU count of the normalized build (default: the config's, else 2)")
	fl.StringVar(&f.timeout, "timeout", "", "time limit of one build, such as 10m")
	addBackendFlags(cmd)
	return cmd
}

func runBisect(cmd *cobra.Command, args []string, f *bisectFlags) error {
	ctx := cmd.Context()
	dir := "."
	pos, command := args, []string(nil)
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		pos, command = args[:dash], args[dash:]
	}
	if len(pos) > 1 {
		return usageErrorf("at most one directory, got %q (put the build command after --)", pos)
	}
	if len(pos) == 1 {
		dir = pos[0]
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cacheDir := f.cacheDir
	if cacheDir == "" {
		cacheDir = filepath.Join(dataDir(cmd), "bisect-cache")
	}
	changed := cmd.Flags().Changed
	if f.resume {
		s, err := runner.LoadBisectSession(cacheDir, abs)
		if err != nil {
			return err
		}
		if !changed("good") {
			f.good = s.Good
		}
		if !changed("bad") {
			f.bad = s.Bad
		}
		if !changed("vary") {
			f.vary = strings.Join(s.Vary, ",")
		}
		if !changed("seed") {
			f.seed = s.Seed
		}
		if !changed("confidence") {
			f.confidence = s.Confidence
		}
	}
	if f.good == "" {
		return usageErrorf("--good REV is required: a revision whose build reproduces (or --resume)")
	}
	var vary []string
	if f.vary != "" {
		if vary, err = policies.ParseVary(f.vary); err != nil {
			return usageErrorf("--vary: %v", err)
		}
	}
	if _, err := runner.BuildsForConfidence(f.confidence); err != nil {
		return err
	}
	if f.jobs < 0 || f.evidence < 0 {
		return usageErrorf("--jobs and --evidence-lines must not be negative")
	}
	good, err := runner.ResolveCommit(ctx, abs, f.good)
	if err != nil {
		return fmt.Errorf("--good: %w", err)
	}
	bad, err := runner.ResolveCommit(ctx, abs, f.bad)
	if err != nil {
		return fmt.Errorf("--bad: %w", err)
	}
	if !f.noCache {
		if err := runner.SaveBisectSession(cacheDir, abs, runner.BisectSession{
			Good: good, Bad: bad, Vary: vary, Seed: f.seed, Confidence: f.confidence,
		}); err != nil {
			return err
		}
	}
	r, err := newRunner(cmd)
	if err != nil {
		return err
	}
	jobs := f.jobs
	if jobs == 0 {
		cpus := f.cpus
		if cpus == 0 {
			cpus = 2
		}
		jobs = defaultJobs(r.Backend, runtime.NumCPU(), cpus)
	}
	stderr := cmd.ErrOrStderr()
	opts := runner.BisectOptions{
		Dir: abs, Good: good, Bad: bad, ImageFromFlag: f.image != "", Vary: vary, Seed: f.seed,
		Confidence: f.confidence, Jobs: jobs, CacheDir: cacheDir, Progress: stderr, EvidenceLines: f.evidence,
		Override: func(c *runner.Config) {
			if f.image != "" {
				c.Image = f.image
			}
			if len(f.artifacts) > 0 {
				c.Artifacts = f.artifacts
			}
			if changed("source-date-epoch") {
				sde := f.sde
				c.SourceDateEpoch = &sde
			}
			if f.cpus != 0 {
				c.CPUs = f.cpus
			}
			if f.timeout != "" {
				c.Timeout = f.timeout
			}
			if len(command) > 0 {
				c.Command = command
			}
		},
	}
	if f.noCache {
		opts.CacheDir = ""
	}
	started := time.Now()
	rep, err := r.Bisect(ctx, opts)
	if err != nil {
		return err
	}
	if f.timings {
		rep.Timings = map[string]float64{"total": time.Since(started).Seconds()}
	}
	if f.jsonOut != "" {
		var js bytes.Buffer
		if err := jsonout.Write(&js, rep); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.jsonOut, js.Bytes(), 0o644); err != nil {
			return err
		}
	}
	printBisect(cmd.OutOrStdout(), rep)
	if rep.Status != "found" {
		return &exitError{exitUnreproducible}
	}
	return nil
}

var causeText = map[string]string{
	"nondeterministic": "nondeterministic: builds with identical settings disagree",
	"varies":           "the perturbed factors change the output; builds of each kind agree with each other",
	"unclassified":     "builds disagree; a failed build left the cause unclassified",
}

func printCommit(w io.Writer, c *runner.Commit) {
	fmt.Fprintf(w, "  subject: %s\n  author:  %s\n  date:    %s\n  files changed: %s\n",
		c.Subject, c.Author, c.AuthorDate, strings.Join(c.Files, ", "))
}

// printBisect writes the result and the evidence.
func printBisect(w io.Writer, rep *runner.BisectReport) {
	mode := "nondeterminism"
	if len(rep.Vary) > 0 {
		mode = "--vary " + strings.Join(rep.Vary, ",") + fmt.Sprintf(" (seed %d)", rep.Seed)
	}
	summary := fmt.Sprintf("%d commits, %d steps, %d builds, %s, good = %d identical builds (confidence %v)",
		rep.Commits, len(rep.Steps), rep.Builds, mode, rep.BuildsForGood, rep.Confidence)
	switch rep.Status {
	case "found":
		fmt.Fprintf(w, "FIRST BAD COMMIT: %s\n", rep.FirstBad.Hash)
		printCommit(w, rep.FirstBad)
		fmt.Fprintf(w, "  verdict: %s\n", causeText[rep.Cause])
	case "range":
		fmt.Fprintf(w, "FIRST BAD COMMIT IS ONE OF %d (skipped commits that do not build hide it):\n", len(rep.Range))
		for i := range rep.Range {
			c := &rep.Range[i]
			fmt.Fprintf(w, "%s\n", c.Hash)
			printCommit(w, c)
		}
	default:
		fmt.Fprintf(w, "NOTHING BAD: %s reproduces (%d identical builds), so nothing in the range is bad\n", rep.Bad, rep.BuildsForGood)
	}
	fmt.Fprintf(w, "bisected %s\n", summary)
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "skipped (does not build): %s\n", strings.Join(rep.Skipped, ", "))
	}
	fmt.Fprintln(w, "\nsteps:")
	for _, s := range rep.Steps {
		note := ""
		if s.Cause != "" {
			note = " (" + s.Cause + ")"
		}
		fmt.Fprintf(w, "  %2d %s %-4s %d build(s)%s  %s\n", s.Step, s.Commit[:12], s.Verdict, len(s.Builds), note, s.Subject)
	}
	if l := rep.Localization; l != nil {
		fmt.Fprintf(w, "\nwhere the divergence starts: %s\n", l.Summary)
		for _, line := range strings.Split(strings.TrimRight(l.Evidence, "\n"), "\n") {
			if line != "" {
				fmt.Fprintln(w, "  | "+line)
			}
		}
	} else if rep.LocalizationError != "" {
		fmt.Fprintf(w, "\nwhere the divergence starts: not found (%s)\n", rep.LocalizationError)
	}
	if rep.Evidence != "" {
		fmt.Fprintln(w, "\nevidence: structural diff of two of its builds")
		for _, l := range strings.Split(strings.TrimRight(rep.Evidence, "\n"), "\n") {
			fmt.Fprintln(w, "  | "+l)
		}
	}
}
