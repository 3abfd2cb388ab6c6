// Package testenv gates tests on what the machine has (root, the default
// image, a program) and turns every skip into a failure when
// REPROBOX_TEST_DISALLOW_SKIP=1, as CI sets: a required test that cannot run
// there must fail, not pass quietly.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Skip skips the test with a reason, or fails it when skips are disallowed.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("REPROBOX_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("required test cannot run (REPROBOX_TEST_DISALLOW_SKIP=1): "+format, args...)
	}
	t.Skipf(format, args...)
}

// NeedRoot skips unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (containers, mounts, cgroups)")
	}
}

// NeedProgram skips unless name is on PATH.
func NeedProgram(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Skip(t, "needs %s on PATH (make deps installs it)", name)
	}
}

// DataDir is the data directory holding the default image:
// REPROBOX_DATA_DIR, else /var/lib/reprobox.
func DataDir() string {
	if d := os.Getenv("REPROBOX_DATA_DIR"); d != "" {
		return d
	}
	return "/var/lib/reprobox"
}

// Image is the reference of the default image the tests build in:
// REPROBOX_IMAGE, else reprobox/rust.
func Image() string {
	if r := os.Getenv("REPROBOX_IMAGE"); r != "" {
		return r
	}
	return "reprobox/rust"
}
