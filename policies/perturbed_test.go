package policies

import (
	"strings"
	"testing"
	"time"
)

// TestPerturbedValuesExposeBugs checks the properties that make each
// reviewed perturbed value the one most likely to expose a bug (see each
// factor's Doc), not just a different one.
func TestPerturbedValuesExposeBugs(t *testing.T) {
	base := Normalized(DefaultSourceDateEpoch)
	vs := Perturb(base, Names(), 11)

	// timezone: far from UTC, not a whole hour, with a DST rule.
	loc, err := time.LoadLocation(vs.TZ)
	if err != nil {
		t.Fatalf("zone %s: %v (the host needs tzdata)", vs.TZ, err)
	}
	jan := time.Date(2023, 1, 15, 12, 0, 0, 0, time.UTC).In(loc)
	jul := time.Date(2023, 7, 15, 12, 0, 0, 0, time.UTC).In(loc)
	_, offJan := jan.Zone()
	_, offJul := jul.Zone()
	if offJan == offJul {
		t.Errorf("%s: no daylight saving (offset %ds all year)", vs.TZ, offJan)
	}
	for _, off := range []int{offJan, offJul} {
		if off%3600 == 0 || off < 12*3600 {
			t.Errorf("%s: offset %ds is a whole hour or less than 12 hours from UTC", vs.TZ, off)
		}
	}
	// On SOURCE_DATE_EPOCH's day the local date is already the next one.
	if d := vs.ClockTime().In(loc); base.ClockTime().Day() == d.Day() {
		t.Errorf("%s: the local date at %v is the UTC date", vs.TZ, base.ClockTime())
	}

	// home: a space in it, still absolute.
	if !strings.Contains(vs.Home, " ") || !strings.HasPrefix(vs.Home, "/") {
		t.Errorf("home %q has no space", vs.Home)
	}
	// build_path: deeper and of another length.
	if strings.Count(vs.BuildPath, "/") <= strings.Count(base.BuildPath, "/")+3 || len(vs.BuildPath) < 2*len(base.BuildPath) {
		t.Errorf("build path %q is not much deeper and longer than %q", vs.BuildPath, base.BuildPath)
	}
	// umask: reprotest's pair, group-writable files.
	if base.Umask != 0o022 || vs.Umask != 0o002 {
		t.Errorf("umask %04o → %04o, want 0022 → 0002", base.Umask, vs.Umask)
	}
	// locale: each class from one build, LC_ALL unset.
	env := strings.Join(vs.Environ(), " ")
	for _, want := range []string{"LANG=fr_FR.UTF-8", "LC_CTYPE=tr_TR.UTF-8", "LC_COLLATE=et_EE.UTF-8"} {
		if !strings.Contains(env, want) {
			t.Errorf("perturbed environment lacks %s: %s", want, env)
		}
	}
	if strings.Contains(env, "LC_ALL=") {
		t.Errorf("perturbed environment sets LC_ALL, which would override the categories: %s", env)
	}
	// Evidence values are long enough not to occur by chance in binary
	// data (LANGUAGE=fr's "fr" did, in a .rodata section).
	for _, e := range FactorEvidence(base, vs) {
		for _, v := range e.Values {
			if len(v) < 3 || (len(v) < 4 && !strings.ContainsAny(v, "İı") && e.Factor != "num_cpus") {
				t.Errorf("%s: evidence value %q is too short", e.Factor, v)
			}
		}
	}
	// pid: a PID with another number of digits.
	if len(mustLookup(t, "pid").Value(vs)) == len(mustLookup(t, "pid").Value(base)) {
		t.Errorf("last PID %d has as many digits as %d", vs.LastPID, base.LastPID)
	}
}

func mustLookup(t *testing.T, name string) Factor {
	f, ok := Lookup(name)
	if !ok {
		t.Fatalf("no factor %s", name)
	}
	return f
}
