package runner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reprobox/reprobox/policies"
)

// model says what hash one build of an artifact gives with set perturbed; n is
// the build's number, for models that vary between builds.
type model func(set []string, n int) string

// fakeCheck runs the check logic with builds simulated by m and evidence naming
// evidence (when the artifact differs at all).
func fakeCheck(t *testing.T, m model, evidence []string, repeats int) *CheckReport {
	t.Helper()
	rep, err := fakeCheckErr(m, evidence, repeats, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func fakeCheckErr(m model, evidence []string, repeats int, failing []string) (*CheckReport, error) {
	return fakeCheckJobs(m, evidence, repeats, failing, 2)
}

// fakeCheckJobs is fakeCheckErr with a number of jobs; one job makes the order
// of builds, and so a random model's draws, deterministic.
func fakeCheckJobs(m model, evidence []string, repeats int, failing []string, jobs int) (*CheckReport, error) {
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	opts := CheckOptions{Vary: policies.Names(), Seed: 1, Jobs: jobs, Repeats: repeats}
	c := newChecker(&Runner{}, p, opts, "")
	var mu sync.Mutex
	c.make = func(_ context.Context, n int, set []string) (*observation, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range failing {
			if slices.Contains(set, f) {
				return &observation{hashes: map[string]string{}, failed: "the build exited with status 101"}, nil
			}
		}
		return &observation{hashes: map[string]string{"bin": m(set, n)}, files: map[string]string{}}, nil
	}
	c.diff = func(context.Context, string, *observation, *observation, policies.Settings) ([]string, string, error) {
		return evidence, "", nil
	}
	return c.run(context.Background())
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

func TestCheckOneCulpritWithEvidence(t *testing.T) {
	for _, f := range policies.Names() {
		t.Run(f, func(t *testing.T) {
			rep := fakeCheck(t, sensitive(f), []string{f}, DefaultRepeats)
			if got := rep.Culprits; !slices.Equal(got, []string{f}) {
				t.Fatalf("culprits %v, want [%s]", got, f)
			}
			if rep.Builds > 5 {
				t.Errorf("%d builds, budget 5 when the evidence names the culprit", rep.Builds)
			}
			if rep.Reproducible || rep.Nondeterministic {
				t.Errorf("reproducible=%v nondeterministic=%v", rep.Reproducible, rep.Nondeterministic)
			}
		})
	}
}

func TestCheckOneCulpritWithoutEvidence(t *testing.T) {
	worst := 0
	for _, f := range policies.Names() {
		t.Run(f, func(t *testing.T) {
			rep := fakeCheck(t, sensitive(f), nil, 0)
			if got := rep.Culprits; !slices.Equal(got, []string{f}) {
				t.Fatalf("culprits %v, want [%s]", got, f)
			}
			worst = max(worst, rep.Builds)
			if rep.Builds > 8 {
				t.Errorf("%d builds without repeats, budget 8", rep.Builds)
			}
			// With the default repeats, the same culprit costs exactly
			// DefaultRepeats more builds.
			rep2 := fakeCheck(t, sensitive(f), nil, DefaultRepeats)
			if !slices.Equal(rep2.Culprits, []string{f}) || rep2.Builds != rep.Builds+DefaultRepeats {
				t.Errorf("with repeats: culprits %v in %d builds, want [%s] in %d", rep2.Culprits, rep2.Builds, f, rep.Builds+DefaultRepeats)
			}
		})
	}
	t.Logf("worst case without evidence and without repeats: %d builds", worst)
}

func TestCheckTwoCulprits(t *testing.T) {
	names := policies.Names()
	for i, a := range names {
		b := names[(i+5)%len(names)]
		t.Run(a+","+b, func(t *testing.T) {
			rep := fakeCheck(t, sensitive(a, b), []string{a, b}, DefaultRepeats)
			want := []string{a, b}
			slices.Sort(want)
			if !slices.Equal(rep.Culprits, want) {
				t.Fatalf("culprits %v, want %v", rep.Culprits, want)
			}
			if rep.Builds > 12 {
				t.Errorf("%d builds, budget 12", rep.Builds)
			}
		})
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
	rep := fakeCheck(t, m, nil, DefaultRepeats)
	if !slices.Equal(rep.Culprits, []string{"umask+user"}) {
		t.Fatalf("culprits %v, want [umask+user]", rep.Culprits)
	}
}

func TestCheckReproducible(t *testing.T) {
	rep := fakeCheck(t, sensitive(), nil, DefaultRepeats)
	if !rep.Reproducible || rep.Nondeterministic || len(rep.Culprits) != 0 {
		t.Fatalf("got %+v", rep)
	}
	if rep.Builds != 3+DefaultRepeats {
		t.Errorf("%d builds, want %d", rep.Builds, 3+DefaultRepeats)
	}
}

func TestCheckBuildFailsUnderFactor(t *testing.T) {
	rep, err := fakeCheckErr(sensitive(), nil, DefaultRepeats, []string{"locale"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Culprits, []string{"locale"}) || rep.BuildFailures["locale"] == "" {
		t.Fatalf("culprits %v, failures %v", rep.Culprits, rep.BuildFailures)
	}
}

func TestCheckASLRFreshEveryBuild(t *testing.T) {
	// With ASLR on the output is different in every build; off it is fixed.
	// That is a culprit (aslr), not nondeterminism of the normalized build.
	m := func(set []string, n int) string {
		if slices.Contains(set, "aslr") {
			return fmt.Sprint("addr", n)
		}
		return "fixed"
	}
	rep := fakeCheck(t, m, nil, DefaultRepeats)
	if !slices.Equal(rep.Culprits, []string{"aslr"}) || rep.Nondeterministic {
		t.Fatalf("culprits %v nondeterministic %v", rep.Culprits, rep.Nondeterministic)
	}
}

// TestCheckRandomOutput simulates many checks of an artifact whose output is
// one of two at random in every build, with nothing to do with any factor.
func TestCheckRandomOutput(t *testing.T) {
	const runs = 4000
	rng := rand.New(rand.NewPCG(1, 2))
	var nondet, blamed, reproducible int
	for range runs {
		m := func([]string, int) string { return fmt.Sprint(rng.IntN(2)) }
		rep, err := fakeCheckJobs(m, nil, DefaultRepeats, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(rep.Culprits) > 0:
			blamed++
		case rep.Nondeterministic:
			nondet++
		case rep.Reproducible:
			reproducible++
		}
	}
	t.Logf("%d runs: %d nondeterministic, %d blamed a factor, %d reproducible", runs, nondet, blamed, reproducible)
	// With 9 repeats the chance of a wrong verdict is about 2^-11 per check
	// either way: 20 checks pass "19 of 20 and never blamed" with
	// probability about 99%. One job makes this simulation deterministic.
	if float64(blamed)/runs > 1.0/1000 {
		t.Errorf("blamed a factor in %d of %d checks", blamed, runs)
	}
	if float64(nondet)/runs < 0.98 {
		t.Errorf("nondeterministic in only %d of %d checks", nondet, runs)
	}
}
