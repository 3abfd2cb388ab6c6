package policies

import "fmt"

// fileOrderingFactor is the order of directory listings beneath the build
// directory. The backend applies it (sandbox.Job.FileOrdering).
var fileOrderingFactor = Factor{
	Name:      "fileordering",
	Doc:       "directory listings of the build directory; perturbed, disorderfs lists every directory in reverse order",
	Needs:     []Need{NeedReverseDirents},
	Sets:      []string{"FileOrdering"},
	Normalize: func(s *Settings) { s.FileOrdering = "native" },
	Perturb:   func(s *Settings, _ uint64) { s.FileOrdering = "reverse" },
	Value:     func(s Settings) string { return s.FileOrdering },
	Validate: func(s Settings) error {
		if s.FileOrdering != "native" && s.FileOrdering != "reverse" {
			return fmt.Errorf("policies: file ordering %q is not native or reverse", s.FileOrdering)
		}
		return nil
	},
	// An order leaves no string of its own: it shows as the same lines,
	// archive members or entries of a line in another order.
	Evidence: func(base, vs Settings) Evidence {
		if vs.FileOrdering == base.FileOrdering {
			return Evidence{}
		}
		return Evidence{Matchers: []string{MatchReorder}}
	},
	Probe: Probe{
		// The native order is the file system's: the probe can only see
		// that the reverse one differs from it.
		Keys:   []string{"dirents"},
		Expect: func(Settings) map[string]string { return map[string]string{} },
	},
}
