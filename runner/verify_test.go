package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/policies"
)

// TestSourceDigestIsDirHash: the source digest is the in-toto dirHash, as
// the shell pipeline of the in-toto digest spec computes it, over the files a
// build would see (the config's excludes left out, symbolic links not
// followed).
func TestSourceDigestIsDirHash(t *testing.T) {
	testenv.NeedProgram(t, "sha256sum")
	dir := t.TempDir()
	files := map[string]string{
		"Cargo.toml":          "[package]\n",
		"src/main.rs":         "fn main() {}\n",
		"src/a b.rs":          "// space\n",
		"src/Z.rs":            "// upper case sorts first in C order\n",
		"target/release/junk": "excluded\n",
		"reprobox-out/x":      "excluded output directory\n",
		"deep/er/still/f.txt": "deep\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("Cargo.toml", filepath.Join(dir, "link"))
	p := &Plan{Project: dir, Config: Config{Exclude: []string{"target"}}, outRel: "reprobox-out"}
	src, err := sourceDigest(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `find . -type f ! -path './target/*' ! -path './reprobox-out/*' | cut -c3- | LC_ALL=C sort | tr '\n' '\0' | xargs -0 -r sha256sum | sha256sum | cut -f1 -d' '`)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); src.Digest["dirHash"] != want {
		t.Fatalf("dirHash %s, the spec's pipeline gives %s", src.Digest["dirHash"], want)
	}
	// A changed byte changes it.
	os.WriteFile(filepath.Join(dir, "src/main.rs"), []byte("fn main() {}\n\n"), 0o644)
	if again, _ := sourceDigest(context.Background(), p); again.Digest["dirHash"] == src.Digest["dirHash"] {
		t.Fatal("the digest did not change with the source")
	}
}

// TestStage0Deps: a rustc source tree's src/stage0 is recorded by digest, with
// the host's pinned tarballs.
func TestStage0Deps(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	h := strings.Repeat("ab", 32)
	os.WriteFile(filepath.Join(dir, "src", "stage0"), []byte("dist_server=https://static.rust-lang.org\ncompiler_date=2025-01-09\ncompiler_version=1.84.0\n"+
		"dist/2025-01-09/rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz="+h+"\n"+
		"dist/2025-01-09/rustc-1.84.0-x86_64-unknown-linux-gnu.tar.gz="+h+"\n"+
		"dist/2025-01-09/rust-std-1.84.0-x86_64-unknown-linux-gnux32.tar.xz="+h+"\n"+
		"dist/2025-01-09/clippy-1.84.0-x86_64-unknown-linux-gnu.tar.xz="+h+"\n"+
		"dist/2025-01-09/rustc-1.84.0-aarch64-apple-darwin.tar.xz="+h+"\n"), 0o644)
	deps := stage0Deps(dir)
	if len(deps) != 2 || deps[0].Name != "stage0" || len(deps[0].Digest["sha256"]) != 64 || deps[0].Annotations["compiler_version"] != "1.84.0" {
		t.Fatalf("%+v", deps)
	}
	if deps[1].URI != "https://static.rust-lang.org/dist/2025-01-09/rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz" || deps[1].Digest["sha256"] != h {
		t.Fatalf("%+v", deps[1])
	}
	if stage0Deps(t.TempDir()) != nil {
		t.Fatal("stage0 found where there is none")
	}
}

// TestVerifyDiffLabels: a mismatch's diff names the factors whose normalized
// values (the rebuild's) are in the differing bytes: here the publisher built
// in another directory, at another time.
func TestVerifyDiffLabels(t *testing.T) {
	dir := t.TempDir()
	pub, rebuilt := filepath.Join(dir, "published.txt"), filepath.Join(dir, "rebuilt.txt")
	os.WriteFile(pub, []byte("name = hello\nsrc = /home/ci/work/hello/src\nbuilt = 2024-03-01\n"), 0o444)
	os.WriteFile(rebuilt, []byte("name = hello\nsrc = /build/src\nbuilt = 2023-11-14\n"), 0o644)
	p := &Plan{Base: policies.Normalized(1700000000)}
	text, factors, err := verifyDiff(context.Background(), p, pub, rebuilt, VerifyOptions{EvidenceLines: 40})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(factors, "build_path") || !slices.Contains(factors, "time") {
		t.Fatalf("factors %v, want build_path and time\n%s", factors, text)
	}
	if !strings.Contains(text, "-src = /home/ci/work/hello/src") || !strings.Contains(text, "+src = /build/src") {
		t.Fatalf("diff:\n%s", text)
	}
}
