package runner

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/policies"
)

func TestBuildsForConfidence(t *testing.T) {
	for _, tc := range []struct {
		c    float64
		want int
	}{{0.5, 2}, {0.75, 3}, {0.9, 5}, {0.95, 6}, {0.99, 8}, {0.999, 11}} {
		got, err := BuildsForConfidence(tc.c)
		if err != nil || got != tc.want {
			t.Errorf("BuildsForConfidence(%v) = %d, %v; want %d", tc.c, got, err, tc.want)
		}
		// The defining property: the smallest k with 2^-(k-1) <= 1-c.
		if math.Pow(2, -float64(got-1)) > 1-tc.c+1e-12 || math.Pow(2, -float64(got-2)) <= 1-tc.c {
			t.Errorf("%v: %d builds is not the smallest enough", tc.c, got)
		}
	}
	for _, bad := range []float64{0, 1, -0.5, 1.5, math.NaN()} {
		if _, err := BuildsForConfidence(bad); err == nil {
			t.Errorf("confidence %v accepted", bad)
		}
	}
}

func bb(kind, sum string) *BisectBuild {
	return &BisectBuild{Kind: kind, Artifacts: map[string]string{"target/release/app": sum}}
}

func TestDecide(t *testing.T) {
	N, P := "normalized", "perturbed"
	fail := &BisectBuild{Kind: N, Failed: "the build exited with status 101"}
	for _, tc := range []struct {
		name          string
		builds        []*BisectBuild
		vary          bool
		verdict, want string
	}{
		{"none yet", nil, false, "", ""},
		{"agreeing, too few", []*BisectBuild{bb(N, "a"), bb(N, "a")}, false, "", ""},
		{"k agreeing", []*BisectBuild{bb(N, "a"), bb(N, "a"), bb(N, "a")}, false, Good, ""},
		{"one disagreement", []*BisectBuild{bb(N, "a"), bb(N, "b")}, false, Bad, "nondeterministic"},
		{"first build fails", []*BisectBuild{fail}, false, Skip, fail.Failed},
		{"later build fails", []*BisectBuild{bb(N, "a"), fail}, false, Skip, fail.Failed},
		{"disagreement beats failure", []*BisectBuild{bb(N, "a"), bb(N, "b"), fail}, false, Bad, "nondeterministic"},
		{"vary: split needs two of each", []*BisectBuild{bb(N, "a"), bb(P, "b")}, true, "", ""},
		{"vary: three of four", []*BisectBuild{bb(N, "a"), bb(P, "b"), bb(N, "a")}, true, "", ""},
		{"vary: varies", []*BisectBuild{bb(N, "a"), bb(P, "b"), bb(N, "a"), bb(P, "b")}, true, Bad, "varies"},
		{"vary: perturbed disagree", []*BisectBuild{bb(N, "a"), bb(P, "b"), bb(N, "a"), bb(P, "c")}, true, Bad, "nondeterministic"},
		{"vary: normalized disagree", []*BisectBuild{bb(N, "a"), bb(P, "a"), bb(N, "b")}, true, Bad, "nondeterministic"},
		{"vary: all agree", []*BisectBuild{bb(N, "a"), bb(P, "a"), bb(N, "a")}, true, Good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, c := decide(tc.builds, 3, tc.vary)
			if v != tc.verdict || c != tc.want {
				t.Errorf("decide = %q, %q; want %q, %q", v, c, tc.verdict, tc.want)
			}
		})
	}
}

// fakeHistory bisects n fake commits whose builds are nondeterministic from
// index firstBad on: each build picks one of outcomes equally likely outputs.
// Commits in broken do not build.
type fakeHistory struct {
	firstBad int
	outcomes int
	broken   map[int]bool
	rng      *rand.Rand
	builds   int
}

func (f *fakeHistory) bisection(n int, k int) *bisection {
	b := &bisection{k: k, opts: BisectOptions{Confidence: 0.99}}
	for i := range n {
		b.commits = append(b.commits, Commit{Hash: fmt.Sprintf("%040d", i), Subject: fmt.Sprintf("commit %d", i)})
	}
	b.test = func(_ context.Context, c Commit, step *BisectStep) error {
		var i int
		fmt.Sscanf(c.Hash, "%d", &i)
		for {
			if v, cause := decide(step.Builds, k, false); v != "" {
				step.Verdict, step.Cause = v, cause
				return nil
			}
			f.builds++
			build := bb("normalized", "same")
			switch {
			case f.broken[i]:
				build = &BisectBuild{Kind: "normalized", Failed: "the build exited with status 101"}
			case i >= f.firstBad:
				build = bb("normalized", fmt.Sprint(f.rng.IntN(f.outcomes)))
			}
			step.Builds = append(step.Builds, build)
		}
	}
	b.explain = func(context.Context, *BisectReport, Commit) error { return nil }
	return b
}

// TestBisectSearch runs the search on every position of the first bad commit
// of a 41-commit history (the end-to-end history's size), with and without a
// commit that does not build: the answer must be right within ceil(log2 N)+2
// steps whenever the statistics did not err, and the rate of errors must match
// the confidence.
func TestBisectSearch(t *testing.T) {
	const n = 41
	budget := int(math.Ceil(math.Log2(n))) + 2
	k, _ := BuildsForConfidence(0.99)
	wrong, runs, badTests := 0, 0, 0
	for _, brokenAt := range []int{-1, 29, 5} {
		for first := 0; first < n; first++ {
			for seed := range 20 {
				f := &fakeHistory{firstBad: first, outcomes: 2, broken: map[int]bool{brokenAt: true}, rng: rand.New(rand.NewPCG(uint64(seed), uint64(first)))}
				if brokenAt == n-1 {
					continue
				}
				b := f.bisection(n, k)
				rep, err := b.run(context.Background(), "good", b.commits[n-1].Hash)
				if err != nil {
					t.Fatal(err)
				}
				runs++
				for _, s := range rep.Steps {
					var i int
					fmt.Sscanf(s.Commit, "%d", &i)
					if i >= first && i != brokenAt {
						badTests++
					}
				}
				switch {
				case rep.Status == "found" && rep.FirstBad.Hash == b.commits[first].Hash:
				case rep.Status == "range" && rangeHolds(b, rep.Range, first, f.broken):
					// The first bad commit or the one before does not
					// build: the answer is the smallest range holding it.
				default:
					wrong++
					continue
				}
				if len(rep.Steps) > budget {
					t.Errorf("first bad %d, broken %d: %d steps, budget %d", first, brokenAt, len(rep.Steps), budget)
				}
				if (brokenAt >= 0) != slices.Contains(rep.Skipped, b.commits[max(brokenAt, 0)].Hash) && rep.Status == "range" {
					t.Errorf("skipped %v does not report the broken commit", rep.Skipped)
				}
			}
		}
	}
	// Each tested bad commit passes as good with probability 2^-(k-1).
	expected := float64(badTests) * math.Pow(2, -float64(k-1))
	t.Logf("%d bisections, %d tests of bad commits, %d wrong answers (expected at most about %.1f)", runs, badTests, wrong, expected)
	if float64(wrong) > 1.5*expected+10 {
		t.Errorf("%d wrong answers, the statistics allow about %.1f", wrong, expected)
	}
}

// rangeHolds reports whether a range answer is right: it holds the first bad
// commit, ends at a bad commit, and every other member does not build.
func rangeHolds(b *bisection, r []Commit, first int, broken map[int]bool) bool {
	holds := false
	for j, c := range r {
		var i int
		fmt.Sscanf(c.Hash, "%d", &i)
		holds = holds || i == first
		if j < len(r)-1 && !broken[i] || j == len(r)-1 && i < first {
			return false
		}
	}
	return holds
}

// TestBisectManyOutcomes: with output in 9! orders (the HashSet of the
// testdata history), no run may name the wrong commit.
func TestBisectManyOutcomes(t *testing.T) {
	const n = 41
	for first := 0; first < n; first++ {
		f := &fakeHistory{firstBad: first, outcomes: 362880, rng: rand.New(rand.NewPCG(1, uint64(first)))}
		b := f.bisection(n, 8)
		rep, err := b.run(context.Background(), "good", b.commits[n-1].Hash)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status != "found" || rep.FirstBad.Hash != b.commits[first].Hash {
			t.Fatalf("first bad %d: %s %+v", first, rep.Status, rep.FirstBad)
		}
	}
}

func TestBisectNothingBad(t *testing.T) {
	f := &fakeHistory{firstBad: 1000, outcomes: 2, rng: rand.New(rand.NewPCG(1, 2))}
	b := f.bisection(41, 8)
	rep, err := b.run(context.Background(), "good", b.commits[40].Hash)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != "none" || len(rep.Steps) != 1 || f.builds != 8 {
		t.Errorf("status %s after %d steps and %d builds; want none after 1 step of 8 builds", rep.Status, len(rep.Steps), f.builds)
	}
}

func TestBisectBadDoesNotBuild(t *testing.T) {
	f := &fakeHistory{firstBad: 3, outcomes: 2, broken: map[int]bool{9: true}, rng: rand.New(rand.NewPCG(1, 2))}
	b := f.bisection(10, 8)
	_, err := b.run(context.Background(), "good", b.commits[9].Hash)
	if err == nil || !strings.Contains(err.Error(), "does not build") {
		t.Errorf("err = %v, want one saying --bad does not build", err)
	}
}

func TestSearchNext(t *testing.T) {
	s := newSearch(9)
	if got := s.next(); got != 8 {
		t.Fatalf("first step %d, want the bad revision 8", got)
	}
	s.record(8, Bad)
	if got := s.next(); got != 3 {
		t.Fatalf("second step %d, want the middle 3", got)
	}
	s.record(3, Skip)
	if got := s.next(); got != 2 && got != 4 {
		t.Fatalf("after skipping 3: %d, want a neighbour", got)
	}
	if e := s.estimate(); e < 1 || e > 4 {
		t.Errorf("estimate %d", e)
	}
}

func TestBisectCache(t *testing.T) {
	b := &bisection{opts: BisectOptions{CacheDir: t.TempDir()}}
	p := &Plan{Config: Config{Command: []string{"cargo", "build"}, Artifacts: []string{"target/release/app"}},
		Image: images.Image{Digest: digest.FromString("image")}, Base: policies.Normalized(1700000000)}
	c := Commit{Hash: strings.Repeat("a", 40)}
	key := b.cacheKey(c, p)
	if b.loadCache(key) != nil {
		t.Fatal("empty cache returned builds")
	}
	want := []*BisectBuild{bb("normalized", "x"), {Kind: "normalized", Failed: "boom"}}
	if err := b.saveCache(key, c.Hash, want); err != nil {
		t.Fatal(err)
	}
	got := b.loadCache(key)
	if len(got) != 2 || got[0].sum() != want[0].sum() || got[1].Failed != "boom" {
		t.Errorf("cache gave %+v", got)
	}
	// Anything that changes the builds changes the key.
	keyOf := func(change func(*bisection, *Plan, *Commit)) string {
		b2 := &bisection{opts: BisectOptions{CacheDir: b.opts.CacheDir}}
		p2 := &Plan{Config: Config{Command: []string{"cargo", "build"}, Artifacts: []string{"target/release/app"}},
			Image: images.Image{Digest: digest.FromString("image")}, Base: policies.Normalized(1700000000)}
		c2 := c
		change(b2, p2, &c2)
		return b2.cacheKey(c2, p2)
	}
	if keyOf(func(*bisection, *Plan, *Commit) {}) != key {
		t.Fatal("the key is not a function of its inputs")
	}
	varied := keyOf(func(b *bisection, _ *Plan, _ *Commit) { b.opts.Vary = []string{"build_path"} })
	for name, change := range map[string]func(*bisection, *Plan, *Commit){
		"commit":  func(_ *bisection, _ *Plan, c *Commit) { c.Hash = strings.Repeat("b", 40) },
		"image":   func(_ *bisection, p *Plan, _ *Commit) { p.Image.Digest = digest.FromString("other") },
		"command": func(_ *bisection, p *Plan, _ *Commit) { p.Config.Command = []string{"make"} },
		"sde":     func(_ *bisection, p *Plan, _ *Commit) { p.Base.SourceDateEpoch++ },
		"vary":    func(b *bisection, _ *Plan, _ *Commit) { b.opts.Vary = []string{"build_path"} },
	} {
		if keyOf(change) == key {
			t.Errorf("%s does not change the cache key", name)
		}
	}
	if keyOf(func(b *bisection, _ *Plan, _ *Commit) { b.opts.Vary, b.opts.Seed = []string{"build_path"}, 7 }) == varied {
		t.Error("the seed does not change the cache key of a --vary bisection")
	}
	// A damaged or foreign entry is ignored, not trusted.
	for _, junk := range []string{"{", `{"builds":[null]}`, `{"builds":[{"kind":"other"}]}`} {
		os.WriteFile(filepath.Join(b.opts.CacheDir, key+".json"), []byte(junk), 0o644)
		if got := b.loadCache(key); got != nil {
			t.Errorf("%q gave %+v", junk, got)
		}
	}
}

// FuzzBisectCache feeds arbitrary cache files to the loader: it must never
// panic and must return only builds of a known kind.
func FuzzBisectCache(f *testing.F) {
	f.Add([]byte(`{"builds":[{"artifacts":{"target/release/app":"ab"},"kind":"normalized"}],"commit":"x"}`))
	f.Add([]byte(`{"builds":[{"failed":"boom","kind":"perturbed"}]}`))
	f.Add([]byte(`{"builds":[null]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &bisection{opts: BisectOptions{CacheDir: dir}}
		if err := os.WriteFile(filepath.Join(dir, "k.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, x := range b.loadCache("k") {
			if x.Kind != "normalized" && x.Kind != "perturbed" {
				t.Fatalf("kind %q accepted", x.Kind)
			}
			_ = x.sum()
		}
	})
}

// genHistory runs testdata/bisect/gen.sh.
func genHistory(t *testing.T, kind string) (dir, firstBad string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	dir = filepath.Join(t.TempDir(), kind)
	out, err := exec.Command("sh", filepath.Join("..", "testdata", "bisect", "gen.sh"), kind, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if h, ok := strings.CutPrefix(l, "first-bad: "); ok {
			firstBad = h
		}
	}
	return dir, firstBad
}

func fileHash(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// TestExportLeavesWorkTreeAlone: exporting commits and reading their metadata
// and config with a dirty work tree and a staged change leaves the work tree,
// the index and HEAD exactly as they were, and exports the commit, not the
// work tree.
func TestExportLeavesWorkTreeAlone(t *testing.T) {
	dir, firstBad := genHistory(t, "hashset")
	ctx := context.Background()
	os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("dirty, unstaged\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "staged.txt"), []byte("staged\n"), 0o644)
	if out, err := exec.Command("git", "-C", dir, "add", "staged.txt").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	status := func() string {
		out, err := exec.Command("git", "-C", dir, "status", "--porcelain").Output()
		if err != nil {
			t.Fatal(err)
		}
		head, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
		return string(out) + string(head) + fileHash(t, filepath.Join(dir, ".git", "index"))
	}
	before := status()
	c, err := commitInfo(ctx, dir, firstBad)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "shapes: dedupe derives through a HashSet" || !slices.Equal(c.Files, []string{"shapes/build.rs"}) ||
		c.AuthorDate != "2023-11-15T15:13:20+00:00" || c.CommitTime != 1700000000+17*3600 {
		t.Errorf("commit info %+v", c)
	}
	dst := t.TempDir()
	if err := exportCommit(ctx, dir, firstBad, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "shapes", "build.rs"))
	if !strings.Contains(string(got), "HashSet") {
		t.Errorf("export lacks the commit's build.rs")
	}
	if _, err := os.Stat(filepath.Join(dst, "staged.txt")); err == nil {
		t.Error("export holds the staged file")
	}
	if cl, _ := os.ReadFile(filepath.Join(dst, "CHANGELOG.md")); strings.Contains(string(cl), "dirty") {
		t.Error("export holds the work tree's change")
	}
	cfg, found, err := commitConfig(ctx, dir, firstBad)
	if err != nil || !found || !slices.Equal(cfg.Artifacts, []string{"target/release/app"}) {
		t.Errorf("config %+v %v %v", cfg, found, err)
	}
	if after := status(); after != before {
		t.Errorf("the repository changed:\nbefore %s\nafter  %s", before, after)
	}
}
