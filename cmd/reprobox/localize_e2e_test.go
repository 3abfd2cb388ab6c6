package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// localizeReport is the part of report.json about localization.
type localizeReport struct {
	Nondeterministic bool     `json:"nondeterministic"`
	Culprits         []string `json:"culprits"`
	Intermediates    *struct {
		Builds    int   `json:"builds"`
		KeptBytes int64 `json:"kept_bytes"`
		TreeBytes int64 `json:"tree_bytes"`
	} `json:"intermediates"`
	Artifacts []struct {
		Path             string `json:"path"`
		Nondeterministic bool   `json:"nondeterministic"`
		Evidence         string `json:"evidence"`
		Localization     *struct {
			Chain []string `json:"chain"`
			First []struct {
				Unit  string `json:"unit"`
				Files []struct {
					Name string `json:"name"`
				} `json:"files"`
			} `json:"first"`
			Evidence string `json:"evidence"`
			Summary  string `json:"summary"`
		} `json:"localization"`
		LocalizationError string `json:"localization_error"`
	} `json:"artifacts"`
}

func checkLocalized(t *testing.T, dir string, args ...string) (localizeReport, result) {
	t.Helper()
	var rep localizeReport
	r := checkInto(t, &rep, dir, args...)
	return rep, r
}

// TestCheckLocalizesGeneratedSource is the case this feature comes from: a
// -sys crate's build script writes its #[derive(...)] list in HashSet order.
// The binary is nondeterministic, and the check names the build script's
// OUT_DIR file as where the builds first diverge, with the reordered derive
// line, and the chain through the wrapper to the binary.
func TestCheckLocalizesGeneratedSource(t *testing.T) {
	rep, r := checkLocalized(t, fixture("sysgen"))
	if !rep.Nondeterministic || len(rep.Culprits) != 0 {
		t.Fatalf("nondeterministic=%v culprits=%v\n%s", rep.Nondeterministic, rep.Culprits, r.stdout)
	}
	a := rep.Artifacts[0]
	l := a.Localization
	if l == nil {
		t.Fatalf("no localization (%s)\n%s", a.LocalizationError, r.stdout)
	}
	want := []string{"build script of gen-sys (run)", "gen-sys (lib)", "wrapper (lib)", "app (bin)"}
	if !slices.Equal(l.Chain, want) {
		t.Errorf("chain %q, want %q", l.Chain, want)
	}
	if len(l.First) != 1 || l.First[0].Unit != "build script of gen-sys (run)" ||
		len(l.First[0].Files) == 0 || l.First[0].Files[0].Name != "out/bindings.rs" {
		t.Errorf("first divergence %+v", l.First)
	}
	var minus, plus bool
	for _, line := range strings.Split(l.Evidence, "\n") {
		line = strings.TrimLeft(line, " │")
		minus = minus || strings.HasPrefix(line, "-#[derive(")
		plus = plus || strings.HasPrefix(line, "+#[derive(")
	}
	if !minus || !plus {
		t.Errorf("evidence lacks the reordered derive line:\n%s", l.Evidence)
	}
	wantLine := "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs; then gen-sys (lib), wrapper (lib), app (bin)"
	if !strings.Contains(r.stdout, wantLine) || !strings.HasPrefix(a.Evidence, wantLine) {
		t.Errorf("text report does not open the evidence with %q:\n%s", wantLine, r.stdout)
	}
	if in := rep.Intermediates; in == nil || in.Builds < 2 || in.KeptBytes <= 0 || in.KeptBytes > in.TreeBytes {
		t.Errorf("intermediates %+v", rep.Intermediates)
	}
	if !strings.Contains(r.stdout, "kept while checking") {
		t.Errorf("the text report does not say what was kept:\n%s", r.stdout)
	}
	t.Logf("%s", r.stdout)
}

// TestCheckLocalizesDependencyBuildPath: a dependency (not the binary's own
// crate) embeds its manifest directory. The check blames build_path and
// localizes it to that dependency.
func TestCheckLocalizesDependencyBuildPath(t *testing.T) {
	rep, r := checkLocalized(t, fixture("dep_build_path"), "--vary", "build_path,time,hostname")
	if !slices.Equal(rep.Culprits, []string{"build_path"}) || rep.Nondeterministic {
		t.Fatalf("culprits %v nondeterministic %v\n%s", rep.Culprits, rep.Nondeterministic, r.stdout)
	}
	l := rep.Artifacts[0].Localization
	if l == nil {
		t.Fatalf("no localization (%s)\n%s", rep.Artifacts[0].LocalizationError, r.stdout)
	}
	if len(l.First) != 1 || l.First[0].Unit != "pathdep (lib)" {
		t.Errorf("first divergence %+v, want pathdep (lib)", l.First)
	}
	if !slices.Equal(l.Chain, []string{"pathdep (lib)", "tool (bin)"}) {
		t.Errorf("chain %q", l.Chain)
	}
	if !strings.Contains(l.Evidence, "{build_path}") || !strings.Contains(l.Evidence, "/pathdep/data") {
		t.Errorf("evidence does not show the dependency's labelled path:\n%s", l.Evidence)
	}
}

// TestCheckNoIntermediates: --no-intermediates keeps nothing and localizes
// nothing, and the verdict is the same.
func TestCheckNoIntermediates(t *testing.T) {
	rep, r := checkLocalized(t, fixture("dep_build_path"), "--vary", "build_path", "--no-intermediates")
	if !slices.Equal(rep.Culprits, []string{"build_path"}) {
		t.Fatalf("culprits %v\n%s", rep.Culprits, r.stdout)
	}
	if rep.Intermediates != nil || rep.Artifacts[0].Localization != nil {
		t.Errorf("intermediates kept with --no-intermediates: %+v", rep.Intermediates)
	}
}

// TestVerifyLocalizesNondeterministic: verify --repeats 1 of the sysgen
// fixture, whose two local builds differ: the published side has no
// intermediates, so the artifact is localized between the two local builds,
// to the build script's generated source.
func TestVerifyLocalizesNondeterministic(t *testing.T) {
	dataDir, image := needImage(t)
	tmp := t.TempDir()
	where, out := filepath.Join(tmp, "published"), filepath.Join(tmp, "out")
	if err := os.MkdirAll(where, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(where, "app"), []byte("published bytes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reprobox(t, fixture("sysgen"), "verify", "--image", image, "--data-dir", dataDir, "--out", out,
		"--published", where, "--progress", "0", "--repeats", "1")
	var rep struct {
		Artifacts []struct {
			Name         string `json:"name"`
			Status       string `json:"status"`
			Localization *struct {
				Summary string   `json:"summary"`
				Chain   []string `json:"chain"`
			} `json:"localization"`
			LocalizationError string `json:"localization_error"`
		} `json:"artifacts"`
	}
	data, err := os.ReadFile(filepath.Join(out, "verify.json"))
	if err != nil {
		t.Fatalf("exit %d, no report: %v\n%s", r.code, err, r.stderr)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if r.code != 1 || len(rep.Artifacts) != 1 || rep.Artifacts[0].Status != "NONDETERMINISTIC" {
		t.Fatalf("exit %d, %+v\n%s\n%s", r.code, rep.Artifacts, r.stdout, r.stderr)
	}
	a := rep.Artifacts[0]
	want := []string{"build script of gen-sys (run)", "gen-sys (lib)", "wrapper (lib)", "app (bin)"}
	if a.Localization == nil || !slices.Equal(a.Localization.Chain, want) {
		t.Fatalf("localization %+v (%s)\n%s", a.Localization, a.LocalizationError, r.stdout)
	}
	if !strings.Contains(r.stdout, "where two local builds diverge: first divergence: build script of gen-sys (run), OUT_DIR") ||
		!strings.Contains(r.stdout, "#[derive(") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}
