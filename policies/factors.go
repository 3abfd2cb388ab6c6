package policies

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// TimeShift is how far the time factor moves the clock: 398 days, 6 hours and
// 23 minutes, as the Reproducible Builds test network does. It moves the clock
// back, where the test network moves it forward: a frozen clock ahead of the
// real one puts files the build writes at their real, varying times (the
// file-time clamp is min(real, clock)), and an absolute wait computed from it
// (pthread_cond_timedwait on CLOCK_REALTIME) would sleep until the real clock
// catches up. Behind the real one, both are deterministic and immediate.
const TimeShift = 398*24*3600 + 6*3600 + 23*60

// A Factor is one environmental input that `reprobox check` perturbs.
type Factor struct {
	// Name is the factor's name in reports, configs and flags.
	Name string
	// How says how the factor is applied, for `reprobox factors`.
	How string
	// Perturb edits s to the factor's perturbed value. It is deterministic in
	// seed and touches only what the factor is about.
	Perturb func(s *Settings, seed uint64)
	// Value prints the factor's value in s, for reports.
	Value func(s Settings) string
}

// Factors lists every factor, in the order they are applied and reported. Each
// perturbation edits fields no other factor touches, except that user and home
// are separate on purpose: user keeps HOME, home keeps the user. Keep the order
// stable: it is the order of reports and of the culprit search.
var Factors = []Factor{
	{
		Name: "time",
		How:  "reprobox's time shim (LD_PRELOAD) freezes the wall clock and clamps the file times stat(2) reports to it; perturbed it is moved back by 398d6h23m. SOURCE_DATE_EPOCH is unchanged",
		Perturb: func(s *Settings, _ uint64) {
			s.Clock = s.SourceDateEpoch - TimeShift
			if s.Clock <= 0 { // a SOURCE_DATE_EPOCH within TimeShift of 1970
				s.Clock = s.SourceDateEpoch + TimeShift
			}
		},
		Value: func(s Settings) string { return s.ClockTime().Format("2006-01-02T15:04:05Z") },
	},
	{
		Name: "build_path",
		How:  "the source is copied to this directory and the build runs there",
		Perturb: func(s *Settings, seed uint64) {
			s.BuildPath = fmt.Sprintf("/build/reprobox-variant-%s/a/much/deeper/build/path/src", word(seed, "build_path"))
		},
		Value: func(s Settings) string { return s.BuildPath },
	},
	{
		Name: "locale",
		How:  "LANG; perturbed, LANG, LC_ALL and LANGUAGE are all set to fr_FR.UTF-8 (generated in the image)",
		Perturb: func(s *Settings, _ uint64) {
			s.Locale, s.LocaleAll = "fr_FR.UTF-8", true
		},
		Value: func(s Settings) string {
			if s.LocaleAll {
				return "LANG=LC_ALL=" + s.Locale
			}
			return "LANG=" + s.Locale
		},
	},
	{
		Name:    "timezone",
		How:     "TZ; perturbed, a zone 14 hours ahead of UTC",
		Perturb: func(s *Settings, _ uint64) { s.TZ = "Etc/GMT-14" },
		Value:   func(s Settings) string { return s.TZ },
	},
	{
		Name:    "umask",
		How:     "the umask of the build's first process",
		Perturb: func(s *Settings, _ uint64) { s.Umask = 0o002 },
		Value:   func(s Settings) string { return fmt.Sprintf("%04o", s.Umask) },
	},
	{
		Name: "hostname",
		How:  "the UTS hostname (uname -n, gethostname)",
		Perturb: func(s *Settings, seed uint64) {
			s.Hostname = "rbx-host-" + word(seed, "hostname")
		},
		Value: func(s Settings) string { return s.Hostname },
	},
	{
		Name: "domainname",
		How:  "the UTS NIS domain name (domainname, getdomainname)",
		Perturb: func(s *Settings, seed uint64) {
			s.Domainname = "rbx-domain-" + word(seed, "domainname") + ".example"
		},
		Value: func(s Settings) string { return s.Domainname },
	},
	{
		Name: "user",
		How:  "the build user's uid, gid, name, USER and LOGNAME; HOME is unchanged",
		Perturb: func(s *Settings, seed uint64) {
			n := 2000 + uint32(pick(seed, "user", 1000))
			s.UID, s.GID, s.User = n, n, "rbxuser"+strconv.Itoa(int(n))
		},
		Value: func(s Settings) string { return fmt.Sprintf("%s %d:%d", s.User, s.UID, s.GID) },
	},
	{
		Name: "home",
		How:  "HOME (and CARGO_HOME below it), a private writable directory",
		Perturb: func(s *Settings, seed uint64) {
			s.Home = "/home/rbx-home-" + word(seed, "home")
		},
		Value: func(s Settings) string { return s.Home },
	},
	{
		Name:    "fileordering",
		How:     "directory listings of the build directory; perturbed, disorderfs lists every directory in reverse order",
		Perturb: func(s *Settings, _ uint64) { s.FileOrdering = "reverse" },
		Value:   func(s Settings) string { return s.FileOrdering },
	},
	{
		Name: "num_cpus",
		How:  "the CPU set of the build: nproc and available_parallelism see its size; perturbed it is half as large (1 CPU for the default 2, 2 CPUs when the build has 1)",
		Perturb: func(s *Settings, _ uint64) {
			// Half, not 1: a different count is what the factor tests, and on a
			// large normalized count one CPU would make the variant the slowest
			// build of a check by far (a stage-2 rustc dist: hours).
			if s.CPUs > 1 {
				s.CPUs /= 2
			} else {
				s.CPUs = 2
			}
		},
		Value: func(s Settings) string { return strconv.Itoa(s.CPUs) },
	},
	{
		Name:    "kernel",
		How:     "the kernel release uname(2) and /proc/sys/kernel/osrelease report; perturbed, the UNAME26 personality and a bind mount report a 2.6 release",
		Perturb: func(s *Settings, _ uint64) { s.Uname26 = true },
		Value: func(s Settings) string {
			if s.Uname26 {
				return "2.6 (UNAME26)"
			}
			return "host"
		},
	},
	{
		Name:    "aslr",
		How:     "address space layout randomization; normalized off with the ADDR_NO_RANDOMIZE personality",
		Perturb: func(s *Settings, _ uint64) { s.ASLR = true },
		Value: func(s Settings) string {
			if s.ASLR {
				return "on"
			}
			return "off"
		},
	},
	{
		Name: "env",
		How:  "an extra environment variable with an ordinary name",
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
	},
	{
		Name: "exec_path",
		How:  "PATH; perturbed, an extra directory at its end",
		Perturb: func(s *Settings, seed uint64) {
			s.Path = s.Path + ":/opt/rbx-path-" + word(seed, "exec_path") + "/bin"
		},
		Value: func(s Settings) string { return s.Path },
	},
}

// Names lists every factor's name in order.
func Names() []string {
	names := make([]string, len(Factors))
	for i, f := range Factors {
		names[i] = f.Name
	}
	return names
}

// Lookup returns the factor of that name.
func Lookup(name string) (Factor, bool) {
	for _, f := range Factors {
		if f.Name == name {
			return f, true
		}
	}
	return Factor{}, false
}

// ErrUnknownFactor is returned for a factor name that does not exist.
var ErrUnknownFactor = errors.New("unknown factor")

// ParseVary reads a --vary list: "all", names, and "-name" exclusions, comma
// separated ("all,-aslr", "time,umask"). The result is in factor order and never
// empty: an empty selection is an error, not a silent no-op.
func ParseVary(spec string) ([]string, error) {
	chosen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, exclude := strings.CutPrefix(item, "-")
		if name == "all" {
			for _, f := range Factors {
				chosen[f.Name] = !exclude
			}
			continue
		}
		if _, ok := Lookup(name); !ok {
			return nil, fmt.Errorf("policies: %w %q (known: %s)", ErrUnknownFactor, name, strings.Join(Names(), ", "))
		}
		chosen[name] = !exclude
	}
	var out []string
	for _, f := range Factors {
		if chosen[f.Name] {
			out = append(out, f.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("policies: --vary %q selects no factor", spec)
	}
	return out, nil
}

// Perturb returns base with the named factors perturbed, applied in factor
// order.
func Perturb(base Settings, names []string, seed uint64) Settings {
	s := base
	s.Env = slices.Clone(base.Env)
	for _, f := range Factors {
		if slices.Contains(names, f.Name) {
			f.Perturb(&s, seed)
		}
	}
	return s
}

// word derives a short lowercase word from the seed and a factor name, so that
// every perturbed value is replayable from the seed and distinct per factor.
func word(seed uint64, factor string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	r := rng(seed, factor)
	b := make([]byte, 6)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

func pick(seed uint64, factor string, n int) int { return rng(seed, factor).IntN(n) }

func rng(seed uint64, factor string) *rand.Rand {
	var h uint64 = 14695981039346656037 // FNV-1a of the factor name
	for i := 0; i < len(factor); i++ {
		h ^= uint64(factor[i])
		h *= 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}
