package buildkit_test

import (
	"testing"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox/sandboxtest"
)

// TestConformance runs the shared conformance suite against a private
// buildkitd: every normalized setting checked from inside the container, and
// every perturbed value seen to differ.
func TestConformance(t *testing.T) {
	img, _ := testImage(t)
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sandboxtest.Run(t, newBackend(t), sandboxtest.Env{Image: img, TimeShim: shim})
}
