package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// tarDir packs a directory (an OCI layout) into a tar archive.
func tarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		fi, _ := os.Stat(p)
		if fi.IsDir() {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755})
			continue
		}
		b, _ := os.ReadFile(p)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerSave builds a `docker save` archive (manifest.json format) with
// uncompressed layers; a repeated layer is stored once and linked, as docker
// does.
func dockerSave(t testing.TB, repoTags []string, layerTars ...[]byte) ([]byte, v1.Image) {
	t.Helper()
	cfg := v1.Image{Created: &testTime, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, RootFS: v1.RootFS{Type: "layers"}}
	type member struct {
		name, link string
		body       []byte
	}
	var members []member
	var layerFiles []string
	seen := map[digest.Digest]string{}
	for _, lt := range layerTars {
		d := digest.FromBytes(lt)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, d)
		name := d.Encoded()[:12] + "/layer.tar"
		if first, ok := seen[d]; ok {
			name = "dup" + d.Encoded()[:8] + "/layer.tar"
			members = append(members, member{name: name, link: "../" + first})
		} else {
			seen[d] = name
			members = append(members, member{name: name, body: lt})
		}
		layerFiles = append(layerFiles, name)
	}
	cb := mustJSON(t, cfg)
	cname := digest.FromBytes(cb).Encoded() + ".json"
	members = append(members, member{name: cname, body: cb})
	members = append(members, member{name: "manifest.json", body: mustJSON(t, []dockerSaveEntry{{Config: cname, RepoTags: repoTags, Layers: layerFiles}})})
	members = append(members, member{name: "repositories", body: []byte(`{}`)})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		if m.link != "" {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: m.name, Linkname: m.link, Mode: 0o777})
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: 0o644, Size: int64(len(m.body))})
		tw.Write(m.body)
	}
	tw.Close()
	return buf.Bytes(), cfg
}

func TestImportFormats(t *testing.T) {
	requireRoot(t)
	lower := tarOf(t, dir("etc/"), file("etc/os-release", "ID=test\n"), file("gone", "x"))
	upper := tarOf(t, file(".wh.gone", ""), file("etc/new", "new"))
	layoutDir, built := layoutOf(t, "test/oci:1", gzLayer(t, lower), gzLayer(t, upper))
	archive := tarDir(t, layoutDir)
	docker, _ := dockerSave(t, []string{"test/docker:1", "test/docker:latest"}, lower, upper, lower)

	tests := []struct {
		name       string
		path       string
		importName string
		wantNames  []string
		wantDigest digest.Digest // "" if converted
	}{
		{name: "oci-layout", path: layoutDir, wantNames: []string{"test/oci:1"}, wantDigest: built.manifest.Digest},
		{name: "oci-layout-renamed", path: layoutDir, importName: "test/renamed", wantNames: []string{"test/renamed"}, wantDigest: built.manifest.Digest},
		{name: "oci-archive", path: writeTemp(t, "oci.tar", archive), wantNames: []string{"test/oci:1"}, wantDigest: built.manifest.Digest},
		{name: "oci-archive-gzip", path: writeTemp(t, "oci.tar.gz", gz(t, archive)), wantNames: []string{"test/oci:1"}, wantDigest: built.manifest.Digest},
		{name: "docker-save", path: writeTemp(t, "docker.tar", docker), wantNames: []string{"test/docker:1", "test/docker:latest"}},
		{name: "docker-save-renamed", path: writeTemp(t, "docker.tar", docker), importName: "test/mine", wantNames: []string{"test/mine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			imgs, err := s.Import(context.Background(), tt.path, tt.importName)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, img := range imgs {
				names = append(names, img.Name)
				if img.Digest != imgs[0].Digest {
					t.Errorf("names point at different digests: %v", imgs)
				}
			}
			if strings.Join(names, " ") != strings.Join(tt.wantNames, " ") {
				t.Errorf("names %v, want %v", names, tt.wantNames)
			}
			if tt.wantDigest != "" && imgs[0].Digest != tt.wantDigest {
				t.Errorf("digest %s, want the source's %s", imgs[0].Digest, tt.wantDigest)
			}
			img, err := s.Resolve(tt.wantNames[0])
			if err != nil {
				t.Fatal(err)
			}
			if img.Digest != imgs[0].Digest {
				t.Errorf("Resolve gave %s, Import %s", img.Digest, imgs[0].Digest)
			}
			root, err := s.Rootfs(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "etc/new")); err != nil || string(b) != "new" {
				t.Errorf("etc/new = %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err != nil || string(b) != "ID=test\n" {
				t.Errorf("etc/os-release = %q, %v", b, err)
			}
			// docker's third layer re-adds the file the second one deleted.
			_, err = os.Stat(filepath.Join(root, "gone"))
			if wantGone := !strings.HasPrefix(tt.name, "docker"); (err != nil) != wantGone {
				t.Errorf("gone: %v", err)
			}
			if des, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(des) != 0 {
				t.Errorf("tmp not empty after import: %v", des)
			}
		})
	}
}

func TestImportMultiPlatform(t *testing.T) {
	requireRoot(t)
	b := blobs{}
	arm := b.image(t, testImage{arch: "arm64", layers: []testLayer{gzLayer(t, tarOf(t, file("arch", "arm64")))}})
	amd := b.image(t, testImage{layers: []testLayer{gzLayer(t, tarOf(t, file("arch", "amd64")))}})
	attest := amd.manifest
	attest.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	inner := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{arm.manifest, attest, amd.manifest}}
	innerDesc := b.add(v1.MediaTypeImageIndex, mustJSON(t, inner))
	dir := t.TempDir()
	writeLayoutDir(t, dir, b, named(innerDesc, "test/multi"))

	s := newStore(t)
	imgs, err := s.Import(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Digest != amd.manifest.Digest || imgs[0].Name != "test/multi" {
		t.Fatalf("Import = %+v, want test/multi@%s", imgs, amd.manifest.Digest)
	}
	root, err := s.Rootfs(context.Background(), imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "arch")); string(b) != "amd64" {
		t.Errorf("arch = %q", b)
	}

	// Only arm64: nothing to import.
	b2 := blobs{}
	arm2 := b2.image(t, testImage{arch: "arm64", layers: []testLayer{gzLayer(t, tarOf(t, file("arch", "arm64")))}})
	dir2 := t.TempDir()
	writeLayoutDir(t, dir2, b2, named(arm2.manifest, "test/arm"))
	if _, err := s.Import(context.Background(), dir2, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("import of an arm64-only layout: %v", err)
	}
}

func TestImportRefused(t *testing.T) {
	requireRoot(t)
	good := gzLayer(t, tarOf(t, file("a", "a")))
	tests := []struct {
		name   string
		mangle func(t *testing.T, dir string, img builtImage)
		want   string
	}{
		{name: "layer-digest", want: "blob sha256:", mangle: func(t *testing.T, dir string, img builtImage) {
			flipByte(t, filepath.Join(dir, "blobs", "sha256", img.layers[0].Digest.Encoded()))
		}},
		{name: "config-digest", mangle: func(t *testing.T, dir string, img builtImage) {
			flipByte(t, filepath.Join(dir, "blobs", "sha256", img.config.Digest.Encoded()))
		}},
		{name: "missing-layer", mangle: func(t *testing.T, dir string, img builtImage) {
			os.Remove(filepath.Join(dir, "blobs", "sha256", img.layers[0].Digest.Encoded()))
		}},
		{name: "layout-version", want: "oci-layout", mangle: func(t *testing.T, dir string, img builtImage) {
			os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"9"}`), 0o644)
		}},
		{name: "bad-name", want: "Bad Name", mangle: func(t *testing.T, dir string, img builtImage) {
			writeLayoutDir(t, dir, blobs{}, named(img.manifest, "Bad Name"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, img := layoutOf(t, "test/refused", good, gzLayer(t, tarOf(t, file("b", strings.Repeat("b", 1000)))))
			tt.mangle(t, dir, img)
			s := newStore(t)
			importLayers(t, s, "test/existing", good)
			before := snapshot(t, s.Dir())
			_, err := s.Import(context.Background(), dir, "")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Import: %v, want ErrInvalid", err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q: %v", tt.want, err)
			}
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("a refused import changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

func TestImportNotFound(t *testing.T) {
	s := newStore(t)
	if _, err := s.Import(context.Background(), filepath.Join(t.TempDir(), "nope.tar"), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Import of a missing path: %v", err)
	}
	if _, err := s.Import(context.Background(), writeTemp(t, "x.tar", tarOf(t, file("hello", "x"))), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Import of an unrelated tar: %v", err)
	}
}
