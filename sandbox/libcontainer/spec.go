package libcontainer

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	lc "github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
)

const backendName = "libcontainer"

func unsupported(what string, args ...any) error {
	return sandbox.Unsupported(backendName, fmt.Sprintf(what, args...))
}

var rlimits = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}

// checkJob reports what in job cannot be run as given: an invalid job is a
// plain error, something valid this backend cannot apply wraps
// errors.ErrUnsupported. It has no side effects.
func checkJob(job *sandbox.Job) error {
	spec := job.Spec
	if err := sandbox.CheckSpec(spec); err != nil {
		return err
	}
	switch {
	case spec.Windows != nil, spec.Solaris != nil, spec.VM != nil, spec.ZOS != nil:
		return unsupported("a spec for another platform (windows, solaris, vm or zos section)")
	case spec.Linux == nil:
		return unsupported("a spec without a linux section (a private mount namespace is required)")
	}
	if err := checkData(job); err != nil {
		return err
	}
	if job.Personality&^sandbox.AllPersonalityFlags != 0 {
		return fmt.Errorf("personality %#x has bits that are not personality flags", job.Personality)
	}
	if err := checkProcess(spec.Process); err != nil {
		return err
	}
	if err := checkLinux(spec.Linux); err != nil {
		return err
	}
	if err := checkPersonalityKept(spec, job.Personality); err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		if isBind(m) && !filepath.IsAbs(m.Source) {
			return fmt.Errorf("bind mount source %q is not absolute", m.Source)
		}
	}
	return nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func checkProcess(p *specs.Process) error {
	switch {
	case p.Terminal:
		return unsupported("process.terminal (output goes to the job's writers)")
	case p.User.Username != "":
		return unsupported("process.user.username (Windows only)")
	case p.CommandLine != "":
		return unsupported("process.commandLine (Windows only)")
	case p.SelinuxLabel != "" && !selinux.GetEnabled():
		return unsupported("process.selinuxLabel (SELinux is not enabled on this host)")
	case p.ApparmorProfile != "" && !appArmorEnabled():
		return unsupported("process.apparmorProfile (AppArmor is not enabled on this host)")
	}
	if err := checkEnv(p.Env); err != nil {
		return err
	}
	for _, r := range p.Rlimits {
		if _, ok := rlimits[r.Type]; !ok {
			return fmt.Errorf("unknown rlimit %q", r.Type)
		}
	}
	if c := p.Capabilities; c != nil {
		if err := checkCapabilities(c); err != nil {
			return err
		}
	}
	return nil
}

// checkEnv rejects environments that libcontainer would not pass on verbatim:
// it keeps only the last of duplicate variables and adds HOME (from the
// container's /etc/passwd) when HOME is missing or empty.
func checkEnv(env []string) error {
	seen := make(map[string]bool, len(env))
	home := false
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return fmt.Errorf("invalid environment variable %q", kv)
		}
		if seen[k] {
			return unsupported("duplicate environment variable %s (libcontainer keeps only the last)", k)
		}
		seen[k] = true
		if k == "HOME" && v != "" {
			home = true
		}
	}
	if !home {
		return unsupported("an environment without a non-empty HOME (libcontainer would add one from /etc/passwd)")
	}
	return nil
}

func checkCapabilities(c *specs.LinuxCapabilities) error {
	supported, err := capability.ListSupported()
	if err != nil {
		return fmt.Errorf("list capabilities: %w", err)
	}
	known := make(map[string]bool, len(supported))
	for _, c := range supported {
		known["CAP_"+strings.ToUpper(c.String())] = true
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, name := range set {
			if !known[name] {
				return unsupported("capability %s (unknown to this kernel)", name)
			}
		}
	}
	for _, name := range c.Ambient {
		if !slices.Contains(c.Permitted, name) || !slices.Contains(c.Inheritable, name) {
			return unsupported("ambient capability %s that is not both permitted and inheritable", name)
		}
	}
	return nil
}

func checkLinux(l *specs.Linux) error {
	mnt := false
	for _, ns := range l.Namespaces {
		if ns.Type == specs.MountNamespace && ns.Path == "" {
			mnt = true
		}
	}
	switch {
	case !mnt:
		return unsupported("a spec without a new mount namespace (the root filesystem could not be applied)")
	case l.CgroupsPath != "":
		return unsupported("linux.cgroupsPath %q (each run gets its own cgroup under /reprobox)", l.CgroupsPath)
	case l.Seccomp != nil && !seccomp.Enabled:
		// libcontainer's init would fail only after the container is made.
		return unsupported("linux.seccomp (this program was built without the seccomp build tag and libseccomp: build it with -tags seccomp, as the Makefile does)")
	case l.MountLabel != "" && !selinux.GetEnabled():
		return unsupported("linux.mountLabel (SELinux is not enabled on this host)")
	}
	if p := l.Personality; p != nil {
		if p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 && p.Domain != "" {
			return fmt.Errorf("unknown personality domain %q", p.Domain)
		}
		for _, f := range p.Flags {
			if _, ok := sandbox.PersonalityFlags[f]; !ok {
				return unsupported("personality flag %q", f)
			}
		}
	}
	if r := l.Resources; r != nil {
		//lint:ignore SA1019 deprecated, but a spec may still set it, and specconv ignores it.
		if m := r.Memory; m != nil && (m.Kernel != nil || m.KernelTCP != nil) {
			return unsupported("linux.resources.memory.kernel or kernelTCP")
		}
		v2 := cgroups.IsCgroup2UnifiedMode()
		if len(r.Unified) > 0 && !v2 {
			return unsupported("linux.resources.unified on a cgroup v1 host")
		}
		need := map[string]bool{
			"hugetlb":  len(r.HugepageLimits) > 0,
			"rdma":     len(r.Rdma) > 0,
			"net_cls":  r.Network != nil && r.Network.ClassID != nil,
			"net_prio": r.Network != nil && len(r.Network.Priorities) > 0,
		}
		for _, name := range []string{"hugetlb", "rdma", "net_cls", "net_prio"} {
			if need[name] && !v2 {
				if _, err := cgroups.FindCgroupMountpoint("", name); err != nil {
					return unsupported("%s limits (no %s cgroup controller on this host)", name, name)
				}
			}
		}
	}
	return nil
}

// perClearOnSetid are the personality flags execve(2) clears when the new
// program gains privileges (linux/personality.h PER_CLEAR_ON_SETID).
const perClearOnSetid = 0x0740000

// checkPersonalityKept refuses personality flags the kernel would clear when
// it executes the job's command: a root process whose bounding or inheritable
// capabilities exceed its permitted ones gains capabilities at execve(2), and
// that clears PER_CLEAR_ON_SETID (ADDR_NO_RANDOMIZE among them).
func checkPersonalityKept(spec *specs.Spec, flags uint32) error {
	if p := spec.Linux.Personality; p != nil {
		for _, f := range p.Flags {
			flags |= sandbox.PersonalityFlags[f]
		}
	}
	c := spec.Process.Capabilities
	if flags&perClearOnSetid == 0 || spec.Process.User.UID != 0 || c == nil {
		return nil
	}
	for _, name := range slices.Concat(c.Bounding, c.Inheritable) {
		if !slices.Contains(c.Permitted, name) {
			return unsupported("personality %#x for a root process that gains %s at exec (the kernel clears %#x then)",
				flags, name, flags&perClearOnSetid)
		}
	}
	return nil
}

func appArmorEnabled() bool {
	b, err := readFileString("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(b, "Y")
}

// convert turns a checked job into a libcontainer config and init process. The
// container's root is rootfs (job.Spec.Root.Path is ignored), mounts follow
// the spec's, its cgroup is cgroupPath, and its personality is PER_LINUX (or
// PER_LINUX32) with the flags of job.Personality and the spec. job.Spec is not
// modified.
func convert(job *sandbox.Job, id, rootfs, cgroupPath string, mounts []specs.Mount) (*configs.Config, *lc.Process, error) {
	spec := *job.Spec
	var root specs.Root
	if spec.Root != nil {
		root = *spec.Root
	}
	root.Path = rootfs
	spec.Root = &root
	spec.Mounts = append(slices.Clip(spec.Mounts), mounts...)
	linux := *spec.Linux
	linux.CgroupsPath = cgroupPath
	domain, flags := configs.PerLinux, job.Personality
	if p := linux.Personality; p != nil {
		if p.Domain == specs.PerLinux32 {
			domain = configs.PerLinux32
		}
		for _, f := range p.Flags {
			flags |= sandbox.PersonalityFlags[f]
		}
	}
	// specconv only warns about flags; the personality is set below instead.
	linux.Personality = nil
	spec.Linux = &linux

	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id,
		Spec:       &spec,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("convert spec: %w", err)
	}
	// libcontainer's init calls personality(2) with Domain verbatim, so the
	// flags ride along. Setting it always means a run never inherits the
	// personality of the process that started it.
	config.Personality = &configs.LinuxPersonality{Domain: domain | int(flags)}
	if flags&personalityUname26 != 0 {
		hook, err := osreleaseHook(rootfs)
		if err != nil {
			return nil, nil, err
		}
		if config.Hooks == nil {
			config.Hooks = configs.Hooks{}
		}
		config.Hooks[configs.CreateContainer] = append(config.Hooks[configs.CreateContainer], hook)
	}

	p := spec.Process
	proc := &lc.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		AppArmorProfile: p.ApparmorProfile,
		Label:           p.SelinuxLabel,
		Init:            true,
	}
	for _, g := range p.User.AdditionalGids {
		proc.AdditionalGroups = append(proc.AdditionalGroups, int(g))
	}
	for _, r := range p.Rlimits {
		proc.Rlimits = append(proc.Rlimits, configs.Rlimit{Type: rlimits[r.Type], Hard: r.Hard, Soft: r.Soft})
	}
	return config, proc, nil
}
