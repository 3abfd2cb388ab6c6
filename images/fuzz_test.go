package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The fixtures in testdata are written by TestTestdata with -update:
//
//	go test ./images -run 'TestTestdata|TestRootfsHostile' -update
//
// TestRootfsHostile writes testdata/layers/hostile-*.tar, one per class.

// addSeeds adds the files matching glob under testdata to a fuzz corpus.
func addSeeds(f *testing.F, glob string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil {
		f.Fatal(err)
	}
	if len(paths) == 0 {
		f.Fatalf("no seeds match testdata/%s; run go test -run 'TestTestdata|TestRootfsHostile' -update", glob)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fixtures returns the generated testdata files by name.
func fixtures(t testing.TB) map[string][]byte {
	b := blobs{}
	lower := tarOf(t, dir("./"), dir("etc/"), file("etc/os-release", "ID=test\n"), symlink("lib", "usr/lib"), dir("usr/lib/"),
		hardlink("etc/os-release.link", "etc/os-release"), ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777})
	upper := tarOf(t, file("etc/.wh.os-release", ""), dir("usr/"), file("usr/.wh..wh..opq", ""), file("usr/new", "new"))
	img := b.image(t, testImage{layers: []testLayer{rawLayer(lower), rawLayer(upper)}})
	arm := b.image(t, testImage{arch: "arm64", layers: []testLayer{rawLayer(lower)}})
	idx := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{named(img.manifest, "test/fixture:1"), arm.manifest}}
	dockerManifestV2 := strings.NewReplacer(v1.MediaTypeImageManifest, dockerManifest, v1.MediaTypeImageConfig, dockerConfig,
		v1.MediaTypeImageLayer, dockerLayer).Replace(string(img.manifestJSON))
	layout := t.TempDir()
	writeLayoutDir(t, layout, b, named(img.manifest, "test/fixture:1"))
	save, _ := dockerSave(t, []string{"test/fixture:1"}, lower, upper)
	return map[string][]byte{
		"json/index.json":              mustJSON(t, idx),
		"json/manifest.json":           img.manifestJSON,
		"json/manifest-docker-v2.json": []byte(dockerManifestV2),
		"json/config.json":             img.configBytes,
		"json/docker-save-manifest.json": mustJSON(t, []dockerSaveEntry{{Config: "abc.json", RepoTags: []string{"a:1"},
			Layers: []string{"l/layer.tar"}}}),
		"layers/lower.tar":         lower,
		"layers/upper.tar":         upper,
		"archives/oci-layout.tar":  tarDir(t, layout),
		"archives/docker-save.tar": save,
		"references.txt": []byte(strings.Join([]string{"reprobox/rust", "reprobox/rust:1.85",
			"localhost:5000/a/b@sha256:" + hexA, "sha256:" + hexA, "docker.io/library/debian:bookworm"}, "\n") + "\n"),
	}
}

// TestTestdata checks that the fixtures in testdata are what the generator
// makes, and rewrites them with -update.
func TestTestdata(t *testing.T) {
	for name, want := range fixtures(t) {
		if *update {
			writeGolden(t, name, want)
			continue
		}
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is stale (%v); run go test -run TestTestdata -update", name, err)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root to set ownership")
	}
	addSeeds(f, "layers/*.tar")
	f.Add(gz(f, tarOf(f, file("a", "a"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		root := filepath.Join(outer, "root")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(outer, "canary"), []byte("canary"), 0o644)
		u := &unpacker{root: root, limits: Limits{MaxBytes: 8 << 20, MaxEntries: 1000, MaxRatio: 100, RatioFloor: 1 << 20}}
		_, err := u.applyStream(context.Background(), bytes.NewReader(data), digest.FromBytes(data), int64(len(data)))
		var he *hostileError
		if errors.As(err, &he) && !errors.Is(err, ErrInvalid) {
			t.Fatalf("hostile error does not wrap ErrInvalid: %v", err)
		}
		des, _ := os.ReadDir(outer)
		if len(des) != 2 {
			t.Fatalf("the unpacker wrote outside the root: %v", des)
		}
		if b, _ := os.ReadFile(filepath.Join(outer, "canary")); string(b) != "canary" {
			t.Fatal("the unpacker changed a file outside the root")
		}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Errorf("%s: mode %v", p, fi.Mode())
			}
			return nil
		})
	})
}

func FuzzParseIndex(f *testing.F) {
	addSeeds(f, "json/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := parseAnyIndex(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, d := range idx.Manifests {
			if checkDescriptor(d) != nil {
				t.Fatalf("bad descriptor accepted: %+v", d)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	addSeeds(f, "json/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := convertManifest(b, digest.FromBytes(b))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if digest.FromBytes(fi.manifestBytes) != fi.digest {
			t.Fatal("digest does not match the manifest bytes")
		}
		if _, err := parseManifest(fi.manifestBytes); err != nil {
			t.Fatalf("converted manifest does not parse: %v", err)
		}
		for _, l := range fi.manifest.Layers {
			if checkDescriptor(l) != nil || !isLayerMediaType(l.MediaType) {
				t.Fatalf("bad layer accepted: %+v", l)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	addSeeds(f, "json/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		for n := range 3 {
			c, err := parseConfig(b, n)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error does not wrap ErrInvalid: %v", err)
				}
				continue
			}
			if len(c.RootFS.DiffIDs) != n {
				t.Fatalf("%d diff_ids accepted for %d layers", len(c.RootFS.DiffIDs), n)
			}
		}
	})
}

func FuzzParseDockerSave(f *testing.F) {
	addSeeds(f, "json/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseDockerSave(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, e := range entries {
			for _, p := range append([]string{e.Config}, e.Layers...) {
				if c, err := cleanArchivePath(p); err != nil || strings.HasPrefix(c, "..") || strings.HasPrefix(c, "/") {
					t.Fatalf("path %q accepted", p)
				}
			}
		}
	})
}

// FuzzImportArchive imports arbitrary archives: an import either succeeds or
// leaves the store as it was.
func FuzzImportArchive(f *testing.F) {
	addSeeds(f, "archives/*.tar")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Open(t.TempDir(), WithLimits(Limits{MaxBytes: 16 << 20}))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "in.tar")
		os.WriteFile(p, b, 0o644)
		before := snapshot(t, s.Dir())
		if _, err := s.Import(context.Background(), p, ""); err != nil {
			if after := snapshot(t, s.Dir()); after != before {
				t.Fatalf("a failed import (%v) changed the store", err)
			}
			return
		}
		if _, err := s.List(); err != nil {
			t.Fatalf("List after a successful import: %v", err)
		}
	})
}

// FuzzValidateMatchesUnpack checks that Import's validation (the unpacker
// over a memTree) and Rootfs (the unpacker over a directory) accept and
// refuse the same layers with the same words: one set of rules.
func FuzzValidateMatchesUnpack(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root to set ownership")
	}
	addSeeds(f, "layers/*.tar")
	f.Add(gz(f, tarOf(f, file("a", "a"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		limits := Limits{MaxBytes: 8 << 20, MaxEntries: 1000, MaxRatio: 100, RatioFloor: 1 << 20}
		d := digest.FromBytes(data)
		host := &unpacker{root: t.TempDir(), limits: limits}
		_, herr := host.applyStream(context.Background(), bytes.NewReader(data), d, int64(len(data)))
		mem := &unpacker{fs: newMemTree(), limits: limits}
		_, merr := mem.applyStream(context.Background(), bytes.NewReader(data), d, int64(len(data)))
		if (herr == nil) != (merr == nil) || errors.Is(herr, ErrInvalid) != errors.Is(merr, ErrInvalid) {
			t.Fatalf("unpack: %v\nvalidate: %v", herr, merr)
		}
		if errors.Is(herr, ErrInvalid) && herr.Error() != merr.Error() {
			t.Fatalf("different words:\nunpack: %v\nvalidate: %v", herr, merr)
		}
	})
}
