package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/testenv"
)

func TestPruneRemovesDeadOwnersOnly(t *testing.T) {
	testenv.NeedRoot(t)
	work := t.TempDir()
	dead, live := filepath.Join(work, "dead"), filepath.Join(work, "live")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "src"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A pid that cannot exist (above pid_max) stands for a killed run.
	if err := os.WriteFile(filepath.Join(dead, ownerFile), []byte("99999999 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := markOwned(live); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(dead, "src"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(dead, "src"), unix.MNT_DETACH) })
	r := &Runner{WorkDir: work}
	removed, err := r.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{dead}) {
		t.Fatalf("removed %v, want [%s]", removed, dead)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live run's directory is gone: %v", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), dead) {
		t.Errorf("a mount under %s is left", dead)
	}
}
