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
	b := newBackend(t)
	// The daemon's first job brings the image over the session (about a
	// minute on a loaded machine): not within the suite's time per probe.
	if res, _, stderr := run(t, b, shellJob(t, "true", nil)); !res.Success() {
		t.Fatalf("warm-up job: exit %d: %s", res.ExitCode, stderr)
	}
	sandboxtest.Run(t, b, sandboxtest.Env{Image: img, TimeShim: shim})
}
