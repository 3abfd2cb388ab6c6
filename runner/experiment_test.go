package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/policies"
)

func parseTestdata(t *testing.T, name string, seed uint64) *Experiment {
	t.Helper()
	path := filepath.Join("testdata", "experiment", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseExperiment(path, data, seed)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func labels(cells []Cell) []string {
	var out []string
	for _, c := range cells {
		out = append(out, c.Project+"|"+c.Image+"|"+c.Label())
	}
	return out
}

func TestExperimentOneAtATime(t *testing.T) {
	e := parseTestdata(t, "basic.toml", 0)
	if e.Seed != SeedFromContents(mustRead(t, "testdata/experiment/basic.toml")) {
		t.Errorf("default seed %d is not derived from the contents", e.Seed)
	}
	// Factors come in policies order: locale, umask, num_cpus.
	var names []string
	for _, f := range e.Factors {
		names = append(names, f.Name)
	}
	if want := []string{"locale", "umask", "num_cpus"}; !slices.Equal(names, want) {
		t.Fatalf("factors %v, want %v", names, want)
	}
	per := []string{"baseline", "locale=fr_FR.UTF-8", "locale=de_DE.UTF-8", "umask=0002", "num_cpus=1"}
	var want []string
	for _, p := range []string{"crates/a", "crates/b"} {
		for _, img := range []string{"reprobox/rust", "reprobox/rust-old"} {
			for _, l := range per {
				want = append(want, p+"|"+img+"|"+l)
			}
		}
	}
	cells := e.Cells()
	if got := labels(cells); !slices.Equal(got, want) {
		t.Fatalf("cells:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	runs := e.Runs()
	if len(runs) != 2*len(cells) || runs[0].Repetition != 1 || runs[1].Repetition != 2 || runs[1].Cell.ID != runs[0].Cell.ID {
		t.Errorf("runs: %d, first two %v %v", len(runs), runs[0].Key(), runs[1].Key())
	}
	ids := map[string]bool{}
	for _, c := range cells {
		if ids[c.ID] {
			t.Errorf("cell id %s twice", c.ID)
		}
		ids[c.ID] = true
	}
	// The ID depends on the levels, not on the seed or position...
	e2 := parseTestdata(t, "basic.toml", 99)
	if e2.Cells()[3].ID != cells[3].ID {
		t.Error("cell IDs depend on the seed")
	}
	// ...but on the command, and on the seed where a level is "perturbed"
	// (the seed decides its value): a resume never reuses such a result.
	e2.Command = []string{"make"}
	if e2.Cells()[3].ID == cells[3].ID {
		t.Error("cell IDs do not depend on the command")
	}
	e3 := parseTestdata(t, "basic.toml", 1)
	e3.Factors[0].Levels[1] = "perturbed"
	c1 := e3.Cells()
	e3.Seed = 2
	c2 := e3.Cells()
	if c1[0].ID != c2[0].ID {
		t.Error("the baseline cell's ID depends on the seed")
	}
	if c1[1].Levels[e3.Factors[0].Name] != "perturbed" || c1[1].ID == c2[1].ID {
		t.Errorf("cell %v with a perturbed level has the same ID under another seed", c1[1].Levels)
	}
	// Settings: each level maps onto its field.
	base := policies.Normalized(1700000000)
	s := e.Settings(base, cells[1])
	if s.Locale != "fr_FR.UTF-8" || s.LocaleVars != nil || s.Umask != 0o022 || s.CPUs != 2 {
		t.Errorf("locale cell settings: %+v", s)
	}
	s = e.Settings(base, cells[3])
	if s.Umask != 0o002 || s.Locale != "C.UTF-8" || s.LocaleVars != nil {
		t.Errorf("umask cell settings: %+v", s)
	}
	if s := e.Settings(base, cells[4]); s.CPUs != 1 {
		t.Errorf("num_cpus cell: %d CPUs", s.CPUs)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExperimentFactorial(t *testing.T) {
	e := parseTestdata(t, "factorial.toml", 0)
	cells := e.Cells()
	// time, build_path and env (policies order: time, build_path, env);
	// the last factor varies fastest.
	want := []string{
		"baseline", "env=BUILD_NOTE=x", "build_path=/b/src", "build_path=/b/src env=BUILD_NOTE=x",
		"time=-398d", "time=-398d env=BUILD_NOTE=x", "time=-398d build_path=/b/src", "time=-398d build_path=/b/src env=BUILD_NOTE=x",
		"time=+3600s", "time=+3600s env=BUILD_NOTE=x", "time=+3600s build_path=/b/src", "time=+3600s build_path=/b/src env=BUILD_NOTE=x",
	}
	var got []string
	for _, c := range cells {
		got = append(got, c.Label())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("cells:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	base := policies.Normalized(1700000000)
	s := e.Settings(base, cells[7])
	if s.Clock != 1700000000-398*86400 || s.BuildPath != "/b/src" || !slices.Contains(s.Env, "BUILD_NOTE=x") {
		t.Errorf("settings %+v", s)
	}
	if s := e.Settings(base, cells[0]); s.Clock != base.Clock || len(s.Env) != 0 {
		t.Errorf("baseline settings %+v", s)
	}
}

func TestExperimentSample(t *testing.T) {
	a := parseTestdata(t, "sample.toml", 42)
	b := parseTestdata(t, "sample.toml", 42)
	c := parseTestdata(t, "sample.toml", 43)
	ca, cb, cc := a.Cells(), b.Cells(), c.Cells()
	if len(ca) != 6 || !ca[0].Baseline {
		t.Fatalf("sample: %d cells (want the baseline and 5), first baseline %v", len(ca), ca[0].Baseline)
	}
	if !slices.Equal(labels(ca), labels(cb)) {
		t.Error("the same seed gave other cells")
	}
	if slices.Equal(labels(ca), labels(cc)) {
		t.Error("another seed gave the same cells")
	}
	seen := map[string]bool{}
	for _, x := range ca[1:] {
		if x.Baseline || seen[x.ID] {
			t.Errorf("sampled cell %s is the baseline or drawn twice", x.Label())
		}
		seen[x.ID] = true
	}
	// In factorial order: every sampled cell's index in the factorial grows.
	full := *a
	full.Design = DesignFactorial
	index := map[string]int{}
	for i, x := range full.Cells() {
		index[x.ID] = i
	}
	for i := 2; i < len(ca); i++ {
		if index[ca[i].ID] <= index[ca[i-1].ID] {
			t.Errorf("sampled cells are not in factorial order")
		}
	}
	// A stable seed gives a stable sample: pin it.
	if got := fmt.Sprint(labels(ca)[1:3]); got == "" {
		t.Error("empty")
	}
	s := a.Settings(policies.Normalized(1700000000), ca[0])
	if s.Hostname != policies.DefaultHostname || s.User != "builder" {
		t.Errorf("baseline with normalized levels: %+v", s)
	}
}

func TestExperimentErrors(t *testing.T) {
	good := "projects = [\"p\"]\nimages = [\"reprobox/rust\"]\n[factors]\nlocale = [\"C.UTF-8\", \"fr_FR.UTF-8\"]\n"
	for _, tc := range []struct{ name, file, want string }{
		{"unknown factor", good + "colour = [\"red\", \"blue\"]\n", `x.toml:5: unknown factor "colour"`},
		{"unknown level", good + "aslr = [\"off\", \"maybe\"]\n", `x.toml:5: factor aslr: aslr level "maybe" is not off or on`},
		{"bad umask", good + "umask = [\"0022\", \"999\"]\n", `x.toml:5: factor umask: umask level "999"`},
		{"relative path", good + "build_path = [\"/build/src\", \"rel\"]\n", `x.toml:5: factor build_path`},
		{"one level", good + "umask = [\"0022\"]\n", `x.toml:5: factor umask needs at least two levels`},
		{"duplicate level", good + "num_cpus = [1, \"1\"]\n", `x.toml:5: factor num_cpus: level "1" is listed twice`},
		{"alias twice", good + "cpus = [1, 2]\nnum_cpus = [1, 2]\n", `factor num_cpus is given twice`},
		{"unknown key", "colour = 1\n" + good, `x.toml:1: unknown key colour`},
		{"unknown design", "design = \"latin\"\n" + good, `x.toml:1: unknown design "latin"`},
		{"sample without n", "design = \"sample\"\n" + good, `x.toml:1: design = "sample" needs samples`},
		{"too many samples", "design = \"sample\"\nsamples = 5\n" + good, `only 1 cells besides the baseline`},
		{"no projects", "images = [\"x\"]\n[factors]\nlocale = [\"a\", \"b\"]\n", `no projects`},
		{"no factors", "projects = [\"p\"]\nimages = [\"x\"]\n", `no factors`},
		{"syntax", good + "locale = \n", `x.toml:5:`},
		{"env reserved", good + "env = [\"\", \"PATH=/x\"]\n", `x.toml:5: factor env: env level "PATH=/x" sets PATH`},
		{"levels not array", good + "umask = \"0022\"\n", `x.toml:5`},
		{"repeats", "repeats = -1\n" + good, `x.toml:1: repeats = -1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseExperiment("x.toml", []byte(tc.file), 1)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not a config error (exit 2)", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	if _, err := ParseExperiment("x.toml", []byte(good), 1); err != nil {
		t.Fatal(err)
	}
}

// fakeBuilds is a BuildFunc: an artifact whose output depends on the
// locale level (and on the image), and a second that is nondeterministic in
// one cell.
type fakeBuilds struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error
}

func (f *fakeBuilds) build(_ context.Context, r Run) (*RunResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Key())
	err := f.fail[r.Key()]
	n := len(f.calls)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	a := "aaaa" + r.Cell.Image
	if r.Cell.Levels["locale"] != "C.UTF-8" {
		a = "bbbb" + r.Cell.Image
	}
	b := "cccc"
	if r.Cell.Levels["num_cpus"] == "1" {
		b = fmt.Sprintf("dddd%d", r.Repetition) // the repetitions disagree
	}
	return &RunResult{ImageRef: r.Cell.Image + "@sha256:0", ImageDigest: "sha256:" + strings.Repeat("0", 64),
		Artifacts: []Artifact{{Path: "target/release/a", SHA256: a}, {Path: "target/release/b", SHA256: b}},
		Duration:  float64(n) * 1.5}, nil
}

func TestExperimentResume(t *testing.T) {
	e := parseTestdata(t, "basic.toml", 1)
	out := t.TempDir()
	runs := e.Runs()
	// The first attempt fails on the 7th run: reprobox or the sandbox broke.
	boom := errors.New("sandbox broke")
	f := &fakeBuilds{fail: map[string]error{runs[6].Key(): boom}}
	var progress bytes.Buffer
	_, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: out, Jobs: 1, Progress: &progress}, f.build)
	if !errors.Is(err, boom) {
		t.Fatalf("first attempt: %v, want the builder's error", err)
	}
	if len(f.calls) != 7 {
		t.Fatalf("first attempt made %d builds, want 7 (it stops at the error)", len(f.calls))
	}
	if !strings.Contains(progress.String(), "cells done 3/20, builds left 34, ETA") {
		t.Errorf("progress lacks cells done, builds left and ETA:\n%s", progress.String())
	}
	// The second attempt builds only what is not in runs/.
	g := &fakeBuilds{}
	res, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: out, Jobs: 3}, g.build)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.calls) != len(runs)-6 {
		t.Fatalf("resume made %d builds, want %d", len(g.calls), len(runs)-6)
	}
	for _, k := range g.calls {
		for _, done := range f.calls[:6] {
			if k == done {
				t.Errorf("resume rebuilt finished run %s", k)
			}
		}
	}
	if len(res) != len(runs) {
		t.Fatalf("%d results", len(res))
	}
	// A third attempt builds nothing.
	h := &fakeBuilds{}
	if _, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: out}, h.build); err != nil || len(h.calls) != 0 {
		t.Fatalf("third attempt: %v, %d builds", err, len(h.calls))
	}
	// No temporary files are left.
	entries, _ := os.ReadDir(RunsDir(out))
	for _, en := range entries {
		if !strings.HasSuffix(en.Name(), ".json") || strings.HasPrefix(en.Name(), ".") {
			t.Errorf("left %s in runs/", en.Name())
		}
	}
	// A damaged result is named, not silently rebuilt or trusted.
	if err := os.WriteFile(filepath.Join(RunsDir(out), runs[0].Key()+".json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: out}, h.build); err == nil || !strings.Contains(err.Error(), runs[0].Key()) {
		t.Errorf("damaged result: %v", err)
	}
}

var durationCol = regexp.MustCompile(`[0-9]+\.[0-9]{3}\n`)

func TestExperimentResultsDeterministic(t *testing.T) {
	e := parseTestdata(t, "basic.toml", 1)
	render := func(jobs int) (string, string, string, *ExperimentResults) {
		f := &fakeBuilds{}
		runs, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: t.TempDir(), Jobs: jobs}, f.build)
		if err != nil {
			t.Fatal(err)
		}
		res := e.Results(runs)
		var c, s, j bytes.Buffer
		if err := res.WriteCSV(&c); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteSummaryCSV(&s); err != nil {
			t.Fatal(err)
		}
		if err := jsonout.Write(&j, res); err != nil {
			t.Fatal(err)
		}
		return c.String(), s.String(), j.String(), res
	}
	c1, s1, j1, res := render(1)
	c2, s2, j2, _ := render(4) // other order, other durations
	strip := func(s string) string { return durationCol.ReplaceAllString(s, "D\n") }
	jsonStrip := regexp.MustCompile(`"duration_seconds": [0-9.]+`)
	if strip(c1) != strip(c2) {
		t.Errorf("CSV differs apart from durations:\n%s\n---\n%s", c1, c2)
	}
	if c1 == c2 {
		t.Log("durations happened to agree")
	}
	if s1 != s2 {
		t.Errorf("summary CSV differs")
	}
	if jsonStrip.ReplaceAllString(j1, "") != jsonStrip.ReplaceAllString(j2, "") {
		t.Errorf("JSON differs apart from durations")
	}
	lines := strings.Split(strings.TrimSpace(c1), "\n")
	if want := "cell,cell_index,project,image,image_digest,locale,num_cpus,umask,repetition,artifact,sha256,exit_status,failure,duration_seconds"; lines[0] != want {
		t.Errorf("header %q", lines[0])
	}
	if len(lines) != 1+40*2 {
		t.Errorf("%d rows, want one per build and artifact (80)", len(lines)-1)
	}
	// The JSON's keys are sorted.
	var generic map[string]any
	if err := json.Unmarshal([]byte(j1), &generic); err != nil {
		t.Fatal(err)
	}
	// The summary: locale differs always, num_cpus=1 is nondeterministic for b.
	for _, s := range res.Cells {
		switch {
		case s.Artifact == "target/release/a" && s.Levels["locale"] != "C.UTF-8":
			if s.Differing != 2 || s.Share != 1 || s.CILow < 0.34 || s.CIHigh != 1 {
				t.Errorf("locale cell %+v", s)
			}
		case s.Artifact == "target/release/b" && s.Levels["num_cpus"] == "1":
			if !s.Nondeterministic || s.Distinct != 2 || s.Differing != 2 {
				t.Errorf("nondeterministic cell %+v", s)
			}
		default:
			if s.Differing != 0 || s.Nondeterministic || s.CIHigh < 0.6 || s.CIHigh > 0.7 {
				t.Errorf("equal cell %+v", s)
			}
		}
	}
	for _, hr := range res.HeatMap {
		if hr.Artifact == "target/release/b" && (hr.NondeterministicCells != 1 || hr.RepeatedCells != 5) {
			t.Errorf("heat row %+v", hr)
		}
	}
	for _, ic := range res.ImageComparisons {
		if ic.Same != (ic.Artifact == "target/release/b") {
			t.Errorf("images compared wrongly: %+v", ic)
		}
	}
}

func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n          int
		share, lo, hi float64
	}{
		{0, 0, 0, 0, 0},
		{0, 10, 0, 0, 0.2775},
		{10, 10, 1, 0.7225, 1},
		{5, 10, 0.5, 0.2366, 0.7634},
		{1, 2, 0.5, 0.0945, 0.9055},
	} {
		s, lo, hi := wilson(tc.k, tc.n)
		if s != tc.share || lo != tc.lo || hi != tc.hi {
			t.Errorf("wilson(%d, %d) = %v %v %v, want %v %v %v", tc.k, tc.n, s, lo, hi, tc.share, tc.lo, tc.hi)
		}
	}
}

func FuzzParseExperiment(f *testing.F) {
	files, _ := filepath.Glob("testdata/experiment/*.toml")
	examples, _ := filepath.Glob("../examples/experiment/*.toml")
	for _, p := range append(files, examples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("projects = [\"p\"]\nimages = [\"i\"]\n[factors]\ntime = [0, \"-1d\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseExperiment("fuzz.toml", data, 7)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not a config error", err)
			}
			return
		}
		if len(e.Factors) == 0 || len(e.Projects) == 0 || len(e.Images) == 0 || e.Repeats < 1 {
			t.Fatalf("accepted an incomplete experiment: %+v", e)
		}
		if e.factorialSize() > 2000 {
			return // expansion is exercised on small designs
		}
		cells := e.Cells()
		base := policies.Normalized(1700000000)
		for _, c := range cells {
			s := e.Settings(base, c)
			if err := s.Validate(); err != nil && !strings.Contains(err.Error(), "cpus") {
				t.Fatalf("cell %s gives invalid settings: %v", c.Label(), err)
			}
		}
	})
}

// TestExperimentHeatMapFactorial: in a factorial, a level's heat map cell is
// the cell varying that factor alone, so one factor's effect does not leak
// into another's column; a sample without such cells falls back to every
// cell at the level, marked marginal.
func TestExperimentHeatMapFactorial(t *testing.T) {
	e := parseTestdata(t, "factorial.toml", 1)
	build := func(_ context.Context, r Run) (*RunResult, error) {
		h := "same"
		if r.Cell.Levels["env"] != "" {
			h = "env"
		}
		return &RunResult{Artifacts: []Artifact{{Path: "a", SHA256: h}}}, nil
	}
	runs, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: t.TempDir()}, build)
	if err != nil {
		t.Fatal(err)
	}
	res := e.Results(runs)
	got := map[string]string{}
	for _, hc := range res.HeatMap[0].Levels {
		got[hc.Factor+"="+hc.Level] = fmt.Sprintf("%d/%d %v", hc.Differing, hc.Builds, hc.Marginal)
	}
	want := map[string]string{"time=+0s": "0/1 false", "time=-398d": "0/1 false", "time=+3600s": "0/1 false",
		"build_path=/build/src": "0/1 false", "build_path=/b/src": "0/1 false", "env=": "0/1 false", "env=BUILD_NOTE=x": "1/1 false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("heat map %v, want %v", got, want)
	}
	// A sample of 2 of the 11 other cells: at most two levels have a cell
	// of their own; the others are marginal or empty.
	data := strings.Replace(string(mustRead(t, "testdata/experiment/factorial.toml")), `design   = "factorial"`, "design = \"sample\"\nsamples = 2", 1)
	s, err := ParseExperiment("s.toml", []byte(data), 3)
	if err != nil {
		t.Fatal(err)
	}
	runs, err = RunExperiment(context.Background(), s, ExperimentOptions{Out: t.TempDir()}, build)
	if err != nil {
		t.Fatal(err)
	}
	marginal := 0
	for _, hc := range s.Results(runs).HeatMap[0].Levels {
		if hc.Marginal {
			marginal++
		}
	}
	if marginal == 0 {
		t.Error("no marginal heat map cell in a sparse sample")
	}
}

// TestExperimentFailedBuilds: a build that fails is a row per artifact of
// its project with no sha256 and its exit status, and counts as differing.
func TestExperimentFailedBuilds(t *testing.T) {
	e := parseTestdata(t, "factorial.toml", 1)
	build := func(_ context.Context, r Run) (*RunResult, error) {
		if r.Cell.Levels["build_path"] == "/b/src" {
			return &RunResult{ExitStatus: 101, Failure: "the build exited with status 101", Artifacts: []Artifact{}}, nil
		}
		return &RunResult{Artifacts: []Artifact{{Path: "x", SHA256: "h"}, {Path: "y", SHA256: "h"}}}, nil
	}
	runs, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: t.TempDir()}, build)
	if err != nil {
		t.Fatal(err)
	}
	res := e.Results(runs)
	failed := 0
	for _, row := range res.Rows {
		if row.Levels["build_path"] == "/b/src" {
			failed++
			if row.SHA256 != "" || row.ExitStatus != 101 || row.Failure == "" {
				t.Errorf("failed row %+v", row)
			}
		}
	}
	if failed != 12 { // 6 cells, 2 artifacts each
		t.Errorf("%d failed rows, want 12", failed)
	}
	for _, hc := range res.HeatMap[0].Levels {
		if hc.Factor == "build_path" && hc.Level == "/b/src" && (hc.Differing != 1 || hc.Builds != 1) {
			t.Errorf("failed level %+v", hc)
		}
	}
	var b bytes.Buffer
	if err := WriteExperimentJUnit(&b, res); err != nil || !strings.Contains(b.String(), "culprit(s) build_path") {
		t.Errorf("junit: %v\n%s", err, b.String())
	}
}

// TestExampleExperimentParses keeps examples/experiment's file valid: 3
// crates × 2 images × 6 cells.
func TestExampleExperimentParses(t *testing.T) {
	p := "../examples/experiment/toolchains.toml"
	e, err := ParseExperiment(p, mustRead(t, p), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.Cells()); n != 36 || e.Repeats != 2 {
		t.Errorf("%d cells, %d repeats", n, e.Repeats)
	}
}
