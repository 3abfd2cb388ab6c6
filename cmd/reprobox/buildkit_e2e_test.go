package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reprobox/reprobox/sandbox/buildkit/bktest"
	"github.com/reprobox/reprobox/sandbox/containerd/ctrtest"
)

// TestBuildkitSameAsOthers builds every fixture crate on libcontainer,
// containerd and BuildKit (private daemons) and compares their SHA256SUMS:
// the same build gives the same bytes on every backend. A few are then
// checked on BuildKit, every factor it applies varied (all but fileordering),
// and must blame what libcontainer blames.
func TestBuildkitSameAsOthers(t *testing.T) {
	dataDir, image := needImage(t)
	bk := bktest.Start(t)
	d := ctrtest.Start(t)
	backends := map[string][]string{
		"libcontainer": nil,
		"containerd":   {"--backend", "containerd", "--containerd-address", d.Address},
		"buildkit":     {"--backend", "buildkit", "--addr", bk.Address},
	}
	names := []string{"libcontainer", "containerd", "buildkit"}
	crates, err := os.ReadDir(fixture("."))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string][]string{"reproducible": {}, "aslr": {"aslr"}}
	for _, c := range crates {
		if !c.IsDir() || c.Name() == "nondeterministic" || c.Name() == "sysgen" { // differ from themselves by design
			continue
		}
		crate := c.Name()
		t.Run(crate, func(t *testing.T) {
			sums := map[string]string{}
			for _, name := range names {
				out := filepath.Join(t.TempDir(), "out")
				args := append([]string{"build", "--image", image, "--data-dir", dataDir, "--out", out}, backends[name]...)
				r := reprobox(t, fixture(crate), args...)
				if r.code != 0 {
					t.Fatalf("build on %s: exit %d\n%s", name, r.code, r.stderr)
				}
				b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
				if err != nil {
					t.Fatal(err)
				}
				sums[name] = string(b)
			}
			if sums["libcontainer"] == "" || sums["containerd"] != sums["libcontainer"] || sums["buildkit"] != sums["libcontainer"] {
				t.Errorf("SHA256SUMS differ:\nlibcontainer\n%s\ncontainerd\n%s\nbuildkit\n%s", sums["libcontainer"], sums["containerd"], sums["buildkit"])
			}
			want, ok := checked[crate]
			if !ok {
				return
			}
			// BuildKit cannot list directories in reverse: the check leaves
			// that factor out, as the error for a plain check says to.
			rep, r := check(t, fixture(crate), append(backends["buildkit"], "--vary", "all,-fileordering")...)
			if !slices.Equal(rep.Culprits, want) {
				t.Errorf("buildkit culprits %v, want %v\n%s", rep.Culprits, want, r.stdout)
			}
			t.Logf("%s on buildkit: %v in %d builds", crate, rep.Culprits, rep.Builds)
		})
	}
}
