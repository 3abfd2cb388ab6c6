package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

// allFeatures are sandbox's Feature constants, written out: sandbox.AllFeatures
// and libcontainer.Features must hold each.
var allFeatures = []sandbox.Feature{sandbox.FeatureReverseDirents, sandbox.FeaturePersonality, sandbox.FeatureUmask,
	sandbox.FeatureCPUSet, sandbox.FeatureUTSNames, sandbox.FeatureUser, sandbox.FeatureFiles, sandbox.FeaturePID}

// TestNeedsAreFeatures checks that policies names sandbox's features as
// sandbox does (policies may not import sandbox, so it repeats the names).
func TestNeedsAreFeatures(t *testing.T) {
	for _, f := range policies.Factors {
		for _, n := range f.Needs {
			if !slices.Contains(allFeatures, sandbox.Feature(n)) {
				t.Errorf("factor %s needs %q, not a sandbox.Feature", f.Name, n)
			}
		}
	}
	if policies.AnnotationLastPID != sandbox.AnnotationLastPID || policies.MaxLastPID != sandbox.MaxLastPID {
		t.Errorf("policies' last-PID annotation %q (up to %d) is not sandbox's %q (up to %d)",
			policies.AnnotationLastPID, policies.MaxLastPID, sandbox.AnnotationLastPID, sandbox.MaxLastPID)
	}
	sorted := func(fs []sandbox.Feature) []sandbox.Feature { fs = slices.Clone(fs); slices.Sort(fs); return fs }
	if !slices.Equal(sorted(sandbox.AllFeatures), sorted(allFeatures)) {
		t.Errorf("sandbox.AllFeatures = %v, want every feature %v", sandbox.AllFeatures, allFeatures)
	}
	if !slices.Equal(sorted(libcontainer.Features), sorted(allFeatures)) {
		t.Errorf("libcontainer.Features = %v, want every feature %v", libcontainer.Features, allFeatures)
	}
}

func TestFactorsBackend(t *testing.T) {
	r := reprobox(t, ".", "factors", "--backend", "libcontainer")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if n := strings.Count(r.stdout, "libcontainer: can vary it\n"); n != len(policies.Factors) {
		t.Errorf("libcontainer can vary %d factors, want all %d:\n%s", n, len(policies.Factors), r.stdout)
	}
	if !strings.Contains(r.stdout, "needs: personality\n") || !strings.Contains(r.stdout, "needs: nothing beyond an OCI spec\n") {
		t.Errorf("factors does not print the needs:\n%s", r.stdout)
	}
	if r := reprobox(t, ".", "factors", "--backend", "nosuch"); r.code != 2 || !strings.Contains(r.stderr, "known: ") {
		t.Errorf("unknown backend: exit %d, %s", r.code, r.stderr)
	}
}

// TestFactorsPartialBackend lists a backend that lacks personality.
func TestFactorsPartialBackend(t *testing.T) {
	backendFeatures["test-partial"] = []sandbox.Feature{sandbox.FeatureFiles, sandbox.FeatureUmask}
	defer delete(backendFeatures, "test-partial")
	var out bytes.Buffer
	if err := runFactors(&out, factorsOptions{seed: 1, backend: "test-partial"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"time         normalized:", "test-partial: can vary it\n", // time needs files
		"test-partial: cannot vary it (lacks personality)\n", // aslr, kernel
		"test-partial: cannot vary it (lacks uts-names)\n",   // hostname
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
