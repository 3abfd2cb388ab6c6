package libcontainer

import (
	"path/filepath"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/pidstart"
)

// withLastPID returns job itself when its spec asks for no last PID
// (sandbox.AnnotationLastPID), or a copy whose spec starts the process as
// the PID entry program (package pidstart), which moves the PID namespace
// there and executes the job's command. job is not modified.
func (b *Backend) withLastPID(job *sandbox.Job) (*sandbox.Job, error) {
	last, err := pidstart.LastPID(job.Spec)
	if err != nil || last == 0 {
		return job, err
	}
	h := &b.pidHelper
	h.once.Do(func() { h.path, h.err = pidstart.Build(filepath.Join(b.stateDir, "bin")) })
	if h.err != nil {
		return nil, h.err
	}
	j, spec := *job, *job.Spec
	if err := pidstart.Apply(&spec, h.path, last); err != nil {
		return nil, err
	}
	j.Spec = &spec
	return &j, nil
}
