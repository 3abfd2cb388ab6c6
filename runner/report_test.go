package runner

import (
	"bytes"
	"context"
	"encoding/xml"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

// sampleCheck is a check report as runner.Check returns it for the dist
// fixture: two culprits on one artifact, one reproducible artifact, one
// nondeterministic; its evidence holds characters XML cannot carry.
func sampleCheck() *CheckReport {
	return &CheckReport{
		Image: "reprobox/rust@sha256:4e1f", Seed: 1, Builds: 9, Repeats: 9,
		Culprits: []string{"time", "umask"},
		Factors: map[string]Values{
			"time":  {Control: "2023-11-14T22:13:20Z", Variant: "2022-10-12T15:50:20Z"},
			"umask": {Control: "0022", Variant: "0002"},
		},
		Artifacts: []ArtifactReport{
			{Path: "dist/tool.tar.gz", ControlSHA256: "aa", VariantSHA256: "bb", Culprits: []string{"time", "umask"},
				EvidenceFactors: []string{"time"},
				Evidence:        "dist/tool.tar.gz (gzip)\n  tool/bin/tool: mode 0755 → 0775\n- mtime 2023-11-14\n+ mtime 2022-10-12\n  \x1b[31m<script>alert(1)</script> & \x00\n"},
			{Path: "target/release/ok", ControlSHA256: "cc", VariantSHA256: "cc", Reproducible: true, Culprits: []string{}},
			{Path: "target/release/rand", ControlSHA256: "dd", VariantSHA256: "ee", Nondeterministic: true, Culprits: []string{}},
		},
		Trials: []CheckTrial{
			{Set: []string{}, Builds: 2, Differing: []string{"target/release/rand"}},
			{Set: []string{"time"}, Builds: 1, Differing: []string{"dist/tool.tar.gz"}},
			{Set: []string{"time", "umask"}, Builds: 1, Differing: []string{"dist/tool.tar.gz"}},
		},
	}
}

func xmllint(t *testing.T, file string) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		testenv.Skip(t, "no xmllint in PATH (apt-get install libxml2-utils)")
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", "testdata/junit/junit.xsd", file).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema junit.xsd %s: %v\n%s", file, err, out)
	}
}

func TestCheckJUnitValidates(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCheckJUnit(&b, "crates/dist", sampleCheck()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	xmllint(t, file)
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	if s.Tests != 3 || s.Failures != 2 || len(s.Cases) != 3 {
		t.Fatalf("suite: %d tests, %d failures", s.Tests, s.Failures)
	}
	f := s.Cases[0].Failure
	if f == nil || !strings.Contains(f.Message, "culprit(s) time, umask") || !strings.Contains(f.Text, "umask: 0022 -> 0002") ||
		!strings.Contains(f.Text, "mode 0755 → 0775") {
		t.Errorf("failure of the dist artifact does not name the culprits and evidence: %+v", f)
	}
	if s.Cases[1].Failure != nil {
		t.Error("the reproducible artifact fails")
	}
	if f := s.Cases[2].Failure; f == nil || f.Type != "nondeterministic" {
		t.Errorf("nondeterministic artifact: %+v", f)
	}
	// A schema that can fail: a document without the required name is refused.
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, []byte(`<testsuites><testsuite tests="1"><testcase/></testsuite></testsuites>`), 0o644)
	if err := exec.Command("xmllint", "--noout", "--schema", "testdata/junit/junit.xsd", bad).Run(); err == nil {
		t.Error("the schema accepts a test case without a name")
	}
}

func TestVerifyAndExperimentJUnitValidate(t *testing.T) {
	dir := t.TempDir()
	v := &VerifyReport{Image: "reprobox/rust", ImageDigest: "sha256:4e1f", Published: "dist/SHA256SUMS", PublishedForm: "sha256sums", Builds: 1,
		Artifacts: []VerifyArtifact{
			{Name: "tool", Status: VerifyMatch, RebuiltSHA256: "aa"},
			{Name: "tool.tar.gz", Status: VerifyMismatch, PublishedSHA256: "bb", RebuiltSHA256: "cc", DiffFactors: []string{"build_path"}, Diff: "- /home/alice/src\n+ /build/src\n"},
		}}
	var b bytes.Buffer
	if err := WriteVerifyJUnit(&b, "crates/tool", v); err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(dir, "verify.xml")
	os.WriteFile(vf, b.Bytes(), 0o644)
	xmllint(t, vf)
	if !strings.Contains(b.String(), `message="tool.tar.gz: MISMATCH (culprit(s) build_path)"`) {
		t.Errorf("verify JUnit does not name the culprit:\n%s", b.String())
	}

	e := parseTestdata(t, "basic.toml", 1)
	f := &fakeBuilds{}
	runs, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: t.TempDir()}, f.build)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteExperimentJUnit(&b, e.Results(runs)); err != nil {
		t.Fatal(err)
	}
	ef := filepath.Join(dir, "experiment.xml")
	os.WriteFile(ef, b.Bytes(), 0o644)
	xmllint(t, ef)
	for _, want := range []string{`message="target/release/a differs from its baseline: culprit(s) locale"`, "locale=fr_FR.UTF-8: 2 of 2 builds differ", "(nondeterministic)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("experiment JUnit lacks %q", want)
		}
	}
}

func TestCheckHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCheckHTML(&b, "crates/dist", sampleCheck(), nil); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"NOT REPRODUCIBLE", `<span class="factor">umask</span>`, "0022", "0002", "mode 0755 → 0775",
		"Builds that led there", "&lt;script&gt;", "none (control)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	selfContained(t, page)
	if strings.Contains(page, "<script>alert") {
		t.Error("evidence from the build is not escaped")
	}
}

func selfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"<link", "src=\"http", "@import", "url(", "src=\"//"} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to an external resource: %q", bad)
		}
	}
}

// experimentPageFixture runs a fake experiment whose artifacts are real
// files in blobs/, so the page embeds a real structural diff.
func experimentPageFixture(t *testing.T) (string, *Experiment, *ExperimentResults) {
	t.Helper()
	e := parseTestdata(t, "basic.toml", 1)
	out := t.TempDir()
	blobs := BlobsDir(out)
	os.MkdirAll(blobs, 0o755)
	for name, content := range map[string]string{
		"aaaareprobox/rust":     "sort order: Alpha alpha Beta beta\nbuilt with LANG=C.UTF-8\n",
		"bbbbreprobox/rust":     "sort order: alpha Alpha beta Beta\nbuilt with LANG=fr_FR.UTF-8\n",
		"aaaareprobox/rust-old": "old\n", "bbbbreprobox/rust-old": "old fr\n",
	} {
		p := filepath.Join(blobs, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	f := &fakeBuilds{}
	runs, err := RunExperiment(context.Background(), e, ExperimentOptions{Out: out}, f.build)
	if err != nil {
		t.Fatal(err)
	}
	return blobs, e, e.Results(runs)
}

func TestExperimentHTML(t *testing.T) {
	blobs, e, res := experimentPageFixture(t)
	var b bytes.Buffer
	if err := WriteExperimentHTML(context.Background(), &b, e, res, blobs, ""); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"Heat map", "fr_FR.UTF-8", "2/2", "nondeterministic", "Baselines across images", "srcdoc=", "sort order"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	selfContained(t, page)
}

// TestReportsInBrowser renders the experiment and check pages in headless
// Chromium and checks that real, non-blank screenshots come out. Set
// REPROBOX_SCREENSHOT_DIR to keep them.
func TestReportsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	blobs, e, res := experimentPageFixture(t)
	dir := t.TempDir()
	pages := map[string]func(*bytes.Buffer) error{
		"experiment": func(b *bytes.Buffer) error { return WriteExperimentHTML(context.Background(), b, e, res, blobs, "") },
		"check":      func(b *bytes.Buffer) error { return WriteCheckHTML(b, "crates/dist", sampleCheck(), nil) },
	}
	for name, write := range pages {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		page := filepath.Join(dir, name+".html")
		if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		keep := ""
		if d := os.Getenv("REPROBOX_SCREENSHOT_DIR"); d != "" {
			keep = filepath.Join(d, name+".png")
		}
		img := testenv.Screenshot(t, page, 1400, 1100, keep)
		colors, top := testenv.ColorStats(img)
		if colors < 50 || top > 0.97 {
			t.Errorf("%s screenshot looks blank: %d colours, the commonest covers %.1f%%", name, colors, top*100)
		}
		if name == "experiment" && !hasHeatColours(img) {
			t.Errorf("experiment screenshot shows no red and no green heat map cells")
		}
	}
}

// hasHeatColours looks for the heat map's saturated red (share 1) and green
// (share 0) cells.
func hasHeatColours(img image.Image) bool {
	red, green := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r > 150 && g < 80 && bl < 80 {
				red++
			}
			if g > 200 && r < 200 && bl < 200 && g > r+20 {
				green++
			}
		}
	}
	return red > 100 && green > 100
}

func TestVerifyHTML(t *testing.T) {
	v := &VerifyReport{Image: "reprobox/rust", ImageDigest: "sha256:4e1f", Published: "dist/SHA256SUMS", PublishedForm: "sha256sums", Builds: 1,
		Artifacts: []VerifyArtifact{
			{Name: "tool", Status: VerifyMatch, RebuiltSHA256: "aa"},
			{Name: "tool.tar.gz", Status: VerifyMismatch, PublishedSHA256: "bb", RebuiltSHA256: "cc", DiffFactors: []string{"build_path"}, Diff: "- /home/alice/src\n+ /build/src\n"},
		}}
	var b bytes.Buffer
	if err := WriteVerifyHTML(&b, "crates/tool", v); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"NOT VERIFIED", ">MATCH<", ">MISMATCH<", `<span class="factor">build_path</span>`, `<span class="del">- /home/alice/src</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	selfContained(t, page)
}
