package policies

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/reprobox/reprobox/internal/safefs"
	"io"
	"io/fs"
	"slices"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Personality flags (personality(2)).
const (
	PersonalityAddrNoRandomize = 0x0040000
	PersonalityUname26         = 0x0020000
)

// Host is what a build needs beyond its Settings. Nothing in it is mounted:
// the image's root filesystem is only read, for the user database the build
// extends.
type Host struct {
	// Rootfs is the image's unpacked root filesystem on this host (reprobox's
	// own store), read for its /etc/passwd and /etc/group, never written.
	Rootfs string
	// Args is the build command.
	Args []string
	// TimeShim is the compiled time shim (the content of the file
	// BuildTimeShim makes), required when Settings.Clock is set.
	TimeShim []byte
	// Limits bound the build; zero fields mean the defaults.
	Limits Limits
}

// A File is a file Render generates for a build: it appears read-only at
// Path in the container, replacing whatever the image has there. A sandbox
// job carries it as data (sandbox.File).
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Render returns the OCI spec, the generated files and the personality flags
// of a build with settings s. The spec has no root path and no bind mount of a
// host path: the sandbox adds the image's root, the source at s.BuildPath and
// the files.
func Render(s Settings, h Host) (*specs.Spec, []File, uint32, error) {
	if err := s.Validate(); err != nil {
		return nil, nil, 0, err
	}
	if len(h.Args) == 0 {
		return nil, nil, 0, fmt.Errorf("policies: empty build command")
	}
	if err := h.Limits.Validate(); err != nil {
		return nil, nil, 0, err
	}
	files, err := supportFiles(s, h)
	if err != nil {
		return nil, nil, 0, err
	}
	if s.Clock != 0 {
		if len(h.TimeShim) == 0 {
			return nil, nil, 0, fmt.Errorf("policies: the clock is normalized but no time shim was given (BuildTimeShim)")
		}
		files = append(files, File{Path: TimeShim, Mode: 0o755, Data: h.TimeShim})
	}
	lim := h.Limits.WithDefaults()
	mem, pids, swap := lim.MemoryBytes, lim.Pids, lim.MemoryBytes
	caps := slices.Clone(Capabilities)
	homeOpts := []string{"nosuid", "nodev", "mode=0755", "size=4g",
		"uid=" + strconv.Itoa(int(s.UID)), "gid=" + strconv.Itoa(int(s.GID))}

	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Readonly: true},
		Process: &specs.Process{
			Args: h.Args,
			Env:  s.Environ(),
			Cwd:  s.BuildPath,
			User: specs.User{UID: s.UID, GID: s.GID},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 16384, Soft: 16384},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1g"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=8g"}},
			{Destination: "/var/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1g"}},
			{Destination: s.Home, Type: "tmpfs", Source: "tmpfs", Options: homeOpts},
		},
		Linux: &specs.Linux{
			Namespaces: namespaces(),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &swap},
				Pids:    &specs.LinuxPids{Limit: &pids},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	for _, f := range Factors { // what each factor sets in the spec itself
		if f.Apply != nil {
			f.Apply(s, spec)
		}
	}
	sc, err := Seccomp(spec)
	if err != nil {
		return nil, nil, 0, err
	}
	spec.Linux.Seccomp = sc
	return spec, files, s.Personality(), nil
}

// supportFiles are the files of the build's user database and names, in a
// fixed order.
func supportFiles(s Settings, h Host) ([]File, error) {
	passwd, err := withEntry(h.Rootfs, "etc/passwd", s.User,
		fmt.Sprintf("%s:x:%d:%d:reprobox build user:%s:/bin/sh", s.User, s.UID, s.GID, s.Home))
	if err != nil {
		return nil, err
	}
	group, err := withEntry(h.Rootfs, "etc/group", s.User,
		fmt.Sprintf("%s:x:%d:", s.User, s.GID))
	if err != nil {
		return nil, err
	}
	file := func(path, content string) File { return File{Path: path, Mode: 0o644, Data: []byte(content)} }
	return []File{
		file("/etc/passwd", passwd),
		file("/etc/group", group),
		file("/etc/hostname", s.Hostname+"\n"),
		file("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t"+s.Hostname+"."+s.Domainname+"\t"+s.Hostname+"\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
		file("/etc/resolv.conf", "# no network in a reprobox build\n"),
	}, nil
}

// maxImageFile bounds the image's passwd and group files read on the host.
const maxImageFile = 1 << 20

// withEntry returns the image's passwd or group file, rel inside rootfs, with
// entry replacing any line for the same name, or appended.
func withEntry(rootfs, rel, name, entry string) (string, error) {
	data, err := readImageFile(rootfs, rel)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 || bytes.HasPrefix(line, []byte(name+":")) {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	out.WriteString(entry + "\n")
	return out.String(), nil
}

// readImageFile reads rel, a file of the image, as the build would see it and
// never a host file: the image (and its cached root filesystem, which is not
// trusted on re-read either) controls every component of the path, and
// reprobox reads it as root. The path is resolved with securejoin's
// pathrs-lite (openat2 RESOLVE_IN_ROOT, or its checked emulation on older
// kernels), so a symbolic link is followed the way it is inside the container:
// an absolute target or ".." stops at the image's root, never on the host. A
// link that stays in the image is allowed (images may link /etc/passwd
// elsewhere in their tree), but what it reaches must be a regular file of at
// most 1 MiB that any user may read (mode o+r): a FIFO, device, socket or
// directory is refused rather than opened for reading (it could block), and
// a file the build user could not read itself, such as the image's own
// /etc/shadow, is refused rather than handed to it. A missing file (or a link
// to nothing) reads as empty.
func readImageFile(rootfs, rel string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(rootfs, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("policies: the image's /%s: %w", rel, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("policies: the image's /%s: %w", rel, err)
	}
	if err := checkImageFile(rel, st); err != nil {
		return nil, err
	}
	// The handle is already resolved; reopening it (through a checked
	// /proc/self/fd) follows nothing. O_NONBLOCK so that even a file swapped
	// for a FIFO since the check cannot block the open.
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("policies: the image's /%s: %w", rel, err)
	}
	defer f.Close()
	// The same inode, checked again on the handle that is read.
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("policies: the image's /%s: %w", rel, err)
	}
	if err := checkImageFile(rel, st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, fmt.Errorf("policies: the image's /%s: %w", rel, err)
	}
	if len(data) > maxImageFile {
		return nil, fmt.Errorf("policies: the image's /%s is larger than %d bytes; fix the image", rel, maxImageFile)
	}
	return data, nil
}

func checkImageFile(rel string, st unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("policies: the image's /%s is a %s, not a regular file; fix the image", rel, fileType(st.Mode))
	}
	if st.Mode&0o004 == 0 {
		return fmt.Errorf("policies: the image's /%s (mode %04o) is not readable by every user, as passwd and group must be; fix the image", rel, st.Mode&0o7777)
	}
	if st.Size > maxImageFile {
		return fmt.Errorf("policies: the image's /%s is larger than %d bytes; fix the image", rel, maxImageFile)
	}
	return nil
}

func fileType(mode uint32) string { return safefs.TypeName(safefs.ModeOf(mode)) }
