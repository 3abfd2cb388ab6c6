package containerd

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/sandbox/internal/pidstart"
)

// applyLastPID makes spec start its process as the PID entry program
// (package pidstart) when the job's spec asks for a last PID
// (sandbox.AnnotationLastPID): runc's init takes a varying number of PIDs in
// the new namespace before the process starts. It runs outermost, before the
// personality helper, which creates no process. The annotation itself is
// left to runc, which ignores it.
func (r *run) applyLastPID(spec *specs.Spec) error {
	last, err := pidstart.LastPID(spec)
	if err != nil || last == 0 {
		return err
	}
	r.b.pidOnce.Do(func() {
		r.b.pidHelper, r.b.pidErr = pidstart.Build(r.b.binDir())
	})
	if r.b.pidErr != nil {
		return fmt.Errorf("last PID: %w", r.b.pidErr)
	}
	return pidstart.Apply(spec, r.b.pidHelper, last)
}
