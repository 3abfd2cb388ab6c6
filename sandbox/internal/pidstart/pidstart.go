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
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/sandbox"
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

// Build compiles the entry program, static, with the host's C compiler into
// dir, once per source version, and returns its path. Without a C compiler
// (and libc6-dev for the static libc) it returns an error wrapping
// errors.ErrUnsupported that says what to install.
func Build(dir string) (string, error) {
	sum := sha256.Sum256(source)
	out := filepath.Join(dir, "pidstart-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("the PIDs of a build are set by an entry program compiled with the host's C compiler once; install one (apt-get install gcc libc6-dev): %v: %w", err, sandbox.ErrUnsupported)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".pidstart-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "pidstart.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, "pidstart")
	cmd := exec.Command(cc, "-static", "-O2", "-Wall", "-o", bin, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compile the PID entry program (static, needs libc6-dev): %v: %s: %w", err, msg, sandbox.ErrUnsupported)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(bin, out); err != nil {
		return "", err
	}
	return out, nil
}
