// Package pidstart gives every sandbox backend the same PIDs for a job: an
// entry program, run as the container's first process, moves the job's PID
// namespace to the last PID the job's spec asks for (the annotation
// sandbox.AnnotationLastPID) and then executes the job's command.
//
// A container runtime takes a varying number of PIDs in a new namespace
// before the job's command starts (runc's init is a Go program whose threads
// take PIDs too), so without it a shell's $$ in a build moves from run to run.
package pidstart

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/cprog"
)

// source is the entry program's C source.
//
//go:embed entry/pidstart.c
var source []byte

// Path is where the entry program appears in the container: on the
// container's /dev (a tmpfs in reprobox's specs), not in the image's tree.
const Path = "/dev/.reprobox-pidstart"

// LastPID returns the last PID the spec asks for (its annotation
// sandbox.AnnotationLastPID), or 0 when it asks for none.
func LastPID(spec *specs.Spec) (int, error) {
	v, ok := spec.Annotations[sandbox.AnnotationLastPID]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > sandbox.MaxLastPID || strconv.Itoa(n) != v {
		return 0, fmt.Errorf("annotation %s=%q: not a PID from 1 to %d", sandbox.AnnotationLastPID, v, sandbox.MaxLastPID)
	}
	return n, nil
}

// Apply makes spec start its process as the entry program (at host path
// helper, bind-mounted read-only at Path) that moves the PID namespace to
// last and executes the original arguments. spec is edited in place: the
// caller passes its own copy. It refuses a spec without a new PID namespace.
func Apply(spec *specs.Spec, helper string, last int) error {
	if spec.Linux == nil || !slices.ContainsFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.PIDNamespace && ns.Path == ""
	}) {
		return fmt.Errorf("annotation %s without a new PID namespace: the PIDs of a shared namespace cannot be set", sandbox.AnnotationLastPID)
	}
	spec.Mounts = append(slices.Clip(spec.Mounts), specs.Mount{
		Destination: Path, Type: "bind", Source: helper,
		Options: []string{"bind", "ro", "nosuid", "nodev"},
	})
	p := *spec.Process
	p.Args = append([]string{Path, strconv.Itoa(last)}, p.Args...)
	spec.Process = &p
	return nil
}

// WithFile returns a copy of job that starts its process as the entry
// program, given to the container as one of the job's files (at Path)
// rather than as a bind mount of a host path: for a backend whose engine
// sees no host path (BuildKit). job is not modified; a job whose spec asks
// for no last PID is returned as it is.
func WithFile(job *sandbox.Job, helper string) (*sandbox.Job, error) {
	last, err := LastPID(job.Spec)
	if err != nil || last == 0 {
		return job, err
	}
	data, err := os.ReadFile(helper)
	if err != nil {
		return nil, err
	}
	j, spec := *job, *job.Spec
	p := *spec.Process
	p.Args = append([]string{Path, strconv.Itoa(last)}, p.Args...)
	spec.Process = &p
	j.Spec = &spec
	j.Files = append(slices.Clip(job.Files), sandbox.File{Path: Path, Mode: 0o755, Data: data})
	return &j, nil
}

// Build compiles the entry program, static, with the host's C compiler into
// dir, once per source version, and returns its path. Without a C compiler
// (and libc6-dev for the static libc) it returns an error wrapping
// errors.ErrUnsupported that says what to install.
func Build(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path, err := cprog.Build(dir, "pidstart", source)
	if errors.Is(err, cprog.ErrNoCompiler) {
		return "", fmt.Errorf("the PIDs of a build are set by an entry program compiled with the host's C compiler once: %w: %w", err, sandbox.ErrUnsupported)
	}
	return path, err
}
