package buildkit

import (
	"sync"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/pidstart"
)

// pidHelper is the PID entry program (package pidstart), compiled once per
// process.
var pidHelper struct {
	once sync.Once
	path string
	err  error
}

// withLastPID returns job itself when its spec asks for no last PID
// (sandbox.AnnotationLastPID), or a copy that carries the PID entry program
// as a file and starts the build through it: the entry program gives the
// build PID 1 of its own namespace, where pidstart moves the namespace's
// last PID and executes the build's command.
func (b *Backend) withLastPID(job *sandbox.Job) (*sandbox.Job, error) {
	if last, err := pidstart.LastPID(job.Spec); err != nil || last == 0 {
		return job, err
	}
	pidHelper.once.Do(func() { pidHelper.path, pidHelper.err = pidstart.Build(b.binDir()) })
	if pidHelper.err != nil {
		return nil, pidHelper.err
	}
	return pidstart.WithFile(job, pidHelper.path)
}
