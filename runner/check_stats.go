package runner

import (
	"math"
	"slices"
	"sync"
)

// The check is a sequential test. Every build of a check is an observation of
// every artifact, and a verdict is a hypothesis about all of them: the artifact
// is reproducible, or a list of culprit groups decides its bytes (builds whose
// perturbed sets hold the same groups must give the same bytes). The check
// stops when the chance that a nondeterministic artifact produced the pattern
// of hashes seen, weighed by how many verdicts the search could have reached,
// is below the bound.
//
// The reference nondeterministic artifact is one of m equally likely outputs in
// every build, whatever is perturbed (m = 2 is the worst case once two builds
// agree). For n builds that showed k distinct hashes, the chance of that exact
// pattern of equal and unequal hashes is (m)_k / m^n; nullChance takes the
// largest over m. A verdict's prior says how many verdicts compete with it: a
// nondeterministic artifact that reaches a verdict whose prior is p and whose
// pattern had chance q did something of probability at most q/p under the
// mixture of all verdicts, and the likelihood ratio of that mixture against
// the reference is a nonnegative martingale, so (Ville's inequality) the
// chance that a nondeterministic artifact is ever blamed on a factor is at
// most the bound, however the search adapted its builds. check_sim_test.go
// measures it.
//
// The priors: one single-factor culprit among N weighs 0.92/N (hintShare
// moves weight to the factors a reordering in the first diff suggests); two
// single-factor culprits 0.025/C(N,2); one interaction of s factors
// 0.015·2^-(s-1)/C(N,s); any other list of r groups 0.01·2^-(r-1)·r!·Π
// 2^-s/C(N,s); each times 0.9 when every class of builds has its own hash.
// The same lists with a group that makes the artifact random (randomPrior)
// take 2% more. They sum to at most 1. Groups whose factor the diff evidence
// names (its perturbed value is in the differing bytes) are taken as proven
// and weigh 1: a nondeterministic artifact does not print a hostname it never
// saw. A reproducible verdict is a separate test with prior 1: n equal builds
// have chance 2^-(n-1), so 11 builds reach 1/1024.

// nullChance is the largest chance, over artifacts whose output is one of m
// equally likely values (m ≥ 2), that n builds show a given pattern of k
// distinct hashes.
func nullChance(n, k int) float64 {
	if n <= k {
		return 1
	}
	key := [2]int{n, k}
	nullMu.Lock()
	v, ok := nullCache[key]
	nullMu.Unlock()
	if ok {
		return v
	}
	v = nullChanceOf(n, k)
	nullMu.Lock()
	nullCache[key] = v
	nullMu.Unlock()
	return v
}

var (
	nullMu    sync.Mutex
	nullCache = map[[2]int]float64{}
)

func nullChanceOf(n, k int) float64 {
	// log((m)_k / m^n) rises, then falls as m grows (its slope
	// Σ 1/(m-i) - n/m changes sign once): stop when it falls.
	best := math.Inf(-1)
	for m := max(2, k); ; m++ {
		l := -float64(n) * math.Log(float64(m))
		for i := 0; i < k; i++ {
			l += math.Log(float64(m - i))
		}
		if l < best {
			break
		}
		best = l
	}
	return math.Exp(best)
}

// binomial is C(n, k) as a float.
func binomial(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	r := 1.0
	for i := 0; i < k; i++ {
		r = r * float64(n-i) / float64(i+1)
	}
	return r
}

// prior is the weight of a list of culprit groups among all lists over n
// factors (see above); groups backed by evidence are left out by the caller.
// Hinted factors (a reordering in the first diff suggests them) share
// hintShare of the single-factor weight, the others the rest.
func prior(groups [][]string, n int, hinted []string) float64 {
	r := len(groups)
	sizes := make([]int, r)
	for i, g := range groups {
		sizes[i] = len(g)
	}
	slices.Sort(sizes)
	switch {
	case r == 0:
		return 1
	case r == 1 && sizes[0] == 1 && len(hinted) > 0 && len(hinted) < n:
		if slices.Contains(hinted, groups[0][0]) {
			return 0.92 * hintShare / float64(len(hinted))
		}
		return 0.92 * (1 - hintShare) / float64(n-len(hinted))
	case r == 1 && sizes[0] == 1:
		return 0.92 / float64(n)
	case r == 1:
		return 0.015 * math.Pow(2, -float64(sizes[0]-1)) / binomial(n, sizes[0])
	case r == 2 && sizes[1] == 1:
		return 0.025 / binomial(n, 2)
	}
	p := 0.01 * math.Pow(2, -float64(r-1))
	for i, s := range sizes {
		p *= float64(i+1) * math.Pow(2, -float64(s)) / binomial(n, s)
	}
	return p
}

// hintShare is the share of the single-factor prior that the factors a
// reordering hints at take together. The prior may depend on the first
// diff: every culprit hypothesis predicts that the control and the variant
// differ and nothing of their content, so its likelihood ratio after those
// two builds is the same whatever the diff shows, and the mixture is still
// a martingale that starts at most at 1. At 0.55 one hinted culprit is
// found in 12 builds (16 without the hint) and any other single culprit in
// 17 when a hint misled.
const hintShare = 0.55

// randomPrior is the share of the prior for hypotheses in which a culprit
// makes the artifact random (new bytes in every build with it perturbed, as an
// address under aslr): a list of groups with one marked random weighs
// randomPrior/(1-randomPrior) times the same list without.
const randomPrior = 0.02

// sharing weighs how the groups' classes (the sets of groups a build holds)
// map to hashes: usually each class has its own hash (0.9); otherwise one of
// the other partitions of the 2^r classes (several culprits acting through
// one mechanism, or canceling out).
func sharing(r int, distinct bool) float64 {
	if r <= 1 {
		if distinct {
			return 1
		}
		return 0
	}
	if distinct {
		return 0.9
	}
	if r > 5 {
		return 1e-300
	}
	return 0.1 / (bell(1<<r) - 1)
}

// bell is the Bell number B(n): the partitions of an n-set.
func bell(n int) float64 {
	row := []float64{1}
	for i := 0; i < n; i++ {
		next := []float64{row[len(row)-1]}
		for _, x := range row {
			next = append(next, next[len(next)-1]+x)
		}
		row = next
	}
	return row[0]
}
