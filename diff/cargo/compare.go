package cargo

import (
	"slices"
	"strings"
)

// A Divergence is where two builds' units first differ, and how the
// difference reaches the artifact.
type Divergence struct {
	// Chain names the units from the first divergence to the artifact, in
	// build order: "build script of foo-sys (run)", "foo-sys (lib)", ….
	Chain []string `json:"chain"`
	// Differing counts the units whose outputs differ.
	Differing int `json:"differing_units"`
	// First are the earliest differing units: none of the units they were
	// built from differs. Sorted in build order.
	First []Diverged `json:"first"`
	// OnlyA and OnlyB are units built in one build only.
	OnlyA []string `json:"only_a,omitempty"`
	OnlyB []string `json:"only_b,omitempty"`
	// Units counts the units compared.
	Units int `json:"units"`
}

// Diverged is one differing unit and its differing outputs.
type Diverged struct {
	Files []FileChange `json:"files"`
	ID    string       `json:"id"`
	Unit  string       `json:"unit"`
}

// A FileChange is one output of a unit that differs.
type FileChange struct {
	// A and B are the file's paths in each tree; "" where it is missing.
	A    string `json:"a,omitempty"`
	B    string `json:"b,omitempty"`
	Kind string `json:"kind"` // changed, added (only in B), removed (only in A)
	Name string `json:"name"`
}

// Describe names a differing output for people: "OUT_DIR bindings.rs" for a
// file a build script generated.
func (f FileChange) Describe() string {
	if rest, ok := strings.CutPrefix(f.Name, "out/"); ok {
		return "OUT_DIR " + rest
	}
	return f.Name
}

// String is the one-line summary: "first divergence: build script of foo-sys
// (run), OUT_DIR bindings.rs; then foo-sys (lib), foo (lib), app (bin)".
func (d *Divergence) String() string {
	if d == nil || len(d.First) == 0 {
		return "no intermediate output differs"
	}
	f := d.First[0]
	s := "first divergence: " + f.Unit
	var files []string
	for i, c := range f.Files {
		if i == 3 {
			files = append(files, "…")
			break
		}
		files = append(files, c.Describe())
	}
	if len(files) > 0 {
		s += ", " + strings.Join(files, ", ")
	}
	if len(d.Chain) > 1 {
		s += "; then " + strings.Join(d.Chain[1:], ", ")
	}
	if len(d.First) > 1 {
		s += "; also first: "
		for i, o := range d.First[1:] {
			if i > 0 {
				s += ", "
			}
			if i == 4 {
				s += "…"
				break
			}
			s += o.Unit
		}
	}
	return s
}

// Compare compares two builds' trees unit by unit. artifactA and artifactB
// are the SHA-256 of the artifact in each build, to find the unit that made
// it and end the chain there; when no unit made it (a tarball packed after
// cargo ran), the chain ends at the last differing unit. Compare returns nil
// when no unit differs.
func Compare(a, b *Tree, artifactA, artifactB string) *Divergence {
	d := &Divergence{}
	units := map[string]*Unit{} // by ID, from B, else A
	deps := map[string][]string{}
	for _, t := range []*Tree{a, b} {
		for _, u := range t.Units {
			units[u.ID] = u
			for _, dep := range u.Deps {
				if !slices.Contains(deps[u.ID], dep) {
					deps[u.ID] = append(deps[u.ID], dep)
				}
			}
		}
	}
	ids := make([]string, 0, len(units))
	for id := range units {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	changes := map[string][]FileChange{}
	for _, id := range ids {
		ua, ub := a.Unit(id), b.Unit(id)
		switch {
		case ua == nil:
			d.OnlyB = append(d.OnlyB, units[id].Name())
			changes[id] = fileChanges(nil, ub.Files)
		case ub == nil:
			d.OnlyA = append(d.OnlyA, units[id].Name())
			changes[id] = fileChanges(ua.Files, nil)
		default:
			d.Units++
			if c := fileChanges(ua.Files, ub.Files); len(c) > 0 {
				changes[id] = c
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	d.Differing = len(changes)
	// Build order: depth from the units built first, then the x.py stage.
	depth := map[string]int{}
	var visit func(id string, seen map[string]bool) int
	visit = func(id string, seen map[string]bool) int {
		if v, ok := depth[id]; ok {
			return v
		}
		if seen[id] {
			return 0 // a cycle cannot come from cargo; do not loop on one
		}
		seen[id] = true
		v := 0
		for _, dep := range deps[id] {
			if units[dep] != nil {
				v = max(v, visit(dep, seen)+1)
			}
		}
		depth[id] = v
		return v
	}
	for _, id := range ids {
		visit(id, map[string]bool{})
	}
	order := func(x, y string) int {
		sx, sy := stageOf(units[x].Profile).order, stageOf(units[y].Profile).order
		if sx != sy {
			return sx - sy
		}
		if depth[x] != depth[y] {
			return depth[x] - depth[y]
		}
		return strings.Compare(x, y)
	}
	var first []string
	for id := range changes {
		earliest := true
		for _, dep := range deps[id] {
			if changes[dep] != nil {
				earliest = false
			}
		}
		if earliest {
			first = append(first, id)
		}
	}
	slices.SortFunc(first, order)
	// An earlier x.py stage's divergence can explain every later stage's.
	if len(first) > 0 {
		lo := stageOf(units[first[0]].Profile).order
		first = slices.DeleteFunc(first, func(id string) bool { return stageOf(units[id].Profile).order != lo })
	}
	for _, id := range first {
		d.First = append(d.First, Diverged{ID: id, Unit: units[id].Name(), Files: changes[id]})
	}
	d.Chain = chain(first, changes, deps, units, order, target(a, artifactA, b, artifactB))
	return d
}

// target is the ID of the unit whose output is the artifact, or "".
func target(a *Tree, ha string, b *Tree, hb string) string {
	for _, side := range []struct {
		t *Tree
		h string
	}{{b, hb}, {a, ha}} {
		if side.h == "" {
			continue
		}
		for _, u := range side.t.Units {
			for _, f := range u.Files {
				if f.SHA256 == side.h {
					return u.ID
				}
			}
		}
	}
	return ""
}

// chain walks from the first divergences through differing dependents to the
// artifact's unit (or, without one, to the differing unit built last) and
// returns the names along the shortest such path.
func chain(first []string, changes map[string][]FileChange, deps map[string][]string, units map[string]*Unit,
	order func(x, y string) int, goal string) []string {
	dependents := map[string][]string{}
	for id, ds := range deps {
		for _, dep := range ds {
			dependents[dep] = append(dependents[dep], id)
		}
	}
	for _, ds := range dependents {
		slices.SortFunc(ds, order)
	}
	if goal == "" || changes[goal] == nil {
		// The differing unit built last stands for the artifact.
		var all []string
		for id := range changes {
			all = append(all, id)
		}
		slices.SortFunc(all, order)
		goal = all[len(all)-1]
	}
	for _, start := range first {
		prev := map[string]string{start: ""}
		queue := []string{start}
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			if id == goal {
				var path []string
				for x := id; x != ""; x = prev[x] {
					path = append(path, units[x].Name())
				}
				slices.Reverse(path)
				return path
			}
			for _, next := range dependents[id] {
				if _, ok := prev[next]; !ok && changes[next] != nil {
					prev[next] = id
					queue = append(queue, next)
				}
			}
		}
	}
	if len(first) == 0 {
		return nil
	}
	return []string{units[first[0]].Name()}
}

// fileChanges lists the outputs that differ between two units' files.
func fileChanges(a, b []UnitFile) []FileChange {
	var out []FileChange
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Name < b[j].Name):
			out = append(out, FileChange{Name: a[i].Name, Kind: "removed", A: a[i].Path})
			i++
		case i == len(a) || b[j].Name < a[i].Name:
			out = append(out, FileChange{Name: b[j].Name, Kind: "added", B: b[j].Path})
			j++
		default:
			if a[i].SHA256 != b[j].SHA256 || a[i].Size != b[j].Size {
				out = append(out, FileChange{Name: a[i].Name, Kind: "changed", A: a[i].Path, B: b[j].Path})
			}
			i++
			j++
		}
	}
	// Generated sources first: they are the most readable evidence.
	slices.SortStableFunc(out, func(x, y FileChange) int { return evidenceRank(x.Name) - evidenceRank(y.Name) })
	return out
}

// evidenceRank orders a unit's differing outputs for people: generated files,
// the build script's output, metadata, libraries, executables.
func evidenceRank(name string) int {
	switch {
	case strings.HasPrefix(name, "out/"):
		return 0
	case name == "output" || name == "stderr":
		return 1
	case strings.HasSuffix(name, ".rmeta"):
		return 2
	case strings.HasSuffix(name, ".rlib"):
		return 3
	}
	return 4
}
