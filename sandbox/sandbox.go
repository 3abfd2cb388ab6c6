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
	"io/fs"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A Job is one build to run in a fresh container, as data: nothing in it is a
// mount the caller already made on the host, so any engine can realize it (the
// embedded libcontainer on this host, a containerd daemon, a BuildKit worker).
//
// The container's root is the image's root filesystem, read-only. The source
// appears writable and private to the job at BuildPath, its directories listed
// as FileOrdering says; Files appear read-only at their paths; Spec gives
// everything else.
type Job struct {
	// ID names the container; it must be unique among running jobs and match
	// [a-zA-Z0-9_.-]+. Empty means the backend picks one.
	ID string

	// Image is the job's image, pinned by digest.
	Image Image

	// Source is the build's source tree, given to the job as a private,
	// writable copy at BuildPath. The job's writes never reach Source.Dir.
	Source Source

	// BuildPath is the absolute directory in the container where the source
	// appears; it is also where Collect finds the build's tree. Empty means
	// the job has no source (Source is then empty too).
	BuildPath string

	// FileOrdering is how directory listings beneath BuildPath are ordered:
	// "native" (or empty: the file system's own order) or "reverse" (every
	// directory listed in reverse order, as disorderfs --reverse-dirents does).
	FileOrdering string

	// Files are files reprobox generates for the job (the user database,
	// hosts, the time shim): each appears read-only at its Path, replacing
	// whatever the image has there.
	Files []File

	// Spec describes the rest of the container: the process (arguments,
	// environment, working directory, user, umask, capabilities, rlimits),
	// hostname and domainname, namespaces, resources, seccomp, masked paths,
	// and the mounts that need nothing from the host (proc, tmpfs, ...).
	// Spec.Root.Path is ignored (Spec.Root.Readonly is applied) and the spec
	// holds no bind mount of a host path: the backend adds the image's root,
	// then the spec's mounts in order, then Files, then the source. Every
	// part of it is applied exactly as given; anything a backend cannot apply
	// is an error wrapping errors.ErrUnsupported, never silently ignored.
	Spec *specs.Spec

	// Personality holds extra personality(2) flags for the process, such as
	// ADDR_NO_RANDOMIZE (0x0040000) or UNAME26 (0x0020000). The OCI spec names
	// these flags but runtimes are free to ignore them; a backend must either
	// apply them or fail.
	Personality uint32

	// DiskBytes bounds what the job writes (beneath BuildPath and anywhere
	// else on its root that is not a tmpfs with its own size). When the job
	// goes past it the backend kills the job and sets Result.DiskExceeded.
	// Zero means no bound.
	DiskBytes int64

	// Collect, when not nil, is called once after the job's process has
	// exited (whatever its status, but not when Run fails, as it does when
	// ctx is done) and before the backend removes anything,
	// with res and tree: a host directory holding the build's tree as the
	// job left it (what was at BuildPath; "" for a job without a source),
	// in the native order whatever FileOrdering says. The tree is controlled by the
	// build: Collect must not follow links in it (package safefs). tree is
	// valid only during the call. An error from Collect is returned by Run.
	Collect func(ctx context.Context, res *Result, tree string) error

	// Stdout and Stderr receive the process's output. Nil discards it.
	Stdout, Stderr io.Writer
}

// An Image is an OCI image pinned by digest, as reprobox's store holds it.
type Image struct {
	// Digest is the digest of the image's manifest ("sha256:...").
	Digest string
	// Layout is a host directory holding an OCI image layout that contains
	// the image, for engines that import images into a store of their own.
	Layout string
	// Rootfs is the image's unpacked root filesystem on this host, for
	// engines that run here. Never written.
	Rootfs string
}

// A Source is a source tree as an immutable, content-addressed snapshot.
type Source struct {
	// Digest identifies the tree's content, ownership and modes: two sources
	// with one digest are the same tree, so a backend may cache by it.
	Digest string
	// Dir is the snapshot on the host. It does not change while jobs use it
	// and a backend never writes to it.
	Dir string
}

// A File is a file reprobox generates for a job.
type File struct {
	// Path is where the file appears in the container (absolute).
	Path string
	// Mode is its permission bits (0o644, 0o755).
	Mode fs.FileMode
	// Data is its content.
	Data []byte
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
	// DiskExceeded reports that the backend killed the job because it wrote
	// more than Job.DiskBytes.
	DiskExceeded bool
	// Worker names the worker that ran the job when the backend spreads
	// jobs over several (sandbox/pool sets it); a single backend leaves it
	// empty.
	Worker string
}

// Success reports whether the process exited with status 0.
func (r *Result) Success() bool { return r.ExitCode == 0 && r.Signal == 0 }

// A Feature is a part of a job that not every backend can apply.
type Feature string

// The features a factor may need beyond a plain OCI spec.
const (
	FeatureReverseDirents Feature = "reverse-dirents" // Job.FileOrdering "reverse"
	FeaturePersonality    Feature = "personality"     // Job.Personality
	FeatureUmask          Feature = "umask"           // Spec.Process.User.Umask
	FeatureCPUSet         Feature = "cpuset"          // Spec.Linux.Resources.CPU.Cpus
	FeatureUTSNames       Feature = "uts-names"       // Spec.Hostname, Spec.Domainname
	FeatureUser           Feature = "user"            // any uid, gid and user database
	FeatureFiles          Feature = "files"           // Job.Files (the time shim among them)
)

// A Features is implemented by a backend that can tell which features it
// applies. A backend that does not implement it is taken to apply all.
type Features interface {
	Features() []Feature
}

// A Pinger is implemented by a backend that can tell whether it still works:
// a daemon backend answers whether its daemon serves its API. Ping returns nil
// when it does. A pool of workers (sandbox/pool) uses it to tell a worker
// that went away from a job that no worker could run.
type Pinger interface {
	Ping(ctx context.Context) error
}

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
