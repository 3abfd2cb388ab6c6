package libcontainer

import (
	"path/filepath"
	"sync"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/pidstart"
)

// pidHelper is the PID entry program, compiled once per process into the
// state directory.
var pidHelper struct {
	once sync.Once
	path string
	err  error
}

// withLastPID returns job itself when its spec asks for no last PID
// (sandbox.AnnotationLastPID), or a copy whose spec starts the process as
// the PID entry program (package pidstart), which moves the PID namespace
// there and executes the job's command. job is not modified.
func (b *Backend) withLastPID(job *sandbox.Job) (*sandbox.Job, error) {
	last, err := pidstart.LastPID(job.Spec)
	if err != nil || last == 0 {
		return job, err
	}
	pidHelper.once.Do(func() {
		pidHelper.path, pidHelper.err = pidstart.Build(filepath.Join(b.stateDir, "bin"))
	})
	if pidHelper.err != nil {
		return nil, pidHelper.err
	}
	j, spec := *job, *job.Spec
	if err := pidstart.Apply(&spec, pidHelper.path, last); err != nil {
		return nil, err
	}
	j.Spec = &spec
	return &j, nil
}
