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
	Doc:       "the umask of the build's first process; perturbed 0002 (files group-writable), as reprotest does: the umask of a shared-group (Debian, Fedora) desktop, where 0022 is a build server's",
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
	// The modes the perturbed umask gives the files a build creates
	// (0666 and 0777 masked) where the normalized one gives others: in
	// octal as chmod, stat and the diff of archive members print them,
	// and as ls -l and tar tv print them.
	Evidence: func(base, vs Settings) Evidence {
		var ev Evidence
		for _, full := range []uint32{0o666, 0o777} {
			m := full &^ vs.Umask
			if m == full&^base.Umask {
				continue
			}
			ev.Values = append(ev.Values, fmt.Sprintf("%04o", m), modeString('-', m))
			if full == 0o777 {
				ev.Values = append(ev.Values, modeString('d', m))
			}
		}
		return ev
	},
	Probe: Probe{
		Keys: []string{"umask"},
		Expect: func(s Settings) map[string]string {
			return map[string]string{"umask": fmt.Sprintf("%04o", s.Umask)}
		},
	},
}

// modeString is a mode as ls -l prints it, with type letter typ.
func modeString(typ byte, m uint32) string {
	const rwx = "rwxrwxrwx"
	b := []byte{typ}
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	return string(b)
}
