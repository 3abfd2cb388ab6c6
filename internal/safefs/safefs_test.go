package safefs

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/testenv"
)

// hostile makes a tree the way a build could leave it: links out of the root
// (absolute, relative, through /proc/self/root), a FIFO, a socket, and a
// regular file, next to a secret file outside the root.
func hostile(t testing.TB) (root, secret string) {
	t.Helper()
	base := t.TempDir()
	secret = filepath.Join(base, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(base, "root")
	for _, d := range []string{"root/dir/sub", "root/real"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "dir/sub/file"), []byte("ok"), 0o644))
	must(os.Symlink(base, filepath.Join(root, "abs")))
	must(os.Symlink("../..", filepath.Join(root, "dir/up")))
	must(os.Symlink("/proc/self/root"+base, filepath.Join(root, "proc")))
	must(os.Symlink(secret, filepath.Join(root, "real/link")))
	must(os.Symlink("sub", filepath.Join(root, "dir/inside")))
	must(unix.Mkfifo(filepath.Join(root, "real/fifo"), 0o644))
	l, err := net.Listen("unix", filepath.Join(root, "real/sock"))
	must(err)
	t.Cleanup(func() { l.Close() })
	return root, secret
}

func TestOpenRefusesLinksAndSpecialFiles(t *testing.T) {
	root, _ := hostile(t)
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		rel  string
		want error
		text string
	}{
		{"abs/secret", ErrSymlink, ""},
		{"dir/up/secret", ErrSymlink, ""},
		{"dir/../../secret", ErrEscapes, ""},
		{"/etc/passwd", ErrEscapes, ""},
		{"proc/secret", ErrSymlink, ""},
		{"real/link", ErrSymlink, ""},
		{"dir/inside/file", ErrSymlink, ""}, // even a link that stays inside
		{"real/fifo", ErrNotRegular, "FIFO"},
		{"real/sock", ErrNotRegular, "socket"},
		{"dir", ErrNotRegular, "directory"},
		{"nope", os.ErrNotExist, ""},
	} {
		done := make(chan error, 1)
		go func() {
			f, _, err := r.Open(tc.rel)
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, tc.want) || !strings.Contains(errString(err), tc.text) || !strings.Contains(errString(err), tc.rel) {
				t.Errorf("Open(%q) = %v, want %v naming the path and %q", tc.rel, err, tc.want, tc.text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Open(%q) hangs", tc.rel)
		}
	}
	f, info, err := r.Open("dir/sub/file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "ok" || info.Size() != 2 {
		t.Errorf("read %q size %d", b, info.Size())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestOpenRefusesDevice: a device node (made here as root; a build cannot,
// without CAP_MKNOD) is refused without being opened for reading.
func TestOpenRefusesDevice(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	// /dev/zero's numbers: reading it would never end.
	if err := unix.Mknod(filepath.Join(root, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Open("zero"); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("Open(device) = %v, want ErrNotRegular naming a character device", err)
	}
	if _, _, err := OpenFile(filepath.Join(root, "zero")); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), root) {
		t.Errorf("OpenFile(device) = %v, want ErrNotRegular naming the path", err)
	}
}

func TestGlobStaysInside(t *testing.T) {
	root, _ := hostile(t)
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		pattern string
		want    []string
		err     error
	}{
		{"dir/sub/file", []string{"dir/sub/file"}, nil},
		{"*/sub/*", []string{"dir/sub/file"}, nil},
		{"dir/*", []string{"dir/inside", "dir/sub", "dir/up"}, nil},
		{"*/*/file", []string{"dir/sub/file"}, nil}, // not through dir/inside or dir/up
		{"abs/secret", nil, ErrSymlink},
		{"abs/*", nil, ErrSymlink},
		{"dir/up/*", nil, ErrSymlink},
		{"proc/*", nil, ErrSymlink},
		{"real/*", []string{"real/fifo", "real/link", "real/sock"}, nil},
		{"nope/*", nil, nil},
		{"dir/sub/file/x", nil, nil},
		{"../*", nil, ErrEscapes},
	} {
		got, err := r.Glob(tc.pattern)
		if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
			t.Errorf("Glob(%q) = %q, %v; want %q, %v", tc.pattern, got, err, tc.want, tc.err)
		}
	}
}

func TestCreateAndMkdirDoNotFollowLinks(t *testing.T) {
	root, secret := hostile(t)
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Create("real/link", 0o644); err == nil {
		t.Error("Create over a link succeeded")
	}
	if _, err := r.Create("abs/new", 0o644); !errors.Is(err, ErrSymlink) {
		t.Errorf("Create through a link: %v", err)
	}
	if err := r.MkdirAll("abs/x/y", 0o755); !errors.Is(err, ErrNotDir) {
		t.Errorf("MkdirAll through a link: %v", err)
	}
	if err := r.Lchown("real/link", 1234, 1234); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(secret, &st); err != nil || st.Uid == 1234 {
		t.Errorf("Lchown followed the link to %s (uid %d, %v)", secret, st.Uid, err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "host secret" {
		t.Errorf("secret changed: %q", b)
	}
	if err := r.MkdirAll("new/a/b", 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := r.Create("new/a/b/f", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, err := os.Stat(filepath.Join(root, "new/a/b/f")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("created file: %v %v", st, err)
	}
}

// FuzzGlob: whatever the pattern, Glob never returns a path outside the root
// or through a link.
func FuzzGlob(f *testing.F) {
	for _, s := range []string{"dir/sub/file", "*/*/*", "abs/*", "../*", "dir/up/*", "[", "dir/[a-z]*", "*", "./dir//sub", "proc/*/*"} {
		f.Add(s)
	}
	root, _ := hostile(f)
	r, err := OpenRoot(root)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, pattern string) {
		got, _ := r.Glob(pattern)
		for _, p := range got {
			if strings.HasPrefix(p, "..") || filepath.IsAbs(p) {
				t.Fatalf("Glob(%q) returned %q", pattern, p)
			}
			dir := filepath.Dir(p)
			if dir != "." {
				if m, err := r.Lstat(dir); err != nil || !m.IsDir() {
					t.Fatalf("Glob(%q) returned %q whose directory is %v, %v", pattern, p, m, err)
				}
			}
		}
	})
}
