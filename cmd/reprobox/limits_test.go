package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// limitsProject writes a project whose reprobox.toml has extra and runs
// script as its build.
func limitsProject(t *testing.T, extra, script string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := "command = [\"sh\", \"-c\", " + strconvQuote(script) + "]\nartifacts = [\"out\"]\ntimeout = \"2m\"\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "reprobox.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func readRecord(t *testing.T, out string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "record.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestMemoryHogSaysOutOfMemory: a build that fills memory is killed by the
// kernel at the limit set in reprobox.toml, and reprobox says so.
func TestMemoryHogSaysOutOfMemory(t *testing.T) {
	dataDir, image := needImage(t)
	dir := limitsProject(t, "memory = \"64m\"\n", "tail /dev/zero")
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, dir, "build", "--image", image, "--data-dir", dataDir, "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "out of memory (limit 64.0 MiB") {
		t.Fatalf("exit %d, want 1 saying out of memory:\n%s", r.code, r.stderr)
	}
	rec := readRecord(t, out)
	lim, _ := rec["limits"].(map[string]any)
	if rec["oom_killed"] != true || lim["memory_bytes"] != float64(64<<20) || !strings.Contains(rec["failure"].(string), "out of memory") {
		t.Errorf("record: oom_killed %v limits %v failure %v", rec["oom_killed"], rec["limits"], rec["failure"])
	}
}

// TestDiskHogStopped: a build that writes without end into its build
// directory is killed at the disk limit set in reprobox.toml.
func TestDiskHogStopped(t *testing.T) {
	dataDir, image := needImage(t)
	dir := limitsProject(t, "disk = \"32m\"\n", "i=0; while :; do head -c 16M /dev/zero > f$i; i=$((i+1)); done")
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, dir, "build", "--image", image, "--data-dir", dataDir, "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "disk limit of 32.0 MiB") {
		t.Fatalf("exit %d, want 1 naming the disk limit:\n%s", r.code, r.stderr)
	}
	rec := readRecord(t, out)
	if lim, _ := rec["limits"].(map[string]any); lim["disk_bytes"] != float64(32<<20) || lim["pids"] != float64(4096) {
		t.Errorf("record limits %v", rec["limits"])
	}
	log, _ := os.ReadFile(filepath.Join(out, "build.log"))
	if !strings.Contains(string(log), "more than its disk limit") {
		t.Errorf("build.log does not say why the build was killed:\n%s", log)
	}
}

// TestDiskHogQuickerThanTheWatchdog: a build that writes past its disk limit
// and ends before the watchdog looks still fails.
func TestDiskHogQuickerThanTheWatchdog(t *testing.T) {
	dataDir, image := needImage(t)
	dir := limitsProject(t, "disk = \"8m\"\n", "head -c 40M /dev/zero > out")
	out := filepath.Join(t.TempDir(), "out")
	r := reprobox(t, dir, "build", "--image", image, "--data-dir", dataDir, "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "disk limit of 8.0 MiB") {
		t.Fatalf("exit %d, want 1 naming the disk limit:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "SHA256SUMS")); err == nil {
		t.Error("a build over its disk limit left SHA256SUMS")
	}
}

func TestBadLimitsRefused(t *testing.T) {
	for _, extra := range []string{"memory = \"lots\"\n", "disk = \"-5g\"\n", "pids = 1\n", "memory = \"1k\"\n"} {
		dir := limitsProject(t, extra, "true")
		r := reprobox(t, dir, "build", "--image", "x")
		if r.code != 2 || !strings.Contains(r.stderr, "reprobox.toml") {
			t.Errorf("%q: exit %d, want 2 naming the config:\n%s", extra, r.code, r.stderr)
		}
	}
}
