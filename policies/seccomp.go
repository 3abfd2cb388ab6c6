package policies

import (
	"encoding/json"
	"fmt"
	"slices"

	moby "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The seccomp profile of every build is Docker's default profile, from moby's
// own package (github.com/moby/profiles/seccomp), as Docker derives it for a
// container with the build's capabilities: a syscall that is not allowed
// fails with EPERM (never a kill), so a build that probes a feature degrades
// as it would in `docker run`. Two changes make it independent of the host:
//
//   - ptrace, process_vm_readv and process_vm_writev are denied on every
//     kernel. Docker allows them on kernels 4.8 and later (where seccomp is
//     re-checked after a tracer changes a syscall); a build has no business
//     inspecting another process, and a profile that depended on the kernel
//     version would make two hosts run different builds.
//   - Nothing else depends on the host but its architecture (runtime.GOARCH).
//
// The profile is applied by libcontainer's init just before it executes the
// build command, after it has set the personality (ADDR_NO_RANDOMIZE,
// UNAME26) and mounted everything, so no step of reprobox's own setup needs a
// syscall the profile denies. The build itself may still query its
// personality and set the few values Docker allows.

// DeniedSyscalls are the syscalls, among those a container runtime is
// usually asked about, that a build's seccomp profile refuses with EPERM,
// sorted. It is documentation (reprobox factors prints it); a test checks
// that the profile really denies each of them. clone and clone3 are listed
// in DeniedClone instead: clone is allowed without namespace flags.
var DeniedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_settime", "delete_module",
	"fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen",
	"fspick", "init_module", "io_uring_enter", "io_uring_register",
	"io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
	"move_mount", "open_by_handle_at", "open_tree", "perf_event_open",
	"pidfd_getfd", "pivot_root", "process_madvise", "process_vm_readv",
	"process_vm_writev", "ptrace", "quotactl", "reboot", "request_key",
	"setdomainname", "sethostname", "setns", "settimeofday", "swapoff",
	"swapon", "syslog", "umount2", "unshare", "userfaultfd", "vhangup",
}

// DeniedClone says how the profile treats clone(2) and clone3(2).
const DeniedClone = "clone with a namespace flag (CLONE_NEWUSER, CLONE_NEWNS, ...) fails with EPERM; clone3 with ENOSYS, so that the C library falls back to clone"

// AllowedPersonalities are the personality(2) arguments a build may pass:
// PER_LINUX, PER_LINUX32, UNAME26 with either, and the query 0xffffffff.
var AllowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// kernelDependent are the syscalls Docker allows from kernel 4.8 on.
var kernelDependent = []string{"process_vm_readv", "process_vm_writev", "ptrace"}

// Seccomp returns the seccomp profile of a build whose spec is spec (its
// capabilities and architecture decide it). The result does not depend on
// the host's kernel.
func Seccomp(spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	p := moby.DefaultProfile()
	for _, s := range p.Syscalls {
		kernel := s.Includes != nil && s.Includes.MinKernel != nil || s.Excludes != nil && s.Excludes.MinKernel != nil
		if kernel && !slices.Equal(slices.Sorted(slices.Values(s.Names)), kernelDependent) {
			// A new kernel-dependent rule upstream: decide about it here
			// rather than let the host's kernel decide.
			return nil, fmt.Errorf("policies: seccomp profile: unexpected kernel-dependent rule for %v", s.Names)
		}
	}
	p.Syscalls = slices.DeleteFunc(p.Syscalls, func(s *moby.Syscall) bool {
		return s.Includes != nil && s.Includes.MinKernel != nil
	})
	// The moby package applies capability and architecture filters only
	// when it loads a profile.
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("policies: seccomp profile: %w", err)
	}
	sc, err := moby.LoadProfile(string(body), spec)
	if err != nil {
		return nil, fmt.Errorf("policies: seccomp profile: %w", err)
	}
	return sc, nil
}
