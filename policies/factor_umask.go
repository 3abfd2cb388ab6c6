package policies

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultUmask is the normalized umask.
const DefaultUmask = 0o022

// umaskFactor is the file mode creation mask.
var umaskFactor = Factor{
	Name:      "umask",
	Doc:       "the umask of the build's first process",
	Needs:     []Need{NeedUmask},
	Sets:      []string{"Umask"},
	Normalize: func(s *Settings) { s.Umask = DefaultUmask },
	Perturb:   func(s *Settings, _ uint64) { s.Umask = 0o002 },
	Value:     func(s Settings) string { return fmt.Sprintf("%04o", s.Umask) },
	Validate: func(s Settings) error {
		if s.Umask > 0o777 {
			return fmt.Errorf("policies: umask %#o out of range", s.Umask)
		}
		return nil
	},
	Apply: func(s Settings, spec *specs.Spec) {
		umask := s.Umask
		spec.Process.User.Umask = &umask
	},
	Unseen: "a umask leaves no string of its own: it shows only as the modes of files, which the diff reports as such",
	Probe: Probe{
		Keys: []string{"umask"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"umask": fmt.Sprintf("%04o", s.Umask)}
		},
	},
}
