package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/policies"
)

// BisectOptions configure a bisection.
type BisectOptions struct {
	// Dir is a directory in the git work tree (or the git directory) to
	// bisect. Its work tree, index and HEAD are never written: each commit is
	// exported with git archive.
	Dir string
	// Good and Bad are revisions: Good reproduces, Bad does not; Bad must
	// descend from Good.
	Good, Bad string
	// Override applies the command line over each commit's config (nil: none).
	Override func(*Config)
	// ImageFromFlag allows an unpinned image name (given with --image).
	ImageFromFlag bool
	// Vary, when not empty, makes "bad" mean that builds with those factors
	// perturbed (Seed) and normalized builds are not all identical; empty
	// means that identical normalized builds disagree.
	Vary []string
	Seed uint64
	// Confidence is the probability that a commit whose output is one of two
	// at random shows a disagreement before it is called good; it sets how
	// many agreeing builds a good verdict needs (BuildsForConfidence).
	Confidence float64
	// Jobs is how many builds of one commit may run at once.
	Jobs int
	// CacheDir holds verdicts per commit and setting; empty: no cache.
	CacheDir string
	// Progress receives the step lines; nil discards them.
	Progress io.Writer
	// EvidenceLines bounds the structural diff of the first bad commit.
	EvidenceLines int
}

// BuildsForConfidence is the number of identical builds after which a commit is
// called good: the smallest k with 2^-(k-1) <= 1-confidence. A commit whose
// output is one of two at random (each build independently) shows k identical
// builds with probability 2^-(k-1) at most; 0.99 needs 8 builds, 0.9 five,
// 0.999 eleven.
func BuildsForConfidence(confidence float64) (int, error) {
	if math.IsNaN(confidence) || confidence <= 0 || confidence >= 1 {
		return 0, fmt.Errorf("%w: confidence %v must lie strictly between 0 and 1, such as 0.99", ErrConfig, confidence)
	}
	k := 2
	for math.Pow(2, -float64(k-1)) > 1-confidence+1e-12 {
		k++
	}
	return k, nil
}

// A Commit is one commit of the bisected range.
type Commit struct {
	Hash       string   `json:"hash"`
	Subject    string   `json:"subject"`
	Author     string   `json:"author"`
	AuthorDate string   `json:"author_date"`
	Files      []string `json:"files_changed"`
	// CommitTime is the committer time, the default SOURCE_DATE_EPOCH.
	CommitTime int64 `json:"commit_time"`
}

// A BisectBuild is one build of a bisection step.
type BisectBuild struct {
	// Kind is normalized or perturbed.
	Kind string `json:"kind"`
	// Artifacts maps artifact paths to sha256; empty when the build failed.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	Failed    string            `json:"failed,omitempty"`

	files map[string]string // artifact path → kept copy, this run only
	// inter are its cargo units, kept to localize the first bad commit;
	// interErr says why not.
	inter    *Intermediates
	interErr error
}

func (b *BisectBuild) sum() string {
	keys := slices.Sorted(maps.Keys(b.Artifacts))
	var s strings.Builder
	for _, k := range keys {
		s.WriteString(k + "\x00" + b.Artifacts[k] + "\n")
	}
	return s.String()
}

// Verdicts of a step.
const (
	Good = "good"
	Bad  = "bad"
	Skip = "skip"
)

// A BisectStep is one tested commit.
type BisectStep struct {
	Step    int            `json:"step"`
	Commit  string         `json:"commit"`
	Subject string         `json:"subject"`
	Builds  []*BisectBuild `json:"builds"`
	// Cached counts the builds reused from the verdict cache.
	Cached  int    `json:"cached_builds"`
	Verdict string `json:"verdict"`
	// Cause explains a bad verdict: nondeterministic (identical settings
	// disagree) or varies (perturbed and normalized builds disagree, each
	// kind agreeing with itself); for a skip, the build failure.
	Cause string `json:"cause,omitempty"`
}

// A BisectReport is the result of a bisection, written by --json.
type BisectReport struct {
	Good       string  `json:"good"`
	Bad        string  `json:"bad"`
	Commits    int     `json:"commits"`
	Confidence float64 `json:"confidence"`
	// BuildsForGood is how many identical builds make a good verdict.
	BuildsForGood int      `json:"builds_for_good"`
	Vary          []string `json:"vary"`
	Seed          uint64   `json:"seed"`
	Image         string   `json:"image"`
	// Status is found (FirstBad is the first bad commit), range (skipped
	// commits hide it: it is one of Range), or none (Bad is good).
	Status   string        `json:"status"`
	FirstBad *Commit       `json:"first_bad,omitempty"`
	Range    []Commit      `json:"range,omitempty"`
	Skipped  []string      `json:"skipped"`
	Steps    []*BisectStep `json:"steps"`
	Builds   int           `json:"builds"`
	Cause    string        `json:"cause,omitempty"`
	Evidence string        `json:"evidence,omitempty"`
	// EvidenceFactors are the --vary factors whose perturbed values appear
	// in the differing bytes of the evidence.
	EvidenceFactors []string `json:"evidence_factors,omitempty"`
	// Localization is where the two builds of the evidence first diverge:
	// the earliest differing cargo units and the chain to the artifact.
	Localization *Localization `json:"localization,omitempty"`
	// LocalizationError says why their intermediates could not be compared.
	LocalizationError string             `json:"localization_error,omitempty"`
	Timings           map[string]float64 `json:"timings_seconds,omitempty"`
}

// ---- the search itself, independent of git and builds ----

// search is the bisection state over commits[0..n-1], oldest first; the good
// revision is index -1 and the bad revision n-1.
type search struct {
	n          int
	lo, hi     int // last known good, first known (or assumed) bad
	hiVerified bool
	skipped    map[int]bool
}

func newSearch(n int) *search { return &search{n: n, lo: -1, hi: n - 1, skipped: map[int]bool{}} }

// next is the commit to test next, or -1 when the search is over. The bad
// revision is tested first: when it reproduces, nothing else needs building.
// Then the untested, unskipped commit nearest the middle of (lo, hi).
func (s *search) next() int {
	if !s.hiVerified {
		return s.n - 1
	}
	mid := s.lo + (s.hi-s.lo)/2
	best := -1
	for i := s.lo + 1; i < s.hi; i++ {
		if s.skipped[i] {
			continue
		}
		if best < 0 || abs(i-mid) < abs(best-mid) {
			best = i
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// record applies a verdict on commit i; done reports a finished search.
func (s *search) record(i int, verdict string) (done bool) {
	switch verdict {
	case Good:
		if i == s.n-1 {
			s.lo = i
			return true
		}
		s.lo = i
	case Bad:
		s.hi, s.hiVerified = i, true
	case Skip:
		s.skipped[i] = true
		if i == s.n-1 {
			return true
		}
	}
	return s.next() < 0
}

// estimate is the number of steps left: the bad revision when untested, then
// one per halving of the commits still in question.
func (s *search) estimate() int {
	left := 0
	cand := 0
	for i := s.lo + 1; i < s.hi; i++ {
		if !s.skipped[i] {
			cand++
		}
	}
	if !s.hiVerified {
		left++
		cand = s.n - 1
	}
	if cand > 0 {
		left += int(math.Ceil(math.Log2(float64(cand + 1))))
	}
	return left
}

// result is found, range or none, and the indices holding the first bad commit.
func (s *search) result() (string, []int) {
	if s.lo == s.n-1 {
		return "none", nil
	}
	var in []int
	for i := s.lo + 1; i < s.hi; i++ {
		if s.skipped[i] {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return "found", []int{s.hi}
	}
	return "range", append(in, s.hi)
}

// ---- verdicts from builds ----

// kindOf is the kind of the i-th build of a commit: all normalized, or with
// factors to vary normalized and perturbed in turn.
func kindOf(i int, vary bool) string {
	if vary && i%2 == 1 {
		return "perturbed"
	}
	return "normalized"
}

// decide is the verdict on a commit's builds so far, or "" when more builds
// are needed. k identical builds make good; one disagreement makes bad. A
// failed build makes skip (as git bisect skip): it decides nothing about
// reproducibility unless a disagreement was already seen. With vary, a
// disagreement between a normalized and a perturbed build is classified once
// two of each were built: varies when each kind agrees with itself, else
// nondeterministic.
func decide(builds []*BisectBuild, k int, vary bool) (verdict, cause string) {
	var ok []*BisectBuild
	var failed string
	for _, b := range builds {
		if b.Failed != "" {
			if failed == "" {
				failed = b.Failed
			}
			continue
		}
		ok = append(ok, b)
	}
	sums := map[string]map[string]bool{}
	for _, b := range ok {
		if sums[b.Kind] == nil {
			sums[b.Kind] = map[string]bool{}
		}
		sums[b.Kind][b.sum()] = true
	}
	all := map[string]bool{}
	for _, m := range sums {
		for s := range m {
			all[s] = true
		}
	}
	switch {
	case len(sums["normalized"]) > 1 || len(sums["perturbed"]) > 1:
		return Bad, "nondeterministic"
	case len(all) > 1:
		nn, np := 0, 0
		for _, b := range ok {
			if b.Kind == "perturbed" {
				np++
			} else {
				nn++
			}
		}
		if nn >= 2 && np >= 2 {
			return Bad, "varies"
		}
		if failed != "" {
			return Bad, "unclassified"
		}
		return "", ""
	case failed != "":
		return Skip, failed
	case len(ok) >= k:
		return Good, ""
	}
	return "", ""
}

// ---- git, read only ----

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_PAGER=cat", "GIT_OPTIONAL_LOCKS=0", "LC_ALL=C")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// ResolveCommit is the full hash of a revision of the repository holding dir.
func ResolveCommit(ctx context.Context, dir, rev string) (string, error) {
	return resolveCommit(ctx, dir, rev)
}

func resolveCommit(ctx context.Context, dir, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("%w: revision %q: give a commit, branch or tag", ErrConfig, rev)
	}
	out, err := git(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: %q is not a commit in %s (git rev-parse found nothing)", ErrConfig, rev, dir)
	}
	return strings.TrimSpace(out), nil
}

func commitInfo(ctx context.Context, dir, hash string) (Commit, error) {
	out, err := git(ctx, dir, "show", "-s", "--format=%H%x00%s%x00%an <%ae>%x00%aI%x00%ct", hash)
	if err != nil {
		return Commit{}, err
	}
	f := strings.Split(strings.TrimRight(out, "\n"), "\x00")
	if len(f) != 5 {
		return Commit{}, fmt.Errorf("runner: git show %s: unexpected output %q", hash, out)
	}
	ct, _ := strconv.ParseInt(f[4], 10, 64)
	c := Commit{Hash: f[0], Subject: f[1], Author: f[2], AuthorDate: f[3], CommitTime: ct}
	files, err := git(ctx, dir, "diff-tree", "-r", "--no-commit-id", "--name-only", "--root", "-m", "--first-parent", hash)
	if err != nil {
		return Commit{}, err
	}
	c.Files = []string{}
	for _, l := range strings.Split(files, "\n") {
		if l != "" && !slices.Contains(c.Files, l) {
			c.Files = append(c.Files, l)
		}
	}
	slices.Sort(c.Files)
	return c, nil
}

// exportCommit writes the tree of a commit to dst (which exists) with git
// archive: only the object store is read.
func exportCommit(ctx context.Context, dir, hash, dst string) error {
	archive := exec.CommandContext(ctx, "git", "-C", dir, "archive", "--format=tar", hash)
	archive.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	untar := exec.CommandContext(ctx, "tar", "-x", "--no-same-owner", "-C", dst)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var e1, e2 bytes.Buffer
	archive.Stderr, untar.Stderr = &e1, &e2
	if err := untar.Start(); err != nil {
		return fmt.Errorf("runner: export %s: %w", hash, err)
	}
	errA := archive.Run()
	errT := untar.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errA != nil || errT != nil {
		return fmt.Errorf("runner: export %s with git archive: %v %v: %s %s", hash, errA, errT, e1.String(), e2.String())
	}
	return nil
}

// commitConfig reads reprobox.toml of a commit without exporting it.
func commitConfig(ctx context.Context, dir, hash string) (Config, bool, error) {
	out, err := git(ctx, dir, "show", hash+":"+ConfigFile)
	if err != nil {
		if ctx.Err() != nil {
			return Config{}, false, err
		}
		return Config{}, false, nil
	}
	cfg, err := parseConfig(hash[:12]+":"+ConfigFile, []byte(out))
	return cfg, true, err
}

// ---- the bisection ----

// A bisection holds what every step shares.
type bisection struct {
	r       *Runner
	opts    BisectOptions
	k       int
	commits []Commit
	badCfg  Config
	tmp     string // exports and kept artifacts, removed at the end
	builds  int
	image   string

	// test decides one commit and explain finds the evidence for the first
	// bad one; tests replace both.
	test    func(ctx context.Context, c Commit, step *BisectStep) error
	explain func(ctx context.Context, rep *BisectReport, c Commit) error

	mu sync.Mutex // guards builds, interKept and keepers
	// interKept marks the (keep dir, kind, artifacts) whose intermediates
	// are kept: one build of each is enough to compare.
	interKept map[string]bool
	keepers   map[string]*keeper
	// lastBad holds the plan and the builds of the latest bad verdict of
	// this run, for the evidence.
	lastBad *badEvidence
}

type badEvidence struct {
	commit string
	base   policies.Settings
	vs     policies.Settings
	builds []*BisectBuild
}

// Bisect finds the first commit in (Good, Bad] whose output is not
// reproducible, building each tested commit from a pristine export.
func (r *Runner) Bisect(ctx context.Context, opts BisectOptions) (*BisectReport, error) {
	k, err := BuildsForConfidence(opts.Confidence)
	if err != nil {
		return nil, err
	}
	if opts.Jobs < 1 {
		opts.Jobs = 1
	}
	if opts.EvidenceLines == 0 {
		opts.EvidenceLines = 40
	}
	if err := r.checkVary(opts.Vary); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if _, err := git(ctx, dir, "rev-parse", "--git-dir"); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s is not in a git repository: bisect needs one", ErrConfig, dir)
	}
	good, err := resolveCommit(ctx, dir, opts.Good)
	if err != nil {
		return nil, fmt.Errorf("--good: %w", err)
	}
	bad, err := resolveCommit(ctx, dir, opts.Bad)
	if err != nil {
		return nil, fmt.Errorf("--bad: %w", err)
	}
	if _, err := git(ctx, dir, "merge-base", "--is-ancestor", good, bad); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: --good %s is not an ancestor of --bad %s", ErrConfig, opts.Good, opts.Bad)
	}
	list, err := git(ctx, dir, "rev-list", "--reverse", "--first-parent", good+".."+bad)
	if err != nil {
		return nil, err
	}
	hashes := strings.Fields(list)
	if len(hashes) == 0 {
		return nil, fmt.Errorf("%w: no commit between --good %s and --bad %s", ErrConfig, opts.Good, opts.Bad)
	}
	if err := os.MkdirAll(r.WorkDir, 0o711); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	tmp, err := os.MkdirTemp(r.WorkDir, "bisect-")
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := markOwned(tmp); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	b := &bisection{r: r, opts: opts, k: k, tmp: tmp}
	for _, h := range hashes {
		c, err := commitInfo(ctx, dir, h)
		if err != nil {
			return nil, err
		}
		b.commits = append(b.commits, c)
	}
	b.badCfg, _, err = commitConfig(ctx, dir, bad)
	if err != nil {
		return nil, err
	}
	b.test, b.explain = b.testCommit, b.evidence
	rep, err := b.run(ctx, good, bad)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func (b *bisection) progress(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, "reprobox: "+format+"\n", args...)
	}
}

func (b *bisection) run(ctx context.Context, good, bad string) (*BisectReport, error) {
	rep := &BisectReport{
		Good: good, Bad: bad, Commits: len(b.commits), Confidence: b.opts.Confidence, BuildsForGood: b.k,
		Vary: slices.Clone(b.opts.Vary), Seed: b.opts.Seed, Skipped: []string{}, Steps: []*BisectStep{},
	}
	if rep.Vary == nil {
		rep.Vary = []string{}
	}
	if len(b.opts.Vary) == 0 {
		rep.Seed = 0
	}
	s := newSearch(len(b.commits))
	what := "identical normalized builds disagree"
	if len(b.opts.Vary) > 0 {
		what = "builds with " + strings.Join(b.opts.Vary, ",") + " perturbed differ from normalized builds (or from each other)"
	}
	b.progress("bisecting %d commits after %s up to %s; bad means %s; good takes %d identical builds (confidence %v)",
		len(b.commits), short(good), short(bad), what, b.k, b.opts.Confidence)
	for i := s.next(); i >= 0; i = s.next() {
		c := b.commits[i]
		step := &BisectStep{Step: len(rep.Steps) + 1, Commit: c.Hash, Subject: c.Subject, Builds: []*BisectBuild{}}
		rangeLo := good
		if s.lo >= 0 {
			rangeLo = b.commits[s.lo].Hash
		}
		b.progress("step %d: testing %s %q (range %s..%s, %d commit(s) in question, about %d step(s) left)",
			step.Step, short(c.Hash), c.Subject, short(rangeLo), short(b.commits[s.hi].Hash), s.hi-s.lo, s.estimate())
		if err := b.test(ctx, c, step); err != nil {
			return nil, err
		}
		rep.Steps = append(rep.Steps, step)
		note := ""
		if step.Cause != "" {
			note = " (" + step.Cause + ")"
		}
		b.progress("step %d: %s is %s%s after %d build(s), %d from the cache", step.Step, short(c.Hash), strings.ToUpper(step.Verdict), note, len(step.Builds), step.Cached)
		if step.Verdict == Skip {
			rep.Skipped = append(rep.Skipped, c.Hash)
			if i == len(b.commits)-1 {
				return nil, fmt.Errorf("%w: --bad %s does not build (%s): give a --bad that builds and shows the problem", ErrConfig, short(c.Hash), step.Cause)
			}
		}
		if s.record(i, step.Verdict) {
			break
		}
	}
	rep.Builds = b.builds
	status, idx := s.result()
	rep.Status = status
	switch status {
	case "found":
		c := b.commits[idx[0]]
		rep.FirstBad = &c
		for _, st := range rep.Steps {
			if st.Commit == c.Hash {
				rep.Cause = st.Cause
			}
		}
		if err := b.explain(ctx, rep, c); err != nil {
			return nil, err
		}
	case "range":
		for _, i := range idx {
			rep.Range = append(rep.Range, b.commits[i])
		}
	}
	slices.Sort(rep.Skipped)
	rep.Builds, rep.Image = b.builds, b.image
	return rep, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// prepare exports a commit and makes its plan. The caller closes the plan and
// removes the export.
func (b *bisection) prepare(ctx context.Context, c Commit) (*Plan, string, error) {
	export, err := os.MkdirTemp(b.tmp, "src-")
	if err != nil {
		return nil, "", fmt.Errorf("runner: %w", err)
	}
	if err := exportCommit(ctx, b.opts.Dir, c.Hash, export); err != nil {
		os.RemoveAll(export)
		return nil, "", err
	}
	cfg, found, err := LoadConfig(export)
	if err != nil {
		os.RemoveAll(export)
		return nil, "", fmt.Errorf("commit %s: %w", short(c.Hash), err)
	}
	if !found {
		cfg = b.badCfg
		cfg.Env = maps.Clone(b.badCfg.Env)
	}
	if b.opts.Override != nil {
		b.opts.Override(&cfg)
	}
	from := ""
	if cfg.SourceDateEpoch == nil {
		t := c.CommitTime
		cfg.SourceDateEpoch, from = &t, "git"
	}
	p, err := b.r.NewPlan(ctx, export, cfg, b.opts.ImageFromFlag, "")
	if err != nil {
		os.RemoveAll(export)
		return nil, "", fmt.Errorf("commit %s: %w", short(c.Hash), err)
	}
	if from != "" {
		p.SourceDateEpochFrom = from
	}
	b.image = p.Image.Digest.String()
	return p, export, nil
}

// cacheKey identifies a commit's builds: what goes into them and what is
// compared.
func (b *bisection) cacheKey(c Commit, p *Plan) string {
	vs := policies.Perturb(p.Base, b.opts.Vary, b.opts.Seed)
	data, _ := json.Marshal(map[string]any{
		"commit": c.Hash, "image": p.Image.Digest.String(), "command": p.Config.Command,
		"artifacts": p.Config.Artifacts, "base": p.Base, "perturbed": vs, "vary": b.opts.Vary,
		"exclude": p.Config.Exclude, "timeout": p.Config.Timeout,
	})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

type cacheEntry struct {
	Commit string         `json:"commit"`
	Builds []*BisectBuild `json:"builds"`
}

func (b *bisection) loadCache(key string) []*BisectBuild {
	if b.opts.CacheDir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(b.opts.CacheDir, key+".json"))
	if err != nil {
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil {
		return nil
	}
	for _, bb := range e.Builds {
		if bb == nil || (bb.Kind != "normalized" && bb.Kind != "perturbed") {
			return nil // not ours: ignore it rather than trust it
		}
	}
	return e.Builds
}

func (b *bisection) saveCache(key, commit string, builds []*BisectBuild) error {
	if b.opts.CacheDir == "" {
		return nil
	}
	if err := os.MkdirAll(b.opts.CacheDir, 0o755); err != nil {
		return fmt.Errorf("runner: bisect cache: %w", err)
	}
	data, err := jsonout.Marshal(cacheEntry{Commit: commit, Builds: builds})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(b.opts.CacheDir, key+".json"), data, 0o644); err != nil {
		return fmt.Errorf("runner: bisect cache: %w", err)
	}
	return nil
}

// testCommit decides one commit: cached builds first, then fresh builds until
// decide has a verdict.
func (b *bisection) testCommit(ctx context.Context, c Commit, step *BisectStep) error {
	p, export, err := b.prepare(ctx, c)
	if err != nil {
		return err
	}
	defer os.RemoveAll(export)
	defer p.Close()
	key := b.cacheKey(c, p)
	cached := b.loadCache(key)
	step.Builds, step.Cached = cached, len(cached)
	if step.Builds == nil {
		step.Builds = []*BisectBuild{}
	}
	vs := policies.Perturb(p.Base, b.opts.Vary, b.opts.Seed)
	keep := filepath.Join(b.tmp, "kept-"+short(c.Hash))
	err = b.buildUntil(ctx, c, p, vs, step, keep, func() error { return b.saveCache(key, c.Hash, step.Builds) })
	if err != nil {
		return err
	}
	if step.Verdict == Bad {
		if b.lastBad != nil {
			os.RemoveAll(filepath.Join(b.tmp, "kept-"+short(b.lastBad.commit)))
		}
		b.lastBad = &badEvidence{commit: c.Hash, base: p.Base, vs: vs, builds: step.Builds}
	} else {
		os.RemoveAll(keep)
	}
	return nil
}

// buildUntil builds the commit in batches of up to Jobs until decide has a
// verdict; a batch is cancelled as soon as one of its builds settles it.
func (b *bisection) buildUntil(ctx context.Context, c Commit, p *Plan, vs policies.Settings, step *BisectStep, keep string, saved func() error) error {
	vary := len(b.opts.Vary) > 0
	limit := 4 * b.k // a commit never needs more, whatever its builds do
	for {
		if v, cause := decide(step.Builds, b.k, vary); v != "" {
			step.Verdict, step.Cause = v, cause
			return nil
		}
		if len(step.Builds) >= limit {
			step.Verdict, step.Cause = Skip, fmt.Sprintf("no verdict after %d builds", limit)
			return nil
		}
		n := min(b.opts.Jobs, max(1, b.k-len(step.Builds)))
		bctx, cancel := context.WithCancelCause(ctx)
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			errs []error
			done = map[int]*BisectBuild{}
		)
		start := len(step.Builds)
		for j := 0; j < n; j++ {
			// The kind follows the position among the builds kept; a batch
			// cut short may leave the alternation uneven, which decide
			// does not mind.
			idx := start + j
			wg.Add(1)
			go func() {
				defer wg.Done()
				bb, err := b.buildOne(bctx, c, p, vs, idx, keep)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if bctx.Err() == nil || ctx.Err() != nil {
						errs = append(errs, err)
						cancel(err)
					}
					return
				}
				done[idx] = bb
				// Settled already? Stop the rest of the batch.
				var sofar []*BisectBuild
				sofar = append(sofar, step.Builds...)
				for _, i := range slices.Sorted(maps.Keys(done)) {
					sofar = append(sofar, done[i])
				}
				if v, _ := decide(sofar, b.k, vary); v == Bad {
					cancel(errSettled)
				}
			}()
		}
		wg.Wait()
		cancel(nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		for _, i := range slices.Sorted(maps.Keys(done)) {
			step.Builds = append(step.Builds, done[i])
		}
		if err := saved(); err != nil {
			return err
		}
	}
}

var errSettled = errors.New("the verdict is settled")

// buildOne runs build number idx of a commit (its kind from idx) and keeps
// its artifacts under keep/idx.
func (b *bisection) buildOne(ctx context.Context, c Commit, p *Plan, vs policies.Settings, idx int, keep string) (*BisectBuild, error) {
	kind := kindOf(idx, len(b.opts.Vary) > 0)
	s := p.Base
	if kind == "perturbed" {
		s = vs
	}
	b.mu.Lock()
	b.builds++
	n := b.builds
	b.mu.Unlock()
	start := b.r.now()
	bb := &BisectBuild{Kind: kind}
	// The intermediates are kept from the build's tree, before the backend
	// removes it.
	o, err := b.r.build(ctx, p, s, nil, func(ctx context.Context, o *Outcome) {
		bb.Artifacts = map[string]string{}
		for _, a := range o.Artifacts {
			bb.Artifacts[a.Path] = a.SHA256
		}
		b.keepIntermediates(ctx, o, keep, bb)
	})
	if err != nil {
		return nil, err
	}
	defer o.Remove()
	if !o.OK() {
		bb.Failed = o.Failure()
		tailLog, _ := os.ReadFile(o.Log)
		b.progress("build %d (%s, %s): FAILED: %s\n%s", n, short(c.Hash), kind, bb.Failed, lastLines(tailLog, 8))
		return bb, nil
	}
	bb.Artifacts, bb.files = map[string]string{}, map[string]string{}
	dir := filepath.Join(keep, strconv.Itoa(idx))
	for _, a := range o.Artifacts {
		dst := filepath.Join(dir, filepath.FromSlash(a.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(a.File, dst, 0o755); err != nil {
			return nil, fmt.Errorf("runner: keep artifact %s: %w", a.Path, err)
		}
		bb.Artifacts[a.Path], bb.files[a.Path] = a.SHA256, dst
	}
	sums := slices.Sorted(maps.Values(bb.Artifacts))
	for i := range sums {
		sums[i] = sums[i][:12]
	}
	b.progress("build %d (%s, %s): ok in %.1fs, sha256 %s", n, short(c.Hash), kind, b.r.now().Sub(start).Seconds(), strings.Join(sums, " "))
	return bb, nil
}

// keepIntermediates keeps a successful build's cargo units under keep
// (linked, not copied, where the file system allows) before its directory is
// removed, to localize the first bad commit. Only the first build of each
// kind and result is kept: later ones would be compared the same way.
func (b *bisection) keepIntermediates(ctx context.Context, o *Outcome, keep string, bb *BisectBuild) {
	key := keep + "\x00" + bb.Kind + "\x00" + bb.sum()
	b.mu.Lock()
	if b.interKept[key] {
		b.mu.Unlock()
		return
	}
	if b.interKept == nil {
		b.interKept, b.keepers = map[string]bool{}, map[string]*keeper{}
	}
	b.interKept[key] = true
	k := b.keepers[keep]
	if k == nil {
		k = newKeeper(filepath.Join(keep, "intermediates"))
		b.keepers[keep] = k
	}
	b.mu.Unlock()
	bb.inter, bb.interErr = scanIntermediates(ctx, o.treeDir(), k)
	if bb.interErr != nil && ctx.Err() != nil {
		// Cut short (the verdict settled elsewhere): not a failure, and
		// another build of this kind and result may keep its units.
		bb.interErr = nil
		b.mu.Lock()
		delete(b.interKept, key)
		b.mu.Unlock()
	}
}

// localize finds where builds x and y of the evidence first diverge,
// comparing builds of the same kind and result whose intermediates were kept.
func (b *bisection) localize(ctx context.Context, rep *BisectReport, ev *badEvidence, x, y *BisectBuild, vs policies.Settings) error {
	x, y = withIntermediates(ev.builds, x), withIntermediates(ev.builds, y)
	if x.inter == nil || y.inter == nil {
		for _, err := range []error{x.interErr, y.interErr} {
			if err != nil && !errors.Is(err, ErrNoIntermediates) {
				rep.LocalizationError = err.Error()
			}
		}
		return nil
	}
	opts := LocalizeOptions{Labels: Labels(ev.base, vs), TimeRanges: TimeRanges(ev.base, vs), Matchers: Matchers(ev.base, vs), EvidenceLines: max(b.opts.EvidenceLines/2, 4)}
	for _, path := range slices.Sorted(maps.Keys(x.Artifacts)) {
		if x.Artifacts[path] != y.Artifacts[path] {
			opts.ArtifactA, opts.ArtifactB = x.Artifacts[path], y.Artifacts[path]
			break
		}
	}
	l, err := LocalizeIntermediates(ctx, x.inter, y.inter, opts)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		rep.LocalizationError = err.Error()
		return nil
	}
	rep.Localization = l
	return nil
}

// withIntermediates returns bb, or a build of the same kind and result whose
// intermediates were kept.
func withIntermediates(bs []*BisectBuild, bb *BisectBuild) *BisectBuild {
	if bb.inter != nil {
		return bb
	}
	for _, o := range bs {
		if o.inter != nil && o.Kind == bb.Kind && o.Failed == "" && o.sum() == bb.sum() {
			return o
		}
	}
	return bb
}

// evidence diffs two disagreeing builds of the first bad commit. When this
// run did not build them (the verdict came from the cache), it rebuilds the
// commit until two builds disagree.
func (b *bisection) evidence(ctx context.Context, rep *BisectReport, c Commit) error {
	ev := b.lastBad
	if ev == nil || ev.commit != c.Hash || !hasFiles(ev.builds) {
		b.progress("rebuilding %s for the evidence (its verdict came from the cache)", short(c.Hash))
		p, export, err := b.prepare(ctx, c)
		if err != nil {
			return err
		}
		defer os.RemoveAll(export)
		defer p.Close()
		vs := policies.Perturb(p.Base, b.opts.Vary, b.opts.Seed)
		step := &BisectStep{}
		keep := filepath.Join(b.tmp, "evidence")
		if err := b.buildUntil(ctx, c, p, vs, step, keep, func() error { return nil }); err != nil {
			return err
		}
		if step.Verdict != Bad {
			rep.Evidence = fmt.Sprintf("the rebuilds gave no disagreement this time (%d builds: %s)\n", len(step.Builds), step.Verdict)
			return nil
		}
		ev = &badEvidence{commit: c.Hash, base: p.Base, vs: vs, builds: step.Builds}
	}
	x, y := pickPair(ev.builds)
	if x == nil {
		return nil
	}
	// A varies verdict compares a normalized and a perturbed build, labelled
	// with the perturbed values; a nondeterministic one two builds of one kind.
	vs := ev.base
	if x.Kind != y.Kind {
		vs = ev.vs
	}
	var text strings.Builder
	for _, path := range slices.Sorted(maps.Keys(x.Artifacts)) {
		if x.Artifacts[path] == y.Artifacts[path] || x.files[path] == "" || y.files[path] == "" {
			continue
		}
		opts := diff.Options{Labels: Labels(ev.base, vs), TimeRanges: TimeRanges(ev.base, vs), Matchers: Matchers(ev.base, vs)}
		d, err := diff.Files(ctx, x.files[path], y.files[path], opts)
		if err != nil {
			return fmt.Errorf("runner: diff %s: %w", path, err)
		}
		fmt.Fprintf(&text, "%s: %s build %s vs %s build %s\n", path, x.Kind, short(x.Artifacts[path]), y.Kind, short(y.Artifacts[path]))
		if f := d.Factors(); len(f) > 0 {
			// The differences that hold perturbed values come first: in a
			// large diff they are the ones that explain it.
			fmt.Fprintf(&text, "perturbed values found in the differing bytes: %s\n", strings.Join(f, ", "))
			shown := 0
			d.Walk(func(n *diff.Node, _ int) bool {
				if len(n.Labels) == 0 || shown >= 5 {
					return shown < 5
				}
				shown++
				fmt.Fprintf(&text, "  %s  [%s] %s  {%s}\n", n.Path, n.Format, n.Summary, strings.Join(n.Labels, ", "))
				for _, l := range n.Details[:min(len(n.Details), 6)] {
					fmt.Fprintf(&text, "    │ %s\n", l)
				}
				return true
			})
			for _, name := range f {
				if !slices.Contains(rep.EvidenceFactors, name) {
					rep.EvidenceFactors = append(rep.EvidenceFactors, name)
				}
			}
			slices.Sort(rep.EvidenceFactors)
			text.WriteString("the whole structural diff:\n")
		}
		if err := d.WriteText(&text, b.opts.EvidenceLines); err != nil {
			return err
		}
	}
	rep.Evidence = text.String()
	return b.localize(ctx, rep, ev, x, y, vs)
}

func hasFiles(bs []*BisectBuild) bool {
	for _, b := range bs {
		if len(b.files) > 0 {
			return true
		}
	}
	return false
}

// pickPair returns two successful builds with kept files whose artifacts
// differ, preferring a normalized and a perturbed one when such a pair exists.
func pickPair(bs []*BisectBuild) (*BisectBuild, *BisectBuild) {
	var fx, fy *BisectBuild
	for i, x := range bs {
		for _, y := range bs[i+1:] {
			if x.Failed != "" || y.Failed != "" || len(x.files) == 0 || len(y.files) == 0 || x.sum() == y.sum() {
				continue
			}
			if x.Kind != y.Kind {
				return x, y
			}
			if fx == nil {
				fx, fy = x, y
			}
		}
	}
	return fx, fy
}

// A BisectSession is what --resume restores: the range and the settings of
// the last bisection of a repository.
type BisectSession struct {
	Good       string   `json:"good"`
	Bad        string   `json:"bad"`
	Vary       []string `json:"vary"`
	Seed       uint64   `json:"seed"`
	Confidence float64  `json:"confidence"`
}

func sessionPath(cacheDir, repo string) (string, error) {
	abs, err := filepath.Abs(repo)
	if err != nil {
		return "", err
	}
	top, err := git(context.Background(), abs, "rev-parse", "--absolute-git-dir")
	if err != nil {
		return "", fmt.Errorf("%w: %s is not in a git repository", ErrConfig, repo)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(top)))
	return filepath.Join(cacheDir, "sessions", hex.EncodeToString(sum[:8])+".json"), nil
}

// SaveBisectSession records a bisection's settings for --resume.
func SaveBisectSession(cacheDir, repo string, s BisectSession) error {
	path, err := sessionPath(cacheDir, repo)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := jsonout.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// LoadBisectSession reads the settings of the last bisection of a repository.
func LoadBisectSession(cacheDir, repo string) (BisectSession, error) {
	var s BisectSession
	path, err := sessionPath(cacheDir, repo)
	if err != nil {
		return s, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("%w: --resume: no earlier bisection of %s is recorded; start one with --good and --bad", ErrConfig, repo)
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%w: --resume: %s is damaged (%v); start again with --good and --bad", ErrConfig, path, err)
	}
	return s, nil
}
