package policies

import "strings"

// DefaultPath is the normalized PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execPathFactor is PATH.
var execPathFactor = Factor{
	Name:      "exec_path",
	Doc:       "PATH; perturbed, an extra directory at its end",
	Sets:      []string{"Path"},
	Normalize: func(s *Settings) { s.Path = DefaultPath },
	Perturb: func(s *Settings, seed uint64) {
		s.Path = s.Path + ":/opt/rbx-path-" + word(seed, "exec_path") + "/bin"
	},
	Value: func(s Settings) string { return s.Path },
	Env:   func(s Settings) []string { return []string{"PATH=" + s.Path} },
	// What the perturbation added to PATH.
	Evidence: func(base, vs Settings) Evidence {
		if vs.Path == base.Path {
			return Evidence{}
		}
		return Evidence{Values: []string{strings.TrimPrefix(vs.Path, base.Path+":")}}
	},
	Probe: Probe{
		Keys:   []string{"environ"},
		Expect: func(Settings) map[string]string { return map[string]string{} },
	},
}
