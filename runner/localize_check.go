package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/policies"
)

// IntermediatesReport says what a check kept of its builds' intermediate
// outputs to localize differences.
type IntermediatesReport struct {
	// Builds is how many builds' cargo units were read.
	Builds int `json:"builds"`
	// CopiedBytes were copied because they could not be linked (the work
	// directory spans file systems); the rest are links to the builds' own
	// files, which cost no space while the builds exist.
	CopiedBytes int64 `json:"copied_bytes"`
	// KeptBytes is the distinct content kept (equal outputs of several
	// builds are kept once), removed when the check ends.
	KeptBytes int64 `json:"kept_bytes"`
	// TreeBytes is the sum over builds of their units' outputs: what
	// keeping copies would have cost.
	TreeBytes int64 `json:"tree_bytes"`
}

// errRepeat says a build's intermediates were not kept: it is a repeat whose
// artifacts equal those of the first build of its settings, so it is never
// compared.
var errRepeat = errors.New("a repeat with the same artifacts as the first build of its settings")

// keepIntermediates reads a finished build's cargo units and keeps their
// outputs in the check's store before the build directory is removed. Only
// builds that can be compared are kept: the first of each set of settings,
// and a later one whose artifacts differ from the first's.
func (c *checker) keepIntermediates(ctx context.Context, o *Outcome, set []string, obs *observation) (*Intermediates, error) {
	c.mu.Lock()
	if prev := c.memo[setKey(set)]; len(prev) > 0 && maps.Equal(prev[0].hashes, obs.hashes) {
		c.mu.Unlock()
		return nil, errRepeat
	}
	if c.keeper == nil {
		c.keeper = newKeeper(filepath.Join(c.store, "intermediates"))
	}
	k := c.keeper
	c.mu.Unlock()
	start := c.r.now()
	in, err := scanIntermediates(ctx, o.treeDir(), k)
	took := c.r.now().Sub(start)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.interTime += took
	c.interBuilds++
	c.interBytes += in.Bytes
	c.mu.Unlock()
	return in, nil
}

// localize finds, for each nondeterministic artifact and each artifact with
// culprits, the unit where the compared builds first diverge, and puts it in
// the report and at the head of the evidence.
func (c *checker) localize(ctx context.Context, rep *CheckReport) error {
	if c.keeper == nil {
		return nil
	}
	c.mu.Lock()
	rep.Intermediates = &IntermediatesReport{
		Builds: c.interBuilds, TreeBytes: c.interBytes, KeptBytes: c.keeper.bytes, CopiedBytes: c.keeper.copied,
	}
	c.mu.Unlock()
	for i := range rep.Artifacts {
		a := &rep.Artifacts[i]
		var pairs [][2]*observation
		var names []string
		switch {
		case a.Nondeterministic:
			x, y := c.disagreeing(a.Path)
			pairs, names = append(pairs, [2]*observation{x, y}), append(names, "")
		default:
			for _, g := range a.Culprits {
				pairs, names = append(pairs, [2]*observation{c.memo[""][0], c.groups[g]}), append(names, g)
			}
		}
		var heads []string
		var below string // the artifact's own diff
		for k, pair := range pairs {
			x, y := pair[0], pair[1]
			l, err := c.localizePair(ctx, a, x, y)
			if err != nil {
				return err
			}
			if l == nil {
				continue
			}
			if names[k] != "" {
				if a.CulpritLocalizations == nil {
					a.CulpritLocalizations = map[string]*Localization{}
				}
				a.CulpritLocalizations[names[k]] = l
			}
			if a.Localization != nil {
				// Further culprits: their summary only.
				heads = append(heads, "culprit "+names[k]+": "+l.Summary+"\n")
				continue
			}
			a.Localization = l
			heads = append(heads, l.Summary+"\n"+l.Evidence)
			if names[k] != "" && len(pairs) > 1 {
				heads[0] = "culprit " + names[k] + ": " + heads[0]
			}
			// The artifact's own diff between the same two builds goes
			// below, written within what is left so that its most
			// telling lines are kept.
			left := c.opts.EvidenceLines - strings.Count(heads[0], "\n") - (len(pairs) - 1)
			vs := c.p.Base
			if names[k] != "" {
				vs = policies.Perturb(c.p.Base, y.set, c.opts.Seed)
			}
			artifact, err := c.artifactText(ctx, a.Path, x, y, vs, left)
			if err != nil || artifact == "" {
				artifact = headLines(a.Evidence, left)
			}
			below = artifact
		}
		if len(heads) > 0 {
			a.Evidence = strings.Join(heads, "") + below
		}
	}
	return nil
}

// artifactText is the structural diff of an artifact between two builds,
// within lines.
func (c *checker) artifactText(ctx context.Context, path string, x, y *observation, vs policies.Settings, lines int) (string, error) {
	fa, fb := x.files[path], y.files[path]
	if fa == "" || fb == "" {
		return "", nil
	}
	rep, err := diff.Files(ctx, fa, fb, diff.Options{Labels: Labels(c.p.Base, vs), TimeRanges: TimeRanges(c.p.Base, vs), Matchers: Matchers(c.p.Base, vs)})
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, max(lines, 2)); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// localizePair localizes an artifact's difference between builds x and y
// (the control and a culprit's build, or two builds with one setting); nil
// when it cannot, with the reason in the artifact's LocalizationError.
func (c *checker) localizePair(ctx context.Context, a *ArtifactReport, x, y *observation) (*Localization, error) {
	if x == nil || y == nil || y.failed != "" {
		return nil, nil
	}
	if x.inter == nil || y.inter == nil {
		for _, err := range []error{x.interErr, y.interErr} {
			if err != nil && !errors.Is(err, ErrNoIntermediates) && !errors.Is(err, errRepeat) {
				a.LocalizationError = err.Error()
			}
		}
		return nil, nil
	}
	vs := c.p.Base
	if len(y.set) > 0 && x.set == nil {
		vs = policies.Perturb(c.p.Base, y.set, c.opts.Seed)
	}
	budget := max(c.opts.EvidenceLines/2, 4)
	l, err := LocalizeIntermediates(ctx, x.inter, y.inter, LocalizeOptions{
		ArtifactA: x.hashes[a.Path], ArtifactB: y.hashes[a.Path],
		Labels: Labels(c.p.Base, vs), TimeRanges: TimeRanges(c.p.Base, vs), Matchers: Matchers(c.p.Base, vs), EvidenceLines: budget - 1,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		a.LocalizationError = err.Error()
		return nil, nil
	}
	return l, nil
}

// disagreeing returns two builds with the same settings whose artifact at
// path differs, the control's pair first.
func (c *checker) disagreeing(path string) (*observation, *observation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.memo))
	for k := range c.memo {
		keys = append(keys, k)
	}
	slices.Sort(keys) // "" (the control) first
	for _, k := range keys {
		obs := c.memo[k]
		for _, o := range obs[1:] {
			if o.failed == "" && obs[0].failed == "" && o.hashes[path] != obs[0].hashes[path] {
				return obs[0], o
			}
		}
	}
	return nil, nil
}

// headLines keeps the first n lines of s, saying how many were left out.
func headLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= n {
		return s
	}
	if n < 1 {
		n = 1
	}
	return strings.Join(lines[:n-1], "") + fmt.Sprintf("... %d more lines of the artifact's diff not shown\n", len(lines)-n+1)
}
