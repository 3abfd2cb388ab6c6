package policies

import (
	"fmt"

	"github.com/reprobox/reprobox/internal/human"
)

// Limits bound what one build may use of the host. A zero field means its
// default. They are not factors: every build of a check gets the same limits.
type Limits struct {
	// MemoryBytes bounds the build's memory (its memory cgroup, tmpfs files
	// included, no swap). A build that needs more has a process killed by
	// the kernel, and the build's result says so (sandbox.Result.OOMKilled).
	MemoryBytes int64 `json:"memory_bytes"`
	// DiskBytes bounds what the build writes into its build directory (the
	// overlay upper directory on the host); the runner kills a build that
	// writes more. /tmp, /var/tmp, /dev/shm and HOME are tmpfs with their own
	// sizes, charged to MemoryBytes.
	DiskBytes int64 `json:"disk_bytes"`
	// Pids bounds the build's processes and threads together (pids cgroup).
	Pids int64 `json:"pids"`
}

// Default limits. Pids: a fork bomb stops at this many tasks (half the 8192
// reprobox had, which let a bomb push the host's load to about 2400). Cargo
// runs a job per CPU and each rustc a bounded pool of threads (the jobserver
// hands out codegen threads), so a build at the default 2 CPUs, or the rustc
// bootstrap of examples/rustc-dist at -j2, needs a small fraction of it; a
// project with very parallel build scripts or tests can raise pids.
const (
	DefaultMemoryBytes = 16 << 30
	DefaultDiskBytes   = 64 << 30
	DefaultPids        = 4096
)

// Smallest limits reprobox accepts: below them the container's own init
// (a Go program with several threads) cannot start.
const (
	MinMemoryBytes = 32 << 20
	MinDiskBytes   = 1 << 20
	MinPids        = 16
	// MaxPids is the kernel's own ceiling (PID_MAX_LIMIT on 64-bit).
	MaxPids = 1 << 22
)

// CFSPeriod is the CFS period of a build's CPU quota, in microseconds: the
// build may use CPUs × CFSPeriod of CPU time per period.
const CFSPeriod = 100000

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = DefaultMemoryBytes
	}
	if l.DiskBytes == 0 {
		l.DiskBytes = DefaultDiskBytes
	}
	if l.Pids == 0 {
		l.Pids = DefaultPids
	}
	return l
}

// Validate checks limits as a user gives them (zero means the default).
func (l Limits) Validate() error {
	switch {
	case l.MemoryBytes != 0 && l.MemoryBytes < MinMemoryBytes:
		return fmt.Errorf("policies: memory limit %d bytes is below the minimum of %s", l.MemoryBytes, human.Bytes(MinMemoryBytes))
	case l.DiskBytes != 0 && l.DiskBytes < MinDiskBytes:
		return fmt.Errorf("policies: disk limit %d bytes is below the minimum of %s", l.DiskBytes, human.Bytes(MinDiskBytes))
	case l.Pids != 0 && (l.Pids < MinPids || l.Pids > MaxPids):
		return fmt.Errorf("policies: pids limit %d is outside %d to %d", l.Pids, MinPids, MaxPids)
	}
	return nil
}
