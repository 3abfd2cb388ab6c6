package policies

import (
	"fmt"
	"slices"
	"strings"
)

// envFactor is an extra environment variable. It lives in Settings.Env beside
// the config's own variables, which Settings.Environ adds as they are.
var envFactor = Factor{
	Name:      "env",
	Doc:       "an extra environment variable with an ordinary name",
	Sets:      []string{"Env"},
	Normalize: func(s *Settings) { s.Env = nil },
	Perturb: func(s *Settings, seed uint64) {
		s.Env = append(slices.Clone(s.Env), "BUILD_NOTE=rbx-env-"+word(seed, "env"))
		slices.Sort(s.Env)
	},
	Value: func(s Settings) string {
		for _, kv := range s.Env {
			if strings.HasPrefix(kv, "BUILD_NOTE=") {
				return kv
			}
		}
		return "(none)"
	},
	Validate: func(s Settings) error {
		for _, kv := range s.Env {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("policies: environment entry %q is not KEY=VALUE", kv)
			}
		}
		return nil
	},
	// The added variable's value, and its name: a build that dumps its
	// environment, or a configure test that records which variables were
	// set, shows the name whatever the value.
	Evidence: func(base, vs Settings) Evidence {
		var ev Evidence
		for _, kv := range vs.Env {
			if !slices.Contains(base.Env, kv) {
				k, v, _ := strings.Cut(kv, "=")
				if !slices.ContainsFunc(base.Env, func(b string) bool { return strings.HasPrefix(b, k+"=") }) {
					ev.Values = append(ev.Values, k)
				}
				ev.Values = append(ev.Values, v)
			}
		}
		return ev
	},
	Probe: Probe{
		Keys:   []string{"environ"},
		Expect: func(Settings) map[string]string { return map[string]string{} },
	},
}
