package runner

import (
	"cmp"
	"slices"
	"strings"
)

// A CheckTrial is one set of perturbed factors a check built: how often, and
// which artifacts differed from the control in those builds.
type CheckTrial struct {
	// Set is the perturbed factors, in factor order; empty for the control.
	Set    []string `json:"set"`
	Builds int      `json:"builds"`
	// Differing lists, sorted, the artifacts that differed from the
	// control in at least one of the builds; Failed says why a build of
	// the set failed.
	Differing []string `json:"differing"`
	Failed    string   `json:"failed,omitempty"`
}

// trials lists the sets the check built, the control first, then by size
// and name.
func (c *checker) trials() []CheckTrial {
	c.mu.Lock()
	defer c.mu.Unlock()
	control := c.memo[""][0]
	var out []CheckTrial
	for _, obs := range c.memo {
		t := CheckTrial{Set: slices.Clone(obs[0].set), Builds: len(obs), Differing: []string{}}
		if t.Set == nil {
			t.Set = []string{}
		}
		for _, o := range obs {
			if o.failed != "" && t.Failed == "" {
				t.Failed = o.failed
			}
			for path, h := range control.hashes {
				if (o.failed != "" || o.hashes[path] != h) && !slices.Contains(t.Differing, path) {
					t.Differing = append(t.Differing, path)
				}
			}
		}
		slices.Sort(t.Differing)
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b CheckTrial) int {
		return cmp.Or(cmp.Compare(len(a.Set), len(b.Set)), strings.Compare(strings.Join(a.Set, ","), strings.Join(b.Set, ",")))
	})
	return out
}
