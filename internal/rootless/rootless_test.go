package rootless

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

func TestParseSubIDs(t *testing.T) {
	data, err := os.ReadFile("testdata/subuid")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uid  int
		want []Range
	}{
		// By name and by uid, in file order; malformed, empty and
		// overflowing ranges skipped.
		{"alice", 1001, []Range{{100000, 65536}, {165536, 65536}, {300000, 1000}}},
		{"bob", 2000, []Range{{231072, 65536}}},
		{"carol", 3000, nil},
		{"dave", 4000, nil},
	} {
		got, err := ParseSubIDs(strings.NewReader(string(data)), tc.name, tc.uid)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzParseSubIDs(f *testing.F) {
	data, err := os.ReadFile("testdata/subuid")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data), "alice", 1001)
	f.Add("x:1:2\n", "x", 0)
	f.Fuzz(func(t *testing.T, content, name string, uid int) {
		rs, err := ParseSubIDs(strings.NewReader(content), name, uid)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Count == 0 || uint64(r.Start)+uint64(r.Count) > 1<<32-1 {
				t.Fatalf("range %v: empty or past the last id", r)
			}
		}
	})
}

// TestSecureDir: the data directory is created 0700, an existing one of
// ours is made 0700, and a symbolic link in its place, a file, or a parent
// writable by others without the sticky bit is refused, with nothing
// written through it. (Another user's directories and links need root to
// make; cmd/reprobox's TestRootlessDataDirAttack tries those as that user.)
func TestSecureDir(t *testing.T) {
	base := t.TempDir()
	uid := os.Getuid()

	fresh := filepath.Join(base, "a", "b", "data")
	if err := secureDir(fresh, uid, 0, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b"), fresh} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
			t.Errorf("%s: %v %v, want a new 0700 directory", p, fi.Mode(), err)
		}
	}

	loose := filepath.Join(base, "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := secureDir(loose, uid, 0, true); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(loose); fi.Mode().Perm() != 0o700 {
		t.Errorf("existing data directory left %v, want 0700", fi.Mode().Perm())
	}

	elsewhere := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if err := secureDir(link, uid, 0, true); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a link in the data directory's place: %v, want refused", err)
	}
	if fi, _ := os.Lstat(elsewhere); fi.Mode().Perm() != 0o755 {
		t.Errorf("the link's target was changed to %v", fi.Mode().Perm())
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := secureDir(file, uid, 0, true); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v, want refused", err)
	}

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := secureDir(filepath.Join(open, "data"), uid, 0, true); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("below a world-writable directory: %v, want refused", err)
	}
	if _, err := os.Lstat(filepath.Join(open, "data")); err == nil {
		t.Error("created the data directory below a world-writable directory")
	}
	sticky := filepath.Join(base, "sticky")
	if err := os.Mkdir(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := secureDir(filepath.Join(sticky, "data"), uid, 0, true); err != nil {
		t.Errorf("below a sticky directory like /tmp: %v", err)
	}
}

// TestSecureDirLinkThroughOtherUsersLink: the data directory is reached
// through the user's own link, which leads to a link another user placed
// in a sticky directory (/tmp) and still owns. The check must not resolve
// the whole chain at once and accept where it ends today: the other user
// can point their link elsewhere afterwards (at a directory of theirs),
// and reprobox's data would go there.
func TestSecureDirLinkThroughOtherUsersLink(t *testing.T) {
	testenv.NeedRoot(t) // to make another user's link
	base := t.TempDir()
	uid := os.Getuid()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(base, "shared") // like /tmp
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(shared, "theirs")
	if err := os.Symlink(real, theirs); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(theirs, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(base, "mine")
	if err := os.Symlink(theirs, mine); err != nil {
		t.Fatal(err)
	}
	err := secureDir(filepath.Join(mine, "data"), uid, 0, true)
	if err == nil || !strings.Contains(err.Error(), "uid 4242") {
		t.Errorf("through another user's link: %v, want refused naming uid 4242", err)
	}
}
