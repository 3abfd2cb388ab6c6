package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reprobox/reprobox/sandbox/containerd/ctrtest"
)

// TestContainerdSameAsLibcontainer builds every fixture crate on both
// backends and compares SHA256SUMS, then checks each on containerd (every
// factor varied) and compares the culprits with what libcontainer blames
// (TestCheckFixtures' table), against a private containerd daemon.
func TestContainerdSameAsLibcontainer(t *testing.T) {
	dataDir, image := needImage(t)
	d := ctrtest.Start(t)
	ctrd := []string{"--backend", "containerd", "--containerd-address", d.Address}
	cases := []struct {
		crate    string
		culprits []string
	}{
		{"reproducible", nil},
		{"time", []string{"time"}},
		{"build_path", []string{"build_path"}},
		{"locale", []string{"locale"}},
		{"timezone", []string{"timezone"}},
		{"umask", []string{"umask"}},
		{"hostname", []string{"hostname"}},
		{"domainname", []string{"domainname"}},
		{"user", []string{"user"}},
		{"home", []string{"home"}},
		{"fileordering", []string{"fileordering"}},
		{"num_cpus", []string{"num_cpus"}},
		{"kernel", []string{"kernel"}},
		{"aslr", []string{"aslr"}},
		{"env", []string{"env"}},
		{"exec_path", []string{"exec_path"}},
		{"two_factors", []string{"home", "hostname"}},
		{"dist", []string{"time", "umask", "user"}},
		{"dep_build_path", []string{"build_path"}},
	}
	for _, tc := range cases {
		t.Run(tc.crate, func(t *testing.T) {
			var sums []string
			for _, backend := range [][]string{nil, ctrd} {
				out := filepath.Join(t.TempDir(), "out")
				args := append([]string{"build", "--image", image, "--data-dir", dataDir, "--out", out}, backend...)
				r := reprobox(t, fixture(tc.crate), args...)
				if r.code != 0 {
					t.Fatalf("build %v: exit %d\n%s", backend, r.code, r.stderr)
				}
				b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
				if err != nil {
					t.Fatal(err)
				}
				sums = append(sums, string(b))
			}
			if sums[0] == "" || sums[0] != sums[1] {
				t.Errorf("SHA256SUMS: libcontainer\n%s\ncontainerd\n%s", sums[0], sums[1])
			}
			rep, r := check(t, fixture(tc.crate), ctrd...)
			want := tc.culprits
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(rep.Culprits, want) {
				t.Errorf("containerd culprits %v, libcontainer's %v\n%s", rep.Culprits, want, r.stdout)
			}
			t.Logf("%s: %v in %d builds", tc.crate, rep.Culprits, rep.Builds)
		})
	}
}
