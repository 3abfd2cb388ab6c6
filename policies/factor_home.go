package policies

import (
	"fmt"
	"strings"
)

// DefaultHome is the normalized HOME.
const DefaultHome = "/home/builder"

// homeFactor is HOME, a private tmpfs that Render mounts there.
var homeFactor = Factor{
	Name:      "home",
	Doc:       "HOME (and CARGO_HOME below it), a private writable directory",
	Sets:      []string{"Home"},
	Normalize: func(s *Settings) { s.Home = DefaultHome },
	Perturb: func(s *Settings, seed uint64) {
		s.Home = "/home/rbx-home-" + word(seed, "home")
	},
	Value: func(s Settings) string { return s.Home },
	Validate: func(s Settings) error {
		if !strings.HasPrefix(s.Home, "/") || s.Home == "/" {
			return fmt.Errorf("policies: home %q must be an absolute directory below /", s.Home)
		}
		return nil
	},
	Env: func(s Settings) []string { return []string{"HOME=" + s.Home, "CARGO_HOME=" + s.Home + "/.cargo"} },
	Evidence: func(base, vs Settings) Evidence {
		if vs.Home == base.Home {
			return Evidence{}
		}
		return Evidence{Values: []string{vs.Home}}
	},
	Probe: Probe{
		Keys: []string{"environ"},
		Expect: func(Settings) map[string]string {
			return map[string]string{"home_writable": "yes"}
		},
	},
}
