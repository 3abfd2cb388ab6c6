package policies

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// notFactors are the Settings fields no factor owns: inputs of the build, not
// its environment.
var notFactors = []string{"SourceDateEpoch"}

// TestFactorUnitsComplete checks that every factor is one complete unit: a
// perturbation that changes only its own fields, how it is applied, its
// evidence (or why it has none), and its probe. A new factor that misses a
// part fails here.
func TestFactorUnitsComplete(t *testing.T) {
	fields := map[string]bool{}
	st := reflect.TypeOf(Settings{})
	for i := range st.NumField() {
		fields[st.Field(i).Name] = true
	}
	owner := map[string]string{}
	names := map[string]bool{}
	known := []Need{NeedReverseDirents, NeedPersonality, NeedUmask, NeedCPUSet, NeedUTSNames, NeedUser, NeedFiles, NeedPID}
	base := Normalized(DefaultSourceDateEpoch)
	for _, f := range Factors {
		t.Run(f.Name, func(t *testing.T) {
			switch {
			case f.Name == "" || strings.ContainsAny(f.Name, " ,-") || names[f.Name]:
				t.Fatalf("name %q is empty, has a space, comma or dash, or is taken", f.Name)
			case f.Doc == "":
				t.Error("no Doc")
			case f.Normalize == nil || f.Perturb == nil || f.Value == nil:
				t.Fatal("Normalize, Perturb and Value are required")
			case f.Evidence == nil && f.Unseen == "":
				t.Error("neither Evidence nor Unseen: say what bytes name the factor, or why none can")
			case f.Evidence != nil && f.Unseen != "":
				t.Error("both Evidence and Unseen")
			case len(f.Probe.Keys) == 0 || f.Probe.Expect == nil:
				t.Error("no probe keys or no Probe.Expect: the conformance suite cannot check the factor")
			case len(f.Sets) == 0:
				t.Error("no Sets")
			}
			names[f.Name] = true
			for _, n := range f.Needs {
				if !slices.Contains(known, n) {
					t.Errorf("need %q is not a known feature", n)
				}
			}
			for _, fld := range f.Sets {
				if !fields[fld] || slices.Contains(notFactors, fld) {
					t.Errorf("Sets names %q, not a factor field of Settings", fld)
				}
				if o, ok := owner[fld]; ok {
					t.Errorf("Settings.%s is set by %s too", fld, o)
				}
				owner[fld] = f.Name
			}

			// Perturb and Normalize touch the factor's fields, and Perturb
			// changes its value.
			v := base
			v.Env = slices.Clone(base.Env)
			f.Perturb(&v, 42)
			changed := changedFields(base, v)
			if len(changed) == 0 || f.Value(v) == f.Value(base) {
				t.Errorf("the perturbation changes nothing (value %q)", f.Value(v))
			}
			for _, c := range changed {
				if !slices.Contains(f.Sets, c) {
					t.Errorf("the perturbation changes %s, not in Sets %v", c, f.Sets)
				}
			}
			n := v
			f.Normalize(&n)
			if c := changedFields(base, n); len(c) != 0 {
				t.Errorf("Normalize after Perturb leaves %v perturbed", c)
			}

			// Evidence: none without a perturbation, some with one
			// unless Unseen, and none when another factor is perturbed.
			if f.Evidence != nil {
				if ev := f.Evidence(base, base); !ev.IsZero() {
					t.Errorf("evidence %+v with nothing perturbed", ev)
				}
				if ev := f.Evidence(base, v); ev.IsZero() {
					t.Error("no evidence for the perturbed value")
				}
				for _, g := range Factors {
					if g.Name == f.Name {
						continue
					}
					if ev := f.Evidence(base, Perturb(base, []string{g.Name}, 42)); !ev.IsZero() {
						t.Errorf("evidence %+v when only %s is perturbed", ev, g.Name)
					}
				}
			}

			// The probe expects the factor's keys to move and nothing
			// of another factor's.
			for _, k := range f.Probe.Keys {
				if slices.Contains(f.Probe.AlsoMoves, k) {
					t.Errorf("probe key %s both in Keys and AlsoMoves", k)
				}
			}
			if f.Probe.Expect(base) == nil || f.Probe.Expect(v) == nil {
				t.Error("Probe.Expect returns nil")
			}
		})
	}
	for fld := range fields {
		if _, ok := owner[fld]; !ok && !slices.Contains(notFactors, fld) {
			t.Errorf("Settings.%s belongs to no factor: add it to one's Sets, or to notFactors", fld)
		}
	}
}

// changedFields lists the Settings fields that differ between a and b.
func changedFields(a, b Settings) []string {
	var out []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

// TestFactorsApplyTheirSetting checks that each factor with an Apply hook
// changes the rendered spec when perturbed, and the personality hooks the
// flags.
func TestFactorsApplyTheirSetting(t *testing.T) {
	base := Normalized(DefaultSourceDateEpoch)
	render := func(s Settings) (*specs.Spec, uint32) {
		spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
		for _, f := range Factors {
			if f.Apply != nil {
				f.Apply(s, spec)
			}
		}
		return spec, s.Personality()
	}
	a, pa := render(base)
	for _, f := range Factors {
		if f.Apply == nil && f.Personality == nil {
			continue
		}
		b, pb := render(Perturb(base, []string{f.Name}, 1))
		if reflect.DeepEqual(a, b) && pa == pb {
			t.Errorf("%s: the perturbed value renders the same spec and personality", f.Name)
		}
	}
	if pa != PersonalityAddrNoRandomize {
		t.Errorf("normalized personality %#x, want ADDR_NO_RANDOMIZE", pa)
	}
	if _, p := render(Perturb(base, []string{"kernel"}, 1)); p != PersonalityAddrNoRandomize|PersonalityUname26 {
		t.Errorf("kernel perturbed: personality %#x", p)
	}
}

func TestEnvOwners(t *testing.T) {
	got := EnvOwners()
	want := map[string]string{
		"PATH": "exec_path", "HOME": "home", "CARGO_HOME": "home", "USER": "user", "LOGNAME": "user",
		"LANG": "locale", "LC_ALL": "locale", "LANGUAGE": "locale", "LC_COLLATE": "locale", "LC_CTYPE": "locale", "TZ": "timezone",
		"LD_PRELOAD": "time", "REPROBOX_CLOCK": "time",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EnvOwners() = %v, want %v", got, want)
	}
	// Every variable of the environment but SOURCE_DATE_EPOCH and Env's
	// belongs to a factor.
	s := Perturb(Normalized(DefaultSourceDateEpoch), Names(), 3)
	for _, kv := range s.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := got[k]; !ok && k != "SOURCE_DATE_EPOCH" && k != "BUILD_NOTE" {
			t.Errorf("%s belongs to no factor", k)
		}
	}
}

func TestZoneOffset(t *testing.T) {
	for tz, want := range map[string]string{"UTC": "+0000", "Etc/GMT-14": "+1400", "Etc/GMT+5": "-0500", "Europe/Paris": "", "Etc/GMT": "", "Etc/GMTx1": ""} {
		got, ok := zoneOffset(tz)
		if got != want || ok != (want != "") {
			t.Errorf("zoneOffset(%q) = %q, %v; want %q", tz, got, ok, want)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	base := Normalized(DefaultSourceDateEpoch)
	if err := Perturb(base, Names(), 5).Validate(); err != nil {
		t.Fatalf("perturbed settings refused: %v", err)
	}
	for name, edit := range map[string]func(*Settings){
		"build path": func(s *Settings) { s.BuildPath = "relative" },
		"root build": func(s *Settings) { s.BuildPath = "/" },
		"home":       func(s *Settings) { s.Home = "home" },
		"cpus":       func(s *Settings) { s.CPUs = 0 },
		"root user":  func(s *Settings) { s.UID = 0 },
		"umask":      func(s *Settings) { s.Umask = 0o1000 },
		"ordering":   func(s *Settings) { s.FileOrdering = "random" },
		"env":        func(s *Settings) { s.Env = []string{"=x"} },
	} {
		s := base
		edit(&s)
		if s.Validate() == nil {
			t.Errorf("%s: %+v accepted", name, s)
		}
	}
}

// FuzzZoneOffset checks that zoneOffset never panics and returns only what
// date +%z prints.
func FuzzZoneOffset(f *testing.F) {
	for _, tz := range []string{"UTC", "Etc/UTC", "Etc/GMT-14", "Etc/GMT+12", "Etc/GMT", "Etc/GMT-", "Etc/GMT-99", "Europe/Paris", perturbedTZ, DefaultTZ} {
		f.Add(tz)
	}
	f.Fuzz(func(t *testing.T, tz string) {
		off, ok := zoneOffset(tz)
		if !ok {
			if off != "" {
				t.Errorf("zoneOffset(%q) = %q but not ok", tz, off)
			}
			return
		}
		if len(off) != 5 || (off[0] != '+' && off[0] != '-') || strings.Trim(off[1:], "0123456789") != "" || off[3:] != "00" {
			t.Errorf("zoneOffset(%q) = %q, not ±HH00", tz, off)
		}
	})
}
