package policies

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRenderHostileImageFiles is what a hostile image tries: its /etc/passwd
// and /etc/group are links out of the root to host secrets, or files that
// would block or bloat the read. reprobox reads them as root on the host, so
// none of them may reach a host file, and none may hang.
func TestRenderHostileImageFiles(t *testing.T) {
	// A host secret any user could read: only resolving inside the root
	// keeps it out, not file permissions.
	secretDir := t.TempDir()
	const secret = "host-secret:$6$reprobox-must-not-leak$"
	secretFile := filepath.Join(secretDir, "shadow")
	for _, f := range []string{secretFile, filepath.Join(secretDir, "passwd"), filepath.Join(secretDir, "group")} {
		if err := os.WriteFile(f, []byte(secret+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hostShadow, _ := os.ReadFile("/etc/shadow")
	hostGshadow, _ := os.ReadFile("/etc/gshadow")
	up := strings.Repeat("../", 16)

	type fixture func(t *testing.T, root string)
	link := func(passwd, group string) fixture {
		return func(t *testing.T, root string) {
			must(t, os.Symlink(passwd, filepath.Join(root, "etc/passwd")))
			must(t, os.Symlink(group, filepath.Join(root, "etc/group")))
		}
	}
	tests := []struct {
		name    string
		setup   fixture
		wantErr string // "" means the render succeeds
		want    string // a line the rendered passwd holds besides the build user
	}{
		{name: "absolute links to the host shadow files", setup: link("/etc/shadow", "/etc/gshadow")},
		{name: "relative links to the host shadow files", setup: link(up+"etc/shadow", up+"etc/gshadow")},
		{name: "absolute link to a readable host file", setup: link(secretFile, secretFile)},
		{name: "relative link to a readable host file", setup: link(up+strings.TrimPrefix(secretFile, "/"), up+strings.TrimPrefix(secretFile, "/"))},
		{name: "etc itself links to the host etc", setup: func(t *testing.T, root string) {
			must(t, os.RemoveAll(filepath.Join(root, "etc")))
			must(t, os.Symlink(up+strings.TrimPrefix(secretDir, "/"), filepath.Join(root, "etc")))
		}},
		{name: "link to the image's own unreadable shadow", wantErr: "not readable by every user", setup: func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:image-shadow:1::::::\n"), 0o640))
			link("/etc/shadow", "/etc/shadow")(t, root)
		}},
		{name: "link inside the image is followed inside the image", want: "daemon:x:1:1:in-image:/:/bin/false", setup: func(t *testing.T, root string) {
			must(t, os.MkdirAll(filepath.Join(root, "usr/share/base"), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "usr/share/base/passwd"), []byte("daemon:x:1:1:in-image:/:/bin/false\n"), 0o644))
			link("../usr/share/base/passwd", "/usr/share/base/passwd")(t, root)
		}},
		{name: "passwd is a FIFO", wantErr: "/etc/passwd is a FIFO", setup: func(t *testing.T, root string) {
			must(t, unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644))
		}},
		{name: "group is a FIFO behind a link", wantErr: "/etc/group is a FIFO", setup: func(t *testing.T, root string) {
			must(t, unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644))
			must(t, os.Symlink("fifo", filepath.Join(root, "etc/group")))
		}},
		{name: "passwd is a directory", wantErr: "/etc/passwd is a directory", setup: func(t *testing.T, root string) {
			must(t, os.Mkdir(filepath.Join(root, "etc/passwd"), 0o755))
		}},
		{name: "passwd is a socket", wantErr: "/etc/passwd is a socket", setup: func(t *testing.T, root string) {
			l, err := net.Listen("unix", filepath.Join(root, "etc/passwd"))
			must(t, err)
			t.Cleanup(func() { l.Close() })
		}},
		{name: "passwd is a device", wantErr: "/etc/passwd is a character device", setup: func(t *testing.T, root string) {
			if os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			must(t, unix.Mknod(filepath.Join(root, "etc/passwd"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5)))) // /dev/zero
		}},
		{name: "passwd is too large", wantErr: "larger than", setup: func(t *testing.T, root string) {
			f, err := os.Create(filepath.Join(root, "etc/passwd"))
			must(t, err)
			must(t, f.Truncate(64<<20))
			must(t, f.Close())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.Mkdir(filepath.Join(root, "etc"), 0o755))
			tc.setup(t, root)
			s := Normalized(1700000000)
			s.Clock = 0
			done := make(chan error, 1)
			var files []File
			go func() {
				var err error
				_, files, _, err = Render(s, Host{Rootfs: root, Args: []string{"true"}})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Render hangs")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"/etc/passwd", "/etc/group"} {
				got := string(fileData(t, files, f))
				if strings.Contains(got, secret) || (len(hostShadow) > 0 && strings.Contains(got, firstLine(hostShadow))) ||
					(len(hostGshadow) > 0 && strings.Contains(got, firstLine(hostGshadow))) {
					t.Fatalf("%s holds host secrets:\n%s", f, got)
				}
			}
			b := fileData(t, files, "/etc/passwd")
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			wantLines := 1
			if tc.want != "" {
				wantLines = 2
				if lines[0] != tc.want {
					t.Errorf("passwd line 1 %q, want %q", lines[0], tc.want)
				}
			}
			if len(lines) != wantLines || !strings.HasPrefix(lines[len(lines)-1], "builder:x:1000:") {
				t.Errorf("passwd:\n%s", b)
			}
		})
	}
}

func firstLine(b []byte) string {
	l, _, _ := strings.Cut(string(b), "\n")
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileData is the content of the generated file at path.
func fileData(t *testing.T, files []File, path string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("no generated file %s", path)
	return nil
}
