package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStoreCorruptBlob(t *testing.T) {
	requireRoot(t)
	layer := gzLayer(t, tarOf(t, file("a", strings.Repeat("a", 10000))))
	tests := []struct {
		name    string
		corrupt func(img Image) string // returns the digest it damaged
		op      string                 // "resolve" or "rootfs"
	}{
		{name: "manifest", op: "resolve", corrupt: func(img Image) string { return img.Digest.String() }},
		{name: "config", op: "resolve", corrupt: func(img Image) string { return img.Manifest.Config.Digest.String() }},
		{name: "layer", op: "rootfs", corrupt: func(img Image) string { return img.Manifest.Layers[0].Digest.String() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			img := importLayers(t, s, "test/corrupt", layer)
			d := tt.corrupt(img)
			flipByte(t, filepath.Join(s.Dir(), "oci", "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
			var err error
			if tt.op == "resolve" {
				_, err = s.Resolve("test/corrupt")
				if err == nil {
					_, err = s.List()
				}
			} else {
				_, err = s.Rootfs(context.Background(), img)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), d) {
				t.Fatalf("%s after corrupting blob %s: %v; want ErrInvalid naming the blob", tt.op, d, err)
			}
			if des, _ := os.ReadDir(filepath.Join(s.Dir(), "rootfs")); len(des) != 0 {
				t.Errorf("rootfs dir not empty: %v", des)
			}
		})
	}
}

func TestStoreResolveListRemove(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	shared := gzLayer(t, tarOf(t, file("shared", "s")))
	a := importLayers(t, s, "test/a", shared, gzLayer(t, tarOf(t, file("a", "a"))))
	b := importLayers(t, s, "test/b:latest", shared)

	for _, tt := range []struct {
		ref  string
		want Image
		err  error
	}{
		{ref: "test/a", want: a},
		{ref: "test/a@" + a.Digest.String(), want: a},
		{ref: a.Digest.String(), want: a},
		{ref: "test/b", want: b},
		{ref: "test/b:latest", want: b},
		{ref: "test/c", err: ErrNotFound},
		{ref: "test/a@sha256:" + strings.Repeat("0", 64), err: ErrNotFound},
		{ref: "test/a@sha256:short", err: ErrInvalid},
	} {
		got, err := s.Resolve(tt.ref)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Resolve(%q) error %v, want %v", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || got.Digest != tt.want.Digest {
			t.Errorf("Resolve(%q) = %s, %v; want %s", tt.ref, got.Digest, err, tt.want.Digest)
		}
	}
	// A pinned reference under another name still resolves: the digest decides.
	if got, err := s.Resolve("other/name@" + a.Digest.String()); err != nil || got.Digest != a.Digest || got.Name != "other/name" {
		t.Errorf("Resolve(other name, pinned) = %+v, %v", got.Reference(), err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "test/a" || list[1].Name != "test/b:latest" {
		t.Fatalf("List = %v", list)
	}
	wantSize := a.Manifest.Config.Size + a.Manifest.Layers[0].Size + a.Manifest.Layers[1].Size
	if list[0].Size <= wantSize {
		t.Errorf("Size = %d, want more than the config and layers, %d", list[0].Size, wantSize)
	}

	rootA, err := s.Rootfs(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("test/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rootA); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rootfs of a removed image is still there: %v", err)
	}
	blob := func(d string) bool {
		_, err := os.Stat(filepath.Join(s.Dir(), "oci", "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		return err == nil
	}
	if blob(a.Digest.String()) || blob(a.Manifest.Layers[1].Digest.String()) {
		t.Error("blobs only test/a used are still there")
	}
	if !blob(digestOf(shared.blob).String()) {
		t.Error("the shared layer was removed")
	}
	if err := s.Remove("test/a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if err := s.Remove(b.Digest.String()); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(filepath.Join(s.Dir(), "oci", "blobs", "sha256"))
	if len(des) != 0 {
		t.Errorf("%d blobs left in an empty store", len(des))
	}
}

// TestStoreNameMovesOldPinStillResolves: building or importing a new image
// under a name must not break configs pinned to the image the name had.
func TestStoreNameMovesOldPinStillResolves(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	old := importLayers(t, s, "test/a", gzLayer(t, tarOf(t, file("v", "1"))))
	next := importLayers(t, s, "test/a", gzLayer(t, tarOf(t, file("v", "2"))))
	if got, err := s.Resolve("test/a"); err != nil || got.Digest != next.Digest {
		t.Errorf("Resolve(test/a) = %s, %v; want the new %s", got.Digest, err, next.Digest)
	}
	if got, err := s.Resolve("test/a@" + old.Digest.String()); err != nil || got.Digest != old.Digest {
		t.Errorf("Resolve(pinned old) = %s, %v; want %s", got.Digest, err, old.Digest)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "" || list[0].Digest != old.Digest || list[1].Name != "test/a" {
		t.Fatalf("List = %+v, want the old image untagged and test/a", list)
	}
	// The same image again, and back to the old one: no duplicate entries.
	importLayers(t, s, "test/a", gzLayer(t, tarOf(t, file("v", "2"))))
	importLayers(t, s, "test/a", gzLayer(t, tarOf(t, file("v", "1"))))
	if list, _ = s.List(); len(list) != 2 || list[0].Name != "" || list[0].Digest != next.Digest ||
		list[1].Name != "test/a" || list[1].Digest != old.Digest {
		t.Fatalf("after moving back, List = %+v", list)
	}
	if err := s.Remove(next.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve("test/a@" + next.Digest.String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed untagged image still resolves: %v", err)
	}
}

func TestStoreIndexJSON(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := importLayers(t, s, "test/index", gzLayer(t, tarOf(t, file("a", "a"))))
	b, err := os.ReadFile(filepath.Join(s.Dir(), "oci", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir(), "oci", "blobs", "sha256", img.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
	"schemaVersion": 2,
	"mediaType": "application/vnd.oci.image.index.v1+json",
	"manifests": [
		{
			"mediaType": "application/vnd.oci.image.manifest.v1+json",
			"digest": "` + img.Digest.String() + `",
			"size": ` + strconv.FormatInt(fi.Size(), 10) + `,
			"annotations": {
				"org.opencontainers.image.ref.name": "test/index"
			}
		}
	]
}
`
	if string(b) != want {
		t.Errorf("index.json:\n%s\nwant:\n%s", b, want)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir(), "oci", "oci-layout")); string(b) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", b)
	}
}
