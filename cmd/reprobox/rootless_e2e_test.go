package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/rootless"
	"github.com/reprobox/reprobox/internal/testenv"
)

// rootlessUser is the ordinary user the rootless tests run reprobox as; they
// create it (with subordinate ids) when it is missing.
const rootlessUser = "reprobox-ci"

// rootlessEnv is an ordinary user's account for the rootless tests: the user,
// a private directory of theirs with a copy of the test binary, and their own
// home (where their data directory, with the default image, stays between
// runs).
type rootlessEnv struct {
	uid, gid uint32
	home     string
	base     string // owned by the user, removed after the test
	bin      string
	image    string
}

// needRootless makes the ordinary user, gives them the default image (root
// exports it, the user imports it into their own store) and a copy of this
// binary. It needs root (to make the user) and the default image.
func needRootless(t *testing.T) *rootlessEnv {
	t.Helper()
	dataDir, image := needImage(t)
	e := rootlessAccount(t)
	e.image = image

	// The user's store holds the default image under the same digest, or
	// gets it: exported by root, imported by the user.
	base := e.base
	r := reprobox(t, ".", "image", "inspect", image, "--json", "--data-dir", dataDir)
	var info struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || !strings.HasPrefix(info.Digest, "sha256:") {
		t.Fatalf("image inspect %s: %v\n%s%s", image, err, r.stdout, r.stderr)
	}
	if ls := e.run(t, base, "image", "ls"); ls.code != 0 || !strings.Contains(ls.stdout, info.Digest) {
		archive := filepath.Join(base, "image.tar")
		if r := reprobox(t, ".", "image", "export", image, archive, "--data-dir", dataDir); r.code != 0 {
			t.Fatalf("export %s: exit %d\n%s", image, r.code, r.stderr)
		}
		if err := os.Chmod(archive, 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run(t, base, "image", "import", archive, "--name", image)
		if r.code != 0 || !strings.Contains(r.stdout, info.Digest) {
			t.Fatalf("import as %s: exit %d, want %s\n%s%s", rootlessUser, r.code, info.Digest, r.stdout, r.stderr)
		}
		os.Remove(archive)
	}
	return e
}

// rootlessAccount makes the ordinary user (with subordinate ids) when
// missing, and a private directory of theirs holding a copy of this binary.
func rootlessAccount(t *testing.T) *rootlessEnv {
	t.Helper()
	testenv.NeedRoot(t)
	for _, p := range []string{"newuidmap", "newgidmap", "useradd", "usermod"} {
		testenv.NeedProgram(t, p)
	}
	u := ensureRootlessUser(t)
	e := &rootlessEnv{}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	e.uid, e.gid, e.home = uint32(uid), uint32(gid), u.HomeDir
	if err := os.MkdirAll(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(e.home, int(e.uid), int(e.gid)); err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("/tmp", "reprobox-rootless-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	e.base = base
	for _, d := range []string{base, filepath.Join(base, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(e.uid), int(e.gid)); err != nil {
			t.Fatal(err)
		}
	}
	e.bin = filepath.Join(base, "bin", "reprobox")
	copyFileMode(t, os.Args[0], e.bin, 0o755)

	return e
}

// ensureRootlessUser returns the rootless test user, creating it, and its
// subordinate ids in /etc/subuid and /etc/subgid, when missing.
func ensureRootlessUser(t *testing.T) *user.User {
	t.Helper()
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", rootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v\n%s", rootlessUser, err, out)
		}
		if u, err = user.Lookup(rootlessUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		data, err := os.ReadFile(f.file)
		if errors.Is(err, fs.ErrNotExist) {
			err = os.WriteFile(f.file, nil, 0o644) // usermod adds to it
		}
		if err != nil {
			t.Fatal(err)
		}
		mine, err := rootless.ParseSubIDs(bytes.NewReader(data), rootlessUser, uid)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) > 0 && mine[0].Count >= 65536 {
			continue
		}
		// A free range above every range of every user.
		start := uint64(100000)
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.Split(line, ":")
			if len(parts) != 3 {
				continue
			}
			s, err1 := strconv.ParseUint(parts[1], 10, 32)
			n, err2 := strconv.ParseUint(parts[2], 10, 32)
			if err1 == nil && err2 == nil && s+n > start {
				start = s + n
			}
		}
		arg := fmt.Sprintf("%d-%d", start, start+65535)
		if out, err := exec.Command("usermod", f.flag, arg, rootlessUser).CombinedOutput(); err != nil {
			t.Fatalf("usermod %s %s: %v\n%s", f.flag, arg, err, out)
		}
	}
	return u
}

func copyFileMode(t *testing.T, src, dst string, mode fs.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
}

// run runs the copied binary as reprobox, as the user, in dir, with a clean
// environment of their own (HOME, PATH, no REPROBOX_DATA_DIR: the default,
// XDG data directory) plus extra variables.
func (e *rootlessEnv) run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return e.runEnv(t, dir, nil, args...)
}

func (e *rootlessEnv) runEnv(t *testing.T, dir string, extra []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{
		"HOME=" + e.home,
		"USER=" + rootlessUser,
		"LOGNAME=" + rootlessUser,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"REPROBOX_RUN_MAIN=1",
	}, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: e.uid, Gid: e.gid, Groups: []uint32{e.gid}}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// fixtureCopy copies a fixture crate into the user's directory (the
// checkout may not be readable by them).
func (e *rootlessEnv) fixtureCopy(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(e.base, "crates", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", fixture(name), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture: %v\n%s", err, out)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", e.uid, e.gid), filepath.Join(e.base, "crates")).CombinedOutput(); err != nil {
		t.Fatalf("chown fixture: %v\n%s", err, out)
	}
	return dst
}

// TestRootlessFixtures is the fixture checks once as an ordinary user: each
// fixture crate is built as root and as the user (the same SHA256SUMS), and
// checked as the user with every factor varied (the same culprits as
// TestCheckFixtures expects of root). The record says which limits a
// rootless build went without.
func TestRootlessFixtures(t *testing.T) {
	e := needRootless(t)
	dataDir := testenv.DataDir()
	cases := []struct {
		crate    string
		culprits []string
	}{
		{"reproducible", nil},
		{"time", []string{"time"}},
		{"build_path", []string{"build_path"}},
		{"locale", []string{"locale"}},
		{"timezone", []string{"timezone"}},
		{"umask", []string{"umask"}},
		{"hostname", []string{"hostname"}},
		{"domainname", []string{"domainname"}},
		{"user", []string{"user"}},
		{"home", []string{"home"}},
		{"fileordering", []string{"fileordering"}},
		{"num_cpus", []string{"num_cpus"}},
		{"kernel", []string{"kernel"}},
		{"aslr", []string{"aslr"}},
		{"env", []string{"env"}},
		{"exec_path", []string{"exec_path"}},
		{"two_factors", []string{"home", "hostname"}},
		{"dist", []string{"time", "umask", "user"}},
		{"dep_build_path", []string{"build_path"}},
	}
	// Where the user cannot open /dev/fuse (mode 0600 on some hosts),
	// fileordering cannot be varied rootless: check must refuse it, clearly,
	// and the other factors are checked without it.
	fr := e.run(t, e.base, "factors", "--backend", "libcontainer")
	noFUSE := strings.Contains(fr.stdout, "unavailable: fileordering")
	t.Logf("rootless factors:\n%s", fr.stdout[strings.Index(fr.stdout, "Rootless:"):])
	for _, tc := range cases {
		t.Run(tc.crate, func(t *testing.T) {
			src := e.fixtureCopy(t, tc.crate)
			rootOut := filepath.Join(t.TempDir(), "out")
			r := reprobox(t, src, "build", "--image", e.image, "--data-dir", dataDir, "--out", rootOut)
			if r.code != 0 {
				t.Fatalf("root build: exit %d\n%s", r.code, r.stderr)
			}
			userOut := filepath.Join(e.base, "out-"+tc.crate)
			r = e.run(t, src, "build", "--image", e.image, "--out", userOut)
			if r.code != 0 {
				t.Fatalf("rootless build: exit %d\n%s", r.code, r.stderr)
			}
			rootSums, err := os.ReadFile(filepath.Join(rootOut, "SHA256SUMS"))
			if err != nil {
				t.Fatal(err)
			}
			userSums, err := os.ReadFile(filepath.Join(userOut, "SHA256SUMS"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rootSums, userSums) || len(rootSums) == 0 {
				t.Errorf("SHA256SUMS differ, root:\n%s\nrootless:\n%s", rootSums, userSums)
			}
			var rec struct {
				Unavailable []string `json:"unavailable"`
			}
			data, err := os.ReadFile(filepath.Join(userOut, "record.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rec.Unavailable, func(s string) bool { return strings.HasPrefix(s, "memory limit: not applied (rootless") }) {
				t.Errorf("the rootless record does not say that the memory limit was not applied: %q", rec.Unavailable)
			}
			if fi, err := os.Stat(filepath.Join(userOut, "SHA256SUMS")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != e.uid {
				t.Errorf("the rootless output is not owned by the user: %v", err)
			}

			js := filepath.Join(e.base, "report-"+tc.crate+".json")
			args := []string{"check", "--image", e.image, "--out", filepath.Join(e.base, "check-"+tc.crate), "--json", js, "--jobs", "2"}
			if noFUSE {
				if tc.crate == "fileordering" {
					r = e.run(t, src, args...)
					if r.code != 2 || !strings.Contains(r.stderr, "cannot vary fileordering") {
						t.Fatalf("rootless check without FUSE: exit %d, want 2 naming fileordering\n%s", r.code, r.stderr)
					}
					return
				}
				args = append(args, "--vary", "all,-fileordering")
			}
			r = e.run(t, src, args...)
			if r.code > 1 {
				t.Fatalf("rootless check: exit %d\n%s", r.code, r.stderr)
			}
			var rep checkReport
			if data, err = os.ReadFile(js); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
			want := tc.culprits
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(rep.Culprits, want) || rep.Nondeterministic {
				t.Fatalf("rootless check: culprits %v (nondeterministic %v), want %v\n%s\n%s", rep.Culprits, rep.Nondeterministic, want, r.stdout, r.stderr)
			}
			t.Logf("%s: rootless build identical to root's; rootless check: %v in %d builds", tc.crate, rep.Culprits, rep.Builds)
		})
	}
	// The data directory the user got is private.
	dd := filepath.Join(e.home, ".local", "share", "reprobox")
	if fi, err := os.Lstat(dd); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("the rootless data directory %s: %v %v, want a 0700 directory", dd, fi.Mode(), err)
	}
}

// TestRootlessConcurrent: two rootless reprobox commands of one user at once,
// each PID 1 of its own namespace. The second must take the first's live
// work directory for a live run's (owners are host pids), not for one a
// killed run left behind, and the first build must finish with its artifact.
func TestRootlessConcurrent(t *testing.T) {
	e := needRootless(t)
	src := e.fixtureCopy(t, "reproducible")
	type done struct{ r result }
	long := make(chan done, 1)
	go func() {
		long <- done{e.run(t, src, "build", "--image", e.image, "--out", filepath.Join(e.base, "out-long"),
			"--artifact", "late.txt", "--", "sh", "-c", "sleep 8; echo late > late.txt")}
	}()
	// Start the second while the first builds.
	deadline := time.Now().Add(60 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(e.home, ".local", "share", "reprobox", "work"))
		if len(entries) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if r := e.run(t, src, "build", "--image", e.image, "--out", filepath.Join(e.base, "out-short"), "--artifact", "Cargo.toml", "--", "true"); r.code != 0 {
		t.Fatalf("second build: exit %d\n%s", r.code, r.stderr)
	}
	d := <-long
	if d.r.code != 0 {
		t.Fatalf("first build, while a second ran: exit %d\n%s", d.r.code, d.r.stderr)
	}
}
