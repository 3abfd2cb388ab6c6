package policies

import (
	"fmt"
	"strings"
)

// DefaultBuildPath is the normalized build directory.
const DefaultBuildPath = "/build/src"

// buildPathFactor is the directory the build runs in.
var buildPathFactor = Factor{
	Name: "build_path",
	Doc:  "the source is copied to this directory and the build runs there; perturbed, a path six levels deeper and over three times as long (where reprotest only renames the last component), so a path that is embedded, truncated or padded to a width changes",
	Sets: []string{"BuildPath"},
	Normalize: func(s *Settings) {
		s.BuildPath = DefaultBuildPath
	},
	Perturb: func(s *Settings, seed uint64) {
		s.BuildPath = fmt.Sprintf("/build/reprobox-variant-%s/a/much/deeper/build/path/src", word(seed, "build_path"))
	},
	Value: func(s Settings) string { return s.BuildPath },
	Validate: func(s Settings) error {
		if !strings.HasPrefix(s.BuildPath, "/") || s.BuildPath == "/" {
			return fmt.Errorf("policies: build path %q must be an absolute directory below /", s.BuildPath)
		}
		return nil
	},
	Evidence: func(base, vs Settings) Evidence {
		if vs.BuildPath == base.BuildPath {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.BuildPath}}
	},
	Probe: Probe{
		Keys:      []string{"cwd"},
		AlsoMoves: []string{"environ"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"cwd": s.BuildPath, "build_writable": "yes"}
		},
	},
}
