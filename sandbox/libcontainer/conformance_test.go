package libcontainer

import (
	"context"
	"testing"

	"github.com/reprobox/reprobox/images"
	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox/sandboxtest"
)

// TestConformance runs the shared conformance suite in the pinned default
// image: every normalized setting checked from inside the container, and every
// perturbed value seen to differ.
func TestConformance(t *testing.T) {
	testenv.NeedRoot(t)
	store, err := images.Open(testenv.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := store.Resolve(testenv.Image())
	if err != nil {
		testenv.Skip(t, "image %s is not in %s (make image builds it): %v", testenv.Image(), testenv.DataDir(), err)
	}
	rootfs, err := store.Rootfs(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sandboxtest.Run(t, newBackend(t), sandboxtest.Env{Rootfs: rootfs, TimeShim: shim})
}
