package libcontainer

import (
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRootlessResources: without a writable cgroup tree the limits leave the
// spec (the caller's copy; the job's spec is not touched) and each is named;
// the cpuset comes back as the CPUs of the affinity, the pids limit as
// RLIMIT_NPROC; a spec without a PID namespace or with limits that have no
// substitute is refused.
func TestRootlessResources(t *testing.T) {
	mem, pids, quota, period := int64(1<<30), int64(100), int64(200000), uint64(100000)
	orig := &specs.Spec{
		Process: &specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}, {Type: "RLIMIT_NPROC", Hard: 1, Soft: 1}}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}},
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &mem},
				Pids:    &specs.LinuxPids{Limit: &pids},
				CPU:     &specs.LinuxCPU{Cpus: "0-1", Quota: &quota, Period: &period},
			},
		},
	}
	spec := *orig
	cpus, dropped, err := rootlessResources(&spec)
	if err != nil {
		t.Fatal(err)
	}
	if cpus != "0-1" || spec.Linux.Resources != nil || orig.Linux.Resources == nil {
		t.Errorf("cpus %q, resources %v (original %v)", cpus, spec.Linux.Resources, orig.Linux.Resources)
	}
	want := []string{"memory limit", "CPU quota", "device cgroup rule", "pids limit: applied as RLIMIT_NPROC 100"}
	for _, w := range want {
		if !slices.ContainsFunc(dropped, func(d string) bool { return strings.HasPrefix(d, w) }) {
			t.Errorf("not named: %s (named %q)", w, dropped)
		}
	}
	if !slices.Equal(spec.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}, {Type: "RLIMIT_NPROC", Hard: 100, Soft: 100}}) ||
		len(orig.Process.Rlimits) != 2 || orig.Process.Rlimits[1].Hard != 1 {
		t.Errorf("rlimits %v (original %v)", spec.Process.Rlimits, orig.Process.Rlimits)
	}

	noPID := *orig
	linux := *orig.Linux
	linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	noPID.Linux = &linux
	if _, _, err := rootlessResources(&noPID); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("no PID namespace: %v, want ErrUnsupported", err)
	}
	blkio := *orig
	linux2 := *orig.Linux
	res := *orig.Linux.Resources
	res.BlockIO = &specs.LinuxBlockIO{}
	linux2.Resources = &res
	blkio.Linux = &linux2
	if _, _, err := rootlessResources(&blkio); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("block I/O limits: %v, want ErrUnsupported", err)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "0", want: []int{0}},
		{in: "0-1", want: []int{0, 1}},
		{in: "0-2,5", want: []int{0, 1, 2, 5}},
		{in: "", bad: true},
		{in: "2-1", bad: true},
		{in: "-1", bad: true},
		{in: "a", bad: true},
		{in: "0-5000", bad: true},
	} {
		set, err := parseCPUList(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var want unix.CPUSet
		for _, c := range tc.want {
			want.Set(c)
		}
		if *set != want {
			t.Errorf("%q: %v, want %v", tc.in, set, want)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-1", "0-2,5", "1023", "2-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		set, err := parseCPUList(list)
		if err != nil {
			return
		}
		if set.Count() == 0 {
			t.Fatalf("%q: an empty set without an error", list)
		}
	})
}
