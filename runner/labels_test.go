package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// TestLabelsFromFactors checks the evidence the diff looks for, each
// factor's own (policies.Factor.Evidence): for every single factor perturbed
// and for all of them, the labels hold the values that name each perturbed
// factor in real artifacts (the rules the runner once held itself, and the
// kinds added since), and nothing for a factor left alone; and the time
// ranges are the runner's former rule.
func TestLabelsFromFactors(t *testing.T) {
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	base.Env = []string{"CONFIG_VAR=x"}
	sets := [][]string{policies.Names(), nil}
	for _, n := range policies.Names() {
		sets = append(sets, []string{n})
	}
	for _, set := range sets {
		for _, seed := range []uint64{1, 99} {
			vs := policies.Perturb(base, set, seed)
			got, want := labelSet(Labels(base, vs)), labelSet(mustLabel(base, vs))
			for f, vals := range got {
				if _, ok := want[f]; !ok {
					t.Errorf("%v seed %d: labels for %s (%v), which is not perturbed or has no evidence", set, seed, f, vals)
				}
			}
			for f, vals := range want {
				for _, v := range vals {
					if !slices.Contains(got[f], v) {
						t.Errorf("%v seed %d: labels for %s %v lack %q", set, seed, f, got[f], v)
					}
				}
			}
			gotR, wantR := TimeRanges(base, vs), rulesTimeRanges(base, vs)
			if !slices.Equal(gotR, wantR) {
				t.Errorf("%v seed %d: time ranges %v, want %v", set, seed, gotR, wantR)
			}
		}
	}
}

func labelSet(ls []diff.Label) map[string][]string {
	m := map[string][]string{}
	for _, l := range ls {
		m[l.Factor] = append(m[l.Factor], l.Values...)
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m
}

// mustLabel are values the labels must hold for each perturbed factor.
func mustLabel(base, vs policies.Settings) []diff.Label {
	var ls []diff.Label
	add := func(factor string, values ...string) {
		ls = append(ls, diff.Label{Factor: factor, Values: values})
	}
	if vs.BuildPath != base.BuildPath {
		add("build_path", vs.BuildPath)
	}
	if vs.Hostname != base.Hostname {
		add("hostname", vs.Hostname)
	}
	if vs.Domainname != base.Domainname {
		add("domainname", vs.Domainname)
	}
	if vs.User != base.User {
		add("user", vs.User, fmt.Sprintf("uid=%d", vs.UID), fmt.Sprintf("gid=%d", vs.GID), fmt.Sprintf("%d:%d", vs.UID, vs.GID))
	}
	if vs.Home != base.Home {
		add("home", vs.Home)
	}
	if vs.TZ != base.TZ {
		add("timezone", vs.TZ, "+1345", "+1245")
	}
	if vs.Locale != base.Locale {
		add("locale", vs.Locale, "fr_FR", "tr_TR.UTF-8", "et_EE.UTF-8", "Rİ", "İN", "Aucun fichier ou dossier de ce type")
	}
	if vs.Umask != base.Umask {
		add("umask", "0664", "0775", "-rw-rw-r--", "drwxrwxr-x")
	}
	if vs.CPUs != base.CPUs {
		add("num_cpus", "-j1", "1 thread")
	}
	if vs.Path != base.Path {
		add("exec_path", strings.TrimPrefix(vs.Path, base.Path+":"))
	}
	if vs.Uname26 != base.Uname26 {
		add("kernel", "2.6.")
	}
	for _, kv := range vs.Env {
		if !slices.Contains(base.Env, kv) {
			k, v, _ := strings.Cut(kv, "=")
			add("env", k, v)
		}
	}
	return ls
}

func rulesTimeRanges(base, vs policies.Settings) []diff.TimeRange {
	if vs.Clock == base.Clock {
		return nil
	}
	from := time.Unix(vs.Clock, 0)
	return []diff.TimeRange{{Factor: "time", From: from.Add(-time.Hour), To: from.Add(48 * time.Hour)}}
}

// partialBackend applies every feature but personality.
type partialBackend struct{ sandbox.Backend }

func (partialBackend) Features() []sandbox.Feature {
	return []sandbox.Feature{sandbox.FeatureReverseDirents, sandbox.FeatureUmask, sandbox.FeatureCPUSet,
		sandbox.FeatureUTSNames, sandbox.FeatureUser, sandbox.FeatureFiles}
}

// TestCheckRefusesWhatTheBackendCannotVary checks that check and bisect stop
// before any build when a factor needs what the backend says it lacks.
func TestCheckRefusesWhatTheBackendCannotVary(t *testing.T) {
	r := &Runner{Backend: partialBackend{}, WorkDir: t.TempDir()}
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	for _, vary := range [][]string{{"aslr"}, {"time", "kernel"}, policies.Names()} {
		_, err := r.Check(context.Background(), p, CheckOptions{Vary: vary, Seed: 1}, "")
		if !errors.Is(err, sandbox.ErrUnsupported) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "personality") {
			t.Errorf("check --vary %v: %v; want ErrUnsupported and ErrConfig naming personality", vary, err)
		}
		_, err = r.Bisect(context.Background(), BisectOptions{Vary: vary, Dir: t.TempDir(), Good: "HEAD", Confidence: 0.99})
		if !errors.Is(err, sandbox.ErrUnsupported) {
			t.Errorf("bisect --vary %v: %v; want ErrUnsupported", vary, err)
		}
	}
	if err := r.checkVary([]string{"time", "umask", "fileordering", "num_cpus", "hostname", "user", "env"}); err != nil {
		t.Errorf("factors the backend can vary refused: %v", err)
	}
	if err := (&Runner{Backend: struct{ sandbox.Backend }{}}).checkVary(policies.Names()); err != nil {
		t.Errorf("a backend without Features refused: %v", err)
	}
}
