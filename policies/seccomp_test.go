package policies

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func renderTest(t *testing.T, s Settings, lim Limits) *specs.Spec {
	t.Helper()
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec, _, _, err := Render(s, Host{Rootfs: rootfs, Args: []string{"true"}, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// allowed reports whether the profile lets name through for some arguments.
func allowed(sc *specs.LinuxSeccomp, name string) bool {
	for _, s := range sc.Syscalls {
		if s.Action == specs.ActAllow && slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

func TestSeccompProfile(t *testing.T) {
	s := Normalized(1700000000)
	s.Clock = 0
	sc := renderTest(t, s, Limits{}).Linux.Seccomp
	if sc == nil {
		t.Fatal("no seccomp profile")
	}
	if sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errno %v, want EPERM", sc.DefaultAction, sc.DefaultErrnoRet)
	}
	if !slices.IsSorted(DeniedSyscalls) {
		t.Error("DeniedSyscalls is not sorted")
	}
	// What reprobox factors documents is what the profile does.
	for _, name := range DeniedSyscalls {
		if allowed(sc, name) {
			t.Errorf("%s is documented as denied but the profile allows it", name)
		}
	}
	// What builds need.
	for _, name := range []string{"clone", "execve", "fork", "vfork", "wait4", "mmap", "mprotect", "futex", "openat",
		"statx", "getdents64", "pipe2", "rt_sigaction", "prlimit64", "sched_getaffinity", "memfd_create", "socket", "rename"} {
		if !allowed(sc, name) {
			t.Errorf("%s is not allowed", name)
		}
	}
	for _, r := range sc.Syscalls {
		switch {
		case slices.Contains(r.Names, "clone") && r.Action == specs.ActAllow:
			if len(r.Args) != 1 || r.Args[0].Op != specs.OpMaskedEqual || r.Args[0].Value&0x10000000 == 0 {
				t.Errorf("clone allowed with %+v: it must exclude CLONE_NEWUSER", r.Args)
			}
		case slices.Contains(r.Names, "personality"):
			if len(r.Args) != 1 || !slices.Contains(AllowedPersonalities, r.Args[0].Value) {
				t.Errorf("personality allowed with %+v", r.Args)
			}
		}
	}
	// Deterministic: the same profile for the same spec.
	a, _ := json.Marshal(sc)
	b, _ := json.Marshal(renderTest(t, s, Limits{}).Linux.Seccomp)
	if string(a) != string(b) {
		t.Error("two renders gave different profiles")
	}
}

func TestRenderLimits(t *testing.T) {
	s := Normalized(1700000000)
	s.Clock = 0
	s.CPUs = 3
	r := renderTest(t, s, Limits{}).Linux.Resources
	if *r.Memory.Limit != DefaultMemoryBytes || *r.Pids.Limit != DefaultPids {
		t.Errorf("default memory %d, pids %d", *r.Memory.Limit, *r.Pids.Limit)
	}
	if r.CPU.Cpus != "0-2" || *r.CPU.Quota != 3*CFSPeriod || *r.CPU.Period != CFSPeriod {
		t.Errorf("cpu %q quota %d period %d", r.CPU.Cpus, *r.CPU.Quota, *r.CPU.Period)
	}
	r = renderTest(t, s, Limits{MemoryBytes: 8 << 30, Pids: 2048}).Linux.Resources
	if *r.Memory.Limit != 8<<30 || *r.Memory.Swap != 8<<30 || *r.Pids.Limit != 2048 {
		t.Errorf("memory %d swap %d pids %d", *r.Memory.Limit, *r.Memory.Swap, *r.Pids.Limit)
	}
	for _, bad := range []Limits{{MemoryBytes: 1 << 20}, {MemoryBytes: -1}, {DiskBytes: 10}, {Pids: 3}, {Pids: MaxPids + 1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
