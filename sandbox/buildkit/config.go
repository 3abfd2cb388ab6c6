package buildkit

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/sandbox"
)

// The paths of a job in its container: the job directory (control files and
// tree), detached by the entry program before the build starts.
const (
	jobMount  = "/.reprobox-job"
	entryPath = jobMount + "/ctl/entry"
)

// entryConfig is the entry program's configuration for job, one directive
// a line (see entry/entry.c), and the seccomp program to write beside it.
// nfiles files are at ctl/files/<i>.
func entryConfig(job *sandbox.Job) (string, []byte, error) {
	spec := job.Spec
	var b strings.Builder
	line := func(fields ...string) error {
		for i, f := range fields {
			if f == "" || strings.ContainsRune(f, 0) {
				return unsupported("%q in %s (nothing, or a NUL byte)", f, fields[0])
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(escapeField(f))
		}
		b.WriteByte('\n')
		return nil
	}
	if spec.Hostname != "" {
		if err := line("hostname", spec.Hostname); err != nil {
			return "", nil, err
		}
	}
	if spec.Domainname != "" {
		if err := line("domainname", spec.Domainname); err != nil {
			return "", nil, err
		}
	}
	for _, m := range spec.Mounts {
		flags, data, err := mountOptions(m)
		if err != nil {
			return "", nil, err
		}
		switch {
		case m.Type == "tmpfs" && m.Destination != "/dev":
			if data == "" {
				data = "-"
			}
			err = line("tmpfs", m.Destination, fmt.Sprint(flags), data)
		case m.Type == "proc":
			// A new one: the build's process has its own pid namespace.
			err = line("proc", m.Destination, fmt.Sprint(flags))
		case m.Type == "tmpfs", m.Type == "sysfs", m.Type == "devpts", m.Type == "mqueue":
			// BuildKit mounts these, with the options of containerd's
			// default spec: the entry program sets the flags. /dev keeps
			// BuildKit's device nodes.
			err = line("remount", m.Destination, fmt.Sprint(flags&^unix.MS_STRICTATIME))
		default:
			err = unsupported("a %s mount at %s", m.Type, m.Destination)
		}
		if err != nil {
			return "", nil, err
		}
	}
	// BuildKit's own socket for the build's traces: not the job's.
	if err := line("unmount", "/dev/otel-grpc.sock"); err != nil {
		return "", nil, err
	}
	// The insecure mode's extra device nodes (kmsg, fuse, ...) go: a build
	// gets the devices runc gives every container.
	if err := line("devices", "null,zero,full,random,urandom,tty,ptmx,console"); err != nil {
		return "", nil, err
	}
	for i, f := range job.Files {
		if err := line("bind", fmt.Sprintf("ctl/files/%d", i), f.Path, fmt.Sprint(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)); err != nil {
			return "", nil, err
		}
	}
	if job.BuildPath != "" {
		if err := line("bind", "tree", job.BuildPath, fmt.Sprint(unix.MS_NOSUID|unix.MS_NODEV)); err != nil {
			return "", nil, err
		}
		if err := line("tree", job.BuildPath); err != nil {
			return "", nil, err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := line("mask", p); err != nil {
			return "", nil, err
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := line("ro", p); err != nil {
			return "", nil, err
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := line("rootro"); err != nil {
			return "", nil, err
		}
	}
	if r := spec.Linux.Resources; r != nil {
		if r.Memory != nil && r.Memory.Limit != nil {
			swap := *r.Memory.Limit
			if r.Memory.Swap != nil {
				swap = *r.Memory.Swap
			}
			if err := line("cgroup", "memory", strconv.FormatInt(*r.Memory.Limit, 10), strconv.FormatInt(swap, 10)); err != nil {
				return "", nil, err
			}
		}
		if r.Pids != nil && r.Pids.Limit != nil {
			if err := line("cgroup", "pids", strconv.FormatInt(*r.Pids.Limit, 10)); err != nil {
				return "", nil, err
			}
		}
		if c := r.CPU; c != nil {
			if c.Cpus != "" {
				cpus, err := cpuList(c.Cpus)
				if err != nil {
					return "", nil, err
				}
				if err := line("cgroup", "cpuset", c.Cpus); err != nil {
					return "", nil, err
				}
				if err := line("cpus", cpus); err != nil {
					return "", nil, err
				}
			}
			if c.Quota != nil && *c.Quota > 0 {
				period := uint64(100000)
				if c.Period != nil {
					period = *c.Period
				}
				if err := line("cgroup", "cpuquota", strconv.FormatInt(*c.Quota, 10), strconv.FormatUint(period, 10)); err != nil {
					return "", nil, err
				}
			}
			if c.Shares != nil || c.Mems != "" || c.RealtimePeriod != nil || c.RealtimeRuntime != nil {
				return "", nil, unsupported("CPU shares, memory nodes or realtime settings")
			}
		}
		if r.BlockIO != nil || len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0 {
			return "", nil, unsupported("block I/O, hugepage, network, RDMA or unified cgroup settings")
		}
	}
	cwd := spec.Process.Cwd
	if err := line("cwd", cwd); err != nil {
		return "", nil, err
	}
	if job.DiskBytes > 0 {
		if job.BuildPath == "" {
			return "", nil, unsupported("a disk bound for a job without a build path")
		}
		if err := line("disk", strconv.FormatInt(job.DiskBytes, 10)); err != nil {
			return "", nil, err
		}
	}
	p, err := persona(spec, job.Personality)
	if err != nil {
		return "", nil, err
	}
	if err := line("personality", fmt.Sprintf("%#x", p)); err != nil {
		return "", nil, err
	}
	if u := spec.Process.User.Umask; u != nil {
		if err := line("umask", fmt.Sprintf("%#o", *u)); err != nil {
			return "", nil, err
		}
	}
	user := spec.Process.User
	groups := "-"
	if len(user.AdditionalGids) > 0 {
		g := make([]string, len(user.AdditionalGids))
		for i, id := range user.AdditionalGids {
			g[i] = strconv.FormatUint(uint64(id), 10)
		}
		groups = strings.Join(g, ",")
	}
	if user.Username != "" {
		return "", nil, unsupported("process.user.username %q (give uid and gid)", user.Username)
	}
	if err := line("user", strconv.FormatUint(uint64(user.UID), 10), strconv.FormatUint(uint64(user.GID), 10), groups); err != nil {
		return "", nil, err
	}
	var caps [5]uint64
	if c := spec.Process.Capabilities; c != nil {
		for i, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			if caps[i], err = capMask(set); err != nil {
				return "", nil, err
			}
		}
	}
	if err := line("caps", fmt.Sprintf("%#x", caps[0]), fmt.Sprintf("%#x", caps[1]), fmt.Sprintf("%#x", caps[2]),
		fmt.Sprintf("%#x", caps[3]), fmt.Sprintf("%#x", caps[4])); err != nil {
		return "", nil, err
	}
	for _, r := range spec.Process.Rlimits {
		res, ok := rlimits[r.Type]
		if !ok {
			return "", nil, fmt.Errorf("unknown rlimit %q", r.Type)
		}
		if err := line("rlimit", strconv.Itoa(res), strconv.FormatUint(r.Soft, 10), strconv.FormatUint(r.Hard, 10)); err != nil {
			return "", nil, err
		}
	}
	for _, kv := range spec.Process.Env {
		if strings.IndexByte(kv, 0) >= 0 || !strings.Contains(kv, "=") {
			return "", nil, fmt.Errorf("environment entry %q is not NAME=VALUE", kv)
		}
	}
	if err := line("env", "ctl/env"); err != nil {
		return "", nil, err
	}
	if spec.Process.NoNewPrivileges {
		if err := line("nonewprivs"); err != nil {
			return "", nil, err
		}
	}
	var prog []byte
	if spec.Linux.Seccomp != nil {
		var flags uint
		if prog, flags, err = compileSeccomp(spec.Linux.Seccomp); err != nil {
			return "", nil, err
		}
		if len(prog) > 0 {
			if err := line("seccomp", "ctl/seccomp", strconv.FormatUint(uint64(flags), 10)); err != nil {
				return "", nil, err
			}
		}
	}
	return b.String(), prog, nil
}

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// mountOptions turns a spec mount's options into mount(2) flags and data.
func mountOptions(m specs.Mount) (uintptr, string, error) {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw", "defaults":
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "strictatime":
			flags |= unix.MS_STRICTATIME
		case "relatime":
			flags |= unix.MS_RELATIME
		case "noatime":
			flags |= unix.MS_NOATIME
		case "nodiratime":
			flags |= unix.MS_NODIRATIME
		case "newinstance":
			data = append(data, o)
		default:
			k, _, ok := strings.Cut(o, "=")
			switch {
			case ok && (k == "mode" || k == "size" || k == "uid" || k == "gid" || k == "ptmxmode" || k == "nr_inodes"):
				data = append(data, o)
			default:
				return 0, "", unsupported("mount option %q at %s", o, m.Destination)
			}
		}
	}
	if !filepath.IsAbs(m.Destination) {
		return 0, "", fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	return flags, strings.Join(data, ","), nil
}

// capMask is the bit mask of capability names ("CAP_KILL").
func capMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		found := false
		for _, c := range capability.ListKnown() {
			if "CAP_"+strings.ToUpper(c.String()) == n {
				m |= 1 << uint(c)
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
	}
	return m, nil
}

// cpuList expands a cpuset list ("0-2,5") into CPU numbers ("0,1,2,5").
func cpuList(s string) (string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return "", fmt.Errorf("cpuset %q: bad CPU %q", s, lo)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil || z < a || z-a > 4096 {
				return "", fmt.Errorf("cpuset %q: bad range %q", s, part)
			}
		}
		if z >= 1024 { // CPU_SETSIZE
			return "", unsupported("CPU %d (past 1023)", z)
		}
		for i := a; i <= z; i++ {
			out = append(out, strconv.Itoa(i))
		}
	}
	return strings.Join(out, ","), nil
}

// persona is the personality(2) value of a job (sandbox.Persona).
func persona(spec *specs.Spec, flags uint32) (uint32, error) {
	return sandbox.Persona("buildkit", spec, flags)
}

// escapeField writes f for one field of the entry program's config: '%', a
// space, a control character and DEL as %XX (the entry program's unescape
// reads them back), so a path with a space (a perturbed HOME) is one field.
func escapeField(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '%' || c <= ' ' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
