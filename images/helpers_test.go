package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite the files in testdata")

// requireRoot skips a test that needs root, or fails it when
// REPROBOX_TEST_DISALLOW_SKIP=1 (as in CI).
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (chown, mknod checks)")
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("REPROBOX_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("cannot run, and REPROBOX_TEST_DISALLOW_SKIP=1: %s", why)
	}
	t.Skip(why)
}

var testTime = time.Unix(1700000000, 0)

// ent is a tar entry for a test layer.
type ent struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	size     int64 // overrides len(body) when not zero
}

func file(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target, mode: 0o644}
}

// tarOf writes entries without validation, so hostile names survive.
func tarOf(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.typ != tar.TypeReg {
			size = 0
		}
		if e.size != 0 {
			size = e.size
		}
		hdr := &tar.Header{
			Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Size: size, ModTime: testTime, Format: tar.FormatPAX,
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg && e.size == 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		// A short body (size > len(body)) is what some tests want.
		if !strings.Contains(err.Error(), "missed writing") {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// testLayer is a layer blob and the digest of its uncompressed tar.
type testLayer struct {
	blob      []byte
	diffID    digest.Digest
	mediaType string
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func gzLayer(t testing.TB, tarBytes []byte) testLayer {
	return testLayer{blob: gz(t, tarBytes), diffID: digest.FromBytes(tarBytes), mediaType: v1.MediaTypeImageLayerGzip}
}

func rawLayer(tarBytes []byte) testLayer {
	return testLayer{blob: tarBytes, diffID: digest.FromBytes(tarBytes), mediaType: v1.MediaTypeImageLayer}
}

// testImage is what writeLayout stores.
type testImage struct {
	arch   string // default amd64
	layers []testLayer
}

type builtImage struct {
	manifest     v1.Descriptor
	config       v1.Descriptor
	configBytes  []byte
	layers       []v1.Descriptor
	manifestJSON []byte
}

// blobs collects a layout's blobs.
type blobs map[digest.Digest][]byte

func (b blobs) add(mediaType string, data []byte) v1.Descriptor {
	d := digest.FromBytes(data)
	b[d] = data
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b blobs) image(t testing.TB, img testImage) builtImage {
	t.Helper()
	arch := img.arch
	if arch == "" {
		arch = "amd64"
	}
	cfg := v1.Image{
		Created:  &testTime,
		Platform: v1.Platform{OS: "linux", Architecture: arch},
		RootFS:   v1.RootFS{Type: "layers"},
	}
	var out builtImage
	for _, l := range img.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		out.layers = append(out.layers, b.add(l.mediaType, l.blob))
	}
	out.configBytes = mustJSON(t, cfg)
	out.config = b.add(v1.MediaTypeImageConfig, out.configBytes)
	m := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Config: out.config, Layers: out.layers}
	out.manifestJSON = mustJSON(t, m)
	out.manifest = b.add(v1.MediaTypeImageManifest, out.manifestJSON)
	out.manifest.Platform = &v1.Platform{OS: "linux", Architecture: arch}
	return out
}

// writeLayoutDir writes an OCI layout with index.json listing descs.
func writeLayoutDir(t testing.TB, dir string, b blobs, descs ...v1.Descriptor) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	for d, data := range b {
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: descs}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(t, idx), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

func named(d v1.Descriptor, name string) v1.Descriptor {
	d.Annotations = map[string]string{v1.AnnotationRefName: name}
	return d
}

// layoutOf writes a one-image layout and returns its directory.
func layoutOf(t testing.TB, name string, layers ...testLayer) (string, builtImage) {
	t.Helper()
	b := blobs{}
	img := b.image(t, testImage{layers: layers})
	dir := t.TempDir()
	writeLayoutDir(t, dir, b, named(img.manifest, name))
	return dir, img
}

func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// importLayers stores a one-image layout of layers in s under name.
func importLayers(t testing.TB, s *Store, name string, layers ...testLayer) Image {
	t.Helper()
	dir, _ := layoutOf(t, name, layers...)
	imgs, err := s.Import(context.Background(), dir, "")
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(imgs) != 1 {
		t.Fatalf("Import gave %d images", len(imgs))
	}
	return imgs[0]
}

// plantLayers puts a one-image layout of layers into s under name without
// Import's checks, as a store changed behind reprobox's back would hold it.
func plantLayers(t testing.TB, s *Store, name string, layers ...testLayer) Image {
	t.Helper()
	b := blobs{}
	img := b.image(t, testImage{layers: layers})
	var staged []stagedBlob
	for _, data := range b {
		sb, _, err := s.stageBytes(data, "")
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, sb)
	}
	if err := s.addImage(name, img.manifest, staged); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve(name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// snapshot describes every file under dir except the lock files: path,
// type, mode, size and content digest.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "locks" || strings.HasPrefix(rel, "locks/") || rel == "oci/index.lock" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + digest.FromBytes(b).String()
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// writeGolden writes data to testdata/name when -update is given.
func writeGolden(t testing.TB, name string, data []byte) {
	t.Helper()
	if !*update {
		return
	}
	p := filepath.Join("testdata", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
