package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

// TestSnapshotDigest: a source snapshot is named by the digest of its
// listing, which changes with a file's content, its mode and the owner, and
// not with anything else; one owner and date gets one copy.
func TestSnapshotDigest(t *testing.T) {
	testenv.NeedRoot(t)
	ctx := context.Background()
	project := t.TempDir()
	if err := os.MkdirAll(filepath.Join(project, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, perm os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(project, name), []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(project, name), perm); err != nil {
			t.Fatal(err)
		}
	}
	write("Cargo.toml", "[package]\n", 0o644)
	write("src/main.rs", "fn main() {}\n", 0o644)
	if err := os.Symlink("main.rs", filepath.Join(project, "src", "link.rs")); err != nil {
		t.Fatal(err)
	}
	digest := func(uid uint32) (string, string) {
		t.Helper()
		p := &Plan{Project: project}
		t.Cleanup(func() { p.Close() })
		src, err := p.snapshot(ctx, t.TempDir(), 1700000000, uid, uid, nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := p.snapshot(ctx, t.TempDir(), 1700000000, uid, uid, nil)
		if err != nil || again != src {
			t.Fatalf("second snapshot %v, %v; want the first, %v", again, err, src)
		}
		if filepath.Base(src.Dir) != src.Digest[len("sha256:"):] {
			t.Errorf("snapshot %s not named by its digest %s", src.Dir, src.Digest)
		}
		data, err := os.ReadFile(filepath.Join(src.Dir, "src", "main.rs"))
		if err != nil {
			t.Fatal(err)
		}
		return src.Digest, string(data)
	}
	base, data := digest(1000)
	if data != "fn main() {}\n" {
		t.Errorf("snapshot content %q", data)
	}
	if again, _ := digest(1000); again != base {
		t.Errorf("the same tree twice: %s then %s", base, again)
	}
	if other, _ := digest(1001); other == base {
		t.Error("another owner, the same digest")
	}
	write("src/main.rs", "fn main() { }\n", 0o644)
	changed, _ := digest(1000)
	if changed == base {
		t.Error("changed content, the same digest")
	}
	write("src/main.rs", "fn main() { }\n", 0o755)
	if mode, _ := digest(1000); mode == changed {
		t.Error("changed mode, the same digest")
	}
}
