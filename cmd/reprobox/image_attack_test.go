package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
)

// hostileImage writes an OCI layout of the default image plus one layer an
// attacker adds: /etc/passwd a link to the host's /etc/shadow (absolute), and
// /etc/group a relative link that climbs out of the root through a chain of
// links each of whose targets stays inside the root as text (the unpacker's
// lexical check) but which, resolved on the host, climb one directory more
// each, to the host's /etc/gshadow. The
// image's own shadow files are whited out, so that inside the image the links
// lead nowhere. It returns the layout's directory.
func hostileImage(t *testing.T, dataDir, image string) string {
	t.Helper()
	r := reprobox(t, ".", "image", "inspect", image, "--json", "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("inspect: %s", r.stderr)
	}
	var info struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || !strings.HasPrefix(info.Digest, "sha256:") {
		t.Fatalf("inspect --json: %v: %s", err, r.stdout)
	}
	src := filepath.Join(dataDir, "oci", "blobs", "sha256")
	read := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(src, strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var manifest map[string]any
	if err := json.Unmarshal(read(info.Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	cfgDesc := manifest["config"].(map[string]any)
	var cfg map[string]any
	if err := json.Unmarshal(read(cfgDesc["digest"].(string)), &cfg); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
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
	for _, l := range manifest["layers"].([]any) {
		h := strings.TrimPrefix(l.(map[string]any)["digest"].(string), "sha256:")
		if err := os.Link(filepath.Join(src, h), filepath.Join(dst, h)); err != nil {
			blob(read("sha256:" + h))
		}
	}

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	add := func(h *tar.Header) {
		if h.Mode == 0 {
			h.Mode = 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
	add(&tar.Header{Name: "etc/up", Typeflag: tar.TypeSymlink, Linkname: ".."})
	for i := 1; i <= 24; i++ {
		target := "etc/up/.." // the root's parent, on the host
		if i > 1 {
			target = fmt.Sprintf("up%d/..", i-1)
		}
		add(&tar.Header{Name: fmt.Sprintf("up%d", i), Typeflag: tar.TypeSymlink, Linkname: target})
	}
	add(&tar.Header{Name: "etc/group", Typeflag: tar.TypeSymlink, Linkname: "../up24/etc/gshadow"})
	add(&tar.Header{Name: "etc/.wh.shadow", Typeflag: tar.TypeReg, Mode: 0o644})
	add(&tar.Header{Name: "etc/.wh.gshadow", Typeflag: tar.TypeReg, Mode: 0o644})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	diffID, _ := blob(layer.Bytes())
	os.Remove(filepath.Join(dst, strings.TrimPrefix(diffID, "sha256:")))
	var gzb bytes.Buffer
	zw := gzip.NewWriter(&gzb)
	if _, err := io.Copy(zw, &layer); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	ld, ls := blob(gzb.Bytes())

	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), diffID)
	delete(cfg, "history")
	cb, _ := json.Marshal(cfg)
	cd, cs := blob(cb)
	manifest["config"] = map[string]any{"mediaType": cfgDesc["mediaType"], "digest": cd, "size": cs}
	manifest["layers"] = append(manifest["layers"].([]any),
		map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls})
	mb, _ := json.Marshal(manifest)
	md, ms := blob(mb)
	writeLayoutIndex(t, dir, md, ms)
	return dir
}

// TestHostileImageAttacks runs real builds in an image made by an attacker
// (hostileImage), in a private store: the build user must not read the host's
// shadow files through /etc/passwd and /etc/group, and `image rm` must refuse
// while a build uses the image, naming the build, and work once it ended.
func TestHostileImageAttacks(t *testing.T) {
	dataDir, image := needImage(t)
	layout := hostileImage(t, dataDir, image)
	store := t.TempDir()
	const name = "test/hostile-passwd"
	if r := reprobox(t, ".", "image", "import", layout, "--name", name, "--data-dir", store); r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}

	t.Run("passwd-and-group-link-to-host-shadow", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		r := reprobox(t, fixture("reproducible"), "build", "--image", name, "--data-dir", store, "--out", out,
			"--artifact", "seen", "--", "sh", "-c", "cat /etc/passwd /etc/group > seen")
		if r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
		seen, err := os.ReadFile(filepath.Join(out, "artifacts", "seen"))
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"/etc/shadow", "/etc/gshadow"} {
			b, err := os.ReadFile(host)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if line != "" && strings.Contains(string(seen), line) {
					t.Fatalf("the build read the host's %s through the image's links:\n%s", host, seen)
				}
			}
		}
		lines := strings.Split(strings.TrimSpace(string(seen)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "builder:x:") || !strings.HasPrefix(lines[1], "builder:x:") {
			t.Errorf("the build saw, as /etc/passwd and /etc/group:\n%s\nwant only the build user's entries (the links lead nowhere inside the image)", seen)
		}
	})

	t.Run("rm-during-build", func(t *testing.T) {
		marker := fmt.Sprintf("%d.%03d", 8, time.Now().UnixNano()%1000)
		cmd := exec.Command(os.Args[0], "build", "--image", name, "--data-dir", store,
			"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--", "sleep", marker)
		cmd.Dir = fixture("reproducible")
		cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		deadline := time.Now().Add(60 * time.Second)
		for sleepingPID(marker) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the build never started: %s", errb.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		r := reprobox(t, ".", "image", "rm", name, "--data-dir", store)
		if r.code == 0 {
			t.Fatalf("image rm removed %s while a build used it", name)
		}
		want := "in use by build rbx-"
		if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "(pid "+strconv.Itoa(cmd.Process.Pid)+")") {
			t.Errorf("image rm during a build: exit %d: %s\nwant it to name the build and pid %d", r.code, r.stderr, cmd.Process.Pid)
		}
		if r := reprobox(t, ".", "image", "inspect", name, "--data-dir", store); r.code != 0 {
			t.Errorf("the image is gone after a refused rm: %s", r.stderr)
		}
		cmd.Wait() // the build ends by itself (its artifact x is missing: exit 1)
		if sleepingPID(marker) != 0 {
			t.Fatal("the build's sleep outlived reprobox")
		}
		if r := reprobox(t, ".", "image", "rm", name, "--data-dir", store); r.code != 0 {
			t.Fatalf("image rm after the build ended: exit %d: %s", r.code, r.stderr)
		}
		if des, _ := os.ReadDir(filepath.Join(store, "rootfs")); len(des) != 0 {
			t.Errorf("root filesystems left after rm: %v", des)
		}
	})
}

// TestImagePasswdFIFO: an image whose /etc/passwd is a FIFO. reprobox reads
// the file on the host to add the build user; opening a FIFO for reading
// would wait forever for a writer. The build must be refused at once, naming
// the file, with exit 2.
func TestImagePasswdFIFO(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/passwd", Typeflag: tar.TypeFifo, Mode: 0o644},
		{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	blob := func(data []byte) (string, int) {
		sum := sha256.Sum256(data)
		p := filepath.Join(dir, "blobs", "sha256", hex.EncodeToString(sum[:]))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + hex.EncodeToString(sum[:]), len(data)
	}
	ld, ls := blob(layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld}}})
	cd, cs := blob(cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}}})
	md, ms := blob(man)
	writeLayoutIndex(t, dir, md, ms)
	store := t.TempDir()
	if r := reprobox(t, ".", "image", "import", dir, "--name", "test/fifo-passwd", "--data-dir", store); r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	done := make(chan result, 1)
	go func() {
		done <- reprobox(t, fixture("reproducible"), "build", "--image", "test/fifo-passwd", "--data-dir", store,
			"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--", "true")
	}()
	select {
	case r := <-done:
		if r.code != 2 || !strings.Contains(r.stderr, "/etc/passwd is a FIFO") {
			t.Errorf("build in an image whose /etc/passwd is a FIFO: exit %d: %s", r.code, r.stderr)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the build hangs on the image's FIFO /etc/passwd")
	}
}
