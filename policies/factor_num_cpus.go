package policies

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCPUs is the normalized CPU count.
const DefaultCPUs = 2

// numCPUsFactor is the size of the build's cpuset.
var numCPUsFactor = Factor{
	Name:      "num_cpus",
	Doc:       "the CPU set of the build: nproc and available_parallelism see its size; perturbed it is half as large (1 CPU for the default 2, 2 CPUs when the build has 1)",
	Needs:     []Need{NeedCPUSet},
	Sets:      []string{"CPUs"},
	Normalize: func(s *Settings) { s.CPUs = DefaultCPUs },
	Perturb: func(s *Settings, _ uint64) {
		// Half, not 1: a different count is what the factor tests, and on a
		// large normalized count one CPU would make the variant the slowest
		// build of a check by far (a stage-2 rustc dist: hours).
		if s.CPUs > 1 {
			s.CPUs /= 2
		} else {
			s.CPUs = 2
		}
	},
	Value: func(s Settings) string { return strconv.Itoa(s.CPUs) },
	Validate: func(s Settings) error {
		if s.CPUs < 1 {
			return fmt.Errorf("policies: cpus must be at least 1, not %d", s.CPUs)
		}
		return nil
	},
	// A CPU quota as well as the cpuset: the cpuset alone lets a build that
	// runs more tasks than CPUs (a fork bomb) queue them on those CPUs
	// without bound; the quota caps its CPU time at its CPU count whatever
	// it runs. available_parallelism (which reads the quota) stays CPUs.
	Apply: func(s Settings, spec *specs.Spec) {
		quota, period := int64(s.CPUs)*CFSPeriod, uint64(CFSPeriod)
		spec.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: cpuList(s.CPUs), Quota: &quota, Period: &period}
	},
	// The perturbed CPU count where a build records it: make's and
	// cargo's job flags, variables and messages that name a count of
	// CPUs, cores, threads or jobs. (Output reordered by parallelism has
	// no string of its own; the search finds it by rebuilding.)
	Evidence: func(base, vs Settings) Evidence {
		if vs.CPUs == base.CPUs {
			return Evidence{}
		}
		n := strconv.Itoa(vs.CPUs)
		return Evidence{Values: []string{
			"-j" + n, "-j " + n, "--jobs=" + n, "--jobs " + n, "jobs=" + n, "JOBS=" + n, "jobs: " + n,
			"nproc=" + n, "cpus=" + n, "CPUS=" + n, "CPUs: " + n,
			n + " CPU", n + " cpu", n + " core", n + " thread", n + " job",
		}}
	},
	Probe: Probe{
		Keys: []string{"nproc"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"nproc": strconv.Itoa(s.CPUs)}
		},
	},
}

// cpuList is the cpuset of n CPUs: the first n.
func cpuList(n int) string {
	if n == 1 {
		return "0"
	}
	return "0-" + strconv.Itoa(n-1)
}
