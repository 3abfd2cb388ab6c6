package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/jsonout"
)

// A RunResult is what one build of an experiment produced, as stored in the
// results directory (runs/KEY.json).
type RunResult struct {
	Cell       Cell   `json:"cell"`
	Repetition int    `json:"repetition"`
	ImageRef   string `json:"image_ref"`
	// ImageDigest is the pinned digest the image resolved to.
	ImageDigest string `json:"image_digest"`
	// ExitStatus is the build's exit status (128+N for signal N); Failure
	// says why a build is not OK (also missing artifacts), "" when it is.
	ExitStatus int        `json:"exit_status"`
	Failure    string     `json:"failure,omitempty"`
	Artifacts  []Artifact `json:"artifacts"`
	// Duration is the build's wall-clock time in seconds: the one value of
	// the results that is not deterministic.
	Duration float64 `json:"duration_seconds"`
}

// A BuildFunc runs one build of an experiment. An error is a failure of
// reprobox or the sandbox (the experiment stops); a build that fails is a
// result.
type BuildFunc func(ctx context.Context, run Run) (*RunResult, error)

// ExperimentOptions configure RunExperiment.
type ExperimentOptions struct {
	// Out is the results directory: runs/ holds one JSON file per finished
	// build, written atomically, and a run whose file exists is not built
	// again.
	Out string
	// Jobs is how many builds run at once (at least 1).
	Jobs int
	// Progress receives a line per build with the cells done, the builds
	// left and an estimate of the time left; nil discards them.
	Progress io.Writer
	// Now is the clock of the estimate; nil means time.Now.
	Now func() time.Time
}

// RunsDir is where the per-build results of an experiment are kept.
func RunsDir(out string) string { return filepath.Join(out, "runs") }

// RunExperiment runs every build of e not already in opts.Out with build,
// up to opts.Jobs at once, and returns the results of all runs, finished
// before or now, in run order. It stops at the first error (the builds under
// way finish first); what finished is kept for the next run.
func RunExperiment(ctx context.Context, e *Experiment, opts ExperimentOptions, build BuildFunc) ([]*RunResult, error) {
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	dir := RunsDir(opts.Out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: experiment results: %w", err)
	}
	runs := e.Runs()
	results := make([]*RunResult, len(runs))
	var todo []int
	for i, r := range runs {
		res, err := loadRun(dir, r)
		if err != nil {
			return nil, err
		}
		if res != nil {
			results[i] = res
		} else {
			todo = append(todo, i)
		}
	}
	perCell := map[string]int{}
	for _, r := range runs {
		perCell[r.Cell.ID]++
	}
	var (
		mu      sync.Mutex
		done    = map[string]int{}
		started = now()
		built   int
	)
	cellsDone := func() int {
		n := 0
		for id, k := range perCell {
			if done[id] == k {
				n++
			}
		}
		return n
	}
	for i, res := range results {
		if res != nil {
			done[runs[i].Cell.ID]++
		}
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "reprobox: "+format+"\n", args...)
		}
	}
	progress("experiment: %d cell(s), %d build(s); %d already in %s, %d to build with %d job(s) (seed %d)",
		len(perCell), len(runs), len(runs)-len(todo), dir, len(todo), opts.Jobs, e.Seed)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for _, i := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			run := runs[i]
			res, err := build(ctx, run)
			if err == nil {
				res.Cell, res.Repetition = run.Cell, run.Repetition
				err = saveRun(dir, run, res)
			}
			if err != nil {
				errs[i] = fmt.Errorf("experiment cell %s (%s, %s, %s) repetition %d: %w",
					run.Cell.ID, filepath.Base(run.Cell.Project), run.Cell.Image, run.Cell.Label(), run.Repetition, err)
				cancel(errs[i])
				return
			}
			mu.Lock()
			defer mu.Unlock()
			results[i] = res
			done[run.Cell.ID]++
			built++
			left := 0
			for _, r := range results {
				if r == nil {
					left++
				}
			}
			verdict := "ok"
			if res.Failure != "" {
				verdict = "failed: " + res.Failure
			}
			eta := "unknown"
			if built > 0 {
				per := now().Sub(started) / time.Duration(built)
				eta = (per * time.Duration(left)).Round(time.Second).String()
			}
			progress("experiment: cell %s (%s, %s, %s) repetition %d: %s in %.1fs; cells done %d/%d, builds left %d, ETA %s",
				run.Cell.ID, filepath.Base(run.Cell.Project), run.Cell.Image, run.Cell.Label(), run.Repetition, verdict, res.Duration,
				cellsDone(), len(perCell), left, eta)
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		var first error
		for _, e := range errs {
			if e != nil && !errors.Is(e, context.Canceled) {
				first = e
				break
			}
		}
		if first == nil {
			first = err
		}
		return nil, first
	}
	return results, nil
}

func runPath(dir string, r Run) string { return filepath.Join(dir, r.Key()+".json") }

// loadRun reads a finished run's result; nil when there is none. A result
// file that does not parse, or belongs to another cell, is an error naming it
// (remove it to build the run again).
func loadRun(dir string, r Run) (*RunResult, error) {
	data, err := os.ReadFile(runPath(dir, r))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runner: experiment results: %w", err)
	}
	var res RunResult
	if err := json.Unmarshal(data, &res); err != nil || res.Cell.ID != r.Cell.ID || res.Repetition != r.Repetition {
		return nil, fmt.Errorf("%w: experiment result %s is damaged or not this run's (remove it to build the run again)", ErrConfig, runPath(dir, r))
	}
	// The cell as expanded now (its index may differ when the file's
	// other cells changed); the levels are the same by the ID.
	res.Cell = r.Cell
	return &res, nil
}

// saveRun writes a run's result atomically (package atomicfile).
func saveRun(dir string, r Run, res *RunResult) error {
	data, err := jsonout.Marshal(res)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(runPath(dir, r), data, 0o644); err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	return nil
}

// BlobsDir is where an experiment keeps each distinct artifact, by sha256.
func BlobsDir(out string) string { return filepath.Join(out, "blobs") }

// ExperimentPlans are the plans of an experiment, by project and image as
// written in the file.
type ExperimentPlans map[[2]string]*Plan

// Close releases every plan.
func (ps ExperimentPlans) Close() {
	for _, p := range ps {
		p.Close()
	}
}

// NewExperimentPlans makes a plan per project and image: each project's
// reprobox.toml (with the experiment's command when it sets one) and the image
// resolved to its digest.
func (r *Runner) NewExperimentPlans(ctx context.Context, e *Experiment) (ExperimentPlans, error) {
	plans := ExperimentPlans{}
	for _, proj := range e.Projects {
		dir := e.ProjectDir(proj)
		cfg, found, err := LoadConfig(dir)
		if err != nil {
			plans.Close()
			return nil, err
		}
		if !found {
			plans.Close()
			return nil, fmt.Errorf("%w: experiment project %s has no %s (reprobox init writes one)", ErrConfig, dir, ConfigFile)
		}
		if len(e.Command) > 0 {
			cfg.Command = slices.Clone(e.Command)
		}
		for _, img := range e.Images {
			c := cfg
			c.Image = img
			p, err := r.NewPlan(ctx, dir, c, true, "")
			if err != nil {
				plans.Close()
				return nil, fmt.Errorf("experiment project %s, image %s: %w", proj, img, err)
			}
			plans[[2]string{proj, img}] = p
		}
	}
	return plans, nil
}

// ExperimentBuilder is the BuildFunc of real builds: each run builds its
// cell's settings in the sandbox, and every artifact is kept once by its
// sha256 under BlobsDir(out) for the reports' diffs.
func (r *Runner) ExperimentBuilder(e *Experiment, plans ExperimentPlans, out string) BuildFunc {
	return func(ctx context.Context, run Run) (*RunResult, error) {
		p := plans[[2]string{run.Cell.Project, run.Cell.Image}]
		if p == nil {
			return nil, fmt.Errorf("runner: no plan for %s with %s", run.Cell.Project, run.Cell.Image)
		}
		s := e.Settings(p.Base, run.Cell)
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		o, err := r.Build(ctx, p, s, nil)
		if err != nil {
			return nil, err
		}
		defer o.Remove()
		res := &RunResult{ImageRef: p.Image.Reference().String(), ImageDigest: p.Image.Digest.String(),
			ExitStatus: o.Result.ExitCode, Duration: o.Duration.Seconds(), Artifacts: []Artifact{}}
		if !o.OK() {
			res.Failure = o.Failure()
			if res.ExitStatus == 0 {
				res.ExitStatus = 1 // exited 0 but failed (missing or refused artifacts, disk)
			}
			return res, nil
		}
		blobs := BlobsDir(out)
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return nil, err
		}
		for _, a := range o.Artifacts {
			dst := filepath.Join(blobs, a.SHA256)
			if _, err := os.Stat(dst); errors.Is(err, fs.ErrNotExist) {
				if err := atomicfile.Write(dst, 0o644, func(w io.Writer) error { return copyTo(w, a.File) }); err != nil {
					return nil, fmt.Errorf("runner: keep artifact %s: %w", a.Path, err)
				}
			}
			res.Artifacts = append(res.Artifacts, Artifact{Path: a.Path, SHA256: a.SHA256, Size: a.Size})
		}
		return res, nil
	}
}

// copyTo copies the file at path to w.
func copyTo(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
