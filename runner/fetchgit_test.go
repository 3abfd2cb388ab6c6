package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/cargolock"
	"github.com/reprobox/reprobox/internal/testenv"
)

// gitRun runs git in dir with a fixed identity and dates (so commits are the
// same on every run), and returns its trimmed stdout.
func gitRun(t testing.TB, dir string, args ...string) string {
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

// GitDepRepo makes a real git repository at dir: a workspace of two crates,
// greet (a library with a build script, an executable file and a symbolic
// link outside it) and shout (which uses greet by path), committed, then a
// second commit that changes greet. It returns the two commits.
func GitDepRepo(t testing.TB, dir string) (first, second string) {
	t.Helper()
	files := map[string]string{
		"Cargo.toml":       "[workspace]\nmembers = [\"greet\", \"shout\"]\nresolver = \"2\"\n",
		"greet/Cargo.toml": "[package]\nname = \"greet\"\nversion = \"0.2.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n",
		"greet/build.rs":   "fn main() {\n    println!(\"cargo:rustc-env=GREET_WORD=hello\");\n}\n",
		"greet/src/lib.rs": "pub fn greet(who: &str) -> String {\n    format!(\"{}, {}\", env!(\"GREET_WORD\"), who)\n}\n",
		"shout/Cargo.toml": "[package]\nname = \"shout\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngreet = { path = \"../greet\", version = \"0.2\" }\n",
		"shout/src/lib.rs": "pub fn shout(s: &str) -> String {\n    format!(\"{} ({})\", s.to_uppercase(), greet::greet(\"shout\"))\n}\n",
		"tools/gen.sh":     "#!/bin/sh\necho generated\n",
		"README.md":        "two crates\n",
		".gitattributes":   "README.md export-ignore\n*.rs text eol=crlf\n",
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
	os.Chmod(filepath.Join(dir, "tools/gen.sh"), 0o755)
	if err := os.Symlink("../README.md", filepath.Join(dir, "tools/readme")); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, "init", "--quiet", "-b", "main")
	gitRun(t, dir, "add", "-A")
	gitRun(t, dir, "commit", "--quiet", "-m", "two crates")
	first = gitRun(t, dir, "rev-parse", "HEAD")
	if err := os.WriteFile(filepath.Join(dir, "greet/src/lib.rs"), []byte("pub fn greet(who: &str) -> String {\n    format!(\"{}, {}!\", env!(\"GREET_WORD\"), who)\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, "commit", "--quiet", "-am", "exclaim")
	second = gitRun(t, dir, "rev-parse", "HEAD")
	return first, second
}

// GitDepProject writes a cargo project depending on greet at the repository's
// first commit (rev) and on shout by branch (main: its head), and makes its
// Cargo.lock with the host's cargo, which fetches the file:// repository. The
// lock then holds greet twice: at the first commit, and at the branch's head
// (shout's, by path).
func GitDepProject(t testing.TB, dir, repo, rev string) {
	t.Helper()
	files := map[string]string{
		"Cargo.toml": "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n" +
			"greet = { git = \"file://" + repo + "\", rev = \"" + rev + "\" }\n" +
			"shout = { git = \"file://" + repo + "\", branch = \"main\" }\n",
		"src/main.rs": "fn main() {\n    println!(\"{}\", shout::shout(&greet::greet(\"git\")));\n}\n",
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
	cmd := exec.Command("cargo", "generate-lockfile")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo generate-lockfile: %v\n%s", err, out)
	}
}

// TestFetchGit: git dependencies of a lock that host cargo made against a
// real repository are fetched at their locked commits, verified against
// them, vendored; host cargo builds the snapshot offline and --locked with
// the repository moved away; a changed cache entry is detected and fetched
// again; a locked commit the repository lacks is a config error naming the
// crate, the URL and the commit; a repository that is gone is a fetch error.
func TestFetchGit(t *testing.T) {
	testenv.NeedProgram(t, "git")
	testenv.NeedProgram(t, "cargo")
	t.Setenv("CARGO_HOME", t.TempDir())
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	first, second := GitDepRepo(t, repo)
	dir := filepath.Join(base, "app")
	GitDepProject(t, dir, repo, first)
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	for _, want := range []string{"?rev=" + first + "#" + first, "?branch=main#" + second} {
		if !strings.Contains(string(lock), want) {
			t.Fatalf("the lock does not pin %s:\n%s", want, lock)
		}
	}

	cache := filepath.Join(t.TempDir(), "crates")
	var progress bytes.Buffer
	r := &Runner{CrateCache: cache, Progress: &progress}
	ctx := context.Background()
	deps, err := r.Fetch(ctx, dir)
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, progress.String())
	}
	url := "file://" + repo
	bySource, byRev := "git+"+url+"?branch=main#"+second, "git+"+url+"?rev="+first+"#"+first
	if len(deps) != 3 || deps[0].Name != "greet" || deps[0].Commit != second || deps[0].Source != bySource ||
		deps[1].Name != "greet" || deps[1].Commit != first || deps[1].Source != byRev || deps[1].Checksum != "" ||
		deps[2].Name != "shout" || deps[2].Commit != second || deps[2].Source != bySource {
		t.Fatalf("deps %+v", deps)
	}
	if !strings.Contains(progress.String(), "3 git dependencies pinned by Cargo.lock, from 2 repositories: 2 fetched, 0 from the cache") {
		t.Errorf("progress: %s", progress.String())
	}
	// The cached tree is the commit's, bytes as committed: no export-ignore,
	// no eol conversion, the executable bit and the symbolic link kept.
	entry := filepath.Join(filepath.Dir(cache), "git", gitKey(mustGitSource(t, byRev)))
	if data, err := os.ReadFile(filepath.Join(entry, "tree/greet/src/lib.rs")); err != nil || bytes.Contains(data, []byte("\r")) || bytes.Contains(data, []byte(`{}!`)) {
		t.Errorf("cached greet/src/lib.rs at the first commit: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(entry, "tree/README.md")); err != nil {
		t.Errorf("README.md (export-ignore) missing from the cached tree: %v", err)
	}
	if st, err := os.Stat(filepath.Join(entry, "tree/tools/gen.sh")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("tools/gen.sh not executable in the cache: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(entry, "tree/tools/readme")); err != nil || l != "../README.md" {
		t.Errorf("tools/readme: %q, %v", l, err)
	}

	// The repository moved away: the cache serves, and the vendored
	// snapshot builds offline.
	away := filepath.Join(base, "away")
	if err := os.Rename(repo, away); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	vs, _, err := r.fetch(ctx, dir)
	if err != nil {
		t.Fatalf("fetch from the cache with the repository gone: %v", err)
	}
	if !strings.Contains(progress.String(), "0 fetched, 2 from the cache") {
		t.Errorf("progress: %s", progress.String())
	}
	snap := filepath.Join(t.TempDir(), "snap")
	if _, _, _, err := copyTree(ctx, dir, snap, nil, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := vs.install(ctx, snap, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(snap, ".cargo", "config.toml"))
	for _, want := range []string{
		`[source."git+` + url + `?branch=main"]`, `branch = "main"`,
		`[source."git+` + url + `?rev=` + first + `"]`, `rev = "` + first + `"`, `git = "` + url + `"`, "offline = true",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config.toml does not say %s:\n%s", want, conf)
		}
	}
	sum, err := os.ReadFile(filepath.Join(snap, vs.crates[0].dir, ".cargo-checksum.json"))
	if err != nil || string(sum) != `{"files":{},"package":null}` {
		t.Errorf(".cargo-checksum.json of a git crate: %s, %v", sum, err)
	}
	cmd := exec.Command("cargo", "run", "--quiet", "--release", "--offline", "--locked")
	cmd.Dir = snap
	out, err := cmd.CombinedOutput()
	// greet at the first commit, and shout with greet at the second.
	if err != nil || strings.TrimSpace(string(out)) != "HELLO, GIT (hello, shout!)" {
		t.Fatalf("cargo run in the vendored snapshot, the repository gone: %v\n%s", err, out)
	}

	// A cached checkout changed after the fetch: install refuses it.
	lib := filepath.Join(entry, "tree/greet/src/lib.rs")
	os.Chmod(lib, 0o644)
	if err := os.WriteFile(lib, []byte("pub fn greet(_: &str) -> String { String::from(\"owned\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap2 := filepath.Join(t.TempDir(), "snap")
	if _, _, _, err := copyTree(ctx, dir, snap2, nil, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := vs.install(ctx, snap2, 1700000000, 0, 0); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "crate greet 0.2.0") || !strings.Contains(err.Error(), first) {
		t.Errorf("install from a changed cache: %v, want ErrChecksum naming greet", err)
	}
	// The next fetch detects it; the repository gone, it says it cannot
	// reach it, naming the crate and the URL.
	progress.Reset()
	_, err = r.Fetch(ctx, dir)
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "crate greet 0.2.0") || !strings.Contains(err.Error(), url) {
		t.Errorf("fetch with a changed cache and the repository gone: %v, want ErrFetch naming greet and %s", err, url)
	}
	if !strings.Contains(progress.String(), "was changed") || !strings.Contains(progress.String(), first) {
		t.Errorf("the changed checkout was not reported: %s", progress.String())
	}
	// The repository back: fetched again, as committed.
	if err := os.Rename(away, repo); err != nil {
		t.Fatal(err)
	}
	// An extra file is a change too.
	shoutEntry := filepath.Join(filepath.Dir(cache), "git", gitKey(mustGitSource(t, bySource)))
	if err := os.WriteFile(filepath.Join(shoutEntry, "tree/shout/src/extra.rs"), []byte("// planted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	if _, err := r.Fetch(ctx, dir); err != nil {
		t.Fatalf("refetch: %v", err)
	}
	if !strings.Contains(progress.String(), "2 fetched, 0 from the cache") {
		t.Errorf("progress: %s", progress.String())
	}
	if data, _ := os.ReadFile(lib); bytes.Contains(data, []byte("owned")) {
		t.Errorf("the changed file was not restored")
	}
	if _, err := os.Stat(filepath.Join(shoutEntry, "tree/shout/src/extra.rs")); err == nil {
		t.Errorf("the planted file is still in the cache")
	}

	// A locked commit the repository does not have (history rewritten).
	gone := "00000000000000000000000000000000000000ff"
	if err := os.WriteFile(filepath.Join(dir, "Cargo.lock"), []byte(strings.ReplaceAll(string(lock), "#"+first, "#"+gone)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = r.Fetch(ctx, dir)
	if !errors.Is(err, ErrConfig) || errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "crate greet 0.2.0") || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), gone) {
		t.Errorf("missing commit: %v, want ErrConfig naming greet, %s and %s", err, url, gone)
	}
}

func mustGitSource(t *testing.T, src string) cargolock.GitSource {
	t.Helper()
	g, err := cargolock.ParseGitSource(src)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFetchGitSubmodule: a repository whose tree holds a submodule (a
// gitlink) is fetched and verified (the gitlink is part of the tree's hash);
// a package outside the submodule is vendored, one holding it is refused
// (reprobox does not fetch submodules) naming the crate and the submodule.
func TestFetchGitSubmodule(t *testing.T) {
	testenv.NeedProgram(t, "git")
	t.Setenv("CARGO_HOME", t.TempDir())
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	for rel, data := range map[string]string{
		"Cargo.toml":       "[package]\nname = \"outer\"\nversion = \"1.0.0\"\nedition = \"2021\"\n",
		"src/lib.rs":       "",
		"plain/Cargo.toml": "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"plain/src/lib.rs": "pub fn f() {}\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(repo, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitRun(t, repo, "init", "--quiet", "-b", "main")
	gitRun(t, repo, "add", "-A")
	// A submodule entry whose parent directory holds nothing else.
	gitRun(t, repo, "update-index", "--add", "--cacheinfo", "160000,1111111111111111111111111111111111111111,third_party/lib")
	gitRun(t, repo, "commit", "--quiet", "-m", "with a submodule")
	head := gitRun(t, repo, "rev-parse", "HEAD")
	src := "git+file://" + repo + "?branch=main#" + head
	dir := filepath.Join(base, "app")
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "main.rs"), []byte("fn main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte("[package]\nname = \"app\"\nversion = \"0.1.0\"\n"), 0o644)
	writeLock := func(name, version string) {
		lock := "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"" + name + "\"]\n\n" +
			"[[package]]\nname = \"" + name + "\"\nversion = \"" + version + "\"\nsource = \"" + src + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, "Cargo.lock"), []byte(lock), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runner{CrateCache: filepath.Join(t.TempDir(), "crates")}
	ctx := context.Background()

	writeLock("plain", "0.1.0")
	vs, deps, err := r.fetch(ctx, dir)
	if err != nil || len(deps) != 1 || deps[0].Commit != head {
		t.Fatalf("fetch of a repository with a submodule: %+v, %v", deps, err)
	}
	snap := filepath.Join(t.TempDir(), "snap")
	copyTree(ctx, dir, snap, nil, 1700000000, 0, 0)
	if err := vs.install(ctx, snap, 1700000000, 0, 0); err != nil {
		t.Fatalf("install plain: %v", err)
	}
	if _, err := os.Stat(filepath.Join(snap, vs.crates[0].dir, "src", "lib.rs")); err != nil {
		t.Error(err)
	}

	writeLock("outer", "1.0.0")
	_, _, err = r.fetch(ctx, dir)
	if !errors.Is(err, ErrConfig) || !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "crate outer 1.0.0") || !strings.Contains(err.Error(), "third_party/lib") {
		t.Errorf("a package holding a submodule: %v, want ErrUnsupported naming outer and third_party/lib", err)
	}
}

// TestExportGitRefusesLinkedPaths: a dependency's repository holds a
// hand-made tree (git mktree accepts it; fetch does not fsck) with a link
// "a" -> a host directory and a file "a/x". Exporting it must not write
// through the link.
func TestExportGitRefusesLinkedPaths(t *testing.T) {
	testenv.NeedProgram(t, "git")
	ctx := context.Background()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(base, "repo.git")
	git := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = db
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.org",
			"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.org")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "init", "-q", "--bare", db).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	link := git(outside, "hash-object", "-w", "--stdin")
	file := git("pwned\n", "hash-object", "-w", "--stdin")
	sub := git("100644 blob "+file+"\tx\n", "mktree")
	top := git("120000 blob "+link+"\ta\n040000 tree "+sub+"\ta\n", "mktree")
	commit := git("", "commit-tree", top, "-m", "evil")
	err := exportGit(ctx, db, commit, filepath.Join(base, "entry"))
	if _, serr := os.Lstat(filepath.Join(outside, "x")); serr == nil {
		t.Fatalf("the export wrote %s through the tree's link", filepath.Join(outside, "x"))
	}
	if err == nil {
		t.Errorf("exporting a tree with a path through a link succeeded")
	}
}
