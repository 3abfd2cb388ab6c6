package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootlessDataDirAttack is another local user (nobody) preparing paths in
// a shared sticky directory, as anyone can in /tmp, before an ordinary user
// runs reprobox with its data directory there: a symbolic link in the data
// directory's place, a directory of theirs in its place or above it, a link
// of theirs above it. Each is refused with exit status 2 before anything is
// written, and nothing appears in the attacker's directories. A data
// directory reprobox creates itself is 0700.
func TestRootlessDataDirAttack(t *testing.T) {
	e := rootlessAccount(t)
	const nobody = 65534
	shared := filepath.Join(e.base, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// The attacker's directory, which the user could write to.
	loot := filepath.Join(shared, "loot")
	attackerDir := func(p string) {
		t.Helper()
		if err := os.Mkdir(p, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	attackerLink := func(target, p string) {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	attackerDir(loot)
	attackerLink(loot, filepath.Join(shared, "link"))
	attackerDir(filepath.Join(shared, "theirs"))
	attackerDir(filepath.Join(shared, "above"))

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"link in place, REPROBOX_DATA_DIR", []string{"REPROBOX_DATA_DIR=" + filepath.Join(shared, "link")}, nil, "symbolic link"},
		{"link in place, --data-dir", nil, []string{"--data-dir", filepath.Join(shared, "link")}, "symbolic link"},
		{"link in place, XDG_DATA_HOME", []string{"XDG_DATA_HOME=" + shared}, nil, ""},
		{"their directory in place", []string{"REPROBOX_DATA_DIR=" + filepath.Join(shared, "theirs")}, nil, "owned by uid 65534"},
		{"their directory above", []string{"REPROBOX_DATA_DIR=" + filepath.Join(shared, "above", "data")}, nil, "owned by uid 65534"},
		{"their link above", []string{"REPROBOX_DATA_DIR=" + filepath.Join(shared, "link", "data")}, nil, "symbolic link owned by uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				// $XDG_DATA_HOME/reprobox: the attacker's link is named
				// reprobox.
				attackerLink(loot, filepath.Join(shared, "reprobox"))
				tc.want = "symbolic link"
			}
			r := e.runEnv(t, e.base, tc.env, append([]string{"image", "ls"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, want 2 with %q:\n%s", r.code, tc.want, r.stderr)
			}
			for _, d := range []string{loot, filepath.Join(shared, "theirs"), filepath.Join(shared, "above")} {
				if entries, err := os.ReadDir(d); err != nil || len(entries) > 0 {
					t.Errorf("the attacker's %s now holds %v (%v)", d, entries, err)
				}
			}
		})
	}

	mine := filepath.Join(shared, "mine")
	r := e.runEnv(t, e.base, []string{"REPROBOX_DATA_DIR=" + mine}, "image", "ls")
	if r.code != 0 {
		t.Fatalf("a new data directory in a sticky directory: exit %d\n%s", r.code, r.stderr)
	}
	if fi, err := os.Lstat(mine); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("the new data directory: %v %v, want a 0700 directory", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(mine, "run")); err == nil && fi.Mode()&0o077 != 0 && fi.Mode().Perm() != 0o711 {
		t.Errorf("state directory mode %v", fi.Mode())
	}
}
