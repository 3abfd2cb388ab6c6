package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
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

// TestRootlessHostileImport: an ordinary user imports images made by an
// attacker, whose layer climbs out of the root ("../"), writes through an
// absolute path, or holds a device node: each is refused at import with exit
// status 2, nothing is written outside the store, and the store lists no new
// image (the same checks as root's, run by the same code in the user's
// namespace).
func TestRootlessHostileImport(t *testing.T) {
	e := rootlessAccount(t)
	for _, tc := range []struct {
		name string
		hdr  tar.Header
	}{
		{"climb", tar.Header{Name: "../../../../escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6}},
		{"absolute", tar.Header{Name: "/tmp/reprobox-rootless-escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6}},
		{"device", tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o666, Devmajor: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(e.base, "layout-"+tc.name)
			dst := filepath.Join(dir, "blobs", "sha256")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			blob := func(data []byte) (string, int) {
				sum := sha256.Sum256(data)
				if err := os.WriteFile(filepath.Join(dst, hex.EncodeToString(sum[:])), data, 0o644); err != nil {
					t.Fatal(err)
				}
				return "sha256:" + hex.EncodeToString(sum[:]), len(data)
			}
			var layer bytes.Buffer
			tw := tar.NewWriter(&layer)
			hdr := tc.hdr
			if err := tw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if hdr.Size > 0 {
				tw.Write([]byte("pwned\n"))
			}
			tw.Close()
			ld, ls := blob(layer.Bytes())
			cb, _ := json.Marshal(map[string]any{
				"architecture": "amd64", "os": "linux",
				"rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld}},
			})
			cd, cs := blob(cb)
			mb, _ := json.Marshal(map[string]any{
				"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
				"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
				"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}},
			})
			md, ms := blob(mb)
			writeLayoutIndex(t, dir, md, ms)
			if out, err := exec.Command("chmod", "-R", "a+rX", dir).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			name := "test/rootless-hostile-" + tc.name
			r := e.run(t, e.base, "image", "import", dir, "--name", name)
			if r.code != 2 || !strings.Contains(r.stderr, "layer") {
				t.Errorf("import: exit %d, want 2 naming the layer\n%s%s", r.code, r.stdout, r.stderr)
			}
			t.Logf("refused: %s", strings.TrimSpace(r.stderr))
			if ls := e.run(t, e.base, "image", "ls"); ls.code != 0 || strings.Contains(ls.stdout, name) {
				t.Errorf("the store lists %s after a refused import (exit %d):\n%s", name, ls.code, ls.stdout)
			}
			for _, p := range []string{"/tmp/reprobox-rootless-escaped", filepath.Join(e.home, ".local", "escaped"), filepath.Join(e.home, "escaped")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("the layer wrote %s", p)
					os.Remove(p)
				}
			}
		})
	}
}
