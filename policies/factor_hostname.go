package policies

import specs "github.com/opencontainers/runtime-spec/specs-go"

// DefaultHostname is the normalized UTS hostname.
const DefaultHostname = "reprobox"

// hostnameFactor is the UTS hostname.
var hostnameFactor = Factor{
	Name:      "hostname",
	Doc:       "the UTS hostname (uname -n, gethostname)",
	Needs:     []Need{NeedUTSNames},
	Sets:      []string{"Hostname"},
	Normalize: func(s *Settings) { s.Hostname = DefaultHostname },
	Perturb: func(s *Settings, seed uint64) {
		s.Hostname = "rbx-host-" + word(seed, "hostname")
	},
	Value: func(s Settings) string { return s.Hostname },
	Apply: func(s Settings, spec *specs.Spec) { spec.Hostname = s.Hostname },
	Evidence: func(base, vs Settings) Evidence {
		if vs.Hostname == base.Hostname {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.Hostname}}
	},
	Probe: Probe{
		Keys: []string{"hostname", "uname_n"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"hostname": s.Hostname, "uname_n": s.Hostname}
		},
	},
}
