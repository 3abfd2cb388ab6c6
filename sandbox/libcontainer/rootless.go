package libcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/userns"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
)

// Rootless operation. An ordinary user's reprobox runs as root of a user
// namespace of its own (internal/rootless): the image's root is the user, its
// other ids are the user's subordinate ids. There libcontainer works as runc
// does in such a namespace (runc's rootless_linux.go): RootlessEUID false
// (the effective uid is 0 in the namespace), RootlessCgroups true when the
// host's cgroup tree is not writable, which on a host without cgroup
// delegation (no systemd, cgroup v1) it never is. Then:
//
//   - cgroup limits cannot be applied: memory, pids, the CPU quota and the
//     device rule are left out of the container (Result.Unavailable says so),
//     and an out-of-memory kill cannot be told (no memory cgroup);
//   - the cpuset of the num_cpus factor becomes the CPU affinity of the
//     build's process (set by a createRuntime hook before it runs): nproc
//     and available_parallelism see the same count as under a cpuset;
//   - the build's processes die with its PID namespace (every spec of
//     reprobox has one; a job without one is refused, as nothing could kill
//     them all without a cgroup);
//   - FUSE (disorderfs, file ordering "reverse") works only when /dev/fuse
//     can be opened by the user (it is often mode 0600, root only).

// rootlessCgroups reports whether this process cannot create cgroups:
// runc's rule (shouldUseRootlessCgroupManager without systemd), with the
// writability of the cgroup tree asked instead of assumed.
func rootlessCgroups() bool {
	if os.Geteuid() != 0 {
		return true
	}
	if !userns.RunningInUserNS() {
		return false
	}
	dir := "/sys/fs/cgroup"
	if !cgroups.IsCgroup2UnifiedMode() {
		mp, err := cgroups.FindCgroupMountpoint("", "memory")
		if err != nil {
			return true
		}
		dir = mp
	}
	return unix.Access(dir, unix.W_OK) != nil
}

// fuseUsable reports whether this process can open /dev/fuse, which
// disorderfs needs, and if not why.
func fuseUsable() (bool, string) {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		var st unix.Stat_t
		if unix.Stat("/dev/fuse", &st) == nil {
			return false, fmt.Sprintf("/dev/fuse is mode %#o and not usable by this user (%v)", st.Mode&0o777, errors.Unwrap(err))
		}
		return false, fmt.Sprintf("/dev/fuse: %v", errors.Unwrap(err))
	}
	f.Close()
	return true, ""
}

// RootlessUnavailable lists, for people, what a build of this process lacks
// because reprobox runs rootless here: each line names the limit or factor
// and why. It is empty for root on the host. `reprobox factors` prints it.
func RootlessUnavailable() []string {
	var out []string
	if rootlessCgroups() {
		out = append(out,
			"memory limit: no writable cgroup (rootless, and the host delegates no cgroup to this user)",
			"pids limit: no writable cgroup; applied as RLIMIT_NPROC of the build user instead (shared by the concurrent builds of one check)",
			"CPU quota: no writable cgroup; num_cpus is applied as the CPU affinity of the build instead",
			"device cgroup rule: no writable cgroup; the build's /dev holds only the default devices",
			"out-of-memory report: no memory cgroup to read the kill count from",
		)
	}
	if userns.RunningInUserNS() || os.Geteuid() != 0 {
		if ok, why := fuseUsable(); !ok {
			out = append(out, "fileordering (file ordering reverse, FUSE disorderfs): "+why)
		}
	}
	return out
}

// rootlessResources takes out of spec (a copy the caller owns) the cgroup
// settings that cannot be applied without a writable cgroup tree. It returns
// the CPUs of the spec's cpuset, to become the build's CPU affinity, and what
// was left out.
func rootlessResources(spec *specs.Spec) (cpus string, dropped []string, err error) {
	linux := *spec.Linux
	spec.Linux = &linux
	if !nsPrivate(linux.Namespaces, specs.PIDNamespace) {
		return "", nil, unsupported("a spec without a new PID namespace rootless (without a cgroup nothing could kill all of its processes)")
	}
	r := linux.Resources
	linux.Resources = nil
	if r == nil {
		return "", nil, nil
	}
	if r.Memory != nil && (r.Memory.Limit != nil || r.Memory.Swap != nil || r.Memory.Reservation != nil) {
		dropped = append(dropped, "memory limit")
	}
	var nproc string
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		// RLIMIT_NPROC instead: it counts the tasks of the build user's
		// uid in this user namespace, which the build cannot raise.
		proc := *spec.Process
		limit := uint64(*r.Pids.Limit)
		proc.Rlimits = append(slices.DeleteFunc(slices.Clone(proc.Rlimits), func(l specs.POSIXRlimit) bool { return l.Type == "RLIMIT_NPROC" }),
			specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: limit, Soft: limit})
		spec.Process = &proc
		nproc = fmt.Sprintf("pids limit: applied as RLIMIT_NPROC %d of the build user, shared by the builds of one reprobox that run as that user (rootless: no writable cgroup)", limit)
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil || c.Period != nil || c.Shares != nil {
			dropped = append(dropped, "CPU quota")
		}
		if c.Mems != "" {
			dropped = append(dropped, "memory nodes")
		}
		cpus = c.Cpus
	}
	if len(r.Devices) > 0 {
		dropped = append(dropped, "device cgroup rule")
	}
	if r.BlockIO != nil || len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0 {
		return "", nil, unsupported("block I/O, hugetlb, network, rdma or unified cgroup limits rootless (no writable cgroup)")
	}
	for i, d := range dropped {
		dropped[i] = d + ": not applied (rootless: no writable cgroup)"
	}
	if nproc != "" {
		dropped = append(dropped, nproc)
	}
	return cpus, dropped, nil
}

func nsPrivate(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// affinityHookArg is os.Args[1] of the createRuntime hook that sets the CPU
// affinity of a rootless build.
const affinityHookArg = "__reprobox-affinity-hook"

// affinityHook returns the createRuntime hook that gives the container's init
// the CPU affinity cpus. libcontainer resets the init's affinity after
// placing it in its cgroups and runs createRuntime hooks later, before the
// init executes the build's command, which inherits the affinity.
func affinityHook(cpus string) (configs.Hook, error) {
	if _, err := parseCPUList(cpus); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, unsupported("a cpuset rootless: cannot find this program to run as a hook: %v", err)
	}
	return configs.NewCommandHook(&configs.Command{
		Path: exe,
		Args: []string{exe, affinityHookArg, cpus},
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}), nil
}

// runAffinityHook is the hook's body: it reads the container's state (its
// init's pid) from r and sets the init's affinity.
func runAffinityHook(cpus string, r io.Reader) error {
	var st specs.State
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&st); err != nil {
		return fmt.Errorf("read the container's state: %w", err)
	}
	if st.Pid <= 0 {
		return fmt.Errorf("container state without a pid")
	}
	set, err := parseCPUList(cpus)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(st.Pid, set); err != nil {
		return fmt.Errorf("set the CPU affinity of pid %d to %s: %w", st.Pid, cpus, err)
	}
	return nil
}

// parseCPUList reads a cpuset list ("0-1,4") into a CPU set.
func parseCPUList(list string) (*unix.CPUSet, error) {
	var set unix.CPUSet
	if list == "" {
		return nil, fmt.Errorf("empty CPU list")
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("CPU list %q: bad element %q", list, part)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return &set, nil
}

// rootlessFeatures are the features of a rootless backend: all but reverse
// directory order when FUSE is not usable.
func rootlessFeatures(all []sandbox.Feature) []sandbox.Feature {
	if ok, _ := fuseUsable(); ok {
		return all
	}
	var out []sandbox.Feature
	for _, f := range all {
		if f != sandbox.FeatureReverseDirents {
			out = append(out, f)
		}
	}
	return out
}

// rootlessConfig finishes a rootless container's config: runc's rootless
// settings, and the hook that applies the cpuset as CPU affinity.
func rootlessConfig(config *configs.Config, cpus string) error {
	config.RootlessEUID = os.Geteuid() != 0
	config.RootlessCgroups = true
	config.Cgroups.Rootless = true
	if cpus == "" {
		return nil
	}
	hook, err := affinityHook(cpus)
	if err != nil {
		return err
	}
	if config.Hooks == nil {
		config.Hooks = configs.Hooks{}
	}
	config.Hooks[configs.CreateRuntime] = append(config.Hooks[configs.CreateRuntime], hook)
	return nil
}

// overlayUserxattr is the overlay mount option a mount in a user namespace
// needs: overlayfs keeps its metadata (opaque directories, redirects) in
// trusted.* extended attributes, which only the host's root may set; in a
// user namespace it must use user.overlay.* ones (Linux 5.11), or creating a
// directory beneath a lower one fails with EXDEV.
func overlayUserxattr() string {
	if userns.RunningInUserNS() {
		return ",userxattr"
	}
	return ""
}

// fuseSource returns the path disorderfs serves the run's source from: the
// source overlay, bind-mounted into the FUSE directory when there is one.
func (r *run) fuseSource() (string, error) {
	if r.fuseDir == "" {
		return r.srcMerged(), nil
	}
	p := filepath.Join(r.fuseDir, r.id)
	if err := os.Mkdir(p, 0o711); err != nil {
		return "", fmt.Errorf("FUSE source directory: %w", err)
	}
	if err := unix.Mount(r.srcMerged(), p, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind-mount the source on %s: %w", p, &os.SyscallError{Syscall: "mount", Err: err})
	}
	return p, nil
}

// removeFUSESource unmounts and removes what fuseSource made, if anything.
func (r *run) removeFUSESource() error {
	if r.fuseDir == "" {
		return nil
	}
	p := filepath.Join(r.fuseDir, r.id)
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unmount(p); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove the FUSE source directory: %w", err)
	}
	return nil
}

// HostFeatures are the features a Backend made by this process applies on
// this host: Features, less reverse directory order when reprobox runs
// rootless and /dev/fuse is not usable.
func HostFeatures() []sandbox.Feature {
	if userns.RunningInUserNS() || os.Geteuid() != 0 {
		if ok, _ := fuseUsable(); !ok {
			return rootlessFeatures(Features)
		}
	}
	return Features
}
