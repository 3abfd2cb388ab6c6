//go:build !race

package images

// Without -race, like TestBuildReproducible: the race detector makes
// packing the layer many times slower (make test runs both on their own).

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBuildFromLock builds a small image (minbase and hello), then builds
// twice from the lock it wrote, each time into a fresh store: both must give
// the digest the lock was made with. A lock naming a version the mirror
// does not have must fail, naming the package and the mirrors, and store
// nothing. It needs root, deb.debian.org and several minutes.
func TestBuildFromLock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image four times (minutes); not with -short")
	}
	requireRoot(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		skipOrFail(t, "mmdebstrap is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	build := func(o BuildOptions) (*Store, Image, error) {
		t.Helper()
		s := newStore(t)
		var progress bytes.Buffer
		o.Progress = &progress
		start := time.Now()
		img, err := Build(ctx, s, o)
		t.Logf("build: %s in %v", img.Reference(), time.Since(start).Round(time.Second))
		if err != nil {
			t.Logf("progress:\n%s", progress.String())
		}
		return s, img, err
	}
	s, img, err := build(BuildOptions{Name: "test/locked", Minimal: true, Packages: []string{"hello"}})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	lock, err := ReadLock(s.LockPath(img.Digest))
	if err != nil {
		t.Fatalf("the build wrote no lock: %v", err)
	}
	if lock.Image == nil || lock.Image.Digest != img.Digest || !lock.Minimal || len(lock.Packages) < 50 {
		t.Fatalf("lock: image %+v, minimal %v, %d packages", lock.Image, lock.Minimal, len(lock.Packages))
	}
	fromLabel, ok, err := LockOf(img)
	if err != nil || !ok || string(fromLabel.Marshal()) != string(lock.Marshal()) {
		t.Fatalf("the image's label holds another lock (ok %v, err %v)", ok, err)
	}
	var hello *LockedPackage
	for i, p := range lock.Packages {
		if p.Name == "hello" {
			hello = &lock.Packages[i]
		}
	}
	if hello == nil {
		t.Fatal("the lock lacks hello")
	}

	for i := range 2 {
		_, again, err := build(BuildOptions{Lock: &lock})
		if err != nil {
			t.Fatalf("build %d from the lock: %v", i+1, err)
		}
		if again.Digest != img.Digest || again.Name != "test/locked" {
			t.Errorf("build %d from the lock gave %s, want test/locked@%s", i+1, again.Reference(), img.Digest)
		}
	}

	bad := lock
	bad.Packages = append([]LockedPackage(nil), lock.Packages...)
	for i, p := range bad.Packages {
		if p.Name == "hello" {
			bad.Packages[i].Version = "0.0-reprobox-missing"
		}
	}
	bs, _, err := build(BuildOptions{Lock: &bad})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "hello: version 0.0-reprobox-missing is not available") ||
		!strings.Contains(err.Error(), DefaultMirror) {
		t.Fatalf("build from a lock with a missing version = %v, want ErrNotFound naming hello and the mirror", err)
	}
	if list, _ := bs.List(); len(list) != 0 {
		t.Errorf("the failed build stored %d images", len(list))
	}
}
