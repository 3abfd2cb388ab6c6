package policies

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultLastPID is the normalized last PID of the build's PID namespace when
// its command starts: the command's first child is PID 101.
const DefaultLastPID = 100

// AnnotationLastPID is the spec annotation the backend reads (it repeats
// sandbox.AnnotationLastPID; a test in cmd/reprobox checks that they agree).
const AnnotationLastPID = "io.reprobox.last-pid"

// pidFactor is the PIDs the build's processes get. A runtime takes a varying
// number of PIDs in a new namespace before the command starts (runc's init
// threads), so without normalization a name made of $$ (autoconf's
// conftest$$, mktemp-like names in build scripts) changes from run to run.
// The backend starts the command with the namespace at LastPID (an entry
// program creates and reaps short-lived children until it is there), so a
// sequential process tree gets the same PIDs every run; processes created
// concurrently (cargo's jobs, threads) still race for the next PID.
var pidFactor = Factor{
	Name: "pid",
	Doc: "the PIDs the build's processes get: its command starts with the PID namespace's last PID at 100, " +
		"so its first child is 101; perturbed the last PID is 1000 to 1999, so a name made of a PID ($$) " +
		"changes and has a digit more",
	Needs:     []Need{NeedPID},
	Sets:      []string{"LastPID"},
	Normalize: func(s *Settings) { s.LastPID = DefaultLastPID },
	Perturb: func(s *Settings, seed uint64) {
		s.LastPID = 1000 + pick(seed, "pid", 1000)
	},
	Value: func(s Settings) string { return strconv.Itoa(s.LastPID) },
	Validate: func(s Settings) error {
		if s.LastPID < 1 || s.LastPID > MaxLastPID {
			return fmt.Errorf("policies: last PID %d is not from 1 to %d", s.LastPID, MaxLastPID)
		}
		return nil
	},
	Apply: func(s Settings, spec *specs.Spec) {
		if spec.Annotations == nil {
			spec.Annotations = map[string]string{}
		}
		spec.Annotations[AnnotationLastPID] = strconv.Itoa(s.LastPID)
	},
	Unseen: "a PID is a small number any output may hold by chance; the differing name that holds it shows in the evidence text, and the search finds the factor by rebuilding",
	Probe: Probe{
		Keys: []string{"last_pid"},
		Expect: func(s Settings) map[string]string {
			// The probe's first command reads ns_last_pid in the
			// shell's first child.
			return map[string]string{"last_pid": strconv.Itoa(s.LastPID + 1)}
		},
	},
}

// MaxLastPID bounds LastPID (the entry program creates up to that many
// short-lived processes; the smallest pid_max is 32768).
const MaxLastPID = 30000
