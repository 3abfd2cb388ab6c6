package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

// needImage skips (or fails in CI) unless the default image is in the store.
func needImage(t *testing.T) (dataDir, image string) {
	t.Helper()
	testenv.NeedRoot(t)
	dataDir, image = testenv.DataDir(), testenv.Image()
	if r := reprobox(t, ".", "image", "inspect", image, "--data-dir", dataDir); r.code != 0 {
		testenv.Skip(t, "image %s is not in %s; run make image: %s", image, dataDir, r.stderr)
	}
	return dataDir, image
}

func fixture(name string) string { return filepath.Join("..", "..", "testdata", "crates", name) }

// TestBuildTwiceIdentical builds crates twice and compares SHA256SUMS: a plain
// crate, one whose build script embeds the current time, and a script that tars
// files the build produced (modes, owners, mtimes from disk).
func TestBuildTwiceIdentical(t *testing.T) {
	dataDir, image := needImage(t)
	for _, name := range []string{"reproducible", "time", "dist"} {
		t.Run(name, func(t *testing.T) {
			var sums []string
			for i := range 2 {
				out := filepath.Join(t.TempDir(), "out")
				r := reprobox(t, fixture(name), "build", "--image", image, "--data-dir", dataDir, "--out", out)
				if r.code != 0 {
					t.Fatalf("build %d: exit %d\n%s", i, r.code, r.stderr)
				}
				b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
				if err != nil {
					t.Fatal(err)
				}
				if r.stdout != string(b) {
					t.Errorf("stdout %q is not SHA256SUMS %q", r.stdout, b)
				}
				var rec map[string]any
				data, err := os.ReadFile(filepath.Join(out, "record.json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(data, &rec); err != nil {
					t.Fatal(err)
				}
				if rec["status"] != "succeeded" || !strings.HasPrefix(rec["image_digest"].(string), "sha256:") {
					t.Errorf("record: status %v image_digest %v", rec["status"], rec["image_digest"])
				}
				sums = append(sums, string(b))
			}
			if sums[0] != sums[1] || sums[0] == "" {
				t.Errorf("SHA256SUMS differ:\n%s\n%s", sums[0], sums[1])
			}
			if _, err := os.Stat(filepath.Join(fixture(name), "target")); err == nil {
				t.Errorf("the build wrote into the user's tree (%s/target)", name)
			}
		})
	}
}

func TestBuildFailureKeepsLogNoSums(t *testing.T) {
	dataDir, image := needImage(t)
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--", "sh", "-c", "echo compiling; echo 'error: something broke' >&2; exit 7")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "exited with status 7") || !strings.Contains(r.stderr, "| error: something broke") {
		t.Errorf("stderr does not show the status and the log's tail:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "SHA256SUMS")); err == nil {
		t.Error("a failed build left SHA256SUMS")
	}
	if _, err := os.Stat(filepath.Join(out, "build.log")); err != nil {
		t.Errorf("no build.log: %v", err)
	}
}

func TestBuildTimeoutIsABuildFailure(t *testing.T) {
	dataDir, image := needImage(t)
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--timeout", "2s", "--", "sh", "-c", "echo started; sleep 60")
	if r.code != 1 || !strings.Contains(r.stderr, "longer than its timeout of 2s") || !strings.Contains(r.stderr, "| started") {
		t.Fatalf("exit %d, want 1 naming the timeout with the log's tail:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "SHA256SUMS")); err == nil {
		t.Error("a timed-out build left SHA256SUMS")
	}
}

// TestBuildReportsProgress: a long build reports its elapsed time and last
// step while it runs, and the copy of the source is announced.
func TestBuildReportsProgress(t *testing.T) {
	dataDir, image := needImage(t)
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--progress", "1s", "--artifact", "Cargo.toml",
		"--", "sh", "-c", "echo '   Compiling step-one v0.1.0'; sleep 3; echo 'Dist step-two'; sleep 3")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"reprobox: copying the source into a pristine snapshot owned by 1000:1000",
		"reprobox: snapshot of "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// Elapsed times depend on how fast the container starts: match any.
	for _, step := range []string{"Compiling step-one v0.1.0", "Dist step-two"} {
		if !regexp.MustCompile(`(?m)^reprobox: build: [1-9][0-9]*s: ` + step + `$`).MatchString(r.stderr) {
			t.Errorf("no progress line with step %q:\n%s", step, r.stderr)
		}
	}
	r = reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--progress", "0", "--artifact", "Cargo.toml", "--", "sh", "-c", "echo 'Dist quiet'; sleep 2")
	if r.code != 0 || strings.Contains(r.stderr, "reprobox: build: ") {
		t.Errorf("--progress 0: exit %d, progress lines anyway:\n%s", r.code, r.stderr)
	}
}

func TestBuildMissingArtifactNamed(t *testing.T) {
	dataDir, image := needImage(t)
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "target/release/nope", "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "target/release/nope") {
		t.Fatalf("exit %d, want 1 naming the artifact:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "SHA256SUMS")); err == nil {
		t.Error("a build with a missing artifact left SHA256SUMS")
	}
}

func TestUnpinnedImageInConfigRefused(t *testing.T) {
	dataDir, image := needImage(t)
	dir := t.TempDir()
	cfg := "image = \"" + image + "\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "reprobox.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reprobox(t, dir, "build", "--data-dir", dataDir)
	if r.code != 2 || !strings.Contains(r.stderr, "not pinned") || !strings.Contains(r.stderr, "@sha256:") {
		t.Fatalf("exit %d, want 2 printing the digest:\n%s", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--vary", "time,bogus"},
		{"check", "--vary", "-time"},
		{"build", "--no-such-flag"},
		{"build", "/no/such/dir", "--image", "x"},
	} {
		r := reprobox(t, t.TempDir(), args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

func TestFactorsListsAll(t *testing.T) {
	r := reprobox(t, ".", "factors")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, f := range []string{"time", "build_path", "locale", "timezone", "umask", "hostname", "domainname",
		"user", "home", "fileordering", "num_cpus", "kernel", "aslr", "pid", "env", "exec_path"} {
		if !strings.Contains(r.stdout, f+" ") {
			t.Errorf("factors does not list %s", f)
		}
	}
}

// checkReport is the part of report.json the tests read.
type checkReport struct {
	Reproducible     bool     `json:"reproducible"`
	Nondeterministic bool     `json:"nondeterministic"`
	Culprits         []string `json:"culprits"`
	Builds           int      `json:"builds"`
	Seed             uint64   `json:"seed"`
	Image            string   `json:"image"`
	Artifacts        []struct {
		Path            string   `json:"path"`
		Culprits        []string `json:"culprits"`
		EvidenceFactors []string `json:"evidence_factors"`
		HintFactors     []string `json:"hint_factors"`
		Evidence        string   `json:"evidence"`
	} `json:"artifacts"`
}

func check(t *testing.T, dir string, args ...string) (checkReport, result) {
	t.Helper()
	var rep checkReport
	r := checkInto(t, &rep, dir, args...)
	if (r.code == 0) != rep.Reproducible {
		t.Errorf("exit %d but reproducible=%v", r.code, rep.Reproducible)
	}
	return rep, r
}

// checkInto runs `reprobox check` of dir in the default image and decodes its
// --json report into rep; an exit status above 1 fails the test.
func checkInto(t *testing.T, rep any, dir string, args ...string) result {
	t.Helper()
	dataDir, image := needImage(t)
	tmp := t.TempDir()
	js := filepath.Join(tmp, "report.json")
	r := reprobox(t, dir, append([]string{"check", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(tmp, "out"), "--json", js, "--jobs", "2"}, args...)...)
	if r.code > 1 {
		t.Fatalf("check exit %d\n%s", r.code, r.stderr)
	}
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, rep); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCheckFixtures checks every fixture crate for real in the sandbox, with
// every factor varied, and compares the culprits.
func TestCheckFixtures(t *testing.T) {
	cases := []struct {
		crate    string
		culprits []string
		// evidence: the perturbed value is in the differing bytes, so the
		// culprit must be found within 5 builds.
		evidence bool
	}{
		{"reproducible", nil, false},
		{"time", []string{"time"}, true},
		{"build_path", []string{"build_path"}, true},
		{"locale", []string{"locale"}, false},
		{"timezone", []string{"timezone"}, true},
		{"umask", []string{"umask"}, false},
		{"hostname", []string{"hostname"}, true},
		{"domainname", []string{"domainname"}, true},
		{"user", []string{"user"}, true},
		{"home", []string{"home"}, true},
		{"fileordering", []string{"fileordering"}, false},
		{"num_cpus", []string{"num_cpus"}, true},
		{"kernel", []string{"kernel"}, true},
		{"aslr", []string{"aslr"}, true},
		{"env", []string{"env"}, true},
		{"exec_path", []string{"exec_path"}, true},
		{"two_factors", []string{"home", "hostname"}, true},
		{"two_quiet", []string{"num_cpus", "umask"}, false},
		{"dist", []string{"time", "umask", "user"}, false},
		{"dep_build_path", []string{"build_path"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.crate, func(t *testing.T) {
			rep, r := check(t, fixture(tc.crate))
			want := tc.culprits
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(rep.Culprits, want) {
				t.Fatalf("culprits %v, want %v\n%s", rep.Culprits, want, r.stdout)
			}
			if rep.Nondeterministic {
				t.Errorf("nondeterministic")
			}
			if tc.evidence {
				budget := 5
				if len(want) == 2 {
					budget = 12
				}
				if tc.crate == "aslr" {
					// The artifact is new in every build under aslr:
					// one more build shows that it is random under
					// its culprit (README: 6 when evidence names it).
					budget = 6
				}
				if rep.Builds > budget {
					t.Errorf("%d builds, budget %d", rep.Builds, budget)
				}
				for _, a := range rep.Artifacts {
					if !slices.Equal(a.EvidenceFactors, want) {
						t.Errorf("%s: evidence names %v, want %v", a.Path, a.EvidenceFactors, want)
					}
				}
			}
			if !tc.evidence && len(want) > 0 && tc.crate != "dist" {
				// Issue 16's budgets where no evidence names a culprit:
				// one among 16 factors in 16 (at most one build a
				// factor at the bound: README "How check decides"),
				// two in 14.
				budget := 16
				if len(want) == 2 {
					budget = 14
				}
				if rep.Builds > budget {
					t.Errorf("%d builds without evidence, budget %d", rep.Builds, budget)
				}
			}
			if tc.crate == "fileordering" || tc.crate == "locale" {
				// Reordered lines hint at fileordering, lines sorted
				// unlike byte order at locale (sort(1) in a literal):
				// built first, weighed more, not proof (12 builds,
				// not 16).
				for _, a := range rep.Artifacts {
					if !slices.Equal(a.HintFactors, want) || len(a.EvidenceFactors) > 0 {
						t.Errorf("%s: hints %v, evidence %v; want hints %v only", a.Path, a.HintFactors, a.EvidenceFactors, want)
					}
				}
				if rep.Builds > 12 {
					t.Errorf("%d builds with the hint, want at most 12", rep.Builds)
				}
			}
			if len(want) > 0 && !strings.Contains(r.stdout, "culprit(s) "+strings.Join(want, ", ")) {
				t.Errorf("stdout does not name the culprits:\n%s", r.stdout)
			}
			t.Logf("%s: %v in %d builds", tc.crate, rep.Culprits, rep.Builds)
		})
	}
}

// TestCheckNondeterministic runs 20 checks of a crate whose output is one of
// two at random (a build script iterating a std HashSet): at least 19 must
// come out nondeterministic and none may blame a factor.
func TestCheckNondeterministic(t *testing.T) {
	const runs = 20
	nondet := 0
	for i := range runs {
		rep, _ := check(t, fixture("nondeterministic"), "--seed", strconv.Itoa(i+1))
		if len(rep.Culprits) > 0 {
			t.Fatalf("check %d blamed %v on a nondeterministic build", i, rep.Culprits)
		}
		if rep.Nondeterministic {
			nondet++
		}
		t.Logf("check %d: nondeterministic=%v reproducible=%v builds=%d", i, rep.Nondeterministic, rep.Reproducible, rep.Builds)
	}
	if nondet < runs-1 {
		t.Errorf("nondeterministic in %d of %d checks, want at least %d", nondet, runs, runs-1)
	}
}
