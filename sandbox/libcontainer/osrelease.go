package libcontainer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// personalityUname26 is UNAME26 from linux/personality.h.
const personalityUname26 = 0x0020000

// osreleaseHookArg is os.Args[1] of the hook that makes
// /proc/sys/kernel/osrelease agree with uname(2) under UNAME26.
const osreleaseHookArg = "__reprobox-osrelease-hook"

// osreleaseHook returns the createContainer hook that bind-mounts the UNAME26
// release over /proc/sys/kernel/osrelease. The personality changes only what
// uname(2) reports; runc refuses spec mounts below /proc/sys, but a
// createContainer hook runs in the container's mount namespace after /proc is
// mounted and before pivot_root, where the mount is allowed. The read-only
// remount of /proc/sys that follows is recursive and keeps it.
func osreleaseHook(rootfs string) (configs.Hook, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, unsupported("UNAME26 with /proc/sys/kernel/osrelease: cannot find this program to run as a hook: %v", err)
	}
	file := filepath.Join(filepath.Dir(rootfs), "osrelease")
	target := filepath.Join(rootfs, "proc", "sys", "kernel", "osrelease")
	return configs.NewCommandHook(&configs.Command{
		Path: exe,
		Args: []string{exe, osreleaseHookArg, file, target},
		// Not the init's environment: it would make this program start as
		// a container init again.
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}), nil
}

// runOSReleaseHook is the hook's body: it reads the release uname(2) reports
// under UNAME26, writes it to file and bind-mounts file read-only at target.
func runOSReleaseHook(file, target string) error {
	runtime.LockOSThread() // personality(2) is per thread
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(configs.PerLinux|personalityUname26), 0, 0); errno != 0 {
		return fmt.Errorf("personality: %w", errno)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !strings.HasPrefix(release, "2.6.") {
		return fmt.Errorf("uname under UNAME26 reports %q, not a 2.6 release", release)
	}
	if err := os.WriteFile(file, []byte(release+"\n"), 0o444); err != nil {
		return err
	}
	if err := unix.Mount(file, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// maybeHook runs a hook and exits when the program was started as one.
func maybeHook() {
	if len(os.Args) == 4 && os.Args[1] == osreleaseHookArg {
		if err := runOSReleaseHook(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "reprobox osrelease hook:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) == 3 && os.Args[1] == affinityHookArg {
		if err := runAffinityHook(os.Args[2], os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "reprobox affinity hook:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}
