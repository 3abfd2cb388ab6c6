package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCheckLocaleClasses checks, for real in the sandbox with every factor
// varied, that a build exposing each class of locale bug is blamed on locale:
// a shell upper-casing an i (Turkish case mapping), sort(1) ordering words
// (collation), and a C program printing a float with printf (decimal comma).
// The default image must hold the perturbation's locales (images.Locales).
func TestCheckLocaleClasses(t *testing.T) {
	for _, tc := range []struct {
		crate string
		// evidence: a value only the perturbed locale makes is in the
		// differing bytes (the dotted İ), or a shape of difference
		// only it makes (0,75 for 0.75; lines sorted unlike byte order
		// are not taken as proof by a check: see runner.checkMatchers).
		evidence []string
		// hint: lines sorted unlike byte order hint at locale; the check
		// builds it first and needs 12 builds, not 16.
		hint bool
		// diff: what the evidence text must show of the variant.
		diff string
	}{
		{"locale_case", []string{"locale"}, false, "PRİNT"},
		{"locale_sort", []string{}, true, "zlib"},
		{"locale_printf", []string{"locale"}, false, "0,75"},
	} {
		t.Run(tc.crate, func(t *testing.T) {
			rep, r := check(t, fixture(tc.crate))
			if !slices.Equal(rep.Culprits, []string{"locale"}) || rep.Nondeterministic {
				t.Fatalf("culprits %v (nondeterministic %v), want [locale]\n%s\n%s", rep.Culprits, rep.Nondeterministic, r.stdout, r.stderr)
			}
			for _, a := range rep.Artifacts {
				if !slices.Equal(a.EvidenceFactors, tc.evidence) && !(len(tc.evidence) == 0 && a.EvidenceFactors == nil) {
					t.Errorf("%s: evidence names %v, want %v", a.Path, a.EvidenceFactors, tc.evidence)
				}
				if !strings.Contains(a.Evidence, tc.diff) {
					t.Errorf("%s: evidence text lacks %q:\n%s", a.Path, tc.diff, a.Evidence)
				}
				if tc.hint && !slices.Equal(a.HintFactors, []string{"locale"}) {
					t.Errorf("%s: hints %v, want [locale]", a.Path, a.HintFactors)
				}
			}
			if tc.hint && rep.Builds > 12 {
				t.Errorf("%d builds with the hint, want at most 12", rep.Builds)
			}
			t.Logf("%s: %v in %d builds", tc.crate, rep.Culprits, rep.Builds)
		})
	}
}

// TestCheckPID checks builds that name a file after a shell's PID ($$): a
// configure script compiling conftest$$.c (the name reaches the binary's
// symbol table) and a cargo build script running sh -c 'echo $$'. With the
// PIDs normalized they are reproducible under every other factor; with every
// factor varied they are blamed on pid, not called nondeterministic, and the
// evidence shows the two names.
func TestCheckPID(t *testing.T) {
	names := regexp.MustCompile(`conftest[0-9]+`)
	for _, crate := range []string{"pid_shell", "pid"} {
		t.Run(crate, func(t *testing.T) {
			rep, r := check(t, fixture(crate), "--vary", "all,-pid")
			if !rep.Reproducible || rep.Nondeterministic {
				t.Fatalf("--vary all,-pid: reproducible %v, nondeterministic %v, culprits %v\n%s", rep.Reproducible, rep.Nondeterministic, rep.Culprits, r.stdout)
			}
			rep, r = check(t, fixture(crate))
			if !slices.Equal(rep.Culprits, []string{"pid"}) || rep.Nondeterministic {
				t.Fatalf("culprits %v (nondeterministic %v), want [pid]\n%s", rep.Culprits, rep.Nondeterministic, r.stdout)
			}
			for _, a := range rep.Artifacts {
				seen := map[string]bool{}
				for _, n := range names.FindAllString(a.Evidence, -1) {
					seen[n] = true
				}
				// The normalized build's first child is PID 101, a
				// perturbed one's 1001 to 2000: one name of each.
				three, four := false, false
				for n := range seen {
					three = three || regexp.MustCompile(`^conftest1[0-9]{2}$`).MatchString(n)
					four = four || regexp.MustCompile(`^conftest[12][0-9]{3}$`).MatchString(n)
				}
				if !three || !four {
					t.Errorf("%s: evidence does not show both names %v:\n%s", a.Path, seen, a.Evidence)
				}
			}
			t.Logf("%s: %v in %d builds", crate, rep.Culprits, rep.Builds)
		})
	}
}
