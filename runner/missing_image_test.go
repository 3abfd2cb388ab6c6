package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/images"
)

// TestNewPlanMissingImage: a pinned image that is not in the store is
// ErrNotFound with the ways to get it, not a bare "not found".
func TestNewPlanMissingImage(t *testing.T) {
	s, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := "ghcr.io/team/rust@sha256:" + strings.Repeat("ab", 32)
	cfg := Config{Image: ref, Command: []string{"true"}, Artifacts: []string{"out"}}
	_, err = (&Runner{Store: s}).NewPlan(context.Background(), t.TempDir(), cfg, false, "")
	if !errors.Is(err, images.ErrNotFound) {
		t.Fatalf("NewPlan = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"reprobox image pull " + ref, "reprobox image import FILE", "reprobox image build --lock FILE", s.Dir()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
