package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

// gitE2E runs git in dir with a fixed identity and dates and returns its
// trimmed stdout.
func gitE2E(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2023-11-14T22:13:20Z", "GIT_COMMITTER_DATE=2023-11-14T22:13:20Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFetchGitThenBuildOffline: a project depending on a crate of a real git
// repository (a library with a build script, in a workspace) at a locked
// commit is fetched, the repository moved away, and built twice for real in
// the default image from the git cache alone, with identical artifacts; the
// record lists the dependency with its commit. Then what fetch says and exits
// with: a changed cache entry (fetched again), a locked commit the repository
// lacks (exit 2 naming crate, URL and commit), a repository that is gone
// (exit 3 naming crate and URL).
func TestFetchGitThenBuildOffline(t *testing.T) {
	dataDir := needDefaultImage(t)
	testenv.NeedProgram(t, "git")
	t.Setenv("CARGO_HOME", t.TempDir())
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	writeFiles(t, repo, map[string]string{
		"Cargo.toml":       "[workspace]\nmembers = [\"greet\"]\nresolver = \"2\"\n",
		"greet/Cargo.toml": "[package]\nname = \"greet\"\nversion = \"0.2.0\"\nedition = \"2021\"\n",
		"greet/build.rs":   "fn main() {\n    println!(\"cargo:rustc-env=GREET_WORD=hello\");\n}\n",
		"greet/src/lib.rs": "pub fn greet(who: &str) -> String {\n    format!(\"{}, {}\", env!(\"GREET_WORD\"), who)\n}\n",
	})
	gitE2E(t, repo, "init", "--quiet", "-b", "main")
	gitE2E(t, repo, "add", "-A")
	gitE2E(t, repo, "commit", "--quiet", "-m", "greet")
	first := gitE2E(t, repo, "rev-parse", "HEAD")
	writeFiles(t, repo, map[string]string{"greet/src/lib.rs": "pub fn greet(who: &str) -> String {\n    format!(\"{}, {}!\", env!(\"GREET_WORD\"), who)\n}\n"})
	gitE2E(t, repo, "commit", "--quiet", "-am", "exclaim")
	second := gitE2E(t, repo, "rev-parse", "HEAD")

	url := "file://" + repo
	t.Cleanup(func() { // this test's entries in the shared git cache (keyed by the temporary URL)
		for _, c := range []string{first, second} {
			key := sha256.Sum256([]byte(url + "\n" + c))
			d := filepath.Join(dataDir, "cache", "git", hex.EncodeToString(key[:16]))
			filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					os.Chmod(p, 0o755)
				}
				return nil
			})
			os.RemoveAll(d)
		}
	})
	dir := filepath.Join(base, "app")
	writeFiles(t, dir, map[string]string{
		"Cargo.toml":  "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngreet = { git = \"" + url + "\", rev = \"" + first + "\" }\n",
		"src/main.rs": "fn main() {\n    println!(\"{}\", greet::greet(\"git\"));\n}\n",
	})
	gen := exec.Command("cargo", "generate-lockfile") // fetches the local file:// repository
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cargo generate-lockfile: %v\n%s", err, out)
	}
	lockFile := filepath.Join(dir, "Cargo.lock")
	lock, _ := os.ReadFile(lockFile)

	r := reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 0 || r.stdout != "greet 0.2.0 "+first+"\n" {
		t.Fatalf("fetch: exit %d, stdout %q, want greet 0.2.0 %s\n%s", r.code, r.stdout, first, r.stderr)
	}
	// The build never needs the repository, nor the host's cargo cache.
	away := filepath.Join(base, "away")
	if err := os.Rename(repo, away); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CARGO_HOME", t.TempDir())

	var sums []string
	for _, name := range []string{"one", "two"} {
		out := filepath.Join(t.TempDir(), name)
		r = reprobox(t, dir, "build", "--data-dir", dataDir, "--out", out)
		if r.code != 0 {
			t.Fatalf("build %s with the repository gone: exit %d\nstdout:\n%s\nstderr:\n%s", name, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "1 git dependencies pinned by Cargo.lock, from 1 repositories: 0 fetched, 1 from the cache") {
			t.Errorf("build %s did not take greet from the git cache:\n%s", name, r.stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		if err != nil || !strings.Contains(string(data), "target/release/app") {
			t.Fatalf("build %s: SHA256SUMS %q, %v", name, data, err)
		}
		sums = append(sums, string(data))
		var rec struct {
			Dependencies []map[string]string `json:"dependencies"`
		}
		data, err = os.ReadFile(filepath.Join(out, "record.json"))
		if err == nil {
			err = json.Unmarshal(data, &rec)
		}
		if err != nil || len(rec.Dependencies) != 1 || rec.Dependencies[0]["name"] != "greet" || rec.Dependencies[0]["commit"] != first ||
			rec.Dependencies[0]["source"] != "git+"+url+"?rev="+first+"#"+first {
			t.Errorf("record dependencies: %+v, %v", rec.Dependencies, err)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two builds differ:\n%s\n%s", sums[0], sums[1])
	}
	if _, err := os.Stat(filepath.Join(dir, ".reprobox-vendor")); err == nil {
		t.Errorf("the build wrote .reprobox-vendor into the project")
	}

	// A cached checkout changed: detected; with the repository gone the
	// fetch cannot restore it (exit 3 naming the crate and the URL); back,
	// it is fetched again.
	// The cache entry: <data-dir>/cache/git/KEY, KEY the first 16 bytes of
	// sha256(URL "\n" COMMIT), in hex (see the README).
	key := sha256.Sum256([]byte(url + "\n" + first))
	lib := filepath.Join(dataDir, "cache", "git", hex.EncodeToString(key[:16]), "tree", "greet", "src", "lib.rs")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("the cached checkout: %v", err)
	}
	os.Chmod(lib, 0o644)
	if err := os.WriteFile(lib, []byte("pub fn greet(_: &str) -> String { String::from(\"owned\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 3 || !strings.Contains(r.stderr, "was changed") || !strings.Contains(r.stderr, "crate greet 0.2.0") || !strings.Contains(r.stderr, url) {
		t.Errorf("changed cache, repository gone: exit %d, want 3 naming greet and %s\n%s", r.code, url, r.stderr)
	}
	if err := os.Rename(away, repo); err != nil {
		t.Fatal(err)
	}
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 0 || !strings.Contains(r.stderr, "1 fetched, 0 from the cache") {
		t.Errorf("refetch: exit %d\n%s", r.code, r.stderr)
	}
	if data, _ := os.ReadFile(lib); strings.Contains(string(data), "owned") {
		t.Errorf("the changed cached file was not restored")
	}

	// A locked commit the repository does not have.
	gone := "00000000000000000000000000000000000000ff"
	os.WriteFile(lockFile, []byte(strings.ReplaceAll(string(lock), "#"+first, "#"+gone)), 0o644)
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 2 || !strings.Contains(r.stderr, "crate greet 0.2.0") || !strings.Contains(r.stderr, url) || !strings.Contains(r.stderr, gone) {
		t.Errorf("missing commit: exit %d, want 2 naming greet, %s and %s\n%s", r.code, url, gone, r.stderr)
	}
	// The repository unreachable, a commit not in the cache.
	os.WriteFile(lockFile, []byte(strings.ReplaceAll(string(lock), "#"+first, "#"+second)), 0o644)
	os.Rename(repo, away)
	r = reprobox(t, dir, "fetch", "--data-dir", dataDir)
	if r.code != 3 || !strings.Contains(r.stderr, "crate greet 0.2.0") || !strings.Contains(r.stderr, url) || !strings.Contains(r.stderr, "unreachable") {
		t.Errorf("repository gone: exit %d, want 3 naming greet and %s\n%s", r.code, url, r.stderr)
	}
}
