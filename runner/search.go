package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// A probe reports whether an artifact differs from the control when the
// factors in set are perturbed, and its hash then. Results of earlier builds
// of the same set are reused.
type probe func(ctx context.Context, set []string) (differs bool, hash string, err error)

// searchCulprits finds the groups of factors that make an artifact differ, given
// that perturbing all of them does. Each group is minimal: perturbing it alone
// makes the artifact differ, and removing any member does not; a group of more
// than one factor is an interaction. The search is adaptive group testing: it
// rebuilds with half of the candidates perturbed and recurses where the
// difference persists. order puts suspects (factors the diff named) first, so
// that the first half tested is the one the evidence points at.
//
// When the artifact built with the groups found so far perturbed is identical
// to the one built with every factor perturbed, the remaining factors change
// nothing on top of them and are not rebuilt alone; the confirmation repeats
// rebuild them anyway when no evidence backs a group.
func searchCulprits(ctx context.Context, all, suspects []string, variantHash string, differs probe) ([][]string, error) {
	var groups [][]string
	remaining := slices.Clone(all)
	for len(remaining) > 0 {
		g, err := nextGroup(ctx, remaining, suspects, differs)
		if err != nil {
			return nil, err
		}
		if len(g) == 0 {
			break
		}
		groups = append(groups, g)
		remaining = without(remaining, g)
		if len(remaining) == 0 {
			break
		}
		var found []string
		for _, g := range groups {
			found = union(found, g)
		}
		if _, h, err := differs(ctx, found); err != nil {
			return nil, err
		} else if h == variantHash {
			break
		}
		more, _, err := differs(ctx, remaining)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	return groups, nil
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
	s := slices.Clone(set)
	slices.Sort(s)
	return strings.Join(s, ",")
}
