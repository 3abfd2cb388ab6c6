package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file attack reprobox's host-side file handling the way a
// hostile build script would: the build leaves links, pipes, sockets, forged
// names or huge files where its artifacts should be, and reprobox collects and
// copies them on the host, outside the container.

// hostSecret is a host file the build must never obtain.
const hostSecret = "/etc/shadow"

// noHostFile fails if any file under out holds the content of the host file.
func noHostFile(t *testing.T, out, host string) {
	t.Helper()
	secret, err := os.ReadFile(host)
	if err != nil || len(secret) == 0 {
		t.Fatalf("read %s: %v: the test proves nothing without it", host, err)
	}
	_ = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(path); bytes.Equal(b, secret) {
				t.Errorf("the host's %s was copied to %s", host, path)
			}
		}
		return nil
	})
}

// TestAttackArtifactThroughHostLink: the build links a directory of its tree to
// a host path (absolute links resolve on the host when reprobox collects) and
// names an artifact through it.
func TestAttackArtifactThroughHostLink(t *testing.T) {
	dataDir, image := needImage(t)
	for _, tc := range []struct{ name, script, artifact string }{
		{"dir-link-to-etc", "ln -s /etc target", "target/shadow"},
		{"dir-link-glob", "ln -s /etc target", "target/sha*"},
		{"proc-self-root", "mkdir -p target && ln -s /proc/self/root/etc target/release", "target/release/shadow"},
		{"file-link", "mkdir -p target/release && ln -s /etc/shadow target/release/app", "target/release/app"},
		{"relative-escape", "mkdir -p target && ln -s ../../../../../../../../etc target/release", "target/release/shadow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
				"--artifact", tc.artifact, "--", "sh", "-c", tc.script)
			noHostFile(t, out, hostSecret)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1 (a build whose artifact is a link is a failed build)\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "symbolic link") {
				t.Errorf("stderr does not say the artifact path goes through a symbolic link:\n%s", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(out, "SHA256SUMS")); err == nil {
				t.Error("a refused build left SHA256SUMS")
			}
		})
	}
}

// TestAttackArtifactSpecialFiles: artifacts that are a FIFO (reading one on
// the host would block forever) or a socket are refused by name, quickly.
func TestAttackArtifactSpecialFiles(t *testing.T) {
	dataDir, image := needImage(t)
	for _, tc := range []struct{ name, script, artifact string }{
		{"fifo", "mkfifo app.fifo", "app.fifo"},
		{"fifo-glob", "mkdir -p dist && mkfifo dist/app", "dist/*"},
		{"socket", `perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => "app.sock", Listen => 1) or die $!'`, "app.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			done := make(chan result, 1)
			go func() {
				done <- reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
					"--artifact", tc.artifact, "--", "sh", "-c", tc.script)
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(3 * time.Minute):
				t.Fatal("reprobox hangs on a special file as artifact")
			}
			if r.code != 1 || !strings.Contains(r.stderr, "not a regular file") {
				t.Fatalf("exit %d, want 1 saying the artifact is not a regular file:\n%s", r.code, r.stderr)
			}
		})
	}
}

// TestAttackArtifactNameForgesSums: an artifact whose name holds a newline
// followed by a hash and a name would add a line of the build's choosing to
// SHA256SUMS. Such names are refused; a backslash is kept literally and
// sha256sum -c still verifies the file.
func TestAttackArtifactNameForgesSums(t *testing.T) {
	dataDir, image := needImage(t)
	forged := strings.Repeat("0", 64) + "  forged"
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "dist/*", "--", "sh", "-c", `mkdir dist && echo hi > "dist/$(printf 'a\n`+forged+`')"`)
	if b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS")); err == nil && strings.Contains(string(b), "\n"+forged) {
		t.Errorf("SHA256SUMS holds a forged line:\n%s", b)
	}
	if r.code != 1 || !strings.Contains(r.stderr, "control character") {
		t.Fatalf("exit %d, want 1 refusing the name with a control character:\n%s", r.code, r.stderr)
	}

	out = filepath.Join(t.TempDir(), "out")
	r = reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "dist/*", "--", "sh", "-c", `mkdir dist && echo hi > 'dist/a\nb' && echo ho > 'dist/\c'`)
	if r.code != 0 {
		t.Fatalf("backslash names: exit %d\n%s", r.code, r.stderr)
	}
	check := exec.Command("sha256sum", "--strict", "-c", "../SHA256SUMS")
	check.Dir = filepath.Join(out, "artifacts")
	if b, err := check.CombinedOutput(); err != nil || strings.Count(string(b), ": OK") != 2 {
		t.Errorf("sha256sum -c of names with backslashes: %v\n%s", err, b)
	}
}

// TestAttackSparseArtifact: a 20 GB sparse artifact costs the build nothing; it
// must be refused by the output limit at once, not hashed and copied until the
// host's disk is full.
func TestAttackSparseArtifact(t *testing.T) {
	dataDir, image := needImage(t)
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "big", "--", "truncate", "-s", "20G", "big")
	if r.code != 1 || !strings.Contains(r.stderr, "max_output") {
		t.Fatalf("exit %d, want 1 naming the output limit:\n%s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("refusing took %s: was the file read?", d)
	}
	if _, err := os.Stat(filepath.Join(out, "artifacts", "big")); err == nil {
		t.Error("the sparse artifact was copied")
	}

	// The limit is the project's: max_output in reprobox.toml.
	dir := copyFixture(t, "reproducible")
	appendConfig(t, dir, "max_output = \"1m\"\n")
	out = filepath.Join(t.TempDir(), "out")
	r = reprobox(t, dir, "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "big", "--", "sh", "-c", "head -c 2000000 /dev/zero > big")
	if r.code != 1 || !strings.Contains(r.stderr, "max_output") {
		t.Fatalf("max_output = 1m and a 2 MB artifact: exit %d, want 1:\n%s", r.code, r.stderr)
	}
	r = reprobox(t, dir, "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "big", "--", "sh", "-c", "head -c 1000000 /dev/zero > big")
	if r.code != 0 {
		t.Fatalf("max_output = 1m and a 1 MB artifact: exit %d, want 0:\n%s", r.code, r.stderr)
	}
}

// TestOutNotOursRefusedBeforeBuild: --out naming a directory reprobox did not
// write is refused before anything is built, and its files are untouched, even
// when it holds a record.json.
func TestOutNotOursRefusedBeforeBuild(t *testing.T) {
	dataDir, image := needImage(t)
	for _, files := range [][]string{{"notes.txt"}, {"record.json", "notes.txt"}, {"report.json", "notes.txt"}} {
		t.Run(strings.Join(files, ","), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "mine")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(out, f), []byte("precious "+f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, sub := range []string{"build", "check"} {
				r := reprobox(t, fixture("reproducible"), sub, "--image", image, "--data-dir", dataDir, "--out", out,
					"--artifact", "x", "--", "touch", "x")
				if r.code != 2 || !strings.Contains(r.stderr, out) || !strings.Contains(r.stderr, "not written by reprobox") {
					t.Errorf("%s: exit %d, want 2 naming %s:\n%s", sub, r.code, out, r.stderr)
				}
				if strings.Contains(r.stderr, "reprobox: building") || strings.Contains(r.stderr, "reprobox: checking") {
					t.Errorf("%s: the build started before --out was checked:\n%s", sub, r.stderr)
				}
			}
			for _, f := range files {
				if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(b) != "precious "+f {
					t.Errorf("%s changed: %q %v", f, b, err)
				}
			}
		})
	}
	// A directory reprobox wrote is replaced.
	out := filepath.Join(t.TempDir(), "out")
	for i := range 2 {
		r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
			"--artifact", "x", "--", "touch", "x")
		if r.code != 0 {
			t.Fatalf("build %d into a reprobox output: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(out, ".reprobox-out")); err != nil {
		t.Errorf("no marker in the output: %v", err)
	}
}

// TestKilledCheckPartialOutputCleaned kills a check with SIGKILL while its
// first build runs, leaving the partial output directory it was assembling;
// the next run with the same --out removes it.
func TestKilledCheckPartialOutputCleaned(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3456.789"
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	cmd, _ := startSleeping(t, marker, "check", "--image", image, "--data-dir", dataDir, "--vary", "time",
		"--out", out, "--artifact", "x", "--", "sleep", marker)
	partial := func() []string {
		entries, _ := os.ReadDir(parent)
		var names []string
		for _, e := range entries {
			if e.Name() != "out" {
				names = append(names, e.Name())
			}
		}
		return names
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	left := partial()
	if len(left) == 0 {
		t.Fatal("the killed check left no partial output: the test proves nothing")
	}
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir, "--out", out,
		"--artifact", "x", "--", "touch", "x")
	if r.code != 0 {
		t.Fatalf("next build: exit %d\n%s", r.code, r.stderr)
	}
	if now := partial(); len(now) != 0 {
		t.Errorf("partial output left behind by the killed run: %v (was %v)", now, left)
	}
	for i := 0; sleeping(marker); i++ {
		if i > 50 {
			t.Fatal("the orphaned build is still running")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copyFixture copies a fixture crate's top-level files into a temporary
// directory, so a test can change its config.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", fixture(name)+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture: %v: %s", err, out)
	}
	return dir
}

func appendConfig(t *testing.T, dir, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "reprobox.toml"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
