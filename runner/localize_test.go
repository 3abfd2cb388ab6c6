package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/reprobox/reprobox/policies"
)

// writeTree writes a cargo target tree like testdata/crates/sysgen's: a
// build script generating bindings.rs with derive, the -sys crate, a wrapper
// and a binary. Fingerprint prints are the hex cargo writes; deps give the
// decimal of the little-endian u64 of a dep's print.
func writeTree(t *testing.T, root, derive string) {
	t.Helper()
	p := filepath.Join(root, "target", "release")
	files := map[string]string{
		".fingerprint/gen-sys-1111111111111111/build-script-build-script-build":          "0100000000000000",
		".fingerprint/gen-sys-1111111111111111/build-script-build-script-build.json":     `{"deps":[]}`,
		".fingerprint/gen-sys-2222222222222222/run-build-script-build-script-build":      "0200000000000000",
		".fingerprint/gen-sys-2222222222222222/run-build-script-build-script-build.json": `{"deps":[[9,"build_script_build",false,1]]}`,
		".fingerprint/gen-sys-3333333333333333/lib-gen_sys":                              "0300000000000000",
		".fingerprint/gen-sys-3333333333333333/lib-gen_sys.json":                         `{"deps":[[9,"build_script_build",false,2]]}`,
		".fingerprint/wrapper-4444444444444444/lib-wrapper":                              "0400000000000000",
		".fingerprint/wrapper-4444444444444444/lib-wrapper.json":                         `{"deps":[[9,"gen_sys",false,3]]}`,
		".fingerprint/app-5555555555555555/bin-app":                                      "0500000000000000",
		".fingerprint/app-5555555555555555/bin-app.json":                                 `{"deps":[[9,"wrapper",false,4]]}`,
		"build/gen-sys-1111111111111111/build-script-build":                              "script",
		"build/gen-sys-2222222222222222/out/bindings.rs":                                 derive + "\npub struct Record;\n",
		"build/gen-sys-2222222222222222/output":                                          "cargo:rerun-if-changed=build.rs\n",
		"deps/libgen_sys-3333333333333333.rlib":                                          "rlib" + derive,
		"deps/libgen_sys-3333333333333333.rmeta":                                         "rmeta" + derive,
		"deps/libwrapper-4444444444444444.rlib":                                          "wrapper" + derive,
		"deps/app-5555555555555555":                                                      "app" + derive,
	}
	for name, content := range files {
		f := filepath.Join(p, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocalizeInPlace(t *testing.T) {
	a, b := &Outcome{Dir: t.TempDir()}, &Outcome{Dir: t.TempDir()}
	writeTree(t, filepath.Join(a.Dir, "upper"), "#[derive(Debug, Clone)]")
	writeTree(t, filepath.Join(b.Dir, "upper"), "#[derive(Clone, Debug)]")
	l, err := Localize(context.Background(), a, b, LocalizeOptions{ArtifactA: "", EvidenceLines: 20})
	if err != nil {
		t.Fatal(err)
	}
	want := "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs; then gen-sys (lib), wrapper (lib), app (bin)"
	if l == nil || l.Summary != want {
		t.Fatalf("got %+v\nwant %s", l, want)
	}
	for _, line := range []string{"-#[derive(Debug, Clone)]", "+#[derive(Clone, Debug)]"} {
		if !strings.Contains(l.Evidence, line) {
			t.Errorf("evidence lacks %q:\n%s", line, l.Evidence)
		}
	}
	// Identical trees: nothing to localize.
	if l, err := Localize(context.Background(), a, a, LocalizeOptions{}); err != nil || l != nil {
		t.Errorf("same tree: %v, %v", l, err)
	}
	// No target tree at all.
	if _, err := Localize(context.Background(), &Outcome{Dir: t.TempDir()}, b, LocalizeOptions{}); !errors.Is(err, ErrNoIntermediates) {
		t.Errorf("empty tree: %v, want ErrNoIntermediates", err)
	}
}

// TestIntermediatesNoFollow is what a hostile build script would leave in
// its tree for reprobox to read on the host: outputs that are links to host
// files, an OUT_DIR that is a link to /etc, and a deps file replaced by a
// link. None may be read or kept.
func TestIntermediatesNoFollow(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:SECRET:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "upper")
	writeTree(t, root, "#[derive(Debug)]")
	p := filepath.Join(root, "target", "release")
	links := map[string]string{
		"build/gen-sys-2222222222222222/out/secret.rs":   secret,
		"deps/libwrapper-4444444444444444.rmeta":         secret,
		"build/gen-sys-1111111111111111/out":             filepath.Dir(secret),
		".fingerprint/app-5555555555555555/bin-app.json": secret,
	}
	for name, target := range links {
		os.Remove(filepath.Join(p, name))
		if err := os.Symlink(target, filepath.Join(p, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The whole target directory behind a link in a second tree.
	root2 := filepath.Join(t.TempDir(), "upper")
	if err := os.MkdirAll(root2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "target"), filepath.Join(root2, "target")); err != nil {
		t.Fatal(err)
	}
	keepDir := filepath.Join(t.TempDir(), "kept")
	k := newKeeper(keepDir)
	in, err := scanIntermediates(context.Background(), root, k)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range in.Tree.Units {
		for _, f := range u.Files {
			if strings.Contains(f.Name, "secret") || f.Name == "libwrapper.rmeta" {
				t.Errorf("a link was read: %s", f.Path)
			}
		}
	}
	// The app unit lost its fingerprint JSON to a link: it is not a unit.
	if len(in.Tree.Units) != 4 {
		t.Errorf("%d units, want 4", len(in.Tree.Units))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(secret, &st); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(keepDir)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(keepDir, e.Name()))
		if strings.Contains(string(data), "SECRET") {
			t.Errorf("kept %s holds the host file", e.Name())
		}
	}
	if _, err := scanIntermediates(context.Background(), root2, nil); !errors.Is(err, ErrNoIntermediates) {
		t.Errorf("target behind a link: %v, want ErrNoIntermediates", err)
	}
	// Direct opens: a link, and a path climbing out of the root.
	if _, err := openInRoot(p, "build/gen-sys-2222222222222222/out/secret.rs"); err == nil {
		t.Error("opened a link")
	}
	if f, err := openInRoot(p, "../../../../../../.."+secret); err == nil {
		f.Close()
		t.Error("opened a path outside the root")
	}
	if _, err := openInRoot(p, "build/gen-sys-1111111111111111/out/shadow"); err == nil {
		t.Error("opened through a linked directory")
	}
}

// TestKeeperLinksOnce: outputs equal in two builds are kept once, as links
// to the build's own file (no second copy on disk).
func TestKeeperLinksOnce(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "upper"), filepath.Join(t.TempDir(), "upper")
	writeTree(t, a, "#[derive(Debug, Clone)]")
	writeTree(t, b, "#[derive(Debug, Clone)]")
	k := newKeeper(filepath.Join(filepath.Dir(a), "kept"))
	ia, err := scanIntermediates(context.Background(), a, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scanIntermediates(context.Background(), b, k); err != nil {
		t.Fatal(err)
	}
	if k.bytes != ia.Bytes {
		t.Errorf("kept %d bytes for two equal trees of %d", k.bytes, ia.Bytes)
	}
	src := filepath.Join(a, "target/release/deps/libgen_sys-3333333333333333.rlib")
	var s1, s2 syscall.Stat_t
	if err := syscall.Stat(src, &s1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(ia.files["target/release/deps/libgen_sys-3333333333333333.rlib"], &s2); err != nil {
		t.Fatal(err)
	}
	if s1.Ino != s2.Ino {
		t.Errorf("kept a copy (inode %d), not a link to %d", s2.Ino, s1.Ino)
	}
}

// fakeLocalizedCheck runs the check logic with builds that write a sysgen
// target tree on disk, whose derive line m chooses, and keep their
// intermediates as real builds do.
func fakeLocalizedCheck(t *testing.T, vary []string, m func(set []string, n int) string) *CheckReport {
	t.Helper()
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	c := newChecker(&Runner{}, p, CheckOptions{Vary: vary, Seed: 1, Jobs: 1, EvidenceLines: 40}, t.TempDir())
	c.make = func(ctx context.Context, n int, set []string) (*observation, error) {
		o := &Outcome{Dir: filepath.Join(t.TempDir(), "b")}
		derive := m(set, n)
		writeTree(t, filepath.Join(o.Dir, "upper"), derive)
		obs := &observation{hashes: map[string]string{"target/release/app": "app" + derive}, files: map[string]string{}}
		obs.inter, obs.interErr = c.keepIntermediates(ctx, o, set, obs)
		if err := os.RemoveAll(o.Dir); err != nil { // as sandboxBuild does
			return nil, err
		}
		return obs, nil
	}
	c.diff = func(context.Context, string, *observation, *observation, policies.Settings) ([]string, string, error) {
		return nil, "artifact diff\n", nil
	}
	rep, err := c.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestCheckLocalizesNondeterministic(t *testing.T) {
	rep := fakeLocalizedCheck(t, []string{"hostname", "user"}, func(_ []string, n int) string {
		if n%2 == 0 {
			return "#[derive(Debug, Clone)]"
		}
		return "#[derive(Clone, Debug)]"
	})
	a := rep.Artifacts[0]
	if !a.Nondeterministic || a.Localization == nil {
		t.Fatalf("nondeterministic %v, localization %v (%s)", a.Nondeterministic, a.Localization, a.LocalizationError)
	}
	if !strings.HasPrefix(a.Evidence, "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs") ||
		!strings.Contains(a.Evidence, "+#[derive(") {
		t.Errorf("evidence:\n%s", a.Evidence)
	}
	if in := rep.Intermediates; in == nil || in.KeptBytes == 0 || in.CopiedBytes != 0 {
		t.Errorf("intermediates %+v", rep.Intermediates)
	}
}

// Two culprits: each is localized, the first in full, the other by its
// summary.
func TestCheckLocalizesEachCulprit(t *testing.T) {
	rep := fakeLocalizedCheck(t, []string{"hostname", "user", "home"}, func(set []string, _ int) string {
		d := "Debug"
		for _, f := range []string{"hostname", "user"} {
			if slices.Contains(set, f) {
				d += ", " + f
			}
		}
		return "#[derive(" + d + ")]"
	})
	a := rep.Artifacts[0]
	if !slices.Equal(a.Culprits, []string{"hostname", "user"}) {
		t.Fatalf("culprits %v", a.Culprits)
	}
	if len(a.CulpritLocalizations) != 2 || a.CulpritLocalizations["user"] == nil {
		t.Fatalf("culprit localizations %v", a.CulpritLocalizations)
	}
	// Repeats whose artifacts equal the first build of their settings are
	// never compared: their intermediates are not kept.
	if in := rep.Intermediates; in == nil || in.Builds >= rep.Builds {
		t.Errorf("intermediates of %+v builds kept, of %d", rep.Intermediates, rep.Builds)
	}
	for _, want := range []string{"culprit hostname: first divergence: build script of gen-sys (run)", "culprit user: first divergence", "artifact diff"} {
		if !strings.Contains(a.Evidence, want) {
			t.Errorf("evidence lacks %q:\n%s", want, a.Evidence)
		}
	}
}

// BenchmarkScanIntermediates reads and keeps (links) a synthetic target
// tree of 200 library units of 1 MiB rlib and 256 KiB rmeta each: the cost a
// check pays per build for localization, mostly hashing.
func BenchmarkScanIntermediates(b *testing.B) {
	root := filepath.Join(b.TempDir(), "upper")
	p := filepath.Join(root, "target", "release")
	rlib, rmeta := make([]byte, 1<<20), make([]byte, 256<<10)
	for i := 0; i < 200; i++ {
		h := fmt.Sprintf("%016x", i+1)
		fp := filepath.Join(p, ".fingerprint", fmt.Sprintf("c%d-%s", i, h))
		if err := os.MkdirAll(fp, 0o755); err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(fp, fmt.Sprintf("lib-c%d", i)), []byte(h), 0o644)
		os.WriteFile(filepath.Join(fp, fmt.Sprintf("lib-c%d.json", i)), []byte(`{"deps":[]}`), 0o644)
		os.MkdirAll(filepath.Join(p, "deps"), 0o755)
		rlib[0], rmeta[0] = byte(i), byte(i)
		os.WriteFile(filepath.Join(p, "deps", fmt.Sprintf("libc%d-%s.rlib", i, h)), rlib, 0o644)
		os.WriteFile(filepath.Join(p, "deps", fmt.Sprintf("libc%d-%s.rmeta", i, h)), rmeta, 0o644)
	}
	b.SetBytes(200 * (1<<20 + 256<<10))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := newKeeper(filepath.Join(b.TempDir(), "kept"))
		in, err := scanIntermediates(context.Background(), root, k)
		if err != nil || len(in.Tree.Units) != 200 {
			b.Fatal(err)
		}
	}
}
