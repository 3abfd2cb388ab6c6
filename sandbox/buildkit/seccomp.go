//go:build seccomp && cgo

package buildkit

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// compileSeccomp compiles a spec's seccomp profile into the classic BPF
// program the entry program loads (seccomp(2) with SECCOMP_MODE_FILTER), with
// libseccomp, rule by rule as runc's libcontainer/seccomp builds its filter.
// Unlike runc it does not patch the program to answer ENOSYS for syscalls
// newer than libseccomp knows: those get the profile's default action.
// flags are the seccomp(2) flags the profile asks for.
func compileSeccomp(sc *specs.LinuxSeccomp) (prog []byte, flags uint, err error) {
	cfg, err := specconv.SetupSeccomp(sc)
	if err != nil {
		return nil, 0, fmt.Errorf("seccomp profile: %w", err)
	}
	if cfg == nil {
		return nil, 0, nil
	}
	for _, f := range cfg.Flags {
		switch f {
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// One thread executes the build.
		default:
			return nil, 0, unsupported("seccomp flag %s", f)
		}
	}
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, 0, err
	}
	filter, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: %w", err)
	}
	defer filter.Release()
	for _, a := range cfg.Architectures {
		arch, err := libseccomp.GetArchFromString(a)
		if err != nil {
			return nil, 0, fmt.Errorf("seccomp architecture %s: %w", a, err)
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, 0, fmt.Errorf("seccomp architecture %s: %w", a, err)
		}
	}
	if len(cfg.Syscalls) > 32 {
		_ = filter.SetOptimize(2) // a binary tree where libseccomp has it
	}
	// The entry program sets no_new_privs itself.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: %w", err)
	}
	for _, call := range cfg.Syscalls {
		if err := addCall(filter, call, def); err != nil {
			return nil, 0, err
		}
	}
	// ExportBPFMem needs libseccomp 2.6; Debian 12 has 2.5: through a
	// memory file.
	fd, err := unix.MemfdCreate("reprobox-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "reprobox-seccomp")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: export: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	if prog, err = io.ReadAll(f); err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: export: %w", err)
	}
	return prog, flags, nil
}

func action(act configs.Action, errnoRet *uint) (libseccomp.ScmpAction, error) {
	switch act {
	case configs.Kill, configs.KillThread:
		return libseccomp.ActKillThread, nil
	case configs.KillProcess:
		return libseccomp.ActKillProcess, nil
	case configs.Errno:
		if errnoRet != nil {
			return libseccomp.ActErrno.SetReturnCode(int16(*errnoRet)), nil
		}
		return libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM)), nil
	case configs.Trap:
		return libseccomp.ActTrap, nil
	case configs.Allow:
		return libseccomp.ActAllow, nil
	case configs.Log:
		return libseccomp.ActLog, nil
	default:
		return libseccomp.ActInvalid, unsupported("seccomp action %v (no tracer or notify agent)", act)
	}
}

// addCall adds the rules of one syscall entry, as runc's matchCall does.
func addCall(filter *libseccomp.ScmpFilter, call *configs.Syscall, def libseccomp.ScmpAction) error {
	if call == nil || call.Name == "" {
		return errors.New("seccomp profile: empty syscall entry")
	}
	act, err := action(call.Action, call.ErrnoRet)
	if err != nil {
		return err
	}
	if act == def {
		return nil
	}
	nr, err := libseccomp.GetSyscallFromName(call.Name)
	if err != nil {
		return nil // unknown to this libseccomp: as runc, ignored
	}
	if len(call.Args) == 0 {
		if err := filter.AddRule(nr, act); err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
		}
		return nil
	}
	var conds []libseccomp.ScmpCondition
	seen := map[uint]int{}
	multi := false
	for _, a := range call.Args {
		op, err := operator(a.Op)
		if err != nil {
			return err
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
		}
		seen[a.Index]++
		multi = multi || seen[a.Index] > 1
		conds = append(conds, c)
	}
	if !multi {
		if err := filter.AddRuleConditional(nr, act, conds); err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
		}
		return nil
	}
	// Two conditions on one argument: one rule each (runc's old behaviour).
	for _, c := range conds {
		if err := filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
		}
	}
	return nil
}

func operator(op configs.Operator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case configs.EqualTo:
		return libseccomp.CompareEqual, nil
	case configs.NotEqualTo:
		return libseccomp.CompareNotEqual, nil
	case configs.GreaterThan:
		return libseccomp.CompareGreater, nil
	case configs.GreaterThanOrEqualTo:
		return libseccomp.CompareGreaterEqual, nil
	case configs.LessThan:
		return libseccomp.CompareLess, nil
	case configs.LessThanOrEqualTo:
		return libseccomp.CompareLessOrEqual, nil
	case configs.MaskEqualTo:
		return libseccomp.CompareMaskedEqual, nil
	default:
		return libseccomp.CompareInvalid, fmt.Errorf("seccomp profile: invalid operator %v", op)
	}
}
