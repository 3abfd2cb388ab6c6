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
	Doc:       "HOME (and CARGO_HOME below it), a private writable directory; perturbed, a name with a space in it (/home/rbx home-WORD), which unquoted shell expansions and space-separated flag lists split",
	Sets:      []string{"Home"},
	Normalize: func(s *Settings) { s.Home = DefaultHome },
	Perturb: func(s *Settings, seed uint64) {
		// A space, where reprotest uses /nonexistent/second-build: a home
		// the build cannot write fails builds that need one instead of
		// showing where the build reads it, and a space exposes what
		// real homes on other systems break ("C:\\Users\\Jane Doe",
		// macOS volumes): $HOME expanded unquoted, -I$HOME/... lists.
		s.Home = "/home/rbx home-" + word(seed, "home")
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
