package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/policies"
)

// fakeBadCommit gives a bisection the builds of a bad commit as buildOne
// leaves them: artifacts kept under keep/idx and the intermediates of each
// build kept from its target tree (written by tree) before the tree is
// removed.
func fakeBadCommit(t *testing.T, tree func(root, derive string), derives ...string) (*bisection, []*BisectBuild) {
	t.Helper()
	tmp := t.TempDir()
	b := &bisection{r: &Runner{}, opts: BisectOptions{EvidenceLines: 40}, tmp: tmp}
	keep := filepath.Join(tmp, "kept-c")
	var builds []*BisectBuild
	for i, derive := range derives {
		o := &Outcome{Dir: filepath.Join(t.TempDir(), "b")}
		tree(filepath.Join(o.Dir, "upper"), derive)
		art := filepath.Join(keep, strconv.Itoa(i), "app")
		content := []byte("app " + derive + "\n")
		if err := os.MkdirAll(filepath.Dir(art), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(art, content, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		bb := &BisectBuild{Kind: "normalized", Artifacts: map[string]string{"target/release/app": hex.EncodeToString(sum[:])},
			files: map[string]string{"target/release/app": art}}
		b.keepIntermediates(context.Background(), o, keep, bb)
		if err := os.RemoveAll(o.Dir); err != nil { // as buildOne does
			t.Fatal(err)
		}
		builds = append(builds, bb)
	}
	base := policies.Normalized(policies.DefaultSourceDateEpoch)
	b.lastBad = &badEvidence{commit: "c", base: base, vs: base, builds: builds}
	return b, builds
}

// The first bad commit's evidence names the build script whose generated
// source differs, with the reordered derive line, from intermediates kept
// after the builds' directories were removed.
func TestBisectEvidenceLocalizes(t *testing.T) {
	tree := func(root, derive string) { writeTree(t, root, derive) }
	b, builds := fakeBadCommit(t, tree, "#[derive(Debug, Clone)]", "#[derive(Debug, Clone)]", "#[derive(Clone, Debug)]")
	if builds[0].inter == nil || builds[2].inter == nil {
		t.Fatalf("intermediates not kept: %v, %v", builds[0].interErr, builds[2].interErr)
	}
	if builds[1].inter != nil {
		t.Errorf("a repeat with the same artifacts kept its intermediates")
	}
	rep := &BisectReport{}
	if err := b.evidence(context.Background(), rep, Commit{Hash: "c"}); err != nil {
		t.Fatal(err)
	}
	l := rep.Localization
	if l == nil {
		t.Fatalf("no localization (%s)", rep.LocalizationError)
	}
	want := "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs; then gen-sys (lib), wrapper (lib), app (bin)"
	if l.Summary != want {
		t.Errorf("summary %q\nwant %q", l.Summary, want)
	}
	for _, line := range []string{"-#[derive(Debug, Clone)]", "+#[derive(Clone, Debug)]"} {
		if !strings.Contains(l.Evidence, line) {
			t.Errorf("localization evidence lacks %q:\n%s", line, l.Evidence)
		}
	}
	if !strings.Contains(rep.Evidence, "target/release/app") {
		t.Errorf("the artifact's diff is gone:\n%s", rep.Evidence)
	}
}

// Builds without a cargo target tree: the evidence stays, with no
// localization and no error.
func TestBisectEvidenceNoIntermediates(t *testing.T) {
	tree := func(root, _ string) {
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := fakeBadCommit(t, tree, "a", "b")
	rep := &BisectReport{}
	if err := b.evidence(context.Background(), rep, Commit{Hash: "c"}); err != nil {
		t.Fatal(err)
	}
	if rep.Localization != nil || rep.LocalizationError != "" || rep.Evidence == "" {
		t.Errorf("localization %v, error %q, evidence %q", rep.Localization, rep.LocalizationError, rep.Evidence)
	}
}

// verify --repeats: a nondeterministic artifact is localized between the
// first build and the repeat that differs, from the intermediates each kept
// before its tree went.
func TestVerifyLocalizesRepeat(t *testing.T) {
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	outcome := func(derive string) *Outcome {
		o := &Outcome{Dir: t.TempDir(), Artifacts: []Artifact{{Path: "target/release/app", SHA256: "sum " + derive}}}
		tree := filepath.Join(t.TempDir(), "upper")
		writeTree(t, tree, derive)
		o.tree = tree
		keepForRepeat(context.Background(), o)
		o.tree = ""
		if err := os.RemoveAll(tree); err != nil { // as the backend does
			t.Fatal(err)
		}
		return o
	}
	first, same, other := outcome("#[derive(Debug, Clone)]"), outcome("#[derive(Debug, Clone)]"), outcome("#[derive(Clone, Debug)]")
	locs, errs := map[string]*Localization{}, map[string]string{}
	fresh := map[string]string{"target/release/app": other.Artifacts[0].SHA256}
	if err := localizeRepeat(context.Background(), p, first, other, fresh, locs, errs); err != nil {
		t.Fatal(err)
	}
	l := locs["target/release/app"]
	if l == nil || !strings.HasPrefix(l.Summary, "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs") ||
		!strings.Contains(l.Evidence, "+#[derive(Clone, Debug)]") {
		t.Fatalf("localization %+v (%v)", l, errs)
	}
	// Same units: no localization, and a note why.
	locs, errs = map[string]*Localization{}, map[string]string{}
	if err := localizeRepeat(context.Background(), p, first, same, fresh, locs, errs); err != nil {
		t.Fatal(err)
	}
	if locs["target/release/app"] != nil || !strings.Contains(errs["target/release/app"], "cargo units are all the same") {
		t.Errorf("same trees: %v, %v", locs, errs)
	}
	// No cargo tree (not a cargo build): nothing, silently.
	locs, errs = map[string]*Localization{}, map[string]string{}
	if err := localizeRepeat(context.Background(), p, &Outcome{Dir: t.TempDir()}, other, fresh, locs, errs); err != nil || len(locs)+len(errs) != 0 {
		t.Errorf("no tree: %v, %v, %v", locs, errs, err)
	}
}
