package runner

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
)

// A probe reports whether an artifact differs from the control when the
// factors in set are perturbed, and its hash then. Results of earlier builds
// of the same set are reused.
type probe func(ctx context.Context, set []string) (differs bool, hash string, err error)

// A verdict is what the check holds about one artifact: a hypothesis (the
// culprit groups found so far, none for reproducible) and, once the builds
// meet the bound, its kind.
type verdict struct {
	path     string
	evidence []string // factors the control-vs-variant diff names
	hints    []string // factors it suggests without proof (reorderings)
	text     string   // that diff
	// evidenceBuilt says the sets the evidence suggests were built.
	evidenceBuilt bool
	groups        [][]string
	formed        int // builds made when groups last changed
	// random are the groups under which the artifact differs in every
	// build (it holds something they make random, such as an address
	// under aslr): builds that hold one are not compared.
	random [][]string
	kind   verdictKind
	chance float64 // the chance that a nondeterministic artifact showed the builds seen
}

type verdictKind int

const (
	verdictUndecided verdictKind = iota
	verdictReproducible
	verdictCulprits
	verdictNondeterministic
)

// decide makes builds until the artifact's verdict meets the bound, taking
// every build already made as evidence. Its hypothesis starts from what st
// holds; the search for a culprit group starts from any build the hypothesis
// does not explain: its hash differs from that of the build of the groups its
// set holds. When a build the hypothesis should explain contradicts it, the
// two sets involved are built again first: a set that disagrees with itself
// makes the artifact nondeterministic (certain); otherwise a culprit was
// missing (another factor, or one that matters only with a group found), and
// the search goes on from there.
func (c *checker) decide(ctx context.Context, st *verdict) error {
	vary := c.opts.Vary
	suspects := st.suspects()
	if len(suspects) > 0 && !st.evidenceBuilt {
		st.evidenceBuilt = true
		// The factors the evidence names or hints at alone, each, and
		// everything but them: one batch.
		sets := make([][]string, 0, len(suspects)+1)
		for _, f := range suspects {
			sets = append(sets, []string{f})
		}
		if rest := without(vary, suspects); len(rest) > 0 {
			sets = append(sets, rest)
		}
		if err := c.ensure(ctx, sets); err != nil {
			return err
		}
	}
	if len(st.evidence) == 0 && !st.evidenceBuilt && len(vary) > 1 &&
		hashOf(c.first(vary), st.path) != hashOf(c.first(nil), st.path) {
		// No evidence: the control again, which the verdict needs as
		// an agreeing build anyway and which shows an artifact that is
		// new in every build at once, beside the search's first step.
		st.evidenceBuilt = true
		first, _ := halves(c.ordered(vary))
		sets := [][]string{nil}
		if c.built(first) == 0 {
			sets = append(sets, first)
		}
		if c.built(nil) < 2 {
			if err := c.parallel(ctx, sets); err != nil {
				return err
			}
		}
	}
	if st.formed == 0 {
		st.formed = c.count()
	}
	for range 4 * (len(vary) + 8) {
		st.kind = verdictUndecided
		if c.nondeterministic(st) {
			st.kind = verdictNondeterministic
			return nil
		}
		cs, err := c.conflicts(ctx, st)
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			// Builds made before the hypothesis was formed are data
			// it has not explained yet, searched directly. A build
			// made since, or a group the evidence names (when the
			// build holds no other factor it names), that
			// disagrees was a prediction that failed; so is a
			// pattern with more distinct hashes than twice the groups
			// found (not counting those on top of another), the
			// factors the evidence names and one more, plus one (two
			// culprits not yet found show a third hash early); so is
			// a conflict once two groups the evidence does not name
			// are held (a third such culprit is rarer than a random
			// artifact that mimicked two: measured, the longest of
			// 3000 simulated checks of one went from 73 builds to 41).
			// A failed prediction is nondeterminism or a culprit
			// missing: both sets are built again to tell which.
			predicted := func(x conflict) bool {
				return c.builtSince(x.set, st.formed) || c.builtSince(x.canon, st.formed) ||
					(len(x.canon) > 0 && len(without(x.canon, st.evidence)) == 0 &&
						len(without(without(st.evidence, flat(st.groups)), without(st.evidence, x.set))) == 0) ||
					c.distinct(st.path) > 2*(minimal(st.groups)+1+len(without(st.evidence, flat(st.groups))))+1 ||
					unbackedGroups(st) >= 2
			}
			x := cs[0]
			if i := slices.IndexFunc(cs, predicted); i >= 0 {
				x = cs[i]
				var again [][]string
				for _, s := range [][]string{x.set, x.canon} {
					if c.built(s) < 2 && !slices.ContainsFunc(again, func(y []string) bool { return setKey(y) == setKey(s) }) {
						again = append(again, s)
					}
				}
				if len(again) > 0 {
					if err := c.parallel(ctx, again); err != nil {
						return err
					}
					continue
				}
			}
			set, canon := x.set, x.canon
			g, err := c.newGroup(ctx, st, set, canon)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(st.groups, func(x []string) bool { return setKey(x) == setKey(g) }) {
				return nil // no progress: undecided
			}
			st.groups = append(st.groups, g)
			st.formed = c.count()
			continue
		}
		// The hypothesis explains every build. A culprit outside its
		// groups would show in the build of everything else.
		var all []string
		for _, g := range st.groups {
			all = union(all, g)
		}
		if rest := without(vary, all); len(st.groups) > 0 && len(rest) > 0 && c.first(rest) == nil {
			if err := c.ensure(ctx, [][]string{rest}); err != nil {
				return err
			}
			continue
		}
		chance, need := c.chance(st)
		st.chance = chance
		if chance <= c.opts.Bound {
			st.kind = verdictCulprits
			if len(st.groups) == 0 {
				st.kind = verdictReproducible
			}
			return nil
		}
		if err := c.parallel(ctx, c.confirmations(st, min(need, c.opts.Jobs))); err != nil {
			return err
		}
	}
	return nil
}

// settle re-reads a verdict against every build made, including those made
// for other artifacts after it was reached, without building.
func (c *checker) settle(st *verdict) {
	if c.nondeterministic(st) {
		st.kind = verdictNondeterministic
		return
	}
	if st.kind == verdictNondeterministic {
		return
	}
	if st.kind == verdictUndecided {
		st.chance = 1
		if !c.unexplained(st) {
			st.chance, _ = c.chance(st)
		}
		return
	}
	if c.unexplained(st) {
		st.kind = verdictUndecided
		return
	}
	st.chance, _ = c.chance(st)
	if st.chance > c.opts.Bound {
		st.kind = verdictUndecided
	}
}

// newGroup finds a culprit group from a build of set that the groups found do
// not explain: its hash differs from that of canon, the union of the groups
// it holds. The search is among the rest of set, relative to canon's build.
func (c *checker) newGroup(ctx context.Context, st *verdict, set, canon []string) ([]string, error) {
	path := st.path
	base, err := c.get(ctx, canon)
	if err != nil {
		return nil, err
	}
	hb := hashOf(base, path)
	relative := func(ctx context.Context, s []string) (bool, string, error) {
		o, err := c.get(ctx, union(canon, s))
		if err != nil {
			return false, "", err
		}
		h := hashOf(o, path)
		return h != hb, h, nil
	}
	remaining := c.ordered(without(set, canon))
	var k []string
	if cands := c.candidates(path, remaining, canon, hb); len(cands) < len(remaining) && len(cands) > 0 {
		// Builds already made that hold canon and gave its bytes, or
		// hold none of it and gave the control's, clear their factors:
		// search the rest first, unverified (a factor cleared wrongly,
		// one that acts only on top of canon or whose effect another
		// masked, falls back to the whole).
		sus := slices.DeleteFunc(c.ordered(st.suspects()), func(f string) bool { return !slices.Contains(cands, f) })
		k, err = minimalGroup(ctx, union(sus, cands), nil, relative, false)
		if errors.Is(err, errInferred) {
			k, err = nil, nil
		}
	}
	if k == nil && err == nil {
		k, err = nextGroup(ctx, remaining, st.suspects(), relative)
	}
	if err != nil || len(canon) == 0 {
		return c.ordered(k), err
	}
	// Does k change the artifact alone, or only on top of canon's groups?
	control := hashOf(c.first(nil), path)
	alone := func(ctx context.Context, s []string) (bool, string, error) {
		o, err := c.get(ctx, s)
		if err != nil {
			return false, "", err
		}
		h := hashOf(o, path)
		return h != control, h, nil
	}
	d, _, err := alone(ctx, k)
	if err != nil {
		return nil, err
	}
	if d {
		g, err := minimalGroup(ctx, k, nil, alone, true)
		return c.ordered(g), err
	}
	return c.ordered(union(canon, k)), nil
}

// unbackedGroups counts the groups found that the evidence does not name.
func unbackedGroups(st *verdict) int {
	n := 0
	for _, g := range st.groups {
		if len(g) > 1 || !slices.Contains(st.evidence, g[0]) {
			n++
		}
	}
	return n
}

// candidates are the factors of remaining that no build cleared: one holding
// canon that gave canon's bytes (hb), or one holding none of canon that gave
// the control's.
func (c *checker) candidates(path string, remaining, canon []string, hb string) []string {
	out := slices.Clone(remaining)
	control := hashOf(c.first(nil), path)
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			h := hashOf(o, path)
			if (len(without(canon, o.set)) == 0 && h == hb) ||
				(len(without(canon, o.set)) == len(canon) && h == control) {
				out = without(out, o.set)
			}
		}
	}
	return out
}

// suspects are the factors the evidence names, then those it hints at.
func (st *verdict) suspects() []string {
	return union(st.evidence, st.hints)
}

// ordered puts factors in the order of --vary.
func (c *checker) ordered(set []string) []string {
	var out []string
	for _, f := range c.opts.Vary {
		if slices.Contains(set, f) {
			out = append(out, f)
		}
	}
	return out
}

// class is the union of the groups a set holds: the set whose build a build
// of set must agree with.
func class(set []string, groups [][]string) []string {
	var u []string
	for _, g := range groups {
		if len(without(g, set)) == 0 {
			u = union(u, g)
		}
	}
	return u
}

// groupsKey identifies a hypothesis' groups.
func groupsKey(groups [][]string) string {
	var b strings.Builder
	for _, g := range groups {
		b.WriteString(setKey(g))
		b.WriteByte(';')
	}
	return b.String()
}

// classKey is the key of class(o.set, groups), where gk is groupsKey(groups).
// Only the goroutine deciding calls it.
func classKey(o *observation, groups [][]string, gk string) string {
	if o.classFor != "#"+gk {
		o.class, o.classFor = setKey(class(o.set, groups)), "#"+gk
	}
	return o.class
}

// snapshot copies the builds made so far, sets in a stable order.
func (c *checker) snapshot() [][]*observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil && c.snapAt == c.stored {
		return c.snap
	}
	defer func() { c.snapAt = c.stored }()
	keys := make([]string, 0, len(c.memo))
	for k := range c.memo {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(a, ","), strings.Count(b, ",")), strings.Compare(a, b))
	})
	out := make([][]*observation, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(c.memo[k])
	}
	c.snap = out
	return out
}

// nondeterministic reports whether two builds of the same set gave the
// artifact different bytes: it is then nondeterministic, whatever else was
// seen, unless every set that disagreed holds one group found. That group then
// makes the artifact differ in every build (it is marked random), and the
// verdict rests on the builds without it.
func (c *checker) nondeterministic(st *verdict) bool {
	var sets [][]string
	for _, obs := range c.snapshot() {
		if len(obs) < 2 {
			continue
		}
		for _, o := range obs[1:] {
			if hashOf(o, st.path) != hashOf(obs[0], st.path) {
				sets = append(sets, obs[0].set)
				break
			}
		}
	}
	if len(sets) == 0 {
		return false
	}
	for _, g := range slices.Clone(st.groups) {
		if !slices.ContainsFunc(st.groups, func(x []string) bool { return setKey(x) == setKey(g) }) {
			continue // removed as a superset of a random group
		}
		all := true
		for _, s := range sets {
			all = all && len(without(g, s)) == 0
		}
		if all && !slices.ContainsFunc(st.random, func(x []string) bool { return setKey(x) == setKey(g) }) {
			st.random = append(st.random, g)
			// Groups found on top of it were its randomness.
			st.groups = slices.DeleteFunc(st.groups, func(x []string) bool {
				return len(x) > len(g) && len(without(g, x)) == 0
			})
		}
	}
	if slices.ContainsFunc(sets, func(s []string) bool { return !c.skipped(st, s) }) {
		// No group found covers them: a factor every disagreeing set
		// holds, whose builds all gave new bytes, may (aslr before the
		// search isolated it).
		common := slices.Clone(sets[0])
		for _, s := range sets[1:] {
			common = slices.DeleteFunc(common, func(f string) bool { return !slices.Contains(s, f) })
		}
		for _, f := range c.ordered(common) {
			if c.freshUnder(st.path, f) {
				g := []string{f}
				st.groups = append(slices.DeleteFunc(st.groups, func(x []string) bool { return slices.Contains(x, f) }), g)
				st.random = append(st.random, g)
				st.formed = c.count()
				break
			}
		}
	}
	for _, s := range sets {
		if !c.skipped(st, s) {
			return true
		}
	}
	// Random means new bytes every time: builds holding a random group
	// must differ from each other and from the control, or the artifact
	// is merely nondeterministic.
	seen := map[string]bool{hashOf(c.first(nil), st.path): true}
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			if !c.skipped(st, o.set) {
				continue
			}
			h := hashOf(o, st.path)
			if seen[h] {
				return true
			}
			seen[h] = true
		}
	}
	return false
}

// freshUnder reports whether every build holding f gave bytes no other build
// gave.
func (c *checker) freshUnder(path, f string) bool {
	count := map[string]int{}
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			count[hashOf(o, path)]++
		}
	}
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			if slices.Contains(o.set, f) && count[hashOf(o, path)] > 1 {
				return false
			}
		}
	}
	return true
}

// skipped reports whether a set holds a random group.
func (c *checker) skipped(st *verdict, set []string) bool {
	for _, g := range st.random {
		if len(without(g, set)) == 0 {
			return true
		}
	}
	return false
}

// unexplained reports whether some class of builds (same groups held) shows
// more than one hash, without building.
func (c *checker) unexplained(st *verdict) bool {
	path, groups := st.path, st.groups
	seen := map[string]string{"": hashOf(c.first(nil), path)}
	gk := groupsKey(groups)
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			if c.skipped(st, o.set) {
				continue
			}
			k := classKey(o, groups, gk)
			h := hashOf(o, path)
			if prev, ok := seen[k]; ok && prev != h {
				return true
			}
			seen[k] = h
		}
	}
	return false
}

// A conflict is a build the hypothesis does not explain: its hash differs
// from that of canon's build, the union of the groups its set holds.
type conflict struct{ set, canon []string }

// conflicts finds, per class of builds (same groups held) with more than one
// hash, the smallest set whose build differs from the class's own (built if
// it was not).
func (c *checker) conflicts(ctx context.Context, st *verdict) ([]conflict, error) {
	path, groups := st.path, st.groups
	if !c.unexplained(st) {
		return nil, nil
	}
	type cls struct {
		canon  []string
		builds []*observation
	}
	var order []string
	classes := map[string]*cls{}
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			if c.skipped(st, o.set) {
				continue
			}
			u := c.ordered(class(o.set, groups))
			k := setKey(u)
			if classes[k] == nil {
				classes[k] = &cls{canon: u}
				order = append(order, k)
			}
			classes[k].builds = append(classes[k].builds, o)
		}
	}
	slices.SortFunc(order, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(classes[a].canon), len(classes[b].canon)), strings.Compare(a, b))
	})
	var out []conflict
	for _, k := range order {
		cl := classes[k]
		hashes := map[string]bool{}
		for _, o := range cl.builds {
			hashes[hashOf(o, path)] = true
		}
		if len(hashes) < 2 {
			continue
		}
		b, err := c.get(ctx, cl.canon)
		if err != nil {
			return nil, err
		}
		hb := hashOf(b, path)
		var pick *observation
		for _, o := range cl.builds {
			if hashOf(o, path) != hb && (pick == nil || len(o.set) < len(pick.set)) {
				pick = o
			}
		}
		if pick != nil {
			out = append(out, conflict{c.ordered(pick.set), cl.canon})
		}
	}
	return out, nil
}

// chance is the chance that a nondeterministic artifact showed the builds
// seen, over the hypothesis' prior (check_stats.go), and how many more builds
// that agree with it would bring it within the bound.
func (c *checker) chance(st *verdict) (float64, int) {
	var backed, unbacked [][]string
	for _, g := range st.groups {
		if len(g) == 1 && slices.Contains(st.evidence, g[0]) {
			backed = append(backed, g)
		} else {
			unbacked = append(unbacked, g)
		}
	}
	if len(st.groups) > 0 && len(unbacked) == 0 {
		return 0, 0 // the evidence names every culprit
	}
	// The culprits the evidence names are taken as real: the reference
	// artifact is nondeterministic on top of them, so builds are compared
	// within the classes they make.
	type tally struct {
		n        int
		distinct map[string]bool
	}
	within := map[string]*tally{}
	gk := groupsKey(st.groups)
	classHashes := map[string]string{}
	shared := false
	for _, obs := range c.snapshot() {
		for _, o := range obs {
			if c.skipped(st, o.set) {
				continue
			}
			h := hashOf(o, st.path)
			bk := setKey(class(o.set, backed))
			if within[bk] == nil {
				within[bk] = &tally{distinct: map[string]bool{}}
			}
			within[bk].n++
			within[bk].distinct[h] = true
			k := classKey(o, st.groups, gk)
			if _, ok := classHashes[k]; !ok {
				for _, other := range classHashes {
					if other == h {
						shared = true
					}
				}
				classHashes[k] = h
			}
		}
	}
	p := prior(unbacked, len(c.opts.Vary), without(st.hints, st.evidence)) * sharing(len(st.groups), !shared)
	if len(st.random) > 0 {
		p *= randomPrior / (1 - randomPrior)
	}
	if p == 0 {
		return 1, 1
	}
	// The chance after more builds that agree, added to the largest
	// class (where an agreeing build weighs most is not needed: any
	// agreeing build halves it at least).
	q := func(more int) float64 {
		r := 1.0
		largest := ""
		for k, t := range within {
			if largest == "" || t.n > within[largest].n || (t.n == within[largest].n && k < largest) {
				largest = k
			}
		}
		for k, t := range within {
			n := t.n
			if k == largest {
				n += more
			}
			r *= nullChance(n, len(t.distinct))
		}
		return r / p
	}
	need := 1
	for need < 64 && q(need) > c.opts.Bound {
		need++
	}
	return q(0), need
}

// confirmations are the next n builds that test a hypothesis: the sets of its
// classes built least so far (everything but the groups, each group alone,
// the full variant, the control).
func (c *checker) confirmations(st *verdict, n int) [][]string {
	vary, groups := c.opts.Vary, st.groups
	var all []string
	for _, g := range groups {
		all = union(all, g)
	}
	var sets [][]string
	if len(groups) > 0 {
		if rest := without(vary, all); len(rest) > 0 {
			sets = append(sets, rest)
		}
		sets = append(sets, groups...)
	}
	sets = append(sets, vary, nil)
	// Builds holding a group that makes the artifact random tell nothing.
	sets = slices.DeleteFunc(sets, func(s []string) bool { return c.skipped(st, s) })
	counts := make([]int, len(sets))
	for i, s := range sets {
		counts[i] = c.built(s)
	}
	out := make([][]string, 0, n)
	for range max(n, 1) {
		best := 0
		for i := range sets {
			if counts[i] < counts[best] {
				best = i
			}
		}
		out = append(out, sets[best])
		counts[best]++
	}
	return out
}

// minimal counts the groups that hold no other group.
func minimal(groups [][]string) int {
	n := 0
	for _, g := range groups {
		if !slices.ContainsFunc(groups, func(x []string) bool {
			return len(x) < len(g) && len(without(x, g)) == 0
		}) {
			n++
		}
	}
	return n
}

// flat is the union of groups.
func flat(groups [][]string) []string {
	var all []string
	for _, g := range groups {
		all = union(all, g)
	}
	return all
}

// distinct is how many different hashes the builds gave an artifact.
func (c *checker) distinct(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, obs := range c.memo {
		for _, o := range obs {
			seen[hashOf(o, path)] = true
		}
	}
	return len(seen)
}

// builtSince reports whether a set was built after the first n builds.
func (c *checker) builtSince(set []string, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.memo[setKey(set)] {
		if o.n > n {
			return true
		}
	}
	return false
}

// built is how many builds of a set were made.
func (c *checker) built(set []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.memo[setKey(set)])
}

// ensure builds, as one batch, the sets not built yet.
func (c *checker) ensure(ctx context.Context, sets [][]string) error {
	var todo [][]string
	for _, s := range sets {
		if c.built(s) == 0 && !slices.ContainsFunc(todo, func(x []string) bool { return setKey(x) == setKey(s) }) {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return c.parallel(ctx, todo)
}

// nextGroup finds one minimal group among remaining, which differs as a whole.
// The suspects the evidence names are tested first, alone; the rest is ordered
// suspects first so that the first half tested holds them.
func nextGroup(ctx context.Context, remaining, suspects []string, differs probe) ([]string, error) {
	var sus, rest []string
	for _, f := range remaining {
		if slices.Contains(suspects, f) {
			sus = append(sus, f)
		} else {
			rest = append(rest, f)
		}
	}
	if len(sus) > 0 && len(rest) > 0 {
		d, _, err := differs(ctx, sus)
		if err != nil {
			return nil, err
		}
		if d {
			return minimalGroup(ctx, sus, nil, differs, true)
		}
	}
	return minimalGroup(ctx, append(sus, rest...), nil, differs, true)
}

// minimalGroup returns a minimal K ⊆ set such that fixed ∪ K differs, given
// that fixed alone does not. When verified, fixed ∪ set is known to differ;
// otherwise that was inferred: a half whose sibling tested clean is assumed to
// differ without building it (true when factors act alone), and the assumption
// is checked before anything relies on it. A wrong assumption returns
// errInferred to the level that made it, which then searches without inferring
// (an interaction).
func minimalGroup(ctx context.Context, set, fixed []string, differs probe, verified bool) ([]string, error) {
	check := func() error {
		if verified {
			return nil
		}
		d, _, err := differs(ctx, union(fixed, set))
		if err != nil {
			return err
		}
		if !d {
			return errInferred
		}
		verified = true
		return nil
	}
	if len(set) == 1 {
		if err := check(); err != nil {
			return nil, err
		}
		return set, nil
	}
	a, b := halves(set)
	da, _, err := differs(ctx, union(fixed, a))
	if err != nil {
		return nil, err
	}
	if da {
		return minimalGroup(ctx, a, fixed, differs, true)
	}
	k, err := minimalGroup(ctx, b, fixed, differs, false)
	if !errors.Is(err, errInferred) {
		return k, err
	}
	// b alone does not differ after all: either this level's own assumption
	// was wrong, or b's members need something from a.
	if err := check(); err != nil {
		return nil, err
	}
	ka, err := minimalGroup(ctx, a, union(fixed, b), differs, true)
	if err != nil {
		return nil, err
	}
	kb, err := minimalGroup(ctx, b, union(fixed, ka), differs, true)
	if err != nil {
		return nil, err
	}
	return union(ka, kb), nil
}

// errInferred says that an inferred difference was not there.
var errInferred = errors.New("inferred difference not confirmed")

// halves splits a set, the first half no smaller than the second.
func halves(s []string) (a, b []string) {
	n := (len(s) + 1) / 2
	return s[:n:n], s[n:]
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// groupName is a culprit's name in reports: a factor, or an interaction a+b.
func groupName(g []string) string {
	s := slices.Clone(g)
	slices.Sort(s)
	return strings.Join(s, "+")
}

// setKey identifies a perturbation set regardless of order.
func setKey(set []string) string {
	switch len(set) {
	case 0:
		return ""
	case 1:
		return set[0]
	}
	s := set
	if !slices.IsSorted(set) {
		s = slices.Clone(set)
		slices.Sort(s)
	}
	return strings.Join(s, ",")
}
