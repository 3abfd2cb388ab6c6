package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PersonalityFlags are the personality(2) flags of linux/personality.h, by
// the names an OCI spec would use for them (it defines none).
var PersonalityFlags = map[specs.LinuxPersonalityFlag]uint32{
	"UNAME26":            0x0020000,
	"ADDR_NO_RANDOMIZE":  0x0040000,
	"FDPIC_FUNCPTRS":     0x0080000,
	"MMAP_PAGE_ZERO":     0x0100000,
	"ADDR_COMPAT_LAYOUT": 0x0200000,
	"READ_IMPLIES_EXEC":  0x0400000,
	"ADDR_LIMIT_32BIT":   0x0800000,
	"SHORT_INODE":        0x1000000,
	"WHOLE_SECONDS":      0x2000000,
	"STICKY_TIMEOUTS":    0x4000000,
	"ADDR_LIMIT_3GB":     0x8000000,
}

// AllPersonalityFlags is the union of PersonalityFlags.
const AllPersonalityFlags = 0xffe0000

var idRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,76}$`)

// CheckID reports whether id can name a job (Job.ID): [a-zA-Z0-9_.-], at
// most 76 characters, not "." or "..".
func CheckID(id string) error {
	if !idRE.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid job id %q", id)
	}
	return nil
}

// NewID returns a random job ID.
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux.
	}
	return hex.EncodeToString(b[:])
}

// CheckSpec reports what makes a job's spec invalid for any backend: no
// spec, no process, no arguments, or a working directory that is not
// absolute.
func CheckSpec(spec *specs.Spec) error {
	switch {
	case spec == nil:
		return errors.New("no spec")
	case spec.Process == nil:
		return errors.New("spec has no process")
	case len(spec.Process.Args) == 0:
		return errors.New("spec has no process.args")
	case spec.Process.Cwd == "" || !filepath.IsAbs(spec.Process.Cwd):
		return fmt.Errorf("process.cwd %q is not absolute", spec.Process.Cwd)
	}
	return nil
}

// Persona is the personality(2) value of a job run by backend: the spec's
// domain (linux or linux32) and flags with the job's Personality flags. A
// flag outside PersonalityFlags is refused as unsupported.
func Persona(backend string, spec *specs.Spec, flags uint32) (uint32, error) {
	if flags&^AllPersonalityFlags != 0 {
		return 0, fmt.Errorf("personality %#x has bits that are not personality flags", flags)
	}
	const perLinux32 = 0x0008
	p := flags // PER_LINUX is 0
	if spec.Linux != nil && spec.Linux.Personality != nil {
		l := spec.Linux.Personality
		switch l.Domain {
		case specs.PerLinux, "":
		case specs.PerLinux32:
			p |= perLinux32
		default:
			return 0, fmt.Errorf("unknown personality domain %q", l.Domain)
		}
		for _, f := range l.Flags {
			v, ok := PersonalityFlags[f]
			if !ok {
				return 0, Unsupported(backend, fmt.Sprintf("personality flag %q", f))
			}
			p |= v
		}
	}
	return p, nil
}
