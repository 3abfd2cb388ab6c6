package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

const junitXSD = "../../runner/testdata/junit/junit.xsd"

func validateJUnit(t *testing.T, file string) string {
	t.Helper()
	testenv.NeedProgram(t, "xmllint")
	out, err := exec.Command("xmllint", "--noout", "--schema", junitXSD, file).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema junit.xsd %s: %v\n%s", file, err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestExperimentEndToEnd runs a small experiment for real: the locale crate
// in the default image at two locales, one build per cell; then runs it again
// and sees that nothing is rebuilt.
func TestExperimentEndToEnd(t *testing.T) {
	dataDir, image := needImage(t)
	dir := t.TempDir()
	crate, err := filepath.Abs(fixture("locale"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "exp.toml")
	writeFile(t, file, []byte(`projects = ["`+crate+`"]
images = ["`+image+`"]
design = "one-at-a-time"
repeats = 1
[factors]
locale = ["C.UTF-8", "fr_FR.UTF-8"]
`))
	out := filepath.Join(dir, "results")
	html, junit := filepath.Join(dir, "exp.html"), filepath.Join(dir, "exp.xml")
	r := reprobox(t, dir, "experiment", file, "--data-dir", dataDir, "--out", out, "--seed", "5", "--html", html, "--junit", junit)
	if r.code != 1 {
		t.Fatalf("experiment exit %d, want 1 (the locale crate differs)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"seed 5", "cells done 2/2, builds left 0", "ETA"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "differs: locale=fr_FR.UTF-8 1/1") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	f, err := os.Open(filepath.Join(out, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 {
		t.Fatalf("results.csv: %v, %d rows", err, len(rows))
	}
	if rows[1][5] != "C.UTF-8" || rows[2][5] != "fr_FR.UTF-8" || rows[1][8] == rows[2][8] || len(rows[1][8]) != 64 ||
		!strings.HasPrefix(rows[1][4], "sha256:") || rows[1][9] != "0" {
		t.Errorf("rows %q", rows)
	}
	var res struct {
		Cells []struct {
			Baseline bool    `json:"baseline"`
			Share    float64 `json:"share_differing"`
		} `json:"cells"`
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil || len(res.Cells) != 2 || res.Cells[1].Share != 1 {
		t.Errorf("results.json: %v %+v", err, res)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(page), "Heat map") || !strings.Contains(string(page), "srcdoc=") {
		t.Errorf("HTML report: %v", err)
	}
	if x := validateJUnit(t, junit); !strings.Contains(x, "culprit(s) locale") {
		t.Errorf("JUnit does not name the locale:\n%s", x)
	}
	// Again: resumed, nothing is built, the same results (but durations).
	before := data
	r = reprobox(t, dir, "experiment", file, "--data-dir", dataDir, "--out", out, "--seed", "5")
	if r.code != 1 || !strings.Contains(r.stderr, "2 already in") || !strings.Contains(r.stderr, "0 to build") {
		t.Fatalf("second run exit %d:\n%s", r.code, r.stderr)
	}
	after, _ := os.ReadFile(filepath.Join(out, "results.json"))
	if string(after) != string(before) {
		t.Error("results.json changed on a run that built nothing")
	}
}

func TestExperimentBadInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exp.toml")
	writeFile(t, file, []byte("projects = [\"p\"]\nimages = [\"reprobox/rust\"]\n[factors]\nlocale = [\"C.UTF-8\", \"fr_FR.UTF-8\"]\nflavour = [\"a\", \"b\"]\n"))
	out := filepath.Join(dir, "results")
	r := reprobox(t, dir, "experiment", file, "--out", out)
	if r.code != 2 || !strings.Contains(r.stderr, "exp.toml:5: unknown factor \"flavour\"") {
		t.Errorf("unknown factor: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a bad experiment file wrote results")
	}
	r = reprobox(t, dir, "experiment", filepath.Join(dir, "missing.toml"))
	if r.code != 2 {
		t.Errorf("missing file: exit %d\n%s", r.code, r.stderr)
	}
	// --dry-run prints the cells with their IDs and builds nothing.
	writeFile(t, file, []byte("projects = [\"p\"]\nimages = [\"reprobox/rust\"]\ndesign = \"factorial\"\n[factors]\nlocale = [\"C.UTF-8\", \"fr_FR.UTF-8\"]\nnum_cpus = [2, 1]\n"))
	r = reprobox(t, dir, "experiment", file, "--dry-run", "--seed", "3")
	if r.code != 0 || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 4 || !regexp.MustCompile(`(?m)^[0-9a-f]{12}  p  reprobox/rust  baseline$`).MatchString(r.stdout) {
		t.Errorf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCIExample runs examples/ci/run.sh, the commands of the GitHub Actions
// and GitLab CI examples, on a fixture crate whose build embeds the time, and
// checks the reports it keeps.
func TestCIExample(t *testing.T) {
	dataDir, image := needImage(t)
	script, err := filepath.Abs("../../examples/ci/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The workflows run the same check command as the script.
	const line = `check . --out reprobox-reports/out --json reprobox-reports/report.json --html reprobox-reports/report.html --junit reprobox-reports/junit.xml`
	for _, wf := range []string{"github-actions.yml", "gitlab-ci.yml"} {
		data, err := os.ReadFile(filepath.Join("../../examples/ci", wf))
		if err != nil || !strings.Contains(string(data), line) {
			t.Errorf("%s does not run %q: %v", wf, line, err)
		}
	}
	sh, _ := os.ReadFile(script)
	if !strings.Contains(string(sh), `check "$crate" --out "$reports/out" --json "$reports/report.json" --html "$reports/report.html" --junit "$reports/junit.xml"`) {
		t.Error("run.sh does not run the workflows' command")
	}
	dir := t.TempDir()
	// A wrapper that runs this test binary as reprobox.
	wrapper := filepath.Join(dir, "reprobox")
	writeFile(t, wrapper, []byte("#!/bin/sh\nREPROBOX_RUN_MAIN=1 exec "+os.Args[0]+" \"$@\"\n"))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	crate, _ := filepath.Abs(fixture("time"))
	reports := filepath.Join(dir, "reprobox-reports")
	cmd := exec.Command(script, crate, reports, "--", "--image", image, "--data-dir", dataDir, "--vary", "time,umask,locale", "--repeats", "1", "--jobs", "2")
	cmd.Env = append(os.Environ(), "REPROBOX="+wrapper)
	cmd.Dir = dir
	outb, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("run.sh: %v, want exit status 1 (not reproducible)\n%s", err, outb)
	}
	x := validateJUnit(t, filepath.Join(reports, "junit.xml"))
	if !strings.Contains(x, "culprit(s) time") {
		t.Errorf("junit.xml does not name the culprit time:\n%s", x)
	}
	page, err := os.ReadFile(filepath.Join(reports, "report.html"))
	if err != nil || !strings.Contains(string(page), "NOT REPRODUCIBLE") || !strings.Contains(string(page), "Builds that led there") ||
		!strings.Contains(string(page), "evidence tree") || !strings.Contains(string(page), "srcdoc=") {
		t.Errorf("report.html: %v", err)
	}
	if keep := os.Getenv("REPROBOX_CHECK_PAGE"); keep != "" {
		os.WriteFile(keep, page, 0o644)
	}
	var rep struct {
		Culprits []string `json:"culprits"`
		Trials   []struct {
			Set []string `json:"set"`
		} `json:"trials"`
	}
	data, err := os.ReadFile(filepath.Join(reports, "report.json"))
	if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Culprits) != 1 || rep.Culprits[0] != "time" || len(rep.Trials) < 2 {
		t.Errorf("report.json: %v %+v", err, rep)
	}
}

// TestVerifyReports: verify --html and --junit on a release whose tarball
// was tampered with: the JUnit test case of the tarball fails as a MISMATCH,
// and the page shows it with its diff.
func TestVerifyReports(t *testing.T) {
	dataDir, image := needImage(t)
	tmp := t.TempDir()
	pubBuild := filepath.Join(tmp, "pubbuild")
	if r := reprobox(t, fixture("dist"), "build", "--image", image, "--data-dir", dataDir, "--out", pubBuild); r.code != 0 {
		t.Fatalf("publisher build: exit %d\n%s", r.code, r.stderr)
	}
	good, err := os.ReadFile(filepath.Join(pubBuild, "artifacts", "dist.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	bad := tamperTarGz(t, good, "stage/dist", "dist fixture", "dist fixturE")
	rel := filepath.Join(tmp, "release")
	writeFile(t, filepath.Join(rel, "dist.tar.gz"), bad)
	html, junit := filepath.Join(tmp, "verify.html"), filepath.Join(tmp, "verify.xml")
	r := reprobox(t, fixture("dist"), "verify", "--image", image, "--data-dir", dataDir, "--out", filepath.Join(tmp, "out"),
		"--published", rel, "--progress", "0", "--html", html, "--junit", junit)
	if r.code != 1 {
		t.Fatalf("verify exit %d, want 1\n%s", r.code, r.stderr)
	}
	x := validateJUnit(t, junit)
	if !strings.Contains(x, `name="dist.tar.gz"`) || !strings.Contains(x, `message="dist.tar.gz: MISMATCH`) {
		t.Errorf("junit:\n%s", x)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(page), "NOT VERIFIED") || !strings.Contains(string(page), "fixturE") {
		t.Errorf("verify page: %v\n%.2000s", err, page)
	}
}

func TestStatusLine(t *testing.T) {
	var b strings.Builder
	if w := newStatusLine(&b); w != io.Writer(&b) {
		t.Fatal("a buffer is not a terminal: lines must pass through")
	}
	s := &statusLine{w: &b}
	io.WriteString(s, "reprobox: one\nreprobox: t")
	io.WriteString(s, "wo\nreprobox: build failed: x\nreprobox: three\n")
	doneStatus(s)
	want := "\r\x1b[Kreprobox: one\r\x1b[Kreprobox: two\r\x1b[Kreprobox: build failed: x\n\r\x1b[Kreprobox: three\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestExperimentInterruptResume interrupts a real experiment with SIGINT
// after its first build: it exits 130 keeping the finished build, and the
// next run builds only the rest.
func TestExperimentInterruptResume(t *testing.T) {
	dataDir, image := needImage(t)
	dir := t.TempDir()
	crate, _ := filepath.Abs(fixture("locale"))
	file := filepath.Join(dir, "exp.toml")
	writeFile(t, file, []byte(`projects = ["`+crate+`"]
images = ["`+image+`"]
repeats = 2
[factors]
umask = ["0022", "0002"]
`))
	out := filepath.Join(dir, "results")
	cmd := exec.Command(os.Args[0], "experiment", file, "--data-dir", dataDir, "--out", out)
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "cells done 0/2, builds left 3") {
			// The first build is done; the second has started or is about
			// to: stop it now (a fixture builds in a second or two, so
			// waiting could let it finish).
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted experiment: %v, want exit 130\n%s", err, log.String())
	}
	entries, _ := os.ReadDir(runnerRunsDir(out))
	var kept []string
	for _, e := range entries {
		kept = append(kept, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("partial result %s left", e.Name())
		}
	}
	if len(kept) != 1 {
		t.Fatalf("kept %v, want the one finished build", kept)
	}
	r := reprobox(t, dir, "experiment", file, "--data-dir", dataDir, "--out", out)
	if r.code != 0 || !strings.Contains(r.stderr, "1 already in") || !strings.Contains(r.stderr, "3 to build") {
		t.Fatalf("resumed experiment: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, ": ok in "); n != 3 {
		t.Errorf("resumed experiment built %d, want 3", n)
	}
}

func runnerRunsDir(out string) string { return filepath.Join(out, "runs") }
