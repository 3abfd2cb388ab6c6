package libcontainer

import (
	"testing"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/sandboxtest"
)

// TestConformance runs the shared conformance suite in the pinned default
// image: every normalized setting checked from inside the container, and every
// perturbed value seen to differ.
func TestConformance(t *testing.T) {
	rootfs := imageRootfs(t)
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sandboxtest.Run(t, newBackend(t), sandboxtest.Env{Image: sandbox.Image{Rootfs: rootfs}, TimeShim: shim})
}
