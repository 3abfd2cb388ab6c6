// Compiled out until sandboxtest takes jobs (issue 10, the portable job):
// this is the call for the suite's new Env (Image with Digest, Layout and
// Rootfs, from which the suite reads passwd and group; TimeShim). Until
// then probe_test.go runs the current suite's probe through this backend.
// When the new suite lands: remove the build tag, delete probe_test.go and
// make render in helpers_test.go call the new policies.Render.

package containerd_test

import (
	"testing"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox/sandboxtest"
)

// TestConformance runs the shared conformance suite against a private
// containerd daemon: every normalized setting checked from inside the
// container, and every perturbed value seen to differ.
func TestConformance(t *testing.T) {
	img, rootfs := testImage(t)
	img.Rootfs = rootfs
	shim, err := policies.BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sandboxtest.Run(t, newBackend(t), sandboxtest.Env{Image: img, TimeShim: shim})
}
