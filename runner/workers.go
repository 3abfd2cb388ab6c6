package runner

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// A CheckBuild is one build a check made: which worker ran it (with several
// workers, sandbox/pool) and what it produced. The report lists them when
// the builds ran on workers or with --timings; which build ran where is
// then a fact of that run, not of the project.
type CheckBuild struct {
	// N numbers the build as the progress lines do ("build N").
	N int `json:"n"`
	// Set is the perturbed factors; empty for the control.
	Set    []string `json:"set"`
	Worker string   `json:"worker,omitempty"`
	// Failed says why the build failed.
	Failed string `json:"failed,omitempty"`
	// Artifacts are the artifacts' sha256, by path.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Seconds is the build's wall time (with --timings only).
	Seconds float64 `json:"seconds,omitempty"`
}

// A WorkerFinding names a worker whose builds of a set disagree, on an
// artifact, with what the builds of that set on every other worker agree
// on: the worker does not reproduce, whatever the factors do.
type WorkerFinding struct {
	Worker   string   `json:"worker"`
	Set      []string `json:"set"`
	Artifact string   `json:"artifact"`
	// Got lists what the worker's builds gave (sha256, or "failed: …"),
	// sorted; Agreed is what the others' builds all gave.
	Got    []string `json:"got"`
	Agreed string   `json:"agreed"`
	// Builds are the worker's builds of the set; AgreedBy the other
	// builds, and Others their workers (sorted).
	Builds   []int    `json:"builds"`
	AgreedBy []int    `json:"agreed_by"`
	Others   []string `json:"others"`
}

// minAgreeing is how many builds on other workers must agree before a
// worker that differs from them is named.
const minAgreeing = 2

// WorkerFindings names the workers whose results differ for builds that the
// other workers agree on: for each set of perturbed factors and artifact, a
// worker is named when every one of its builds gives another result than
// all (at least two) builds on the other workers, which all give one. The
// comparison counts only artifacts that are otherwise deterministic: when
// the builds without that worker already disagree for some set, that
// artifact's differences are nondeterminism, not the worker's. It is a pure
// function of the builds; the findings are sorted by worker, set and
// artifact.
func WorkerFindings(builds []CheckBuild) []WorkerFinding {
	workers := map[string]bool{}
	bySet := map[string][]CheckBuild{}
	paths := map[string]bool{}
	for _, b := range builds {
		if b.Worker == "" {
			continue
		}
		workers[b.Worker] = true
		k := strings.Join(b.Set, ",")
		bySet[k] = append(bySet[k], b)
		for p := range b.Artifacts {
			paths[p] = true
		}
	}
	if len(workers) < 2 {
		return nil
	}
	var out []WorkerFinding
	for _, w := range slices.Sorted(maps.Keys(workers)) {
		for _, path := range slices.Sorted(maps.Keys(paths)) {
			if !consistentWithout(bySet, w, path) {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(bySet)) {
				if f, ok := workerDiffers(bySet[k], w, path); ok {
					out = append(out, f)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b WorkerFinding) int {
		return cmp.Or(strings.Compare(a.Worker, b.Worker),
			strings.Compare(strings.Join(a.Set, ","), strings.Join(b.Set, ",")),
			strings.Compare(a.Artifact, b.Artifact))
	})
	return out
}

// result is what build b gave for path.
func (b CheckBuild) result(path string) string {
	if b.Failed != "" {
		return "failed: " + b.Failed
	}
	return b.Artifacts[path]
}

// consistentWithout reports whether, leaving out worker w's builds, every
// set's builds agree on path.
func consistentWithout(bySet map[string][]CheckBuild, w, path string) bool {
	for _, bs := range bySet {
		seen := ""
		for _, b := range bs {
			if b.Worker == w {
				continue
			}
			r := b.result(path)
			if seen != "" && r != seen {
				return false
			}
			seen = r
		}
	}
	return true
}

// workerDiffers compares worker w's builds of one set with the others'.
func workerDiffers(bs []CheckBuild, w, path string) (WorkerFinding, bool) {
	f := WorkerFinding{Worker: w, Artifact: path, Got: []string{}, Builds: []int{}, AgreedBy: []int{}, Others: []string{}}
	for _, b := range bs {
		r := b.result(path)
		if b.Worker == w {
			f.Builds = append(f.Builds, b.N)
			if !slices.Contains(f.Got, r) {
				f.Got = append(f.Got, r)
			}
			continue
		}
		if len(f.AgreedBy) > 0 && r != f.Agreed {
			return f, false
		}
		f.Agreed = r
		f.AgreedBy = append(f.AgreedBy, b.N)
		if !slices.Contains(f.Others, b.Worker) {
			f.Others = append(f.Others, b.Worker)
		}
	}
	if len(f.Builds) == 0 || len(f.AgreedBy) < minAgreeing || slices.Contains(f.Got, f.Agreed) {
		return f, false
	}
	f.Set = slices.Clone(bs[0].Set)
	if f.Set == nil {
		f.Set = []string{}
	}
	slices.Sort(f.Got)
	slices.Sort(f.Builds)
	slices.Sort(f.AgreedBy)
	slices.Sort(f.Others)
	return f, true
}

// BuildsPerWorker counts the builds each worker ran.
func BuildsPerWorker(builds []CheckBuild) map[string]int {
	out := map[string]int{}
	for _, b := range builds {
		if b.Worker != "" {
			out[b.Worker]++
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// buildList lists the check's builds by number.
func (c *checker) buildList() []CheckBuild {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CheckBuild
	for _, obs := range c.memo {
		for _, o := range obs {
			b := CheckBuild{N: o.n, Set: slices.Clone(o.set), Worker: o.worker, Failed: o.failed}
			if b.Set == nil {
				b.Set = []string{}
			}
			if len(o.hashes) > 0 {
				b.Artifacts = maps.Clone(o.hashes)
			}
			if c.opts.Timings {
				b.Seconds = o.took.Seconds()
			}
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b CheckBuild) int { return cmp.Compare(a.N, b.N) })
	return out
}

// workerReport fills the report's per-build list (when the builds ran on
// workers, or with timings), the builds per worker and the worker findings.
func (c *checker) workerReport(rep *CheckReport) {
	builds := c.buildList()
	rep.Workers = BuildsPerWorker(builds)
	if rep.Workers == nil && !c.opts.Timings {
		return
	}
	rep.PerBuild = builds
	rep.WorkerFindings = WorkerFindings(builds)
}

// onWorker is " on worker W" for a progress line, or "".
func onWorker(w string) string {
	if w == "" {
		return ""
	}
	return " on worker " + w
}
