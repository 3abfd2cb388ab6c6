package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeLayout writes a one-layer OCI image layout holding /hello.
func writeLayout(t *testing.T, dir string) string {
	t.Helper()
	blob := func(data []byte) (string, int) {
		sum := sha256.Sum256(data)
		d := "sha256:" + hex.EncodeToString(sum[:])
		p := filepath.Join(dir, "blobs", "sha256", hex.EncodeToString(sum[:]))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return d, len(data)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	content := []byte("hello\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ld, ls := blob(layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld}},
	})
	cd, cs := blob(cfg)
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}},
	})
	md, ms := blob(man)
	writeLayoutIndex(t, dir, md, ms)
	return md
}

func TestImageCommands(t *testing.T) {
	data := t.TempDir()
	layout := filepath.Join(t.TempDir(), "layout")
	digest := writeLayout(t, layout)

	r := reprobox(t, ".", "image", "import", layout, "--name", "test/tiny", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stdout, "test/tiny@"+digest) {
		t.Fatalf("import: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = reprobox(t, ".", "image", "ls", "--json", "--data-dir", data)
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	if len(list) != 1 || list[0]["name"] != "test/tiny" || list[0]["digest"] != digest {
		t.Errorf("ls --json: %v", list)
	}
	r = reprobox(t, ".", "image", "inspect", "test/tiny@"+digest, "--json", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stdout, digest) {
		t.Errorf("inspect: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range [][]string{
		{"image", "inspect", "no/such", "--data-dir", data},
		{"image", "inspect", "test/tiny@sha256:nothex", "--data-dir", data},
		{"image", "import", filepath.Join(t.TempDir(), "missing"), "--data-dir", data},
	} {
		if r := reprobox(t, ".", bad...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", bad, r.code, r.stderr)
		}
	}
	if r := reprobox(t, ".", "image", "rm", "test/tiny", "--data-dir", data); r.code != 0 {
		t.Fatalf("rm: exit %d: %s", r.code, r.stderr)
	}
	r = reprobox(t, ".", "image", "ls", "--json", "--data-dir", data)
	if strings.Contains(r.stdout, "test/tiny") {
		t.Errorf("ls after rm still lists it: %s", r.stdout)
	}
}

// writeLayoutIndex makes dir an OCI layout whose index names the manifest
// with digest md and size ms.
func writeLayoutIndex(t *testing.T, dir, md string, ms int) {
	t.Helper()
	idx, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests":     []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}
