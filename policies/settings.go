// Package policies defines the environmental factors of a build: for each, its
// normalized value, its perturbed value and how it is applied to an OCI runtime spec.
//
// A build's environment is a Settings value. Each factor is one unit in its own
// file (factor_*.go, listed in Factors): its normalized and perturbed values, how
// it is applied, what a backend needs to vary it, what bytes count as evidence for
// it and what the conformance probe sees of it (see Factor, "Adding a factor").
// Normalized returns the environment of `reprobox build`; Perturb edits it to
// the factors' perturbed values (given a seed); Render turns a Settings into the
// OCI spec a sandbox runs.
package policies

import (
	"slices"
	"strconv"
	"time"
)

// Fixed values of the normalized environment that belong to no factor (each
// factor's own are in its file, policies/factor_*.go).
const (
	// DefaultSourceDateEpoch is used when neither the config nor git gives one:
	// 2023-11-14T22:13:20Z.
	DefaultSourceDateEpoch = 1700000000

	// TimeShim is where the time shim (shim/time.c) appears in the container.
	TimeShim = SupportDir + "/lib/time.so"

	// SupportDir is where reprobox's own helper files appear inside the
	// container (read-only).
	SupportDir = "/.reprobox"
)

// Settings is the whole environment of one build. Every field is applied by
// Render; nothing else from the host reaches the build.
type Settings struct {
	// SourceDateEpoch is exported as SOURCE_DATE_EPOCH. It is an input of the
	// build, not environment: no factor changes it.
	SourceDateEpoch int64 `json:"source_date_epoch"`
	// Clock is the wall-clock time (Unix seconds) the build sees, frozen, through
	// reprobox's time shim (shim/time.c, preloaded into every dynamically linked
	// process, rustc included): time, gettimeofday, timespec_get and
	// clock_gettime of the wall clocks return it, and every stat-family call
	// reports file times as min(real time, Clock), so files the build writes
	// appear written at Clock and tar and cargo see the same times in two
	// builds. Monotonic and CPU clocks keep running. Zero means the real clock.
	Clock int64 `json:"clock"`
	// BuildPath is the directory the source is copied into and the build runs in.
	BuildPath string `json:"build_path"`
	// Locale is LANG. LocaleVars are the LC_* variables (and LANGUAGE) set
	// beside it, KEY=VALUE sorted, none when normalized: the perturbation
	// sets a category apart where LANG's locale cannot expose its class of
	// bug. LC_ALL is not set unless a LocaleVar sets it.
	Locale     string   `json:"locale"`
	LocaleVars []string `json:"locale_vars"`
	// TZ is the time zone.
	TZ string `json:"tz"`
	// Umask is the file mode creation mask of the build's first process.
	Umask uint32 `json:"umask"`
	// Hostname and Domainname are the UTS names.
	Hostname   string `json:"hostname"`
	Domainname string `json:"domainname"`
	// User, UID and GID are the build user; USER and LOGNAME are User. The user
	// is added to the image's /etc/passwd and /etc/group for the build.
	User string `json:"user"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	// Home is HOME, a private writable directory; CARGO_HOME is Home/.cargo.
	Home string `json:"home"`
	// FileOrdering is how directory listings of the build directory are
	// ordered: "native" (the host file system's order) or "reverse" (disorderfs
	// over the build directory lists every directory in reverse order).
	FileOrdering string `json:"file_ordering"`
	// CPUs is the number of CPUs the build may use, as a cpuset: nproc and
	// std::thread::available_parallelism both see it.
	CPUs int `json:"cpus"`
	// Uname26 makes uname(2) and /proc/sys/kernel/osrelease report a 2.6
	// kernel release (the UNAME26 personality; the backend makes the file
	// agree). False leaves the host's release.
	Uname26 bool `json:"uname26"`
	// ASLR is address space layout randomization. False sets the
	// ADDR_NO_RANDOMIZE personality for the build.
	ASLR bool `json:"aslr"`
	// LastPID is the last PID of the build's PID namespace when its command
	// starts (the spec annotation AnnotationLastPID): the command's first
	// child gets LastPID+1.
	LastPID int `json:"last_pid"`
	// Path is PATH.
	Path string `json:"path"`
	// Env holds extra variables (KEY=VALUE), sorted: the config's own, and the
	// env factor's.
	Env []string `json:"env"`
}

// Normalized returns the environment of `reprobox build` for a source date:
// every factor's normalized value.
func Normalized(sourceDateEpoch int64) Settings {
	s := Settings{SourceDateEpoch: sourceDateEpoch}
	for _, f := range Factors {
		f.Normalize(&s)
	}
	return s
}

// Environ is the exact environment of the build's first process, sorted:
// SOURCE_DATE_EPOCH, every factor's variables, and Env.
func (s Settings) Environ() []string {
	env := []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(s.SourceDateEpoch, 10)}
	for _, f := range Factors {
		if f.Env != nil {
			env = append(env, f.Env(s)...)
		}
	}
	env = append(env, s.Env...)
	slices.Sort(env)
	return env
}

// Personality is the personality(2) flags of a build with settings s: every
// factor's.
func (s Settings) Personality() uint32 {
	var p uint32
	for _, f := range Factors {
		if f.Personality != nil {
			p |= f.Personality(s)
		}
	}
	return p
}

// Validate reports settings a build cannot run with: what each factor
// refuses.
func (s Settings) Validate() error {
	for _, f := range Factors {
		if f.Validate != nil {
			if err := f.Validate(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClockTime is Clock as a time, for reports.
func (s Settings) ClockTime() time.Time { return time.Unix(s.Clock, 0).UTC() }
