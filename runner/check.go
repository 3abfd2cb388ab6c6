package runner

import (
	"bytes"
	"cmp"
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
	// Bound is the largest chance, accepted for a verdict, that an artifact
	// whose output is one of two at random in every build showed the hashes
	// the check saw (check_stats.go); zero means DefaultBound. The check
	// stops as soon as its verdict meets it.
	Bound float64
	// MaxBuilds caps the builds of a check (zero: no cap). A check that
	// reaches it reports what is known: verdicts that met the bound, and the
	// others undecided with their hypothesis so far.
	MaxBuilds int
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

// DefaultBound is the default of CheckOptions.Bound: about one in a thousand,
// the chance that ten builds of an artifact that is one of two at random all
// agree with the verdict.
const DefaultBound = 0.001

// A CheckReport is the result of a check, written by --json.
type CheckReport struct {
	Artifacts []ArtifactReport `json:"artifacts"`
	// Bound is the largest chance a verdict accepted that a nondeterministic
	// artifact produced the hashes seen (CheckOptions.Bound).
	Bound         float64           `json:"bound"`
	BuildFailures map[string]string `json:"build_failures,omitempty"`
	// Builds counts every build the check made; Repeats those of a set of
	// factors already built.
	Builds   int      `json:"builds"`
	Culprits []string `json:"culprits"`
	// Dependencies are the crates the fetch phase gave the builds (sorted).
	Dependencies     []Dependency       `json:"dependencies"`
	Factors          map[string]Values  `json:"factors"`
	Image            string             `json:"image"`
	MaxBuilds        int                `json:"max_builds,omitempty"`
	Nondeterministic bool               `json:"nondeterministic"`
	Repeats          int                `json:"repeats"`
	Reproducible     bool               `json:"reproducible"`
	Seed             uint64             `json:"seed"`
	Timings          map[string]float64 `json:"timings_seconds,omitempty"`
	// Undecided says that --max-builds stopped the check before every
	// artifact had a verdict.
	Undecided bool `json:"undecided,omitempty"`

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
	// CulpritSHA256 is, per culprit, the artifact's hash in the build with
	// that culprit alone perturbed.
	CulpritSHA256 map[string]string `json:"culprit_sha256,omitempty"`
	// Evidence is the structural diff between the control and the culprit's
	// variant (or the full variant), bounded; EvidenceSHA256 is the hash of
	// the artifact it was taken from, EvidenceSet that build's perturbed
	// factors.
	Evidence       string   `json:"evidence,omitempty"`
	EvidenceSHA256 string   `json:"evidence_sha256,omitempty"`
	EvidenceSet    []string `json:"evidence_set,omitempty"`
	// EvidenceFactors are the factors whose perturbed values appear in the
	// differing bytes.
	EvidenceFactors []string `json:"evidence_factors"`
	// HintFactors are the factors a shape of the difference suggests but
	// does not prove (reordered content: fileordering; a byte-order sort
	// against another: locale's collation). The search builds them first
	// and weighs them more, never as proof.
	HintFactors []string `json:"hint_factors,omitempty"`
	// Hypothesis is the culprit groups the builds pointed at when the check
	// stopped undecided.
	Hypothesis []string `json:"hypothesis,omitempty"`
	// Mechanism says what several culprits have in common when it explains
	// them better than a list of unrelated factors.
	Mechanism string `json:"mechanism,omitempty"`
	// NondeterministicChance is the chance, weighed by the verdicts the
	// search could have reached, that an artifact whose output is one of
	// two at random showed the hashes seen (0 when evidence names every
	// culprit; not given for a nondeterministic artifact).
	NondeterministicChance float64 `json:"nondeterministic_chance"`
	Nondeterministic       bool    `json:"nondeterministic"`
	// Observations are the artifact's hashes in each set of factors built.
	Observations []Observation `json:"observations"`
	Path         string        `json:"path"`
	// RandomUnder are the culprits under which the artifact differs in
	// every build (it holds something they make random, such as an address
	// under aslr); the verdict rests on the builds without them.
	RandomUnder   []string `json:"random_under,omitempty"`
	Reproducible  bool     `json:"reproducible"`
	Undecided     bool     `json:"undecided,omitempty"`
	VariantSHA256 string   `json:"variant_sha256"`

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
	set []string
	n   int // the build's number in the check
	// class is the key of the groups of hypothesis classFor the set holds
	// (search.go's classKey), kept because it is asked for again and again.
	class, classFor string
	hashes          map[string]string // artifact path → sha256, or "failed: …"
	files           map[string]string // artifact path → kept copy
	failed          string
	// inter are the build's cargo units, kept; interErr why not.
	inter    *Intermediates
	interErr error
	// worker ran the build (workers.go), in took.
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
	if opts.Bound == 0 {
		opts.Bound = DefaultBound
	}
	if !(opts.Bound > 0 && opts.Bound < 1) {
		return nil, fmt.Errorf("%w: the bound %g is not a chance between 0 and 1 (the default is %g)", ErrConfig, opts.Bound, DefaultBound)
	}
	if opts.MaxBuilds < 0 || opts.MaxBuilds == 1 {
		return nil, fmt.Errorf("%w: a check needs at least 2 builds (the control and the variant), not a cap of %d", ErrConfig, opts.MaxBuilds)
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
	if opts.Bound == 0 {
		opts.Bound = DefaultBound
	}
	c := &checker{r: r, p: p, opts: opts, store: store, memo: map[string][]*observation{}}
	opts.Jobs = max(opts.Jobs, 1)
	c.opts.Jobs = opts.Jobs
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
	stored int                       // observations in memo
	// snap is memo's sets in a stable order, as of snapAt observations.
	snap   [][]*observation
	snapAt int
	builds int
	groups map[string]*observation // culprit group name → its build, for keep

	keeper      *keeper // intermediates kept, shared by all builds
	interBuilds int
	interBytes  int64
	interTime   time.Duration // spent reading and keeping intermediates

}

// build runs one build with set perturbed and records what it produced.
func (c *checker) build(ctx context.Context, set []string) (*observation, error) {
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	c.mu.Lock()
	if c.opts.MaxBuilds > 0 && c.builds >= c.opts.MaxBuilds {
		c.mu.Unlock()
		return nil, errMaxBuilds
	}
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
	c.stored++
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
	if len(sets) == 1 {
		_, err := c.build(ctx, sets[0])
		return err
	}
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
				// The cap stops new builds only: the batch's running
				// builds are evidence.
				if !errors.Is(err, errMaxBuilds) {
					cancel(err)
				}
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

// An Observation is what the builds of one set of factors gave an artifact.
type Observation struct {
	// Set is the perturbed factors, in factor order; empty for the control.
	Set    []string `json:"set"`
	Builds int      `json:"builds"`
	// SHA256 lists, sorted, the distinct hashes seen (a failed build as
	// "failed: …"); two of them mean the artifact is nondeterministic.
	SHA256 []string `json:"sha256"`
}

// errMaxBuilds stops a check at CheckOptions.MaxBuilds.
var errMaxBuilds = errors.New("the check reached its build cap")

func (c *checker) run(ctx context.Context) (*CheckReport, error) {
	vary := c.opts.Vary
	// The control and the full variant are independent.
	if err := c.parallel(ctx, [][]string{nil, vary}); err != nil {
		return nil, err
	}
	control := c.memo[""][0]
	variant := c.memo[setKey(vary)][0]
	rep := &CheckReport{
		Factors: map[string]Values{}, Image: c.p.Image.Digest.String(),
		Seed: c.opts.Seed, Culprits: []string{}, Bound: c.opts.Bound, MaxBuilds: c.opts.MaxBuilds,
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
	states := make([]*verdict, len(paths))
	for i, path := range paths {
		st := &verdict{path: path}
		if hashOf(variant, path) != hashOf(control, path) {
			// Evidence first: which perturbed values appear in the
			// differing bytes.
			ev, hints, text, err := c.evidence(ctx, path, control, variant, vs)
			if err != nil {
				return nil, err
			}
			st.evidence, st.hints, st.text = ev, hints, text
		}
		states[i] = st
	}
	// Every build observes every artifact: deciding one may add builds
	// that another's verdict must still agree with, so decide until a pass
	// adds none.
	capped := false
	for pass := 0; pass < 4 && !capped; pass++ {
		before := c.count()
		for _, st := range states {
			err := c.decide(ctx, st)
			if errors.Is(err, errMaxBuilds) {
				capped = true
				break
			}
			if err != nil {
				return nil, err
			}
		}
		if c.count() == before {
			break
		}
	}
	rep.Reproducible = true
	for _, st := range states {
		c.settle(st)
		ar, err := c.artifactReport(ctx, st, control, variant)
		if err != nil {
			return nil, err
		}
		rep.Artifacts = append(rep.Artifacts, ar)
		rep.Reproducible = rep.Reproducible && ar.Reproducible
		rep.Nondeterministic = rep.Nondeterministic || ar.Nondeterministic
		rep.Undecided = rep.Undecided || ar.Undecided
		for _, g := range ar.Culprits {
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
	c.mu.Lock()
	rep.Builds = c.builds
	for _, obs := range c.memo {
		rep.Repeats += len(obs) - 1
	}
	c.mu.Unlock()
	rep.Trials = c.trials()
	c.workerReport(rep)
	if err := c.localize(ctx, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// artifactReport writes an artifact's verdict, with the hashes of the builds
// its evidence came from.
func (c *checker) artifactReport(ctx context.Context, st *verdict, control, variant *observation) (ArtifactReport, error) {
	path := st.path
	ar := ArtifactReport{
		Path: path, ControlSHA256: hashOf(control, path), VariantSHA256: hashOf(variant, path),
		Culprits: []string{}, EvidenceFactors: st.evidence, HintFactors: st.hints, Observations: c.observations(path),
		Evidence: st.text, NondeterministicChance: st.chance,
	}
	if ar.EvidenceFactors == nil {
		ar.EvidenceFactors = []string{}
	}
	if st.text != "" {
		ar.EvidenceSHA256, ar.EvidenceSet = ar.VariantSHA256, slices.Clone(c.opts.Vary)
	}
	switch st.kind {
	case verdictReproducible:
		ar.Reproducible = true
		return ar, nil
	case verdictNondeterministic:
		ar.Nondeterministic, ar.NondeterministicChance = true, 0
		return ar, nil
	case verdictUndecided:
		ar.Undecided = true
		for _, g := range st.groups {
			ar.Hypothesis = append(ar.Hypothesis, groupName(g))
		}
		slices.Sort(ar.Hypothesis)
		return ar, nil
	}
	ar.CulpritSHA256 = map[string]string{}
	for _, g := range st.groups {
		name := groupName(g)
		ar.Culprits = append(ar.Culprits, name)
		o := c.first(g)
		c.mu.Lock()
		c.groups[name] = o
		c.mu.Unlock()
		ar.CulpritSHA256[name] = hashOf(o, path)
	}
	slices.Sort(ar.Culprits)
	for _, g := range st.random {
		ar.RandomUnder = append(ar.RandomUnder, groupName(g))
	}
	slices.Sort(ar.RandomUnder)
	ar.Mechanism = c.mechanism(st)
	// The evidence shown is the diff of the control against the first
	// culprit's own build when it differs, else against the full variant.
	if o := c.first(st.groups[0]); o != nil && o.failed == "" {
		gs := policies.Perturb(c.p.Base, st.groups[0], c.opts.Seed)
		if _, _, t, err := c.evidence(ctx, path, control, o, gs); err == nil && t != "" {
			ar.Evidence, ar.EvidenceSHA256, ar.EvidenceSet = t, hashOf(o, path), slices.Clone(o.set)
		} else if err != nil && ctx.Err() != nil {
			return ar, err
		}
	}
	return ar, nil
}

// mechanism names what several culprits share when the evidence names none
// of them: each changes the size of the build's environment, which moves
// the stack, so an artifact holding uninitialized stack memory or a printed
// stack address differs under each.
func (c *checker) mechanism(st *verdict) string {
	if len(st.groups) < 2 {
		return ""
	}
	size := func(env []string) int {
		n := 0
		for _, e := range env {
			n += len(e) + 1
		}
		return n
	}
	base := size(c.p.Base.Environ())
	var names []string
	for _, g := range st.groups {
		if len(g) != 1 || slices.Contains(st.evidence, g[0]) {
			return ""
		}
		if size(policies.Perturb(c.p.Base, g, c.opts.Seed).Environ()) == base {
			return ""
		}
		names = append(names, g[0])
	}
	return fmt.Sprintf("one mechanism, not %d unrelated culprits: each of %s changes the size of the build's environment, which moves the process stack; the artifact likely holds uninitialized stack memory or a printed stack address (and no evidence names any of them)",
		len(names), strings.Join(names, ", "))
}

// observations lists, per set of factors built, the artifact's hashes.
func (c *checker) observations(path string) []Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Observation
	for _, obs := range c.memo {
		o := Observation{Set: slices.Clone(obs[0].set), Builds: len(obs), SHA256: []string{}}
		if o.Set == nil {
			o.Set = []string{}
		}
		for _, b := range obs {
			if h := hashOf(b, path); !slices.Contains(o.SHA256, h) {
				o.SHA256 = append(o.SHA256, h)
			}
		}
		slices.Sort(o.SHA256)
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Observation) int {
		return cmp.Or(cmp.Compare(len(a.Set), len(b.Set)), strings.Compare(strings.Join(a.Set, ","), strings.Join(b.Set, ",")))
	})
	return out
}

// count is the number of builds made so far.
func (c *checker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.builds
}

// first returns the first build of a set, nil if there is none.
func (c *checker) first(set []string) *observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if obs := c.memo[setKey(set)]; len(obs) > 0 {
		return obs[0]
	}
	return nil
}

// hashOf is an artifact's hash in a build: a failed build's is its failure.
func hashOf(o *observation, path string) string {
	if o.failed != "" {
		return "failed: " + o.failed
	}
	if h, ok := o.hashes[path]; ok {
		return h
	}
	return "missing"
}

// evidence diffs an artifact of two builds, labelling differences that hold
// the variant's perturbed values, and returns the factors named, those only
// hinted at (a label ending in hintMark) and the text.
func (c *checker) evidence(ctx context.Context, path string, control, variant *observation, vs policies.Settings) (named, hints []string, text string, err error) {
	if variant.failed != "" {
		return nil, nil, "the build failed: " + variant.failed, nil
	}
	labels, text, err := c.diff(ctx, path, control, variant, vs)
	if err != nil {
		return nil, nil, "", err
	}
	for _, f := range labels {
		if slices.Contains(c.opts.Vary, f) && !slices.Contains(named, f) {
			named = append(named, f)
		}
	}
	for _, l := range labels {
		f, ok := strings.CutSuffix(l, hintMark)
		if ok && slices.Contains(c.opts.Vary, f) && !slices.Contains(named, f) && !slices.Contains(hints, f) {
			hints = append(hints, f)
		}
	}
	slices.Sort(named) // the report's lists are sorted
	slices.Sort(hints)
	return named, hints, text, nil
}

func (c *checker) diffFiles(ctx context.Context, path string, control, variant *observation, vs policies.Settings) ([]string, string, error) {
	a, b := control.files[path], variant.files[path]
	if a == "" || b == "" {
		return nil, "", nil
	}
	opts := diff.Options{Labels: Labels(c.p.Base, vs), TimeRanges: TimeRanges(c.p.Base, vs), Matchers: checkMatchers(c.p.Base, vs)}
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

// Matchers are the shapes of difference that name the factors whose values
// differ between base and vs: reordered content for fileordering, moved
// addresses for aslr, a decimal comma for locale.
func Matchers(base, vs policies.Settings) []diff.Matcher {
	var ms []diff.Matcher
	for _, e := range policies.FactorEvidence(base, vs) {
		for _, k := range e.Matchers {
			ms = append(ms, diff.Matcher{Factor: e.Factor, Kind: diff.MatchKind(k)})
		}
	}
	return ms
}

// checkMatchers are the Matchers as a check reads them: the reorderings
// (fileordering's and locale's collation) name their factor with hintMark
// appended, since a nondeterministic artifact makes them by itself (a hash
// table iterated in random order: measured, the nondeterministic fixture was
// blamed on fileordering in its fourth check when they were taken as proof).
// The check builds a hinted factor first and weighs it more; only builds
// decide (check_stats.go).
func checkMatchers(base, vs policies.Settings) []diff.Matcher {
	ms := Matchers(base, vs)
	for i, m := range ms {
		if m.Kind == diff.MatchReorder || m.Kind == diff.MatchCollation {
			ms[i].Factor += hintMark
		}
	}
	return ms
}

// hintMark ends a diff label that suggests a factor without proving it:
// "fileordering?" in the evidence text.
const hintMark = "?"

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
