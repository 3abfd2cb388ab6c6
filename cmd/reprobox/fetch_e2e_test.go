package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/crateregistry"
	"github.com/reprobox/reprobox/internal/testenv"
)

// debianCrates are the real crates of the registry the fetch tests serve:
// serde with its derive macro (and the proc-macro stack under it), regex, and
// crates with build scripts (serde, serde_derive, proc-macro2, syn, memchr).
var debianCrates = []string{
	"aho-corasick-0.7.19", "memchr-2.5.0", "proc-macro2-1.0.47", "quote-1.0.21", "regex-1.7.1",
	"regex-syntax-0.6.27", "serde-1.0.152", "serde_derive-1.0.152", "syn-1.0.107", "unicode-ident-1.0.0",
}

// depsRegistry packages the Debian crate sources into .crate files, serves
// them with a sparse index on loopback, and returns the registry and its
// index URL.
func depsRegistry(t *testing.T) (*crateregistry.Registry, string) {
	t.Helper()
	var dirs []string
	for _, c := range debianCrates {
		d := filepath.Join(crateregistry.DebianRegistry, c)
		if _, err := os.Stat(d); err != nil {
			testenv.Skip(t, "crate source %s is missing: install librust-serde-dev, librust-serde-derive-dev, librust-regex-dev (make deps)", d)
		}
		dirs = append(dirs, d)
	}
	reg, err := crateregistry.FromDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	index := reg.Start()
	t.Cleanup(reg.Close)
	return reg, index
}

// depsProject writes a cargo project using serde's derive and regex, whose
// .cargo/config.toml points crates.io at the mirror index (as a user points
// cargo at a mirror), and makes its Cargo.lock with the host's cargo against
// that registry over HTTP.
func depsProject(t *testing.T, index string) string {
	t.Helper()
	testenv.NeedProgram(t, "cargo")
	dir := filepath.Join(t.TempDir(), "words")
	files := map[string]string{
		"Cargo.toml": `[package]
name = "words"
version = "0.1.0"
edition = "2021"

[dependencies]
regex = "1"
serde = { version = "1", features = ["derive"] }
`,
		"src/main.rs": `use regex::Regex;
use serde::Serialize;

#[derive(Serialize, Debug)]
struct Word {
    text: String,
    at: usize,
}

fn main() {
    let re = Regex::new(r"\b\w+\b").unwrap();
    let words: Vec<Word> = re
        .find_iter("reproducible builds need pinned inputs")
        .map(|m| Word { text: m.as_str().to_string(), at: m.start() })
        .collect();
    println!("{:?}", words);
}
`,
		".cargo/config.toml": "[source.crates-io]\nreplace-with = \"mirror\"\n\n[source.mirror]\nregistry = \"" + index + "\"\n",
	}
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gen := exec.Command("cargo", "generate-lockfile")
	gen.Dir = dir
	gen.Env = append(os.Environ(), crateregistry.CargoEnv()...)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cargo generate-lockfile against the registry: %v\n%s", err, out)
	}
	return dir
}

// TestFetchThenCheckOffline: the crates Cargo.lock pins are fetched from a
// real registry over HTTP, the registry is stopped, and the project (serde
// derive, regex, build scripts) builds and checks for real in the default
// image from the crate cache alone; the report and the record list the
// crates.
func TestFetchThenCheckOffline(t *testing.T) {
	dataDir := needDefaultImage(t)
	t.Setenv("CARGO_HOME", t.TempDir()) // neither the host's cargo config nor its cache
	reg, index := depsRegistry(t)
	dir := depsProject(t, index)
	// This test's crates are not in the cache yet (content-addressed: only
	// these bytes have these names).
	for _, c := range reg.Crates {
		os.Remove(filepath.Join(dataDir, "cache", "crates", "sha256", c.Checksum+".crate"))
	}
	r := reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("fetch: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != len(reg.Crates) || !slices.IsSorted(lines) {
		t.Errorf("fetch printed %d lines, want %d sorted:\n%s", len(lines), len(reg.Crates), r.stdout)
	}
	for _, c := range reg.Crates {
		if !slices.Contains(lines, c.Name+" "+c.Version+" "+c.Checksum) {
			t.Errorf("fetch did not print %s %s %s", c.Name, c.Version, c.Checksum)
		}
		if n := reg.Downloads(c.Name + "-" + c.Version); n != 1 {
			t.Errorf("%s %s downloaded %d times, want once", c.Name, c.Version, n)
		}
	}
	reg.Close() // from here on, nothing answers at the registry's address

	out := filepath.Join(t.TempDir(), "out")
	js := filepath.Join(t.TempDir(), "report.json")
	// Every factor but the build path: the vendored crates are inside the
	// build directory, as with cargo vendor, so the panic locations of their
	// code name the build path (a check varying it names build_path as the
	// culprit, with that evidence; see the README).
	r = reprobox(t, dir, "check", "--vary", "all,-build_path", "--bound", "0.25", "--data-dir", dataDir, "--out", out, "--json", js, "--jobs", "2")
	if r.code != 0 {
		t.Fatalf("check with the registry stopped: exit %d, want 0 (reproducible)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "0 downloaded, 10 from the cache") {
		t.Errorf("check did not take the crates from the cache:\n%s", r.stderr)
	}
	var rep struct {
		Reproducible     bool `json:"reproducible"`
		Nondeterministic bool `json:"nondeterministic"`
		Dependencies     []struct {
			Name, Version, Checksum, Source string
		} `json:"dependencies"`
	}
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Reproducible || rep.Nondeterministic || len(rep.Dependencies) != len(reg.Crates) {
		t.Errorf("report: reproducible %v, nondeterministic %v, %d dependencies", rep.Reproducible, rep.Nondeterministic, len(rep.Dependencies))
	}
	for i, d := range rep.Dependencies {
		if i > 0 && rep.Dependencies[i-1].Name >= d.Name {
			t.Errorf("report dependencies not sorted: %s before %s", rep.Dependencies[i-1].Name, d.Name)
		}
		if d.Source != "registry+https://github.com/rust-lang/crates.io-index" || len(d.Checksum) != 64 {
			t.Errorf("report dependency %+v", d)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "control", "target", "release", "words")); err != nil {
		t.Errorf("control artifact: %v", err)
	}
	for _, f := range []string{"target", ".reprobox-vendor"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("check wrote %s into the project", f)
		}
	}
	if cfg, _ := os.ReadFile(filepath.Join(dir, ".cargo", "config.toml")); !strings.Contains(string(cfg), "mirror") {
		t.Errorf("check changed the project's .cargo/config.toml:\n%s", cfg)
	}
}

// TestFetchCLI: what reprobox fetch and a build say and exit with, against a
// real registry on loopback: no lock (refused, exit 2, unless
// --generate-lock), a crate changed in the cache (refetched), a registry
// serving another crate than the lock pins (exit 2 naming the crate), a
// registry that is down (exit 3 naming the crate and the URL).
func TestFetchCLI(t *testing.T) {
	testenv.NeedProgram(t, "cargo")
	t.Setenv("CARGO_HOME", t.TempDir())
	var dirs []string
	for _, c := range []string{"memchr-2.5.0", "aho-corasick-0.7.19"} {
		d := filepath.Join(crateregistry.DebianRegistry, c)
		if _, err := os.Stat(d); err != nil {
			testenv.Skip(t, "crate source %s is missing: install librust-aho-corasick-dev (make deps)", d)
		}
		dirs = append(dirs, d)
	}
	reg, err := crateregistry.FromDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	index := reg.Start()
	defer reg.Close()
	dir := t.TempDir()
	for rel, data := range map[string]string{
		"Cargo.toml":         "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\naho-corasick = \"0.7\"\n",
		"src/main.rs":        "fn main() {}\n",
		".cargo/config.toml": "[source.crates-io]\nreplace-with = \"mirror\"\n\n[source.mirror]\nregistry = \"" + index + "\"\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := t.TempDir()
	// reprobox fetch --generate-lock runs the host cargo, which reads the
	// sparse index (old cargo: with the feature turned on).
	for _, e := range crateregistry.CargoEnv() {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}

	r := reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 2 || !strings.Contains(r.stderr, "no Cargo.lock") || !strings.Contains(r.stderr, "--generate-lock") {
		t.Errorf("fetch without a lock: exit %d, want 2 naming the lock and --generate-lock\n%s", r.code, r.stderr)
	}
	if img := testenv.DataDir(); reprobox(t, ".", "image", "inspect", "reprobox/rust", "--data-dir", img).code == 0 {
		r = reprobox(t, dir, "build", "--data-dir", img, "--out", filepath.Join(t.TempDir(), "out"))
		if r.code != 2 || !strings.Contains(r.stderr, "no Cargo.lock") || !strings.Contains(r.stderr, "aho-corasick") {
			t.Errorf("build without a lock: exit %d, want 2 naming the lock and the dependency\n%s", r.code, r.stderr)
		}
	}

	r = reprobox(t, dir, "fetch", "--generate-lock", "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("fetch --generate-lock: exit %d\n%s", r.code, r.stderr)
	}
	memchr, aho := reg.Crates[0], reg.Crates[1]
	if want := aho.Name + " " + aho.Version + " " + aho.Checksum + "\n" + memchr.Name + " " + memchr.Version + " " + memchr.Checksum + "\n"; r.stdout != want {
		t.Errorf("fetch stdout %q, want %q", r.stdout, want)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	if err != nil || !strings.Contains(string(lock), memchr.Checksum) {
		t.Fatalf("--generate-lock wrote no lock pinning memchr: %v\n%s", err, lock)
	}

	// A crate changed in the cache is detected and fetched again.
	cached := filepath.Join(dataDir, "cache", "crates", "sha256", memchr.Checksum+".crate")
	os.Chmod(cached, 0o644)
	if err := os.WriteFile(cached, memchr.Data[:len(memchr.Data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 0 || !strings.Contains(r.stderr, "cached crate memchr 2.5.0") || reg.Downloads("memchr-2.5.0") != 2 {
		t.Errorf("a truncated cached crate: exit %d, %d downloads of memchr, want 0 and 2\n%s", r.code, reg.Downloads("memchr-2.5.0"), r.stderr)
	}
	if data, _ := os.ReadFile(cached); !bytes.Equal(data, memchr.Data) {
		t.Errorf("the cached crate was not restored")
	}

	// The registry serves another crate than the lock pins.
	os.Remove(cached)
	reg.Serve("memchr-2.5.0", aho.Data)
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 2 || !strings.Contains(r.stderr, "crate memchr 2.5.0") || !strings.Contains(r.stderr, "Cargo.lock pins "+memchr.Checksum) {
		t.Errorf("checksum mismatch: exit %d, want 2 naming memchr and the pinned checksum\n%s", r.code, r.stderr)
	}

	// The registry down, a crate not in the cache.
	reg.Close()
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 3 || !strings.Contains(r.stderr, "crate memchr 2.5.0") || !strings.Contains(r.stderr, strings.TrimPrefix(index, "sparse+")) {
		t.Errorf("registry down: exit %d, want 3 naming memchr and the registry's URL\n%s", r.code, r.stderr)
	}
}
