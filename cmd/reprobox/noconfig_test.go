package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/runner"
)

// needDefaultImage skips (or fails in CI) unless the default image reprobox/rust
// is in the store: a project without config builds in exactly that image.
func needDefaultImage(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedProgram(t, "cargo")
	dataDir := testenv.DataDir()
	if r := reprobox(t, ".", "image", "inspect", runner.DefaultImage, "--data-dir", dataDir); r.code != 0 {
		testenv.Skip(t, "image %s is not in %s; run make image: %s", runner.DefaultImage, dataDir, r.stderr)
	}
	return dataDir
}

// cargoNew makes a fresh project the way a user does, offline.
func cargoNew(t *testing.T, args ...string) string {
	t.Helper()
	testenv.NeedProgram(t, "cargo")
	parent := t.TempDir()
	name := args[len(args)-1]
	cmd := exec.Command("cargo", append([]string{"new", "-q", "--vcs", "none"}, args...)...)
	cmd.Dir = parent
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo new %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(parent, name)
}

// TestCargoNewCheck: cargo new, then reprobox check with no other step and no
// flag naming the image, command or artifacts, gives a verdict: a fresh
// hello world is reproducible.
func TestCargoNewCheck(t *testing.T) {
	dataDir := needDefaultImage(t)
	dir := cargoNew(t, "hello-rbx")
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, dir, "check", "--data-dir", dataDir, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0 (reproducible)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "REPRODUCIBLE") {
		t.Errorf("stdout: %s", r.stdout)
	}
	head := strings.Join(strings.SplitN(r.stderr, "\n", 6)[:5], "\n")
	for _, want := range []string{
		"no reprobox.toml in .",
		"image     " + runner.DefaultImage + "@sha256:",
		"command   cargo build --release --offline",
		"no Cargo.lock",
		"artifacts target/release/hello-rbx (the bin targets",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("the first lines of stderr do not say %q:\n%s", want, head)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "control", "target", "release", "hello-rbx")); err != nil {
		t.Errorf("control artifact: %v", err)
	}
	for _, f := range []string{"Cargo.lock", "target", runner.ConfigFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("check wrote %s into the user's project", f)
		}
	}
}

// TestInitThenBuild: reprobox init writes a valid, pinned config that a plain
// reprobox build then uses; it never overwrites one without --force.
func TestInitThenBuild(t *testing.T) {
	dataDir := needDefaultImage(t)
	dir := cargoNew(t, "tool")
	// With a lock the command pins the dependencies.
	gen := exec.Command("cargo", "generate-lockfile", "--offline")
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cargo generate-lockfile: %v\n%s", err, out)
	}
	r := reprobox(t, dir, "init", "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
	}
	if strings.TrimSpace(r.stdout) != runner.ConfigFile {
		t.Errorf("init stdout %q, want the written file's path", r.stdout)
	}
	cfg, found, err := runner.LoadConfig(dir)
	if err != nil || !found {
		t.Fatalf("LoadConfig of the written file: found %v, %v", found, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the written config is not valid: %v", err)
	}
	if !strings.HasPrefix(cfg.Image, runner.DefaultImage+"@sha256:") {
		t.Errorf("image %q is not the default image pinned by digest", cfg.Image)
	}
	if got := strings.Join(cfg.Command, " "); got != "cargo build --release --locked --offline" {
		t.Errorf("command %q", got)
	}
	if len(cfg.Artifacts) != 1 || cfg.Artifacts[0] != "target/release/tool" {
		t.Errorf("artifacts %q", cfg.Artifacts)
	}
	written, _ := os.ReadFile(filepath.Join(dir, runner.ConfigFile))
	if !strings.Contains(string(written), "\n# ") {
		t.Errorf("the config has no comments:\n%s", written)
	}

	// No overwrite without --force, and the file is left as it was.
	if err := os.WriteFile(filepath.Join(dir, runner.ConfigFile), append(written, "# mine\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r = reprobox(t, dir, "init", "--data-dir", dataDir)
	if r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("init over an existing config: exit %d, want 2 naming --force\n%s", r.code, r.stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, runner.ConfigFile)); string(now) != string(written)+"# mine\n" {
		t.Errorf("init without --force changed the existing config")
	}
	if r = reprobox(t, dir, "init", "--force", "--data-dir", dataDir); r.code != 0 {
		t.Fatalf("init --force: exit %d\n%s", r.code, r.stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, runner.ConfigFile)); string(now) != string(written) {
		t.Errorf("init --force did not rewrite the config")
	}

	out := filepath.Join(t.TempDir(), "out")
	r = reprobox(t, dir, "build", "--data-dir", dataDir, "--out", out)
	if r.code != 0 {
		t.Fatalf("build with the written config: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "no reprobox.toml") {
		t.Errorf("build ignored the written config:\n%s", r.stderr)
	}
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), "  target/release/tool") {
		t.Errorf("SHA256SUMS: %q", r.stdout)
	}
	if !strings.Contains(r.stderr, " in "+cfg.Image) {
		t.Errorf("build did not use the pinned image %s:\n%s", cfg.Image, r.stderr)
	}
}

// TestLibOnlyBuild: a package with a library and no bin target has the
// library's rlib as its artifact, which a real build makes.
func TestLibOnlyBuild(t *testing.T) {
	dataDir := needDefaultImage(t)
	dir := cargoNew(t, "--lib", "my-lib")
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, dir, "build", "--data-dir", dataDir, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "artifacts target/release/libmy_lib.rlib (the library targets") {
		t.Errorf("stderr does not announce the rlib:\n%s", r.stderr)
	}
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), "  target/release/libmy_lib.rlib") {
		t.Errorf("SHA256SUMS: %q", r.stdout)
	}
}

// TestNoProject: neither reprobox.toml nor Cargo.toml is a usage error that
// names both, for build, check and init.
func TestNoProject(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"build"}, {"check"}, {"init"}} {
		r := reprobox(t, dir, append(args, "--data-dir", t.TempDir())...)
		if r.code != 2 || !strings.Contains(r.stderr, "Cargo.toml") || !strings.Contains(r.stderr, runner.ConfigFile) {
			t.Errorf("%s: exit %d, want 2 naming Cargo.toml and %s\n%s", args[0], r.code, runner.ConfigFile, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, runner.ConfigFile)); err == nil {
		t.Errorf("init wrote a config for a directory without Cargo.toml")
	}
}

// TestWorkspaceMember: the build sees only DIR, so a member of a workspace
// whose root lies above it is refused, naming the root.
func TestWorkspaceMember(t *testing.T) {
	testenv.NeedProgram(t, "cargo")
	root := t.TempDir()
	for _, m := range []string{"app", "other"} {
		cmd := exec.Command("cargo", "new", "-q", "--vcs", "none", m)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cargo new: %v\n%s", err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "Cargo.toml"), []byte("[workspace]\nmembers = [\"app\", \"other\"]\nresolver = \"2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reprobox(t, filepath.Join(root, "app"), "build", "--data-dir", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "member of the cargo workspace at "+root) {
		t.Errorf("exit %d, want 2 naming the workspace root\n%s", r.code, r.stderr)
	}
	r = reprobox(t, root, "init", "--data-dir", t.TempDir())
	// The root itself is fine for detection: both members' bins; the empty
	// data directory then has no default image, a usage error naming it.
	if r.code != 2 || !strings.Contains(r.stderr, runner.DefaultImage) {
		t.Errorf("init in an empty data dir: exit %d, want 2 naming %s\n%s", r.code, runner.DefaultImage, r.stderr)
	}
}

// TestWorkspaceRootBuild: in a workspace's root, the artifacts are the bin
// targets of every member (the library member adds none), and a real build
// makes them all.
func TestWorkspaceRootBuild(t *testing.T) {
	dataDir := needDefaultImage(t)
	root := t.TempDir()
	for _, args := range [][]string{{"app"}, {"other"}, {"--lib", "util"}} {
		cmd := exec.Command("cargo", append([]string{"new", "-q", "--vcs", "none"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cargo new: %v\n%s", err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "Cargo.toml"), []byte("[workspace]\nmembers = [\"app\", \"other\", \"util\"]\nresolver = \"2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := reprobox(t, root, "build", "--data-dir", dataDir, "--out", filepath.Join(t.TempDir(), "out"))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "artifacts target/release/app target/release/other (the bin targets") {
		t.Errorf("stderr does not announce both members' bins:\n%s", r.stderr)
	}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 ||
		!strings.HasSuffix(lines[0], "  target/release/app") || !strings.HasSuffix(lines[1], "  target/release/other") {
		t.Errorf("SHA256SUMS: %q", r.stdout)
	}
}
