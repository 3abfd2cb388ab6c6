package runner

import (
	"cmp"
	"encoding/csv"
	"io"
	"math"
	"slices"
	"strconv"
)

// An ExperimentRow is one artifact of one build: the tidy form of the
// results, one row per build and artifact.
type ExperimentRow struct {
	Cell        string            `json:"cell"`
	CellIndex   int               `json:"cell_index"`
	Project     string            `json:"project"`
	Image       string            `json:"image"`
	ImageDigest string            `json:"image_digest"`
	Levels      map[string]string `json:"levels"`
	Repetition  int               `json:"repetition"`
	Artifact    string            `json:"artifact"`
	// SHA256 is empty when the build failed or did not make the artifact.
	SHA256     string  `json:"sha256"`
	ExitStatus int     `json:"exit_status"`
	Failure    string  `json:"failure,omitempty"`
	Duration   float64 `json:"duration_seconds"`
}

// A CellSummary is one artifact in one cell: its builds, its distinct
// outputs, and how many differ from the baseline's output.
type CellSummary struct {
	Cell      string            `json:"cell"`
	CellIndex int               `json:"cell_index"`
	Label     string            `json:"label"`
	Project   string            `json:"project"`
	Image     string            `json:"image"`
	Levels    map[string]string `json:"levels"`
	Baseline  bool              `json:"baseline"`
	Artifact  string            `json:"artifact"`
	Builds    int               `json:"builds"`
	// Outputs are the distinct sha256s, sorted ("" for a build without the
	// artifact).
	Outputs  []string `json:"outputs"`
	Distinct int      `json:"distinct_outputs"`
	// BaselineSHA256 is the commonest output of the baseline cell of the
	// same project and image (the smallest on a tie): the reference.
	BaselineSHA256 string `json:"baseline_sha256"`
	// Differing builds are those whose output is not the reference; Share
	// is their fraction, with a 95% Wilson score interval.
	Differing int     `json:"differing"`
	Share     float64 `json:"share_differing"`
	CILow     float64 `json:"ci95_low"`
	CIHigh    float64 `json:"ci95_high"`
	// Nondeterministic is set when the cell's repetitions disagree.
	Nondeterministic bool `json:"nondeterministic"`
}

// A HeatCell is the builds of one factor at one level against the baseline:
// the cell that varies this factor alone (the baseline cell itself for the
// first level), which one-at-a-time and factorial designs always have. When
// the design has no such cell (a sample), every cell with the factor at that
// level is aggregated instead, with Marginal set: other factors differ there
// too.
type HeatCell struct {
	Factor    string  `json:"factor"`
	Level     string  `json:"level"`
	Baseline  bool    `json:"baseline"`
	Marginal  bool    `json:"marginal,omitempty"`
	Builds    int     `json:"builds"`
	Differing int     `json:"differing"`
	Share     float64 `json:"share_differing"`
	CILow     float64 `json:"ci95_low"`
	CIHigh    float64 `json:"ci95_high"`
}

// A HeatRow is one artifact of one project built in one image, against every
// factor level.
type HeatRow struct {
	Project  string     `json:"project"`
	Image    string     `json:"image"`
	Artifact string     `json:"artifact"`
	Levels   []HeatCell `json:"levels"`
	// NondeterministicCells counts the cells (of those with two builds or
	// more) whose repetitions disagree, of RepeatedCells.
	NondeterministicCells int     `json:"nondeterministic_cells"`
	RepeatedCells         int     `json:"repeated_cells"`
	NondeterminismRate    float64 `json:"nondeterminism_rate"`
}

// An ImageComparison is one artifact's baseline output in every image.
type ImageComparison struct {
	Project  string `json:"project"`
	Artifact string `json:"artifact"`
	// Outputs maps each image (as written) to its baseline output.
	Outputs map[string]string `json:"outputs"`
	Same    bool              `json:"same"`
}

// ExperimentResults are what `reprobox experiment` writes as results.json.
type ExperimentResults struct {
	File    string             `json:"file"`
	Seed    uint64             `json:"seed"`
	Design  string             `json:"design"`
	Repeats int                `json:"repeats"`
	Samples int                `json:"samples,omitempty"`
	Factors []ExperimentFactor `json:"factors"`
	// Images maps each image as written to the digest it resolved to.
	Images   map[string]string `json:"images"`
	Projects []string          `json:"projects"`
	Rows     []ExperimentRow   `json:"rows"`
	Cells    []CellSummary     `json:"cells"`
	HeatMap  []HeatRow         `json:"heat_map"`
	// ImageComparisons compare the baselines across images.
	ImageComparisons []ImageComparison `json:"image_comparisons"`
}

// Results gathers the runs' results: tidy rows, sorted by project, image,
// cell, repetition and artifact, and the summaries.
func (e *Experiment) Results(runs []*RunResult) *ExperimentResults {
	res := &ExperimentResults{File: e.File, Seed: e.Seed, Design: e.Design, Repeats: e.Repeats, Samples: e.Samples,
		Factors: e.Factors, Images: map[string]string{}, Projects: e.Projects,
		Rows: []ExperimentRow{}, Cells: []CellSummary{}, HeatMap: []HeatRow{}, ImageComparisons: []ImageComparison{}}
	// The artifacts of a project: every path any of its builds made.
	artifacts := map[string][]string{}
	for _, r := range runs {
		if r == nil {
			continue
		}
		res.Images[r.Cell.Image] = r.ImageDigest
		for _, a := range r.Artifacts {
			if !slices.Contains(artifacts[r.Cell.Project], a.Path) {
				artifacts[r.Cell.Project] = append(artifacts[r.Cell.Project], a.Path)
			}
		}
	}
	for _, l := range artifacts {
		slices.Sort(l)
	}
	for _, r := range runs {
		if r == nil {
			continue
		}
		paths := artifacts[r.Cell.Project]
		if len(paths) == 0 {
			paths = []string{""}
		}
		for _, p := range paths {
			row := ExperimentRow{Cell: r.Cell.ID, CellIndex: r.Cell.Index, Project: r.Cell.Project, Image: r.Cell.Image,
				ImageDigest: r.ImageDigest, Levels: r.Cell.Levels, Repetition: r.Repetition, Artifact: p,
				ExitStatus: r.ExitStatus, Failure: r.Failure, Duration: math.Round(r.Duration*1000) / 1000}
			for _, a := range r.Artifacts {
				if a.Path == p {
					row.SHA256 = a.SHA256
				}
			}
			res.Rows = append(res.Rows, row)
		}
	}
	slices.SortFunc(res.Rows, func(a, b ExperimentRow) int {
		return cmp.Or(cmp.Compare(a.CellIndex, b.CellIndex), cmp.Compare(a.Repetition, b.Repetition), cmp.Compare(a.Artifact, b.Artifact))
	})
	// Per cell and artifact.
	type key struct{ cell, artifact string }
	outputs := map[key][]string{}
	var order []key
	cellOf := map[string]Cell{}
	for _, row := range res.Rows {
		k := key{row.Cell, row.Artifact}
		if _, ok := outputs[k]; !ok {
			order = append(order, k)
		}
		outputs[k] = append(outputs[k], row.SHA256)
	}
	for _, r := range runs {
		if r != nil {
			cellOf[r.Cell.ID] = r.Cell
		}
	}
	reference := map[[3]string]string{} // project, image, artifact → baseline output
	for _, k := range order {
		if c := cellOf[k.cell]; c.Baseline {
			reference[[3]string{c.Project, c.Image, k.artifact}] = mode(outputs[k])
		}
	}
	for _, k := range order {
		c := cellOf[k.cell]
		outs := outputs[k]
		ref, haveRef := reference[[3]string{c.Project, c.Image, k.artifact}]
		distinct := slices.Clone(outs)
		slices.Sort(distinct)
		distinct = slices.Compact(distinct)
		s := CellSummary{Cell: c.ID, CellIndex: c.Index, Label: c.Label(), Project: c.Project, Image: c.Image, Levels: c.Levels,
			Baseline: c.Baseline, Artifact: k.artifact, Builds: len(outs), Outputs: distinct, Distinct: len(distinct),
			BaselineSHA256: ref, Nondeterministic: len(distinct) > 1}
		for _, o := range outs {
			if !haveRef || o != ref || o == "" {
				s.Differing++
			}
		}
		s.Share, s.CILow, s.CIHigh = wilson(s.Differing, s.Builds)
		res.Cells = append(res.Cells, s)
	}
	// The heat map: per project, image and artifact, every factor level.
	type hk struct{ project, image, artifact string }
	var rows []hk
	seen := map[hk]bool{}
	for _, s := range res.Cells {
		k := hk{s.Project, s.Image, s.Artifact}
		if !seen[k] {
			seen[k] = true
			rows = append(rows, k)
		}
	}
	for _, k := range rows {
		hr := HeatRow{Project: k.project, Image: k.image, Artifact: k.artifact, Levels: []HeatCell{}}
		for _, f := range e.Factors {
			for li, lvl := range f.Levels {
				hc := HeatCell{Factor: f.Name, Level: lvl, Baseline: li == 0}
				for _, marginal := range []bool{false, true} {
					hc.Marginal = marginal
					for _, s := range res.Cells {
						if !marginal && !onlyVaried(s, f.Name, e.Factors) {
							continue
						}
						if s.Project == k.project && s.Image == k.image && s.Artifact == k.artifact && s.Levels[f.Name] == lvl {
							hc.Builds += s.Builds
							hc.Differing += s.Differing
						}
					}
					if hc.Builds > 0 {
						break
					}
				}
				hc.Share, hc.CILow, hc.CIHigh = wilson(hc.Differing, hc.Builds)
				hr.Levels = append(hr.Levels, hc)
			}
		}
		for _, s := range res.Cells {
			if s.Project == k.project && s.Image == k.image && s.Artifact == k.artifact && s.Builds > 1 {
				hr.RepeatedCells++
				if s.Nondeterministic {
					hr.NondeterministicCells++
				}
			}
		}
		if hr.RepeatedCells > 0 {
			hr.NondeterminismRate = round4(float64(hr.NondeterministicCells) / float64(hr.RepeatedCells))
		}
		res.HeatMap = append(res.HeatMap, hr)
	}
	// Toolchains: the baselines across images.
	for _, proj := range e.Projects {
		paths := artifacts[proj]
		for _, p := range paths {
			ic := ImageComparison{Project: proj, Artifact: p, Outputs: map[string]string{}, Same: true}
			first := ""
			for i, img := range e.Images {
				o := reference[[3]string{proj, img, p}]
				ic.Outputs[img] = o
				if i == 0 {
					first = o
				} else if o != first {
					ic.Same = false
				}
			}
			res.ImageComparisons = append(res.ImageComparisons, ic)
		}
	}
	return res
}

// onlyVaried reports whether s differs from the baseline in factor alone, or
// not at all.
func onlyVaried(s CellSummary, factor string, factors []ExperimentFactor) bool {
	for _, f := range factors {
		if f.Name != factor && s.Levels[f.Name] != f.Levels[0] {
			return false
		}
	}
	return true
}

// mode is the commonest value, the smallest on a tie.
func mode(vs []string) string {
	counts := map[string]int{}
	for _, v := range vs {
		counts[v]++
	}
	best, n := "", -1
	for v, c := range counts {
		if c > n || c == n && v < best {
			best, n = v, c
		}
	}
	return best
}

// wilson is the share k/n with its 95% Wilson score interval, rounded to four
// places. n = 0 gives zeros.
func wilson(k, n int) (share, low, high float64) {
	if n == 0 {
		return 0, 0, 0
	}
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	nf := float64(n)
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return round4(p), round4(math.Max(0, center-half)), round4(math.Min(1, center+half))
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

// FactorColumns are the factor columns of the CSV, sorted by name.
func (r *ExperimentResults) FactorColumns() []string {
	var names []string
	for _, f := range r.Factors {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// WriteCSV writes the rows as a tidy CSV: a header, then one line per build
// and artifact, the factor levels as columns (sorted by name).
func (r *ExperimentResults) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	factors := r.FactorColumns()
	header := []string{"cell", "cell_index", "project", "image", "image_digest"}
	header = append(header, factors...)
	header = append(header, "repetition", "artifact", "sha256", "exit_status", "failure", "duration_seconds")
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, row := range r.Rows {
		rec := []string{row.Cell, strconv.Itoa(row.CellIndex), row.Project, row.Image, row.ImageDigest}
		for _, f := range factors {
			rec = append(rec, row.Levels[f])
		}
		rec = append(rec, strconv.Itoa(row.Repetition), row.Artifact, row.SHA256, strconv.Itoa(row.ExitStatus), row.Failure,
			strconv.FormatFloat(row.Duration, 'f', 3, 64))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteSummaryCSV writes the per cell and artifact summary as CSV.
func (r *ExperimentResults) WriteSummaryCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	factors := r.FactorColumns()
	header := []string{"cell", "cell_index", "project", "image"}
	header = append(header, factors...)
	header = append(header, "baseline", "artifact", "builds", "distinct_outputs", "differing", "share_differing", "ci95_low", "ci95_high", "nondeterministic")
	if err := cw.Write(header); err != nil {
		return err
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	for _, s := range r.Cells {
		rec := []string{s.Cell, strconv.Itoa(s.CellIndex), s.Project, s.Image}
		for _, name := range factors {
			rec = append(rec, s.Levels[name])
		}
		rec = append(rec, strconv.FormatBool(s.Baseline), s.Artifact, strconv.Itoa(s.Builds), strconv.Itoa(s.Distinct),
			strconv.Itoa(s.Differing), f(s.Share), f(s.CILow), f(s.CIHigh), strconv.FormatBool(s.Nondeterministic))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Differing reports whether any artifact of any cell differs from its
// baseline or any cell's repetitions disagree.
func (r *ExperimentResults) Differing() bool {
	for _, s := range r.Cells {
		if s.Differing > 0 || s.Nondeterministic {
			return true
		}
	}
	return false
}
