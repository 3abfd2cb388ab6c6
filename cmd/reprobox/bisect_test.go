package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bisectReport is the part of bisect's --json the tests read.
type bisectReport struct {
	Status   string   `json:"status"`
	Commits  int      `json:"commits"`
	Builds   int      `json:"builds"`
	Cause    string   `json:"cause"`
	Evidence string   `json:"evidence"`
	Factors  []string `json:"evidence_factors"`
	// Localization is where the evidence's two builds first diverge.
	Localization *struct {
		Summary  string   `json:"summary"`
		Chain    []string `json:"chain"`
		Evidence string   `json:"evidence"`
	} `json:"localization"`
	LocalizationError string `json:"localization_error"`
	FirstBad          *struct {
		Hash    string   `json:"hash"`
		Subject string   `json:"subject"`
		Files   []string `json:"files_changed"`
	} `json:"first_bad"`
	Skipped []string `json:"skipped"`
	Steps   []struct {
		Commit  string `json:"commit"`
		Verdict string `json:"verdict"`
		Cached  int    `json:"cached_builds"`
		Builds  []struct {
			Kind string `json:"kind"`
		} `json:"builds"`
	} `json:"steps"`
}

// genHistory runs testdata/bisect/gen.sh KIND and returns the repository, its
// root commit (the good revision) and the commits gen.sh names.
func genHistory(t *testing.T, kind string) (dir, root, firstBad, broken string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), kind)
	out, err := exec.Command("sh", filepath.Join("..", "..", "testdata", "bisect", "gen.sh"), kind, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if h, ok := strings.CutPrefix(l, "first-bad: "); ok {
			firstBad = h
		}
		if h, ok := strings.CutPrefix(l, "broken: "); ok {
			broken = h
		}
	}
	r, err := exec.Command("git", "-C", dir, "rev-list", "--max-parents=0", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(r)), firstBad, broken
}

func bisect(t *testing.T, dir string, args ...string) (bisectReport, result) {
	t.Helper()
	js := filepath.Join(t.TempDir(), "bisect.json")
	r := reprobox(t, dir, append([]string{"bisect", "--json", js}, args...)...)
	var rep bisectReport
	if r.code == 0 || r.code == 1 {
		data, err := os.ReadFile(js)
		if err != nil {
			t.Fatalf("exit %d and no JSON: %v\n%s", r.code, err, r.stderr)
		}
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatal(err)
		}
	}
	return rep, r
}

// repoState is the work tree's status, the index's bytes and HEAD.
func repoState(t *testing.T, dir string) string {
	t.Helper()
	st, err := exec.Command("git", "-C", dir, "status", "--porcelain").Output()
	if err != nil {
		t.Fatal(err)
	}
	head, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	idx, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s%s%x", st, head, sha256.Sum256(idx))
}

// leftBehind lists the work directories not in before whose owner process
// has exited: other runs may be going on at the same time.
func leftBehind(dataDir string, before []string) []string {
	var out []string
	all, _ := filepath.Glob(filepath.Join(dataDir, "work", "*"))
	for _, d := range all {
		if slices.Contains(before, d) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, ".owner"))
		if err != nil {
			continue
		}
		pid, _, _ := strings.Cut(string(b), " ")
		if _, err := os.Stat(filepath.Join("/proc", strings.TrimSpace(pid))); err != nil {
			out = append(out, d)
		}
	}
	return out
}

// TestBisectFindsHashSetCommit: the 42-commit history where commit 17 makes a
// build script emit derive lists in HashSet order and commit 31 does not
// build. bisect must name commit 17 within ceil(log2 N)+2 steps, with real
// builds, from a repository with a dirty work tree and a staged change it
// must leave alone; a second run takes every verdict from the cache.
func TestBisectFindsHashSetCommit(t *testing.T) {
	dataDir, image := needImage(t)
	dir, root, firstBad, _ := genHistory(t, "hashset")
	os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("uncommitted\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "app", "src", "notes.rs"), []byte("this does not compile"), 0o644)
	os.WriteFile(filepath.Join(dir, "staged.rs"), []byte("staged\n"), 0o644)
	if out, err := exec.Command("git", "-C", dir, "add", "staged.rs", "app/src/notes.rs").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	before := repoState(t, dir)
	workBefore, _ := filepath.Glob(filepath.Join(dataDir, "work", "*"))
	cache := t.TempDir()
	start := time.Now()
	rep, r := bisect(t, dir, "--good", root, "--image", image, "--data-dir", dataDir, "--cache-dir", cache)
	t.Logf("first run: %d steps, %d builds, %s", len(rep.Steps), rep.Builds, time.Since(start).Round(time.Second))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if rep.Status != "found" || rep.FirstBad == nil || rep.FirstBad.Hash != firstBad {
		t.Fatalf("found %s %+v, want %s\n%s", rep.Status, rep.FirstBad, firstBad, r.stdout)
	}
	budget := int(math.Ceil(math.Log2(float64(rep.Commits)))) + 2
	if rep.Commits != 41 || len(rep.Steps) > budget {
		t.Errorf("%d steps for %d commits, budget %d", len(rep.Steps), rep.Commits, budget)
	}
	if rep.Cause != "nondeterministic" || !strings.Contains(rep.Evidence, "[elf]") || !strings.Contains(rep.Evidence, "PartialOrd") {
		t.Errorf("cause %q, evidence does not show the differing derive lists:\n%s", rep.Cause, rep.Evidence)
	}
	// The first divergence is the shapes build script's generated source,
	// with the reordered derive line.
	if l := rep.Localization; l == nil || !strings.HasPrefix(l.Summary, "first divergence: build script of shapes (run), OUT_DIR shapes.rs") ||
		len(l.Chain) < 2 || !strings.Contains(l.Evidence, "#[derive(") {
		t.Errorf("localization %+v (%s)", rep.Localization, rep.LocalizationError)
	}
	if rep.Localization != nil {
		t.Logf("%s\n%s", rep.Localization.Summary, rep.Localization.Evidence)
	}
	for _, want := range []string{"FIRST BAD COMMIT: " + firstBad, "subject: shapes: dedupe derives through a HashSet",
		"files changed: shapes/build.rs", "date:    2023-11-15T15:13:20+00:00", "evidence: structural diff",
		"where the divergence starts: first divergence: build script of shapes (run)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{"step 1: testing", "commit(s) in question, about 7 step(s) left"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	for _, s := range rep.Steps {
		if n := len(s.Builds); s.Verdict == "good" && n != 8 {
			t.Errorf("good verdict on %s after %d builds, want 8", s.Commit, n)
		}
	}
	if after := repoState(t, dir); after != before {
		t.Errorf("bisect changed the repository:\nbefore %s\nafter  %s", before, after)
	}
	if left := leftBehind(dataDir, workBefore); len(left) > 0 {
		t.Errorf("bisect left work directories behind: %v", left)
	}

	// Again with the same cache: every verdict is reused; only the evidence
	// is rebuilt.
	rep2, r2 := bisect(t, dir, "--good", root, "--image", image, "--data-dir", dataDir, "--cache-dir", cache)
	if r2.code != 0 || rep2.FirstBad == nil || rep2.FirstBad.Hash != firstBad {
		t.Fatalf("cached run: exit %d\n%s", r2.code, r2.stderr)
	}
	for _, s := range rep2.Steps {
		if s.Cached != len(s.Builds) {
			t.Errorf("cached run built %s again (%d of %d from the cache)", s.Commit, s.Cached, len(s.Builds))
		}
	}
	if rep2.Builds > 6 || rep2.Evidence == "" || rep2.Localization == nil {
		t.Errorf("cached run: %d builds, evidence %q, localization %v (%s)", rep2.Builds, rep2.Evidence, rep2.Localization, rep2.LocalizationError)
	}
}

// TestBisectVaryBuildPath: the history where commit 23 embeds
// CARGO_MANIFEST_DIR. --vary build_path names it; plain bisect finds nothing
// bad in the range and says so. Confidence 0.9 (5 builds per good verdict)
// keeps the test's time down: this history has no nondeterminism to catch.
func TestBisectVaryBuildPath(t *testing.T) {
	dataDir, image := needImage(t)
	dir, root, firstBad, _ := genHistory(t, "manifest_dir")
	rep, r := bisect(t, dir, "--good", root, "--image", image, "--data-dir", dataDir, "--no-cache", "--vary", "build_path", "--confidence", "0.9")
	if r.code != 0 || rep.FirstBad == nil || rep.FirstBad.Hash != firstBad {
		t.Fatalf("--vary build_path: exit %d, found %+v, want %s\n%s\n%s", r.code, rep.FirstBad, firstBad, r.stdout, r.stderr)
	}
	if budget := int(math.Ceil(math.Log2(41))) + 2; len(rep.Steps) > budget {
		t.Errorf("%d steps, budget %d", len(rep.Steps), budget)
	}
	if rep.Cause != "varies" || !slices.Equal(rep.Factors, []string{"build_path"}) || !strings.Contains(rep.Evidence, "/assets") {
		t.Errorf("cause %q; the evidence does not name build_path:\n%s", rep.Cause, rep.Evidence)
	}
	t.Logf("--vary build_path: %d steps, %d builds", len(rep.Steps), rep.Builds)

	rep, r = bisect(t, dir, "--good", root, "--image", image, "--data-dir", dataDir, "--no-cache", "--confidence", "0.9")
	if r.code != 1 || rep.Status != "none" || !strings.Contains(r.stdout, "nothing in the range is bad") {
		t.Fatalf("plain: exit %d, status %s\n%s\n%s", r.code, rep.Status, r.stdout, r.stderr)
	}
	if len(rep.Steps) != 1 || rep.Builds != 5 {
		t.Errorf("plain: %d steps, %d builds; want the bad revision alone, 5 builds", len(rep.Steps), rep.Builds)
	}
}

// TestBisectSkipsBrokenCommit: with the commit that does not build as the
// only one between good and bad candidates, bisect skips it, reports it, and
// answers with the smallest range.
func TestBisectSkipsBrokenCommit(t *testing.T) {
	dataDir, image := needImage(t)
	dir, _, _, broken := genHistory(t, "hashset")
	// good = the commit before the broken one, bad = the one after.
	good, bad := broken+"~1", ""
	out, err := exec.Command("git", "-C", dir, "rev-list", "--reverse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Fields(string(out))
	for i, h := range all {
		if h == broken {
			bad = all[i+1]
		}
	}
	cache := t.TempDir()
	rep, r := bisect(t, dir, "--good", good, "--bad", bad, "--image", image, "--data-dir", dataDir, "--cache-dir", cache, "--confidence", "0.5")
	if r.code != 1 || rep.Status != "range" || len(rep.Skipped) != 1 || rep.Skipped[0] != broken {
		t.Fatalf("exit %d, status %s, skipped %v\n%s\n%s", r.code, rep.Status, rep.Skipped, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "FIRST BAD COMMIT IS ONE OF 2") || !strings.Contains(r.stdout, "skipped (does not build): "+broken) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	// --resume takes the range and settings of the last bisection and every
	// verdict from the cache.
	rep2, r2 := bisect(t, dir, "--resume", "--image", image, "--data-dir", dataDir, "--cache-dir", cache)
	if r2.code != 1 || rep2.Status != "range" || rep2.Builds != 0 || len(rep2.Steps) != len(rep.Steps) {
		t.Errorf("--resume: exit %d, status %s, %d builds, %d steps\n%s", r2.code, rep2.Status, rep2.Builds, len(rep2.Steps), r2.stderr)
	}
}

// TestBisectInterrupt: Ctrl-C during a build stops the bisection with status
// 130, kills the build and removes its mounts and directories.
func TestBisectInterrupt(t *testing.T) {
	dataDir, image := needImage(t)
	dir, root, _, _ := genHistory(t, "hashset")
	const marker = "4321.987"
	cmd := exec.Command(os.Args[0], "bisect", "--good", root, "--image", image, "--data-dir", dataDir, "--no-cache",
		"--artifact", "x", "--", "sleep", marker)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !sleeping(marker) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the build never started: %s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var work []string
	all, _ := filepath.Glob(filepath.Join(dataDir, "work", "*"))
	for _, d := range all {
		if ownedBy(d, cmd.Process.Pid) {
			work = append(work, d)
		}
	}
	if len(work) < 2 {
		t.Fatalf("the run owns %v, not its bisect and build work directories: the test proves nothing", work)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, errb.String())
	}
	if sleeping(marker) {
		t.Error("the build still runs")
	}
	for _, w := range work {
		if _, err := os.Stat(w); err == nil {
			t.Errorf("left behind: %s", w)
		}
		if strings.Contains(mounts(t), w) {
			t.Errorf("mount left behind under %s", w)
		}
	}
}

// TestBisectUsageErrors: bad input exits 2 with a message naming the problem.
func TestBisectUsageErrors(t *testing.T) {
	dataDir, image := needImage(t)
	dir, root, _, _ := genHistory(t, "hashset")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--good REV is required"},
		{[]string{"--good", "nosuchrev"}, `"nosuchrev" is not a commit`},
		{[]string{"--good", "HEAD", "--bad", root}, "is not an ancestor"},
		{[]string{"--good", root, "--confidence", "1"}, "strictly between 0 and 1"},
		{[]string{"--good", root, "--vary", "nosuchfactor"}, "--vary"},
		{[]string{"--good", root, "--resume", "--cache-dir", t.TempDir()}, "no earlier bisection"},
	} {
		args := append([]string{"bisect", "--image", image, "--data-dir", dataDir, "--no-cache"}, tc.args...)
		r := reprobox(t, dir, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}
