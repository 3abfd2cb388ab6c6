package images

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestExportRoundTrip exports in both formats, imports the archives back
// (same digest), checks that exporting twice gives the same bytes, and that
// skopeo reads both archives.
func TestExportRoundTrip(t *testing.T) {
	for _, format := range []ExportFormat{FormatOCI, FormatDocker} {
		t.Run(string(format), func(t *testing.T) {
			a := newStore(t)
			img := smallImage(t, a, "test/small:v1")
			dir := t.TempDir()
			p1, p2 := filepath.Join(dir, "one.tar"), filepath.Join(dir, "two.tar")
			for _, p := range []string{p1, p2} {
				got, err := Export(a, "test/small:v1", p, format)
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				if got.Digest != img.Digest {
					t.Fatalf("Export returned %s, want %s", got.Digest, img.Digest)
				}
			}
			b1, _ := os.ReadFile(p1)
			b2, _ := os.ReadFile(p2)
			if !bytes.Equal(b1, b2) {
				t.Errorf("two exports differ")
			}
			golden := map[ExportFormat]string{FormatOCI: "export-oci.sha256", FormatDocker: "export-docker.sha256"}[format]
			writeGolden(t, golden, []byte(digest.FromBytes(b1).String()+"\n"))
			if want, err := os.ReadFile(filepath.Join("testdata", golden)); err != nil {
				t.Errorf("golden: %v (run with -update)", err)
			} else if strings.TrimSpace(string(want)) != digest.FromBytes(b1).String() {
				t.Errorf("archive digest %s, golden %s", digest.FromBytes(b1), want)
			}

			b := newStore(t)
			imgs, err := b.Import(context.Background(), p1, "")
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			if len(imgs) != 1 || imgs[0].Digest != img.Digest || imgs[0].Name != "test/small:v1" {
				t.Fatalf("Import gave %v, want test/small:v1@%s", imgs, img.Digest)
			}

			requireTool(t, "skopeo")
			transport := map[ExportFormat]string{FormatOCI: "oci-archive:", FormatDocker: "docker-archive:"}[format]
			out := skopeo(t, "inspect", "--raw", transport+p1)
			if format == FormatOCI && digest.FromString(out) != img.Digest {
				t.Errorf("skopeo reads manifest %s from the OCI archive, want %s", digest.FromString(out), img.Digest)
			}
			// A docker archive has no manifest of its own (skopeo makes a
			// Docker one): the config digest must be the same.
			if !strings.Contains(out, img.Manifest.Config.Digest.Encoded()) {
				t.Errorf("skopeo's manifest of the archive lacks config %s:\n%s", img.Manifest.Config.Digest, out)
			}
			// skopeo copies it back to an OCI layout reprobox imports.
			layout := filepath.Join(t.TempDir(), "layout")
			skopeo(t, "copy", "--preserve-digests", transport+p1, "oci:"+layout+":copy")
			c := newStore(t)
			imgs, err = c.Import(context.Background(), layout, "test/copied")
			if err != nil {
				t.Fatalf("Import of skopeo's copy: %v", err)
			}
			if format == FormatOCI && imgs[0].Digest != img.Digest {
				t.Errorf("skopeo's copy imports as %s, want %s", imgs[0].Digest, img.Digest)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	s := newStore(t)
	img := smallImage(t, s, "test/small")
	dir := t.TempDir()
	out := filepath.Join(dir, "x.tar")
	if _, err := Export(s, "no/such", out, FormatOCI); !errors.Is(err, ErrNotFound) {
		t.Errorf("Export of a missing image = %v, want ErrNotFound", err)
	}
	if _, err := Export(s, "test/small", out, "zip"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Export with format zip = %v, want ErrInvalid", err)
	}
	// A blob damaged in the store is refused, and no archive is left.
	layer := s.blobPath(img.Manifest.Layers[1].Digest)
	b, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(layer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(s, "test/small", out, FormatOCI); !errors.Is(err, ErrInvalid) {
		t.Errorf("Export of a damaged blob = %v, want ErrInvalid", err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("a failed export left %d files", len(des))
	}
}
