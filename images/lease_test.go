package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestLeaseBlocksRemove(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := importLayers(t, s, "test/leased", gzLayer(t, tarOf(t, file("a", "a"))))
	rootfs, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lease(img, "rbx-build1")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.Lease(img, "rbx-build2")
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.Dir())
	for _, ref := range []string{"test/leased", img.Digest.String(), "test/leased@" + img.Digest.String()} {
		err := s.Remove(ref)
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("Remove(%s) during a lease: %v, want ErrInUse", ref, err)
		}
		for _, want := range []string{
			fmt.Sprintf("rbx-build1 (pid %d)", os.Getpid()),
			fmt.Sprintf("rbx-build2 (pid %d)", os.Getpid()),
			"in use by build",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Remove(%s): error does not say %q: %v", ref, want, err)
			}
		}
	}
	if after := snapshot(t, s.Dir()); after != before {
		t.Errorf("a refused remove changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Another name for the same image can go: the root filesystem stays.
	if _, err := s.Import(context.Background(), mustLayoutDir(t, s, img), "test/alias"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("test/alias"); err != nil {
		t.Errorf("removing a second name of a leased image: %v", err)
	}
	if err := l.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	l.Release()
	l.Release()
	if err := s.Remove("test/leased"); !errors.Is(err, ErrInUse) || strings.Contains(err.Error(), "rbx-build1") {
		t.Errorf("Remove with one lease left: %v", err)
	}
	l2.Release()
	if err := s.Remove("test/leased"); err != nil {
		t.Fatalf("Remove after the leases ended: %v", err)
	}
	if _, err := os.Stat(rootfs); !os.IsNotExist(err) {
		t.Errorf("root filesystem still there: %v", err)
	}
	if _, err := s.Lease(img, "rbx-build3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lease of a removed image: %v", err)
	}
}

// mustLayoutDir writes a layout holding img's blobs, read
// back from the store, so the same image can be imported under another name.
func mustLayoutDir(t *testing.T, s *Store, img Image) string {
	t.Helper()
	b := blobs{}
	for _, d := range append(img.Manifest.Layers, img.Manifest.Config) {
		data, err := os.ReadFile(s.blobPath(d.Digest))
		if err != nil {
			t.Fatal(err)
		}
		b[d.Digest] = data
	}
	m, err := os.ReadFile(s.blobPath(img.Digest))
	if err != nil {
		t.Fatal(err)
	}
	b[img.Digest] = m
	dir := t.TempDir()
	writeLayoutDir(t, dir, b, v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: img.Digest, Size: int64(len(m))})
	return dir
}

func TestLeaseCheckSeesAReplacedRootfs(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := importLayers(t, s, "test/replaced", gzLayer(t, tarOf(t, file("a", "a"))))
	rootfs, err := s.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lease(img, "rbx-replaced")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// Behind the store's back, as rm -rf and a fresh unpack would.
	if err := os.Rename(rootfs, rootfs+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); !errors.Is(err, ErrRootfsChanged) || !strings.Contains(err.Error(), "was replaced") {
		t.Errorf("Check after the rootfs was replaced: %v", err)
	}
	os.Remove(rootfs)
	if err := l.Check(); !errors.Is(err, ErrRootfsChanged) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Check after the rootfs was removed: %v", err)
	}
}
