package runner

import (
	"fmt"
	"strings"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// checkVary fails, before any build, when the backend says it cannot apply
// what a factor in vary needs (sandbox.Features). A backend that does not say
// is taken to apply everything; it still fails the job it cannot run.
func (r *Runner) checkVary(vary []string) error {
	fb, ok := r.Backend.(sandbox.Features)
	if !ok {
		return nil
	}
	var have []string
	for _, f := range fb.Features() {
		have = append(have, string(f))
	}
	for _, name := range vary {
		f, ok := policies.Lookup(name)
		if !ok {
			return fmt.Errorf("%w: %w %q", ErrConfig, policies.ErrUnknownFactor, name)
		}
		if miss := f.MissingNeeds(have); len(miss) > 0 {
			needs := make([]string, len(miss))
			for i, n := range miss {
				needs[i] = string(n)
			}
			return fmt.Errorf("%w: this backend cannot vary %s: it does not apply %s (see reprobox factors --backend; leave it out with --vary all,-%s): %w",
				ErrConfig, name, strings.Join(needs, ", "), name, sandbox.ErrUnsupported)
		}
	}
	return nil
}
