//go:build !race

package images

// The race detector makes packing a 900 MB layer many times slower; this test
// builds two images, so it runs without -race (make test runs it on its own)
// while TestWriteBuildLayer and the rest cover the same code under -race.

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuildReproducible runs mmdebstrap twice into two stores and compares
// the manifest digests. It needs root, the network to deb.debian.org, and a
// few minutes.
func TestBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image twice (minutes); not with -short")
	}
	requireRoot(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		skipOrFail(t, "mmdebstrap is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	var imgs []Image
	for i := range 2 {
		s := newStore(t)
		var progress bytes.Buffer
		start := time.Now()
		img, err := Build(ctx, s, BuildOptions{Progress: &progress})
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i+1, err, progress.String())
		}
		t.Logf("build %d: %s in %v", i+1, img.Reference(), time.Since(start).Round(time.Second))
		lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
		if want := "stored " + img.Reference().String(); lines[len(lines)-1] != want {
			t.Errorf("last progress line %q, want %q", lines[len(lines)-1], want)
		}
		if !slices.Contains(lines, "writing layer") {
			t.Error(`no "writing layer" progress line`)
		}
		imgs = append(imgs, img)
	}
	if imgs[0].Digest != imgs[1].Digest {
		t.Errorf("two builds differ: %s and %s (layers %s and %s)", imgs[0].Digest, imgs[1].Digest,
			imgs[0].Manifest.Layers[0].Digest, imgs[1].Manifest.Layers[0].Digest)
	}
	cfg := imgs[0].Config
	if cfg.Created == nil || cfg.Created.Unix() != DefaultSourceDateEpoch {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH", cfg.Created)
	}
	if !strings.Contains(cfg.Config.Labels[LabelInstalled], "rustc-web=") {
		t.Errorf("installed label lacks rustc-web: %.200q", cfg.Config.Labels[LabelInstalled])
	}
}
