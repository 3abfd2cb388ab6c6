package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestImportHostileLayoutFiles is what a hostile OCI layout tries on the
// host that imports it: a FIFO where a blob or index.json should be (an open
// for reading would block forever), and symbolic links that point out of the
// layout at host files. Each is refused by name, never hangs, and leaves the
// store as it was.
func TestImportHostileLayoutFiles(t *testing.T) {
	requireRoot(t)
	good := gzLayer(t, tarOf(t, file("a", "a")))
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	replace := func(t *testing.T, path string, with func(string) error) {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := with(path); err != nil {
			t.Fatal(err)
		}
	}
	fifo := func(p string) error { return unix.Mkfifo(p, 0o644) }
	tests := []struct {
		name   string
		mangle func(t *testing.T, dir string, img builtImage)
		want   string
	}{
		{name: "fifo-layer-blob", want: "blobs/sha256/%LAYER% is a FIFO", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "blobs/sha256", img.layers[0].Digest.Encoded()), fifo)
		}},
		{name: "fifo-manifest-blob", want: "is a FIFO", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "blobs/sha256", img.manifest.Digest.Encoded()), fifo)
		}},
		{name: "fifo-index", want: "index.json is a FIFO", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "index.json"), fifo)
		}},
		{name: "fifo-oci-layout", want: "oci-layout is a FIFO", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "oci-layout"), fifo)
		}},
		{name: "directory-blob", want: "is a directory", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "blobs/sha256", img.layers[0].Digest.Encoded()), func(p string) error { return os.Mkdir(p, 0o755) })
		}},
		{name: "index-links-to-host-file", want: "index.json is a symbolic link", mangle: func(t *testing.T, dir string, img builtImage) {
			replace(t, filepath.Join(dir, "index.json"), func(p string) error { return os.Symlink("/etc/shadow", p) })
		}},
		{name: "blob-links-out-relative", want: "symbolic link", mangle: func(t *testing.T, dir string, img builtImage) {
			p := filepath.Join(dir, "blobs/sha256", img.layers[0].Digest.Encoded())
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "blob"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(filepath.Dir(p), filepath.Join(outside, "blob"))
			replace(t, p, func(p string) error { return os.Symlink(rel, p) })
		}},
		{name: "blobs-dir-links-out", want: "blobs/sha256/", mangle: func(t *testing.T, dir string, img builtImage) {
			if err := os.Rename(filepath.Join(dir, "blobs"), filepath.Join(outside, "blobs")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "blobs"), filepath.Join(dir, "blobs")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, img := layoutOf(t, "test/refused", good)
			tt.mangle(t, dir, img)
			s := newStore(t)
			importLayers(t, s, "test/existing", gzLayer(t, tarOf(t, file("b", "b"))))
			before := snapshot(t, s.Dir())
			done := make(chan error, 1)
			go func() {
				_, err := s.Import(context.Background(), dir, "")
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Import hangs")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Import: %v, want ErrInvalid", err)
			}
			want := strings.ReplaceAll(tt.want, "%LAYER%", img.layers[0].Digest.Encoded())
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q: %v", want, err)
			}
			if strings.Contains(err.Error(), "host secret") {
				t.Errorf("error leaks a host file: %v", err)
			}
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("a refused import changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	// The path given to import may itself be a FIFO.
	t.Run("fifo-archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "image.tar")
		if err := unix.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
		s := newStore(t)
		done := make(chan error, 1)
		go func() {
			_, err := s.Import(context.Background(), p, "")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("Import of a FIFO: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Import of a FIFO hangs")
		}
	})
}

// TestRootfsStoreBlobIsFIFO: the store's own blobs are not trusted on
// re-read either. A layer blob swapped for a FIFO behind reprobox's back is
// refused by name when the root filesystem is unpacked, never waited on.
func TestRootfsStoreBlobIsFIFO(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	img := importLayers(t, s, "test/fifo", gzLayer(t, tarOf(t, file("a", "a"))))
	p := s.blobPath(img.Manifest.Layers[0].Digest)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Rootfs(context.Background(), img)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is a FIFO") {
			t.Errorf("Rootfs with a FIFO blob: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Rootfs hangs on a FIFO blob")
	}
}
