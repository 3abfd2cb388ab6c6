package runner

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/reprobox/reprobox/policies"
)

// model says what hash one build of an artifact gives with set perturbed; k
// counts the earlier builds of the same set, for models that vary between
// builds (it does not depend on the order in which parallel builds run).
type model func(set []string, k int) string

// fake is a check run with builds simulated by a model.
type fake struct {
	m        model
	evidence []string // factors the diff names when the artifact differs
	hints    []string // factors it hints at (a reordering), the same way
	failing  []string // factors whose perturbation breaks the build
	jobs     int
	vary     []string
	bound    float64
	max      int
}

func (f fake) run() (*CheckReport, error) {
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	vary := f.vary
	if vary == nil {
		vary = policies.Names()
	}
	opts := CheckOptions{Vary: vary, Seed: 1, Jobs: max(f.jobs, 2), Bound: f.bound, MaxBuilds: f.max}
	c := newChecker(&Runner{}, p, opts, "")
	var mu sync.Mutex
	seen := map[string]int{}
	c.make = func(_ context.Context, n int, set []string) (*observation, error) {
		mu.Lock()
		defer mu.Unlock()
		k := seen[setKey(set)]
		seen[setKey(set)]++
		for _, f := range f.failing {
			if slices.Contains(set, f) {
				return &observation{hashes: map[string]string{}, failed: "the build exited with status 101"}, nil
			}
		}
		return &observation{hashes: map[string]string{"bin": f.m(set, k)}, files: map[string]string{}}, nil
	}
	c.diff = func(_ context.Context, _ string, _, b *observation, _ policies.Settings) ([]string, string, error) {
		var named []string
		for _, e := range f.evidence {
			if slices.Contains(b.set, e) {
				named = append(named, e)
			}
		}
		for _, e := range f.hints {
			if slices.Contains(b.set, e) {
				named = append(named, e+hintMark)
			}
		}
		return named, "diff of " + setKey(b.set) + "\n", nil
	}
	return c.run(context.Background())
}

func fakeCheck(t *testing.T, f fake) *CheckReport {
	t.Helper()
	rep, err := f.run()
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sensitive is a deterministic artifact whose output changes with each of
// factors alone.
func sensitive(factors ...string) model {
	return func(set []string, _ int) string {
		var hit []string
		for _, f := range factors {
			if slices.Contains(set, f) {
				hit = append(hit, f)
			}
		}
		return "h" + strings.Join(hit, "+")
	}
}

// random is an artifact whose output is one of m at random in every build,
// drawn from the seed, the set and the build's rank among that set's builds.
func random(seed uint64, m int) model {
	return func(set []string, k int) string {
		h := fnv.New64a()
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		binary.LittleEndian.PutUint64(b[8:], uint64(k))
		h.Write(b[:])
		h.Write([]byte(setKey(set)))
		// fnv's low bits mix poorly: fold the high ones in.
		x := h.Sum64()
		x ^= x >> 29
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 32
		return "r" + strconv.FormatUint(x%uint64(m), 10)
	}
}

func TestCheckOneCulpritWithEvidence(t *testing.T) {
	for _, f := range policies.Names() {
		t.Run(f, func(t *testing.T) {
			rep := fakeCheck(t, fake{m: sensitive(f), evidence: []string{f}})
			if got := rep.Culprits; !slices.Equal(got, []string{f}) {
				t.Fatalf("culprits %v, want [%s]", got, f)
			}
			if rep.Builds > 5 {
				t.Errorf("%d builds, budget 5 when the evidence names the culprit", rep.Builds)
			}
			a := rep.Artifacts[0]
			if rep.Reproducible || rep.Nondeterministic || a.NondeterministicChance != 0 {
				t.Errorf("reproducible=%v nondeterministic=%v chance %g", rep.Reproducible, rep.Nondeterministic, a.NondeterministicChance)
			}
			if a.CulpritSHA256[f] != "h"+f || a.EvidenceSHA256 != "h"+f || !slices.Equal(a.EvidenceSet, []string{f}) {
				t.Errorf("culprit hash %q, evidence from %v (%q)", a.CulpritSHA256[f], a.EvidenceSet, a.EvidenceSHA256)
			}
		})
	}
}

func TestCheckOneCulpritWithoutEvidence(t *testing.T) {
	worst := 0
	for _, f := range policies.Names() {
		t.Run(f, func(t *testing.T) {
			rep := fakeCheck(t, fake{m: sensitive(f)})
			if got := rep.Culprits; !slices.Equal(got, []string{f}) {
				t.Fatalf("culprits %v, want [%s]", got, f)
			}
			if c := rep.Artifacts[0].NondeterministicChance; c > DefaultBound || c <= 0 {
				t.Errorf("chance %g, bound %g", c, DefaultBound)
			}
			worst = max(worst, rep.Builds)
		})
	}
	t.Logf("worst case without evidence: %d builds", worst)
}

func TestCheckTwoCulprits(t *testing.T) {
	names := policies.Names()
	for i, a := range names {
		b := names[(i+5)%len(names)]
		want := []string{a, b}
		slices.Sort(want)
		for _, ev := range [][]string{{a, b}, nil} {
			t.Run(a+","+b+fmt.Sprint(len(ev)), func(t *testing.T) {
				rep := fakeCheck(t, fake{m: sensitive(a, b), evidence: ev})
				if !slices.Equal(rep.Culprits, want) {
					t.Fatalf("culprits %v, want %v", rep.Culprits, want)
				}
				budget := 14 // issue 16's budget for two culprits (check_sim_test.go)
				if ev != nil {
					budget = 5
				}
				if rep.Builds > budget {
					t.Errorf("%d builds, budget %d", rep.Builds, budget)
				}
			})
		}
	}
}

func TestCheckInteraction(t *testing.T) {
	// Only the combination of user and umask changes the output (a tar of
	// files whose group-write bit only matters when the owner differs).
	m := func(set []string, _ int) string {
		if slices.Contains(set, "user") && slices.Contains(set, "umask") {
			return "both"
		}
		return "same"
	}
	rep := fakeCheck(t, fake{m: m})
	if !slices.Equal(rep.Culprits, []string{"umask+user"}) {
		t.Fatalf("culprits %v, want [umask+user]", rep.Culprits)
	}
}

// A culprit whose effect depends on another: build_path changes the output,
// and time changes it further only when build_path is perturbed.
func TestCheckDependentCulprit(t *testing.T) {
	m := func(set []string, _ int) string {
		h := "base"
		if slices.Contains(set, "build_path") {
			h = "path"
			if slices.Contains(set, "time") {
				h = "path+time"
			}
		}
		return h
	}
	rep := fakeCheck(t, fake{m: m, evidence: []string{"build_path"}})
	if !slices.Equal(rep.Culprits, []string{"build_path", "build_path+time"}) || rep.Nondeterministic {
		t.Fatalf("culprits %v, nondeterministic %v", rep.Culprits, rep.Nondeterministic)
	}
}

// A culprit that acts only on top of another, for pairs across the factor
// order and without evidence: builds that held neither and gave the
// control's bytes clear factors for the second search, which must fall back
// to the whole when the second culprit was among them.
func TestCheckDependentCulpritEveryPair(t *testing.T) {
	names := policies.Names()
	worst := 0
	for i, a := range names {
		for _, d := range []int{1, 3, 8} {
			b := names[(i+d)%len(names)]
			m := func(set []string, _ int) string {
				h := "base"
				if slices.Contains(set, a) {
					h = "a"
					if slices.Contains(set, b) {
						h = "a+b"
					}
				}
				return h
			}
			rep := fakeCheck(t, fake{m: m})
			want := []string{a, groupName([]string{a, b})}
			slices.Sort(want)
			if !slices.Equal(rep.Culprits, want) || rep.Nondeterministic {
				t.Errorf("%s, %s on top: culprits %v, nondeterministic %v", a, b, rep.Culprits, rep.Nondeterministic)
			}
			worst = max(worst, rep.Builds)
		}
	}
	t.Logf("worst case: %d builds", worst)
}

// The ripgrep case: the evidence names build_path, but the variant and the
// build_path build differ from the control in different ways because a
// build script's randomly seeded table differs too. The check must find out
// that this is nondeterminism, and blame nothing.
func TestCheckCulpritAndNondeterminism(t *testing.T) {
	for seed := range uint64(200) {
		r := random(seed, 1<<20)
		m := func(set []string, k int) string {
			h := "table" + r(set, k)
			if slices.Contains(set, "build_path") {
				h += "+path"
			}
			return h
		}
		rep := fakeCheck(t, fake{m: m, evidence: []string{"build_path"}})
		if !rep.Nondeterministic || len(rep.Culprits) > 0 {
			t.Fatalf("seed %d: nondeterministic %v, culprits %v", seed, rep.Nondeterministic, rep.Culprits)
		}
		if !slices.Equal(rep.Artifacts[0].EvidenceFactors, []string{"build_path"}) {
			t.Fatalf("evidence %v", rep.Artifacts[0].EvidenceFactors)
		}
	}
}

func TestCheckReproducible(t *testing.T) {
	rep := fakeCheck(t, fake{m: sensitive()})
	if !rep.Reproducible || rep.Nondeterministic || len(rep.Culprits) != 0 {
		t.Fatalf("got %+v", rep)
	}
	if rep.Builds != 11 {
		t.Errorf("%d builds, want 11 (2^-10 is within the bound)", rep.Builds)
	}
	if rep.Repeats != 9 {
		t.Errorf("%d repeats, want 9 (of 11 builds of 2 sets)", rep.Repeats)
	}
	// A looser bound costs fewer builds.
	if rep := fakeCheck(t, fake{m: sensitive(), bound: 0.1}); !rep.Reproducible || rep.Builds != 5 {
		t.Errorf("bound 0.1: reproducible %v in %d builds, want 5", rep.Reproducible, rep.Builds)
	}
}

func TestCheckMaxBuilds(t *testing.T) {
	rep := fakeCheck(t, fake{m: sensitive("umask"), max: 7})
	if rep.Builds > 7 || !rep.Undecided || rep.Reproducible || len(rep.Culprits) != 0 {
		t.Fatalf("builds %d undecided %v reproducible %v culprits %v", rep.Builds, rep.Undecided, rep.Reproducible, rep.Culprits)
	}
	a := rep.Artifacts[0]
	if !a.Undecided || !slices.Equal(a.Hypothesis, []string{"umask"}) || a.NondeterministicChance <= DefaultBound {
		t.Errorf("artifact %+v", a)
	}
	// Reached exactly as the verdict is: decided.
	full := fakeCheck(t, fake{m: sensitive("umask")})
	if rep := fakeCheck(t, fake{m: sensitive("umask"), max: full.Builds}); rep.Undecided || !slices.Equal(rep.Culprits, []string{"umask"}) {
		t.Errorf("cap %d: undecided %v culprits %v", full.Builds, rep.Undecided, rep.Culprits)
	}
}

func TestCheckBuildFailsUnderFactor(t *testing.T) {
	rep := fakeCheck(t, fake{m: sensitive(), failing: []string{"locale"}})
	if !slices.Equal(rep.Culprits, []string{"locale"}) || rep.BuildFailures["locale"] == "" {
		t.Fatalf("culprits %v, failures %v", rep.Culprits, rep.BuildFailures)
	}
}

func TestCheckASLRFreshEveryBuild(t *testing.T) {
	// With ASLR on the output is different in every build; off it is fixed.
	// That is a culprit (aslr) under which the artifact is random, not
	// nondeterminism of the normalized build.
	n := 0
	m := func(set []string, _ int) string {
		if slices.Contains(set, "aslr") {
			n++
			return fmt.Sprint("addr", n)
		}
		return "fixed"
	}
	for _, ev := range [][]string{nil, {"aslr"}} {
		rep := fakeCheck(t, fake{m: m, jobs: 1, evidence: ev})
		a := rep.Artifacts[0]
		if !slices.Equal(rep.Culprits, []string{"aslr"}) || rep.Nondeterministic || !slices.Equal(a.RandomUnder, []string{"aslr"}) {
			t.Fatalf("evidence %v: culprits %v nondeterministic %v random under %v", ev, rep.Culprits, rep.Nondeterministic, a.RandomUnder)
		}
		t.Logf("evidence %v: %d builds", ev, rep.Builds)
	}
}

// Several culprits that all move the stack (each changes the size of the
// environment) are reported as one mechanism.
func TestCheckSharedMechanism(t *testing.T) {
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	size := func(s policies.Settings) int { return len(strings.Join(s.Environ(), "\x00")) }
	var movers []string
	for _, f := range policies.Names() {
		if size(policies.Perturb(base, []string{f}, 1)) != size(base) {
			movers = append(movers, f)
		}
	}
	if len(movers) < 2 {
		t.Skipf("fewer than two factors change the environment's size: %v", movers)
	}
	// The stack moves by the environment's size: the artifact holds where.
	m := func(set []string, _ int) string {
		return fmt.Sprint("stack", size(policies.Perturb(base, set, 1)))
	}
	rep := fakeCheck(t, fake{m: m, vary: movers})
	a := rep.Artifacts[0]
	if len(a.Culprits) < 2 || !strings.Contains(a.Mechanism, "size of the build's environment") {
		t.Fatalf("culprits %v mechanism %q", a.Culprits, a.Mechanism)
	}
	t.Logf("%v in %d builds: %s", a.Culprits, rep.Builds, a.Mechanism)
}

// A looser bound buys fewer builds for a culprit no evidence names; fewer
// factors to vary, too.
func TestCheckBoundBuilds(t *testing.T) {
	for _, tc := range []struct {
		bound  float64
		vary   []string
		builds int
	}{
		{DefaultBound, nil, len(policies.Factors)},
		{0.01, nil, 12},
		{0.02, nil, 11},
		{DefaultBound, []string{"time", "umask", "locale"}, 13},
	} {
		rep := fakeCheck(t, fake{m: sensitive("umask"), bound: tc.bound, vary: tc.vary})
		if !slices.Equal(rep.Culprits, []string{"umask"}) || rep.Builds > tc.builds {
			t.Errorf("bound %g, vary %v: culprits %v in %d builds, want umask in at most %d", tc.bound, tc.vary, rep.Culprits, rep.Builds, tc.builds)
		}
		t.Logf("bound %g, vary %v: %d builds", tc.bound, tc.vary, rep.Builds)
	}
}
