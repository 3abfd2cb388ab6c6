package containerd

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/internal/cprog"
	"golang.org/x/sys/unix"
)

// personalitySource is the C source of the entry program that sets a job's
// personality flags.
//
//go:embed personality/personality.c
var personalitySource []byte

// helperPath is where the entry program appears in the container: on the
// container's /dev (a tmpfs in reprobox's specs), not in the image's tree.
const helperPath = "/dev/.reprobox-personality"

// Personality domains and flags from linux/personality.h.
const (
	perLinux           = 0x0000
	perLinux32         = 0x0008
	personalityUname26 = 0x0020000
	// perClearOnSetid are the flags execve(2) clears when the new program
	// gains privileges.
	perClearOnSetid = 0x0740000
)

// persona is the personality(2) value of a job (sandbox.Persona).
func persona(spec *specs.Spec, flags uint32) (uint32, error) {
	return sandbox.Persona("containerd", spec, flags)
}

// checkPersonality refuses personality flags the kernel would clear when
// the entry program executes the job's command: a root process whose
// bounding or inheritable capabilities exceed its permitted ones gains
// capabilities at execve(2), and that clears PER_CLEAR_ON_SETID.
func checkPersonality(spec *specs.Spec, flags uint32) error {
	p, err := persona(spec, flags)
	if err != nil {
		return err
	}
	c := spec.Process.Capabilities
	if p&perClearOnSetid == 0 || spec.Process.User.UID != 0 || c == nil {
		return nil
	}
	for _, name := range slices.Concat(c.Bounding, c.Inheritable) {
		if !slices.Contains(c.Permitted, name) {
			return unsupported("personality %#x for a root process that gains %s at exec (the kernel clears %#x then)",
				p, name, p&perClearOnSetid)
		}
	}
	return nil
}

// applyPersonality makes spec run its process with the job's personality:
// runc sets no personality flags (1.1 ignores linux.personality, later
// versions only its domain), so the process starts as the entry program,
// which calls personality(2) and executes the real command. The seccomp
// profile gets one rule allowing exactly that call (the build may set the
// personality it already has). Under UNAME26 a createContainer hook binds
// the release uname(2) reports over /proc/sys/kernel/osrelease.
func (r *run) applyPersonality(spec *specs.Spec) error {
	p, err := persona(spec, r.job.Personality)
	if err != nil {
		return err
	}
	spec.Linux.Personality = nil
	if p == perLinux {
		return nil
	}
	helper, err := r.b.personalityHelper()
	if err != nil {
		return err
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: helperPath, Type: "bind", Source: helper,
		Options: []string{"bind", "ro", "nosuid", "nodev"},
	})
	spec.Process.Args = append([]string{helperPath, fmt.Sprintf("%#x", p)}, spec.Process.Args...)
	if sc := spec.Linux.Seccomp; sc != nil {
		sc.Syscalls = append([]specs.LinuxSyscall{{
			Names:  []string{"personality"},
			Action: specs.ActAllow,
			Args:   []specs.LinuxSeccompArg{{Index: 0, Value: uint64(p), Op: specs.OpEqualTo}},
		}}, sc.Syscalls...)
	}
	if p&personalityUname26 != 0 {
		release, err := uname26Release(p)
		if err != nil {
			return err
		}
		file := filepath.Join(r.dir, "osrelease")
		if err := os.WriteFile(file, []byte(release+"\n"), 0o444); err != nil {
			return err
		}
		mnt, err := exec.LookPath("mount")
		if err != nil {
			return unsupported("UNAME26 with /proc/sys/kernel/osrelease: no mount(8) on this host: %v", err)
		}
		if mnt, err = filepath.Abs(mnt); err != nil {
			return err
		}
		if spec.Hooks == nil {
			spec.Hooks = &specs.Hooks{}
		}
		// runc runs createContainer hooks in the container's mount
		// namespace, after /proc is mounted, before pivot_root and the
		// read-only remount of /proc/sys (recursive: it keeps this
		// mount), with the root filesystem as working directory. Spec
		// mounts below /proc/sys are refused; this one is not a spec mount.
		spec.Hooks.CreateContainer = append(spec.Hooks.CreateContainer, specs.Hook{
			Path: mnt,
			Args: []string{"mount", "-n", "--bind", "-o", "ro", file, "proc/sys/kernel/osrelease"},
			Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		})
	}
	return nil
}

// uname26Release is the release uname(2) reports under personality p.
func uname26Release(p uint32) (string, error) {
	runtime.LockOSThread() // personality(2) is per thread
	defer runtime.UnlockOSThread()
	old, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno != 0 {
		return "", fmt.Errorf("personality: %w", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(p), 0, 0); errno != 0 {
		return "", fmt.Errorf("personality: %w", errno)
	}
	var u unix.Utsname
	err := unix.Uname(&u)
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, old, 0, 0); errno != 0 {
		// This thread keeps the wrong personality: let it die with the
		// goroutine rather than serve others.
		runtime.LockOSThread()
		return "", fmt.Errorf("restore personality: %w", errno)
	}
	if err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !strings.HasPrefix(release, "2.6.") {
		return "", fmt.Errorf("uname under UNAME26 reports %q, not a 2.6 release", release)
	}
	return release, nil
}

// personalityHelper compiles the entry program, static, with the host's C
// compiler into the state directory, once per source version.
func (b *Backend) personalityHelper() (string, error) {
	b.helperOnce.Do(func() {
		b.helper, b.helperErr = buildHelper(b.binDir())
	})
	return b.helper, b.helperErr
}

func buildHelper(dir string) (string, error) {
	path, err := cprog.Build(dir, "personality", personalitySource)
	if errors.Is(err, cprog.ErrNoCompiler) {
		return "", unsupported("personality flags: the entry program that sets them is compiled with the host's C compiler once: %v", err)
	}
	return path, err
}
