package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/policies"
)

// CheckOptions configure a check.
type CheckOptions struct {
	// Vary is the factors to perturb, in factor order.
	Vary []string
	// Seed derives every perturbed value.
	Seed uint64
	// Jobs is how many builds may run at once (at least 1).
	Jobs int
	// Repeats is how many extra builds confirm a verdict that no evidence backs
	// (reproducible, or a culprit whose perturbed value does not appear in the
	// differing bytes). Each repeat halves the chance that an artifact whose
	// output is one of two at random escapes as reproducible or gets a factor
	// blamed.
	Repeats int
	// Progress receives one line per build; nil discards them.
	Progress io.Writer
	// Evidence bounds the evidence text per artifact (lines).
	EvidenceLines int
	// ProgressEvery is how often running builds report their elapsed time
	// and current step on Progress; zero means every 30 seconds, negative
	// never.
	ProgressEvery time.Duration
	// NoIntermediates skips keeping cargo's intermediate outputs, and so
	// localizing differences to the unit where they start.
	NoIntermediates bool
	// Timings puts wall-clock timings into the report (its only
	// nondeterministic part).
	Timings bool
}

// DefaultRepeats is the default of CheckOptions.Repeats.
const DefaultRepeats = 9

// A CheckReport is the result of a check, written by --json.
type CheckReport struct {
	Artifacts     []ArtifactReport  `json:"artifacts"`
	BuildFailures map[string]string `json:"build_failures,omitempty"`
	Builds        int               `json:"builds"`
	Culprits      []string          `json:"culprits"`
	// Dependencies are the crates the fetch phase gave the builds (sorted).
	Dependencies     []Dependency       `json:"dependencies"`
	Factors          map[string]Values  `json:"factors"`
	Image            string             `json:"image"`
	Nondeterministic bool               `json:"nondeterministic"`
	Repeats          int                `json:"repeats"`
	Reproducible     bool               `json:"reproducible"`
	Seed             uint64             `json:"seed"`
	Timings          map[string]float64 `json:"timings_seconds,omitempty"`

	// Intermediates says what was kept to localize differences (jsonout
	// sorts the keys).
	Intermediates *IntermediatesReport `json:"intermediates,omitempty"`
	// Trials are the sets of factors built, with the artifacts that
	// differed from the control in each (check_trials.go).
	Trials []CheckTrial `json:"trials,omitempty"`
	// PerBuild, Workers and WorkerFindings: which worker ran which build,
	// how many each ran, and the workers that do not reproduce (workers.go).
	PerBuild       []CheckBuild    `json:"per_build,omitempty"`
	Workers        map[string]int  `json:"workers,omitempty"`
	WorkerFindings []WorkerFinding `json:"worker_findings,omitempty"`
}

// Values are a factor's control and variant values.
type Values struct {
	Control string `json:"control"`
	Variant string `json:"variant"`
}

// An ArtifactReport is the verdict on one artifact.
type ArtifactReport struct {
	ControlSHA256 string   `json:"control_sha256"`
	Culprits      []string `json:"culprits"`
	// Evidence is the structural diff between the control and the culprit's
	// variant (or the full variant), bounded.
	Evidence string `json:"evidence,omitempty"`
	// EvidenceFactors are the factors whose perturbed values appear in the
	// differing bytes.
	EvidenceFactors  []string `json:"evidence_factors"`
	Nondeterministic bool     `json:"nondeterministic"`
	Path             string   `json:"path"`
	Reproducible     bool     `json:"reproducible"`
	VariantSHA256    string   `json:"variant_sha256"`

	// Localization is where the compared builds' cargo units first differ
	// (for a nondeterministic artifact, two builds in one environment; for
	// a culprit, the control and the culprit's build), and the chain from
	// there to the artifact. The evidence text opens with it. jsonout.Write
	// sorts the keys.
	Localization *Localization `json:"localization,omitempty"`
	// LocalizationError says why intermediates could not be compared.
	LocalizationError string `json:"localization_error,omitempty"`
	// CulpritLocalizations localize the difference each culprit makes
	// (the control against the culprit's build), by culprit.
	CulpritLocalizations map[string]*Localization `json:"culprit_localizations,omitempty"`
}

// observation is what one build of a check produced.
type observation struct {
	set    []string
	hashes map[string]string // artifact path → sha256, or "failed: …"
	files  map[string]string // artifact path → kept copy
	failed string
	// inter are the build's cargo units, kept; interErr why not.
	inter    *Intermediates
	interErr error
	// n numbers the build, worker ran it (workers.go), in took.
	n      int
	worker string
	took   time.Duration
}

// ErrControlFailed is returned when the normalized build itself fails: there
// is nothing to compare.
var ErrControlFailed = errors.New("the control build failed")

// Check builds the plan normalized (the control), again (the repeat), and with
// every chosen factor perturbed, then searches per differing artifact for the
// factors responsible. Kept artifacts go to keep (control/, variant/,
// variants/GROUP/).
func (r *Runner) Check(ctx context.Context, p *Plan, opts CheckOptions, keep string) (*CheckReport, error) {
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	if len(opts.Vary) == 0 {
		return nil, fmt.Errorf("%w: no factor to vary", ErrConfig)
	}
	if err := r.checkVary(opts.Vary); err != nil {
		return nil, err
	}
	if opts.EvidenceLines == 0 {
		opts.EvidenceLines = 40
	}
	store, err := os.MkdirTemp(r.WorkDir, "check-")
	if err != nil {
		if err := os.MkdirAll(r.WorkDir, 0o711); err != nil {
			return nil, err
		}
		if store, err = os.MkdirTemp(r.WorkDir, "check-"); err != nil {
			return nil, err
		}
	}
	defer os.RemoveAll(store)
	if err := markOwned(store); err != nil {
		return nil, err
	}
	c := newChecker(r, p, opts, store)
	started := r.now()
	rep, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	if keep != "" {
		if err := c.keep(rep, keep); err != nil {
			return nil, err
		}
	}
	if opts.Timings {
		rep.Timings = map[string]float64{"total": r.now().Sub(started).Seconds()}
		if c.keeper != nil {
			rep.Timings["intermediates"] = c.interTime.Seconds()
		}
	}
	return rep, nil
}

func newChecker(r *Runner, p *Plan, opts CheckOptions, store string) *checker {
	c := &checker{r: r, p: p, opts: opts, store: store, memo: map[string][]*observation{}}
	c.sem = make(chan struct{}, opts.Jobs)
	c.make = c.sandboxBuild
	c.diff = c.diffFiles
	return c
}

type checker struct {
	// make produces one build's observation; diff explains a difference
	// (factors named, text). Tests replace both.
	make func(ctx context.Context, n int, set []string) (*observation, error)
	diff func(ctx context.Context, path string, a, b *observation, vs policies.Settings) ([]string, string, error)

	r     *Runner
	p     *Plan
	opts  CheckOptions
	store string
	sem   chan struct{}

	mu     sync.Mutex
	memo   map[string][]*observation // setKey → observations, in order
	builds int
	groups map[string]*observation // culprit group name → its build, for keep

	keeper      *keeper // intermediates kept, shared by all builds
	interBuilds int
	interBytes  int64
	interTime   time.Duration // spent reading and keeping intermediates

	// The repeats that confirm reproducible artifacts are shared by all.
	reproOnce sync.Once
	reproErr  error
}

// build runs one build with set perturbed and records what it produced.
func (c *checker) build(ctx context.Context, set []string) (*observation, error) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.mu.Lock()
	c.builds++
	n := c.builds
	c.mu.Unlock()
	label := "control"
	if len(set) > 0 {
		label = "vary " + strings.Join(set, ",")
	}
	start := c.r.now()
	obs, err := c.make(ctx, n, set)
	if err != nil {
		return nil, fmt.Errorf("build %d (%s): %w", n, label, err)
	}
	obs.set, obs.n, obs.took = slices.Clone(set), n, c.r.now().Sub(start)
	verdict := "ok"
	if obs.failed != "" {
		verdict = "failed: " + obs.failed
	}
	if c.opts.Progress != nil {
		fmt.Fprintf(c.opts.Progress, "reprobox: build %d (%s): %s in %.1fs%s\n", n, label, verdict, c.r.now().Sub(start).Seconds(), onWorker(obs.worker))
	}
	c.mu.Lock()
	k := setKey(set)
	c.memo[k] = append(c.memo[k], obs)
	c.mu.Unlock()
	return obs, nil
}

// sandboxBuild is checker.make for real builds: it builds in the sandbox from a
// pristine copy of the source and keeps only the artifacts.
func (c *checker) sandboxBuild(ctx context.Context, n int, set []string) (*observation, error) {
	s := policies.Perturb(c.p.Base, set, c.opts.Seed)
	steps := &stepWriter{}
	stop := c.track(n, set, steps)
	var inter *Intermediates
	var interErr error
	var keep keepFunc
	if !c.opts.NoIntermediates {
		// From the build's tree, before the backend removes it.
		keep = func(ctx context.Context, o *Outcome) {
			built := &observation{hashes: map[string]string{}}
			for _, a := range o.Artifacts {
				built.hashes[a.Path] = a.SHA256
			}
			inter, interErr = c.keepIntermediates(ctx, o, set, built)
		}
	}
	o, err := c.r.build(ctx, c.p, s, steps, keep)
	stop()
	if err != nil {
		return nil, err
	}
	defer o.Remove()
	obs := &observation{hashes: map[string]string{}, files: map[string]string{}, worker: o.Result.Worker}
	if !o.OK() {
		obs.failed = o.Failure()
		if len(set) == 0 {
			tailLog, _ := os.ReadFile(o.Log)
			return nil, fmt.Errorf("%w: %s\n%s", ErrControlFailed, obs.failed, lastLines(tailLog, 20))
		}
		// A build that fails is a finding for every artifact: none is
		// compared, so each differs from the control.
		return obs, nil
	}
	dir := filepath.Join(c.store, strconv.Itoa(n))
	for _, a := range o.Artifacts {
		dst := filepath.Join(dir, filepath.FromSlash(a.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(a.File, dst, 0o755); err != nil {
			return nil, fmt.Errorf("runner: keep artifact %s: %w", a.Path, err)
		}
		obs.hashes[a.Path], obs.files[a.Path] = a.SHA256, dst
	}
	obs.inter, obs.interErr = inter, interErr
	return obs, nil
}

// track reports a running build's elapsed time and current step on Progress
// every ProgressEvery until the returned function is called.
func (c *checker) track(n int, set []string, steps *stepWriter) func() {
	if c.opts.Progress == nil || c.opts.ProgressEvery < 0 {
		return func() {}
	}
	every := c.opts.ProgressEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	label := "control"
	if len(set) > 0 {
		label = "vary " + strings.Join(set, ",")
	}
	return watch(c.opts.Progress, every, c.r.now, fmt.Sprintf("reprobox: build %d (%s)", n, label), steps)
}

// get returns the first observation of a set, building it if there is none.
func (c *checker) get(ctx context.Context, set []string) (*observation, error) {
	c.mu.Lock()
	obs := c.memo[setKey(set)]
	c.mu.Unlock()
	if len(obs) > 0 {
		return obs[0], nil
	}
	return c.build(ctx, set)
}

// parallel builds every set at once (up to Jobs) and waits for all.
func (c *checker) parallel(ctx context.Context, sets [][]string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(sets))
	for i, s := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.build(ctx, s); err != nil {
				errs[i] = err
				cancel(err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

func (c *checker) run(ctx context.Context) (*CheckReport, error) {
	vary := c.opts.Vary
	// The control, its repeat and the full variant are independent.
	if err := c.parallel(ctx, [][]string{nil, nil, vary}); err != nil {
		return nil, err
	}
	control := c.memo[""][0]
	variant := c.memo[setKey(vary)][0]
	rep := &CheckReport{
		Factors: map[string]Values{}, Image: c.p.Image.Digest.String(),
		Seed: c.opts.Seed, Repeats: c.opts.Repeats, Culprits: []string{},
		Dependencies: c.p.Dependencies,
	}
	if rep.Dependencies == nil {
		rep.Dependencies = []Dependency{}
	}
	vs := policies.Perturb(c.p.Base, vary, c.opts.Seed)
	for _, name := range vary {
		f, _ := policies.Lookup(name)
		rep.Factors[name] = Values{Control: f.Value(c.p.Base), Variant: f.Value(vs)}
	}
	paths := make([]string, 0, len(control.hashes))
	for p := range control.hashes {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	c.groups = map[string]*observation{}
	for _, path := range paths {
		ar, err := c.artifact(ctx, path, control, variant, vs)
		if err != nil {
			return nil, err
		}
		rep.Artifacts = append(rep.Artifacts, ar)
	}
	// Verdicts are final only now: later builds may have shown an artifact
	// to disagree with itself.
	rep.Reproducible = true
	for i := range rep.Artifacts {
		a := &rep.Artifacts[i]
		if c.inconsistent(a.Path) {
			a.Nondeterministic, a.Reproducible, a.Culprits = true, false, []string{}
		}
		rep.Reproducible = rep.Reproducible && a.Reproducible
		rep.Nondeterministic = rep.Nondeterministic || a.Nondeterministic
		for _, g := range a.Culprits {
			if !slices.Contains(rep.Culprits, g) {
				rep.Culprits = append(rep.Culprits, g)
			}
		}
	}
	slices.Sort(rep.Culprits)
	for _, g := range rep.Culprits {
		if o := c.groups[g]; o != nil && o.failed != "" {
			if rep.BuildFailures == nil {
				rep.BuildFailures = map[string]string{}
			}
			rep.BuildFailures[g] = o.failed
		}
	}
	rep.Builds = c.builds
	rep.Trials = c.trials()
	c.workerReport(rep)
	if err := c.localize(ctx, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// differs is the search's probe for one artifact.
func (c *checker) differs(path, controlHash string) probe {
	return func(ctx context.Context, set []string) (bool, string, error) {
		o, err := c.get(ctx, set)
		if err != nil {
			return false, "", err
		}
		h := o.hashes[path]
		if o.failed != "" {
			h = "failed: " + o.failed
		}
		return h != controlHash, h, nil
	}
}

// inconsistent reports whether two builds with the same settings disagreed
// about whether an artifact matches the control: the artifact is then
// nondeterministic, whatever else was seen.
func (c *checker) inconsistent(path string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	controlHash := c.memo[""][0].hashes[path]
	for _, obs := range c.memo {
		for _, o := range obs[1:] {
			if (o.hashes[path] != controlHash) != (obs[0].hashes[path] != controlHash) {
				return true
			}
		}
	}
	return false
}

// contradicts reports whether any build disagrees with the verdict that groups
// are the culprits: a build differs from the control exactly when its set holds
// a whole group.
func (c *checker) contradicts(path string, groups [][]string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	controlHash := c.memo[""][0].hashes[path]
	for _, obs := range c.memo {
		for _, o := range obs {
			predicted := false
			for _, g := range groups {
				if len(without(g, o.set)) == 0 {
					predicted = true
				}
			}
			got := o.failed != "" || o.hashes[path] != controlHash
			if got != predicted {
				return true
			}
		}
	}
	return false
}

func (c *checker) artifact(ctx context.Context, path string, control, variant *observation, vs policies.Settings) (ArtifactReport, error) {
	ar := ArtifactReport{
		Path: path, ControlSHA256: control.hashes[path], VariantSHA256: variant.hashes[path],
		Culprits: []string{}, EvidenceFactors: []string{},
	}
	vary := c.opts.Vary
	differs := c.differs(path, control.hashes[path])
	if c.inconsistent(path) {
		ar.Nondeterministic = true
		return ar, nil
	}
	if ar.VariantSHA256 == ar.ControlSHA256 {
		// Reproducible so far; repeats guard against a nondeterministic
		// artifact that happened to come out the same every time.
		c.reproOnce.Do(func() { c.reproErr = c.confirm(ctx, [][]string{nil, vary}) })
		if c.reproErr != nil {
			return ar, c.reproErr
		}
		ar.Reproducible = !c.inconsistent(path)
		ar.Nondeterministic = !ar.Reproducible
		return ar, nil
	}
	// Evidence first: which perturbed values appear in the differing bytes.
	evidence, text, err := c.evidence(ctx, path, control, variant, vs)
	if err != nil {
		return ar, err
	}
	ar.EvidenceFactors = evidence
	vh := variant.hashes[path]
	if variant.failed != "" {
		vh = "failed: " + variant.failed
	}
	groups, err := searchCulprits(ctx, vary, evidence, vh, differs)
	if err != nil {
		return ar, err
	}
	if c.inconsistent(path) {
		ar.Nondeterministic = true
		return ar, nil
	}
	// A culprit is blamed on evidence when its perturbed value is in the
	// differing bytes; otherwise repeats of the builds that blame it must
	// agree, or chance could be mistaken for a factor.
	var proof [][]string
	blamed := map[string]bool{}
	for _, g := range groups {
		blamed[groupName(g)] = true
		if !(len(g) == 1 && slices.Contains(evidence, g[0])) {
			proof = append(proof, g)
		}
	}
	if len(proof) > 0 {
		var all []string
		for _, g := range groups {
			all = union(all, g)
		}
		proof = append(proof, without(vary, all), nil)
		if err := c.confirm(ctx, proof); err != nil {
			return ar, err
		}
	}
	if c.inconsistent(path) || len(groups) == 0 || c.contradicts(path, groups) {
		ar.Nondeterministic = true
		return ar, nil
	}
	for _, g := range groups {
		name := groupName(g)
		ar.Culprits = append(ar.Culprits, name)
		o, _ := c.get(ctx, g)
		c.mu.Lock()
		c.groups[name] = o
		c.mu.Unlock()
	}
	slices.Sort(ar.Culprits)
	// The evidence shown is the diff of the control against the first
	// culprit's own build when it differs, else against the full variant.
	if len(groups) > 0 {
		if o := c.groups[groupName(groups[0])]; o != nil && o.files[path] != "" {
			gs := policies.Perturb(c.p.Base, groups[0], c.opts.Seed)
			if _, t, err := c.evidence(ctx, path, control, o, gs); err == nil && t != "" {
				text = t
			}
		}
	}
	ar.Evidence = text
	return ar, nil
}

// confirm makes Repeats fresh builds, cycling through sets.
func (c *checker) confirm(ctx context.Context, sets [][]string) error {
	if c.opts.Repeats <= 0 {
		return nil
	}
	todo := make([][]string, c.opts.Repeats)
	for i := range todo {
		todo[i] = sets[i%len(sets)]
	}
	return c.parallel(ctx, todo)
}

// evidence diffs an artifact of two builds, labelling differences that hold
// the variant's perturbed values, and returns the factors named and the text.
func (c *checker) evidence(ctx context.Context, path string, control, variant *observation, vs policies.Settings) ([]string, string, error) {
	if variant.failed != "" {
		return nil, "the build failed: " + variant.failed, nil
	}
	named, text, err := c.diff(ctx, path, control, variant, vs)
	if err != nil {
		return nil, "", err
	}
	var out []string
	for _, f := range named {
		if slices.Contains(c.opts.Vary, f) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out) // the report's lists are sorted
	return out, text, nil
}

func (c *checker) diffFiles(ctx context.Context, path string, control, variant *observation, vs policies.Settings) ([]string, string, error) {
	a, b := control.files[path], variant.files[path]
	if a == "" || b == "" {
		return nil, "", nil
	}
	opts := diff.Options{Labels: Labels(c.p.Base, vs), TimeRanges: TimeRanges(c.p.Base, vs)}
	rep, err := diff.Files(ctx, a, b, opts)
	if err != nil {
		return nil, "", fmt.Errorf("runner: diff %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, c.opts.EvidenceLines); err != nil {
		return nil, "", err
	}
	return rep.Factors(), buf.String(), nil
}

// Labels are the perturbed values of vs that differ from base, for the diff to
// find in differing bytes: each factor's evidence (policies.Factor.Evidence).
func Labels(base, vs policies.Settings) []diff.Label {
	var ls []diff.Label
	for _, e := range policies.FactorEvidence(base, vs) {
		if len(e.Values) > 0 {
			ls = append(ls, diff.Label{Factor: e.Factor, Values: e.Values})
		}
	}
	return ls
}

// TimeRanges are the time ranges of the factors whose values differ between
// base and vs (the shifted clock, when the time factor moved it).
func TimeRanges(base, vs policies.Settings) []diff.TimeRange {
	var rs []diff.TimeRange
	for _, e := range policies.FactorEvidence(base, vs) {
		for _, t := range e.Times {
			rs = append(rs, diff.TimeRange{Factor: e.Factor, From: t.From, To: t.To})
		}
	}
	return rs
}

// keep copies the control's artifacts, the full variant's and each culprit's
// variant under dir.
func (c *checker) keep(rep *CheckReport, dir string) error {
	copyObs := func(o *observation, sub string) error {
		for p, f := range o.files {
			dst := filepath.Join(dir, sub, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			st, err := os.Stat(f)
			if err != nil {
				return err
			}
			if err := copyFile(f, dst, st.Mode().Perm()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := copyObs(c.memo[""][0], "control"); err != nil {
		return err
	}
	if err := copyObs(c.memo[setKey(c.opts.Vary)][0], "variant"); err != nil {
		return err
	}
	for _, g := range rep.Culprits {
		if o := c.groups[g]; o != nil {
			if err := copyObs(o, filepath.Join("variants", g)); err != nil {
				return err
			}
		}
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
