package buildkit

import (
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/pidstart"
)

// withLastPID returns job itself when its spec asks for no last PID
// (sandbox.AnnotationLastPID), or a copy that carries the PID entry program
// as a file and starts the build through it: the entry program gives the
// build PID 1 of its own namespace, where pidstart moves the namespace's
// last PID and executes the build's command.
func (b *Backend) withLastPID(job *sandbox.Job) (*sandbox.Job, error) {
	if last, err := pidstart.LastPID(job.Spec); err != nil || last == 0 {
		return job, err
	}
	h := &b.pidHelper
	h.once.Do(func() { h.path, h.err = pidstart.Build(b.binDir()) })
	if h.err != nil {
		return nil, h.err
	}
	return pidstart.WithFile(job, h.path)
}
