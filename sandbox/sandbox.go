// Package sandbox runs one process in a container described by an OCI runtime spec.
//
// The spec is the one format shared between the parts of reprobox: policies edit a
// spec, a Backend runs one. Implementations live beneath this package
// (sandbox/libcontainer), and sandbox/sandboxtest holds the conformance suite every
// backend must pass.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A Job is one process to run in a fresh container.
type Job struct {
	// ID names the container; it must be unique among running jobs and match
	// [a-zA-Z0-9_.-]+. Empty means the backend picks one.
	ID string

	// Spec describes the container. Spec.Root.Path is the image's root filesystem;
	// a backend never writes to it (it mounts a per-run overlay, or the root
	// read-only). Mounts, namespaces, process, hostname, domainname and resource
	// limits are applied exactly as given; anything a backend cannot apply is an
	// error wrapping errors.ErrUnsupported, never silently ignored.
	Spec *specs.Spec

	// Personality holds extra personality(2) flags for the process, such as
	// ADDR_NO_RANDOMIZE (0x0040000) or UNAME26 (0x0020000). The OCI spec names
	// these flags but runtimes are free to ignore them; a backend must either
	// apply them or fail.
	Personality uint32

	// Stdout and Stderr receive the process's output. Nil discards it.
	Stdout, Stderr io.Writer
}

// A Result is how a job's process ended.
type Result struct {
	// ExitCode is the process's exit status, or 128+signal when it was killed.
	ExitCode int
	// Signal is the signal that killed the process, or 0.
	Signal int
	// Duration is the time from container start to the process's exit.
	Duration time.Duration
	// OOMKilled reports that the kernel killed a process of the job (the
	// job's process or any of its descendants) because the job reached its
	// memory limit. The job may still have exited 0.
	OOMKilled bool
}

// Success reports whether the process exited with status 0.
func (r *Result) Success() bool { return r.ExitCode == 0 && r.Signal == 0 }

// A Backend runs jobs.
//
// Contract: Run returns a non-nil Result and a nil error whenever the process was
// started, whatever its exit status: a build that fails is a result, not an error.
// A non-nil error means the sandbox itself failed (the container could not be
// created, started or cleaned up) and the job's outcome says nothing about the
// build. When ctx is done, Run kills every process of the job, removes every mount,
// cgroup and state directory the job made, and returns an error wrapping
// context.Cause(ctx). Run is safe for concurrent use with distinct job IDs.
type Backend interface {
	Run(ctx context.Context, job *Job) (*Result, error)
}

// ErrUnsupported is returned (wrapped) when a backend cannot apply part of a job.
var ErrUnsupported = errors.ErrUnsupported

// Unsupported returns an error saying that backend cannot apply what.
func Unsupported(backend, what string) error {
	return fmt.Errorf("sandbox: %s backend cannot apply %s: %w", backend, what, errors.ErrUnsupported)
}
