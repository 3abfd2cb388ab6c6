package policies

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A Factor is one environmental input that `reprobox check` perturbs, and
// everything reprobox knows about it: its normalized and perturbed values, how
// it reaches the build, what a backend needs to vary it, which bytes of a
// differing artifact count as evidence for it, and what the conformance probe
// (sandbox/sandboxtest) sees of it inside the container.
//
// # Adding a factor
//
// A factor is one file, policies/factor_NAME.go, holding one Factor value, and
// one line in Factors below that places it in the order. Nothing outside
// policies names a factor: the runner's evidence labels, the config's reserved
// variables, `reprobox factors` and the conformance suite all read the Factor.
// A factor whose value Settings does not hold yet also adds that field to
// Settings (settings.go), and one whose effect the probe script cannot see yet
// adds a line to the script in sandbox/sandboxtest. TestFactorUnitsComplete
// fails until every part below is given.
type Factor struct {
	// Name is the factor's name in reports, configs and flags.
	Name string
	// Doc says how the factor is applied, for `reprobox factors`.
	Doc string
	// Needs are the parts of a job beyond a plain OCI spec that a backend
	// must apply to vary the factor (sandbox.Feature names). Empty: any
	// backend can.
	Needs []Need
	// Sets names the Settings fields the factor owns: Normalize and Perturb
	// touch these and nothing else, and no other factor touches them.
	Sets []string

	// Normalize sets the factor's normalized value (the environment of
	// `reprobox build`).
	Normalize func(s *Settings)
	// Perturb edits s to the factor's perturbed value. It is deterministic in
	// seed and touches only the fields in Sets.
	Perturb func(s *Settings, seed uint64)
	// Value prints the factor's value in s, for reports.
	Value func(s Settings) string
	// Validate reports a value of the factor a build cannot run with (from a
	// config); nil accepts every value.
	Validate func(s Settings) error

	// Env returns the environment variables (KEY=VALUE) the factor sets in the
	// build for s; nil when it sets none. Settings.Environ collects them.
	Env func(s Settings) []string
	// Reserves are variables the factor does not set that a config may not
	// set either, because they would override the factor's (LC_ALL
	// overrides every LC_* variable and LANG).
	Reserves []string
	// Apply edits the spec Render made for s where the factor's setting lives
	// in the spec itself (UTS names, umask, cpuset); nil when it does not.
	Apply func(s Settings, spec *specs.Spec)
	// Personality returns the personality(2) flags the factor needs for s;
	// nil when it needs none.
	Personality func(s Settings) uint32

	// Evidence returns what, in the bytes of a differing artifact, names the
	// factor as their cause when the variant vs is compared with base: its
	// perturbed values and time ranges. It returns nothing when vs has the
	// factor's normalized value. Nil only when Unseen says why.
	Evidence func(base, vs Settings) Evidence
	// Unseen, when set, says why no bytes can name the factor (a umask or a
	// CPU count leaves no string of its own in an artifact); the culprit
	// search still finds it by rebuilding.
	Unseen string

	// Probe is what the conformance probe sees of the factor.
	Probe Probe
}

// A Need is a part of a job that not every sandbox backend can apply: the name
// of a sandbox.Feature. (policies does not import sandbox, so the names are
// repeated here; a test in cmd/reprobox checks that both lists agree.)
type Need string

// The needs of factors.
const (
	NeedReverseDirents Need = "reverse-dirents" // directory listings in reverse order
	NeedPersonality    Need = "personality"     // personality(2) flags
	NeedUmask          Need = "umask"           // the first process's umask
	NeedCPUSet         Need = "cpuset"          // a cpuset of the build
	NeedUTSNames       Need = "uts-names"       // hostname and domainname
	NeedUser           Need = "user"            // any uid, gid and user database
	NeedFiles          Need = "files"           // reprobox's own files (the time shim)
	NeedPID            Need = "pid"             // the last PID of the build's PID namespace
)

// Evidence is what, in differing bytes, names a factor.
type Evidence struct {
	// Values are strings that occur only because of the factor's perturbed
	// value.
	Values []string
	// Times are time ranges: a time found in the bytes within one of them
	// names the factor.
	Times []TimeSpan
	// Matchers are the shapes of difference that name the factor whatever
	// the bytes hold: "reorder" (the same lines, members or entries in
	// another order), "address" (a user-space address that moved, at the
	// same place on both sides), "decimal-comma" (3,14 where the control
	// has 3.14), "collation" (lines or words in byte order in the control,
	// in another order, not its reverse, in the variant). They are the kinds of diff.Matcher (package policies does
	// not import diff; a runner test checks that the names agree).
	Matchers []string
}

// The shapes of difference an Evidence's Matchers name.
const (
	MatchReorder      = "reorder"
	MatchAddress      = "address"
	MatchDecimalComma = "decimal-comma"
	MatchCollation    = "collation"
)

// IsZero says whether the evidence names nothing.
func (e Evidence) IsZero() bool { return len(e.Values)+len(e.Times)+len(e.Matchers) == 0 }

// A TimeSpan is a closed range of times.
type TimeSpan struct{ From, To time.Time }

// Probe is what the conformance probe (sandbox/sandboxtest's script, one
// key=value line per property) sees of a factor.
type Probe struct {
	// Keys are the probe keys the perturbed value must change.
	Keys []string
	// AlsoMoves are keys that may change with the factor besides Keys (the
	// whole environment when the factor sets a variable).
	AlsoMoves []string
	// Expect returns the values the probe must print for s, for the keys it
	// can predict (a subset of Keys, and properties of the factor that hold
	// whatever its value).
	Expect func(s Settings) map[string]string
}

// Factors lists every factor, in the order they are applied and reported. Each
// perturbation edits fields no other factor touches (see Factor.Sets), so the
// order changes no value; it is kept stable because it is the order of reports,
// of `reprobox factors` and of the culprit search. Two pairs are separate on
// purpose: user keeps HOME and home keeps the user; hostname and domainname are
// both UTS names but leak into different places.
var Factors = []Factor{
	timeFactor,
	buildPathFactor,
	localeFactor,
	timezoneFactor,
	umaskFactor,
	hostnameFactor,
	domainnameFactor,
	userFactor,
	homeFactor,
	fileOrderingFactor,
	numCPUsFactor,
	kernelFactor,
	aslrFactor,
	pidFactor,
	envFactor,
	execPathFactor,
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

// FactorEvidence is the evidence of every factor whose value differs between
// base and vs, in factor order: what the runner's diff looks for in differing
// bytes.
func FactorEvidence(base, vs Settings) []NamedEvidence {
	var out []NamedEvidence
	for _, f := range Factors {
		if f.Evidence == nil {
			continue
		}
		if ev := f.Evidence(base, vs); !ev.IsZero() {
			out = append(out, NamedEvidence{Factor: f.Name, Evidence: ev})
		}
	}
	return out
}

// NamedEvidence is one factor's evidence.
type NamedEvidence struct {
	Factor string
	Evidence
}

// EnvOwners maps every environment variable a factor sets, in its normalized
// or its perturbed value, to the factor's name: a config that set one too would
// shadow the factor.
func EnvOwners() map[string]string {
	owners := map[string]string{}
	base := Normalized(DefaultSourceDateEpoch)
	for _, f := range Factors {
		if f.Env == nil {
			continue
		}
		v := base
		f.Perturb(&v, 1)
		for _, kv := range append(f.Env(base), f.Env(v)...) {
			k, _, _ := strings.Cut(kv, "=")
			owners[k] = f.Name
		}
		for _, k := range f.Reserves {
			owners[k] = f.Name
		}
	}
	return owners
}

// MissingNeeds returns the needs of the factor that are not among have, in
// the factor's order.
func (f Factor) MissingNeeds(have []string) []Need {
	var out []Need
	for _, n := range f.Needs {
		if !slices.Contains(have, string(n)) {
			out = append(out, n)
		}
	}
	return out
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
