package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestRootfsLayers(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	lower := tarOf(t,
		dir("./"),
		dir("etc/"),
		file("etc/keep", "keep"),
		file("etc/gone", "gone"),
		dir("etc/sub/"),
		file("etc/sub/deep", "deep"),
		dir("opaque/"),
		file("opaque/old", "old"),
		dir("opaque/olddir/"),
		file("opaque/olddir/x", "x"),
		file("replaced", "file"),
		dir("dir2file/"),
		file("dir2file/x", "x"),
		file("bin/tool", "#!/bin/sh\n"),
		hardlink("bin/tool2", "bin/tool"),
		symlink("lib", "usr/lib"),
		dir("usr/lib/"),
		ent{name: "usr/bin/suid", typ: tar.TypeReg, body: "s", mode: 0o4755},
		ent{name: "usr/bin/sgid", typ: tar.TypeReg, body: "s", mode: 0o2711},
		ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		ent{name: "owned", typ: tar.TypeReg, body: "o", mode: 0o600, uid: 1234, gid: 5678},
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
	)
	upper := tarOf(t,
		file("etc/.wh.gone", ""),
		file("etc/sub/.wh..wh..opq", ""),
		dir("opaque/"),
		file("opaque/.wh..wh..opq", ""),
		file("opaque/new", "new"),
		dir("replaced/"),
		file("dir2file", "now a file"),
		file("lib/libx.so", "through the symlink"),
		file(".wh.nonexistent", ""),
	)
	img := importLayers(t, s, "test/layers", gzLayer(t, lower), rawLayer(upper))
	root, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.Dir(), "rootfs", img.Digest.Encoded()); root != want {
		t.Errorf("Rootfs = %s, want %s", root, want)
	}
	exists := map[string]bool{
		"etc/keep": true, "etc/gone": false, "etc/sub": true, "etc/sub/deep": false,
		"opaque/old": false, "opaque/olddir": false, "opaque/new": true,
		"usr/lib/libx.so": true, "bin/tool2": true, "fifo": true,
	}
	for p, want := range exists {
		_, err := os.Lstat(filepath.Join(root, p))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v (%v)", p, got, want, err)
		}
	}
	mode := func(p string) fs.FileMode {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	if m := mode("replaced"); !m.IsDir() {
		t.Errorf("replaced: mode %v, want a directory", m)
	}
	if m := mode("dir2file"); !m.IsRegular() {
		t.Errorf("dir2file: mode %v, want a file", m)
	}
	if m := mode("usr/bin/suid"); m != 0o755 {
		t.Errorf("setuid file: mode %v, want -rwxr-xr-x (setuid dropped)", m)
	}
	if m := mode("usr/bin/sgid"); m != 0o711 {
		t.Errorf("setgid file: mode %v, want -rwx--x--x (setgid dropped)", m)
	}
	if m := mode("tmp"); m != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("tmp: mode %v, want sticky 0777", m)
	}
	if m := mode("fifo"); m&fs.ModeNamedPipe == 0 {
		t.Errorf("fifo: mode %v", m)
	}
	fi, _ := os.Lstat(filepath.Join(root, "owned"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owned: %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	if !fi.ModTime().Equal(testTime) {
		t.Errorf("owned: mtime %v, want %v", fi.ModTime(), testTime)
	}
	if fi, _ := os.Lstat(filepath.Join(root, "opaque")); !fi.ModTime().Equal(testTime) {
		t.Errorf("opaque: directory mtime %v, want %v", fi.ModTime(), testTime)
	}
	a, _ := os.Stat(filepath.Join(root, "bin/tool"))
	b, _ := os.Stat(filepath.Join(root, "bin/tool2"))
	if !os.SameFile(a, b) {
		t.Error("bin/tool2 is not a hard link to bin/tool")
	}

	// The second call returns the cache without unpacking.
	marker := filepath.Join(root, "marker")
	os.WriteFile(marker, nil, 0o644)
	root2, err := s.Rootfs(context.Background(), img)
	if err != nil || root2 != root {
		t.Fatalf("second Rootfs = %s, %v", root2, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("second Rootfs unpacked again")
	}
}

func TestRootfsZstd(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	tb := tarOf(t, file("hello", "zstd"))
	img := importLayers(t, s, "test/zstd", testLayer{blob: zst(t, tb), diffID: digestOf(tb), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd"})
	root, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "hello")); string(b) != "zstd" {
		t.Errorf("hello = %q", b)
	}
}

// TestRootfsSymlinkContained writes through an absolute symbolic link: the
// write must land inside the root, never at the host path.
func TestRootfsSymlinkContained(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	outside := t.TempDir()
	img := importLayers(t, s, "test/contained", gzLayer(t, tarOf(t,
		symlink("evil", outside),
		file("evil/pwned", "x"),
		symlink("up", "a/../b"),
		dir("b/"),
		file("up/inside", "y"),
	)))
	root, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("a layer wrote outside the root")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "pwned")); err != nil {
		t.Errorf("the write through the link is not inside the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "b", "inside")); err != nil {
		t.Errorf("up/inside: %v", err)
	}
}

func TestRootfsHostile(t *testing.T) {
	requireRoot(t)
	big := strings.Repeat("\x00", 1<<20)
	tests := []struct {
		name   string
		layers [][]byte // tar streams, gzipped in the layer
		raw    []byte   // a layer blob used as is, instead of layers
		limits Limits
		entry  string // named in the error
		what   string // also in the error
	}{
		{name: "dotdot", layers: [][]byte{tarOf(t, file("../evil", "x"))}, entry: "../evil", what: `".."`},
		{name: "dotdot-inner", layers: [][]byte{tarOf(t, file("a/../../evil", "x"))}, entry: "a/../../evil", what: `".."`},
		{name: "absolute", layers: [][]byte{tarOf(t, file("/etc/evil", "x"))}, entry: "/etc/evil", what: "absolute"},
		{name: "symlink-escape", layers: [][]byte{tarOf(t, dir("a/"), symlink("a/link", "../../../../../outside"))}, entry: "a/link", what: "leaves the root"},
		{name: "symlink-escape-dotdot", layers: [][]byte{tarOf(t, symlink("link", ".."))}, entry: "link", what: "leaves the root"},
		{name: "symlink-escape-later-layer", layers: [][]byte{
			tarOf(t, symlink("d", "/x/y")),
			tarOf(t, symlink("d/link", "../../..")),
		}, entry: "d/link", what: "leaves the root"},
		{name: "hardlink-dotdot", layers: [][]byte{tarOf(t, hardlink("hl", "../../etc/passwd"))}, entry: "hl", what: "outside the root"},
		{name: "hardlink-absolute", layers: [][]byte{tarOf(t, hardlink("hl", "/etc/passwd"))}, entry: "hl", what: "outside the root"},
		{name: "hardlink-via-symlink", layers: [][]byte{tarOf(t, symlink("s", "/"), hardlink("hl", "s/etc/passwd"))}, entry: "hl", what: "missing"},
		{name: "hardlink-dir", layers: [][]byte{tarOf(t, dir("d/"), hardlink("hl", "d"))}, entry: "hl", what: "directory"},
		{name: "char-device", layers: [][]byte{tarOf(t, ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666})}, entry: "dev/null", what: "device"},
		{name: "block-device", layers: [][]byte{tarOf(t, ent{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660})}, entry: "dev/sda", what: "device"},
		{name: "unknown-type", layers: [][]byte{tarOf(t, ent{name: "cont", typ: tar.TypeCont, mode: 0o644})}, entry: "cont", what: "unsupported"},
		{name: "truncated", layers: [][]byte{tarOf(t, file("a", "a"), ent{name: "short", typ: tar.TypeReg, body: "only this", size: 4096, mode: 0o644})}, entry: "short", what: "truncated"},
		{name: "longer-than-declared", layers: [][]byte{overlong(t)}, entry: "declared", what: "after entry"},
		{name: "corrupt-gzip", raw: corruptGzip(t, tarOf(t, file("a", strings.Repeat("abc", 1000)))), what: "corrupt"},
		{name: "symlink-loop", layers: [][]byte{tarOf(t, symlink("a", "b"), symlink("b", "a"), file("a/x", "x"))}, entry: "a/x", what: "too many levels"},
		{name: "parent-is-file", layers: [][]byte{tarOf(t, file("f", "f"), file("f/x", "x"))}, entry: "f/x", what: "not a directory"},
		{name: "root-not-dir", layers: [][]byte{tarOf(t, symlink("./", "/"))}, entry: "./", what: "root"},
		{name: "bomb-bytes", layers: [][]byte{tarOf(t, file("big", big))}, limits: Limits{MaxBytes: 512 << 10}, entry: "big", what: "limits"},
		{name: "bomb-ratio", layers: [][]byte{tarOf(t, file("big", big))}, limits: Limits{MaxRatio: 10, RatioFloor: 4096}, what: "limits"},
		{name: "bomb-entries", layers: [][]byte{tarOf(t, file("1", ""), file("2", ""), file("3", ""), file("4", ""))}, limits: Limits{MaxEntries: 3}, what: "entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, WithLimits(tt.limits))
			var layers []testLayer
			for i, l := range tt.layers {
				layers = append(layers, gzLayer(t, l))
				if len(l) < 64<<10 { // the bombs are no use as fuzz seeds
					writeGolden(t, fmt.Sprintf("layers/hostile-%s-%d.tar", tt.name, i), l)
				}
			}
			if tt.raw != nil {
				layers = append(layers, testLayer{blob: tt.raw, diffID: digestOf(tt.raw), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip"})
			}
			check := func(op string, err error, last digest.Digest) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s accepted a hostile layer", op)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: error does not wrap ErrInvalid: %v", op, err)
				}
				msg := err.Error()
				if tt.entry != "" && !strings.Contains(msg, fmt.Sprintf("%q", tt.entry)) {
					t.Errorf("%s: error does not name entry %q: %v", op, tt.entry, err)
				}
				if !strings.Contains(msg, tt.what) {
					t.Errorf("%s: error does not say %q: %v", op, tt.what, err)
				}
				if !strings.Contains(msg, last.String()) {
					t.Errorf("%s: error does not name layer %s: %v", op, last, err)
				}
			}

			// Import refuses it, and the store keeps nothing of it.
			importLayers(t, s, "test/existing", gzLayer(t, tarOf(t, file("ok", "ok"))))
			dir, built := layoutOf(t, "test/hostile", layers...)
			before := snapshot(t, s.Dir())
			_, err := s.Import(context.Background(), dir, "")
			check("Import", err, built.layers[len(built.layers)-1].Digest)
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("a refused import changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			// Planted in the store behind Import's back, the unpacker
			// refuses it with the same words.
			img := plantLayers(t, s, "test/hostile", layers...)
			before = snapshot(t, s.Dir())
			_, err = s.Rootfs(context.Background(), img)
			check("Rootfs", err, img.Manifest.Layers[len(img.Manifest.Layers)-1].Digest)
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// overlong is a tar whose first entry carries more data than its header
// declares: the extra bytes are read as the next header.
func overlong(t testing.TB) []byte {
	first := tarOf(t, file("declared", "0123456789"))
	first = first[:len(first)-1024] // drop the end-of-archive blocks
	junk := bytes.Repeat([]byte("J"), 600)
	return slices.Concat(first, junk, tarOf(t, file("next", "n")))
}

// corruptGzip flips a byte in the deflate data of a gzip stream.
func corruptGzip(t testing.TB, tarBytes []byte) []byte {
	b := gz(t, tarBytes)
	b[len(b)/2] ^= 0xff
	return b
}

func TestRootfsConcurrent(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	var entries []ent
	for i := range 200 {
		entries = append(entries, file(fmt.Sprintf("d%d/f%d", i%10, i), strings.Repeat("x", i)))
	}
	img := importLayers(t, s, "test/concurrent", gzLayer(t, tarOf(t, entries...)))
	s2, err := Open(s.Dir()) // a second "process" on the same directory
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			paths[i], errs[i] = st.Rootfs(context.Background(), img)
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Errorf("caller %d: %s, %v", i, paths[i], errs[i])
		}
	}
	des, _ := os.ReadDir(filepath.Join(s.Dir(), "rootfs"))
	if len(des) != 1 {
		t.Errorf("rootfs dir has %d entries, want 1", len(des))
	}
}

func TestRootfsCancel(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := importLayers(t, s, "test/cancel", gzLayer(t, tarOf(t, file("a", "a"))))
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("test says stop")
	cancel(cause)
	if _, err := s.Rootfs(ctx, img); !errors.Is(err, cause) {
		t.Fatalf("Rootfs with a cancelled context: %v", err)
	}
	des, _ := os.ReadDir(filepath.Join(s.Dir(), "rootfs"))
	if len(des) != 0 {
		t.Errorf("rootfs dir has %d entries after a cancelled unpack", len(des))
	}
}

// TestRootfsDefaultImage unpacks the image other packages use, from the
// default store, and checks what the factors rely on.
func TestRootfsDefaultImage(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("unpacks about 900 MB the first time")
	}
	dir := os.Getenv("REPROBOX_DATA_DIR")
	if dir == "" {
		dir = "/var/lib/reprobox"
	}
	if _, err := os.Stat(filepath.Join(dir, "oci", "index.json")); err != nil {
		skipOrFail(t, "no store at "+dir+"; run reprobox image build")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve(DefaultName)
	if errors.Is(err, ErrNotFound) {
		skipOrFail(t, DefaultName+" is not in "+dir+"; run reprobox image build")
	} else if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	root, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Rootfs(%s) = %s in %v", img.Reference(), root, time.Since(start))
	for _, p := range []string{"usr/bin/rustc", "usr/bin/cargo", "usr/bin/gcc", "usr/share/zoneinfo/Europe/Paris",
		"usr/lib/locale/locale-archive", "usr/lib/locale/C.utf8"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"etc/resolv.conf", "var/cache/ldconfig/aux-cache", "var/log/dpkg.log", "dev/null"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is in the image", p)
		}
	}
	des, _ := os.ReadDir(filepath.Join(root, "var/lib/apt/lists"))
	for _, de := range des {
		if de.Name() != "lock" && de.Name() != "partial" {
			t.Errorf("apt list %s left in the image", de.Name())
		}
	}
	filepath.WalkDir(filepath.Join(root, "usr/bin"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, _ := d.Info(); fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("%s: %v: setuid/setgid not dropped", p, fi.Mode())
			}
		}
		return nil
	})
	for _, l := range []string{"io.reprobox.image.packages", "io.reprobox.image.installed", "io.reprobox.image.source-date-epoch", "io.reprobox.image.suites"} {
		if img.Config.Config.Labels[l] == "" {
			t.Errorf("label %s missing", l)
		}
	}
}
