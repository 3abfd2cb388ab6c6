package cargo

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// fakeTree is a target tree in memory: path → content. The file's SHA256 is
// its content, which is enough for comparison.
type fakeTree map[string]string

func (f fakeTree) build(t testing.TB) *Tree {
	t.Helper()
	var files []File
	for p, c := range f {
		files = append(files, File{Path: p, Size: int64(len(c)), SHA256: c})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	tr, err := Build(files, func(p string) ([]byte, error) {
		c, ok := f[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(c), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// unit adds a unit's fingerprint files: its own fingerprint print (a
// number) and the prints of its deps.
func (f fakeTree) unit(profile, pkgdir, name string, print uint64, deps ...uint64) {
	dir := path.Join(profile, ".fingerprint", pkgdir)
	f[dir+"/"+name] = hexLE(print)
	var ds [][]any
	for _, d := range deps {
		ds = append(ds, []any{1234, "x", false, d})
	}
	js, _ := json.Marshal(map[string]any{"rustc": 1, "deps": ds})
	f[dir+"/"+name+".json"] = string(js)
	f[dir+"/invoked.timestamp"] = "ts"
	f[dir+"/dep-"+name] = "dep"
}

// sysgen is the target tree of testdata/crates/sysgen (as cargo 1.9x lays it
// out), with hashes h (the metadata hashes differ per build) and the
// generated derive line.
func sysgen(h string, derive string, root string) fakeTree {
	f := fakeTree{}
	p := "target/release"
	hs := func(n int) string { return fmt.Sprintf("%s%02d", h, n) }
	f.unit(p, "gen-sys-"+hs(1), "build-script-build-script-build", 1)
	f.unit(p, "gen-sys-"+hs(2), "run-build-script-build-script-build", 2, 1)
	f.unit(p, "gen-sys-"+hs(3), "lib-gen_sys", 3, 2)
	f.unit(p, "wrapper-"+hs(4), "lib-wrapper", 4, 3)
	f.unit(p, "app-"+hs(5), "bin-app", 5, 4)
	f[p+"/build/gen-sys-"+hs(1)+"/build-script-build"] = "script"
	f[p+"/build/gen-sys-"+hs(1)+"/build_script_build-"+hs(1)] = "script"
	f[p+"/build/gen-sys-"+hs(1)+"/build_script_build-"+hs(1)+".d"] = root + "/gen-sys/build.rs"
	f[p+"/build/gen-sys-"+hs(2)+"/out/bindings.rs"] = derive
	f[p+"/build/gen-sys-"+hs(2)+"/output"] = "cargo:rerun-if-changed=build.rs"
	f[p+"/build/gen-sys-"+hs(2)+"/root-output"] = root + "/target/release/build/gen-sys-" + hs(2) + "/out"
	f[p+"/build/gen-sys-"+hs(2)+"/stderr"] = ""
	f[p+"/deps/libgen_sys-"+hs(3)+".rlib"] = "rlib " + derive
	f[p+"/deps/libgen_sys-"+hs(3)+".rmeta"] = "rmeta " + derive
	f[p+"/deps/gen_sys-"+hs(3)+".d"] = root
	f[p+"/deps/libwrapper-"+hs(4)+".rlib"] = "wrapper rlib " + derive
	f[p+"/deps/libwrapper-"+hs(4)+".rmeta"] = "wrapper rmeta" // the wrapper's API does not change
	f[p+"/deps/app-"+hs(5)] = "app " + derive
	f[p+"/app"] = "app " + derive
	f[p+"/incremental/x"] = "noise"
	f[p+"/.cargo-lock"] = ""
	return f
}

func TestCompareSysgen(t *testing.T) {
	a := sysgen("0123456789abcd", "#[derive(Debug, Clone)]", "/build/src").build(t)
	b := sysgen("fedcba98765432", "#[derive(Clone, Debug)]", "/build/other/src").build(t)
	if len(a.Units) != 5 {
		t.Fatalf("%d units, want 5: %+v", len(a.Units), a.Units)
	}
	lib := a.Unit("target/release gen-sys lib gen_sys")
	if lib == nil || !slices.Equal(lib.Deps, []string{"target/release gen-sys build-script-run build-script-build"}) {
		t.Fatalf("gen-sys lib: %+v", lib)
	}
	var names []string
	for _, f := range lib.Files {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"libgen_sys.rlib", "libgen_sys.rmeta"}) {
		t.Errorf("gen-sys lib files %v", names)
	}
	d := Compare(a, b, "app #[derive(Debug, Clone)]", "app #[derive(Clone, Debug)]")
	if d == nil {
		t.Fatal("no divergence")
	}
	want := "first divergence: build script of gen-sys (run), OUT_DIR bindings.rs; then gen-sys (lib), wrapper (lib), app (bin)"
	if got := d.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if d.Units != 5 || d.Differing != 4 || len(d.First) != 1 {
		t.Errorf("units %d differing %d first %d", d.Units, d.Differing, len(d.First))
	}
	if f := d.First[0].Files; len(f) != 1 || f[0].A != "target/release/build/gen-sys-0123456789abcd02/out/bindings.rs" ||
		f[0].B != "target/release/build/gen-sys-fedcba9876543202/out/bindings.rs" {
		t.Errorf("first divergence files %+v", f)
	}
	// Same content, different hashes and root: no divergence.
	c := sysgen("fedcba98765432", "#[derive(Debug, Clone)]", "/elsewhere").build(t)
	if d := Compare(a, c, "", ""); d != nil {
		t.Errorf("identical builds diverge: %s", d)
	}
}

// TestCompareDependency: only a leaf dependency's rlib differs (it embeds
// the build path); the chain ends at the binary.
func TestCompareDependency(t *testing.T) {
	tree := func(h, dir string) *Tree {
		f := fakeTree{}
		p := "target/release"
		f.unit(p, "pathdep-"+h+"01", "lib-pathdep", 11)
		f.unit(p, "tool-"+h+"02", "bin-tool", 12, 11)
		f[p+"/deps/libpathdep-"+h+"01.rlib"] = "rlib " + dir
		f[p+"/deps/libpathdep-"+h+"01.rmeta"] = "rmeta " + dir
		f[p+"/deps/tool-"+h+"02"] = "tool " + dir
		return f.build(t)
	}
	d := Compare(tree("00000000000000", "/build/src"), tree("11111111111111", "/build/var/src"), "tool /build/src", "tool /build/var/src")
	want := "first divergence: pathdep (lib), libpathdep.rmeta, libpathdep.rlib; then tool (bin)"
	if d.String() != want {
		t.Errorf("got  %s\nwant %s", d, want)
	}
}

// TestCompareXPy is a synthetic x.py tree: the same crate differs in stage1
// std and stage2 std; stage1's is first, whatever the names.
func TestCompareXPy(t *testing.T) {
	tree := func(h, v string) *Tree {
		f := fakeTree{}
		host := "build/x86_64-unknown-linux-gnu"
		for i, st := range []string{"stage0-std", "stage0-rustc", "stage1-std", "stage1-rustc", "stage2-std"} {
			p := host + "/" + st + "/x86_64-unknown-linux-gnu/release"
			n := uint64(i * 10)
			f.unit(p, "core-"+h+"01", "lib-core", n+1)
			f.unit(p, "alloc-"+h+"02", "lib-alloc", n+2, n+1)
			content := "same"
			if strings.HasPrefix(st, "stage1-std") || strings.HasPrefix(st, "stage2") {
				content = v
			}
			f[p+"/deps/libcore-"+h+"01.rlib"] = "core" + st
			f[p+"/deps/liballoc-"+h+"02.rlib"] = "alloc " + content
		}
		return f.build(t)
	}
	d := Compare(tree("00000000000000", "a"), tree("11111111111111", "b"), "", "")
	if d == nil {
		t.Fatal("no divergence")
	}
	if len(d.First) != 1 || d.First[0].Unit != "stage1-std: alloc (lib)" {
		t.Errorf("first %+v", d.First)
	}
	if d.Differing != 2 {
		t.Errorf("differing %d, want 2", d.Differing)
	}
}

func TestClassify(t *testing.T) {
	for p, want := range map[string]Role{
		"target/release/deps/libfoo-0123456789abcdef.rlib":                                                                                     Output,
		"target/release/deps/foo-0123456789abcdef.d":                                                                                           Ignore,
		"target/release/build/foo-sys-0123456789abcdef/out/gen/bindings.rs":                                                                    Output,
		"target/release/build/foo-sys-0123456789abcdef/output":                                                                                 Output,
		"target/release/build/foo-sys-0123456789abcdef/root-output":                                                                            Ignore,
		"target/release/build/foo-sys-0123456789abcdef/invoked.timestamp":                                                                      Ignore,
		"target/release/.fingerprint/foo-0123456789abcdef/lib-foo":                                                                             Fingerprint,
		"target/release/.fingerprint/foo-0123456789abcdef/lib-foo.json":                                                                        Fingerprint,
		"target/release/.fingerprint/foo-0123456789abcdef/dep-lib-foo":                                                                         Ignore,
		"target/release/incremental/foo/x":                                                                                                     Ignore,
		"src/build/x/y":                                                                                                                        Ignore,
		"build/x86_64-unknown-linux-gnu/stage1-std/x86_64-unknown-linux-gnu/release/deps/libcore-0123456789abcdef.rlib":                        Output,
		"build/x86_64-unknown-linux-gnu/stage1-rustc/x86_64-unknown-linux-gnu/release/build/rustc_llvm-0123456789abcdef/output":                Output,
		"build/x86_64-unknown-linux-gnu/stage1-rustc/x86_64-unknown-linux-gnu/release/.fingerprint/rustc_llvm-0123456789abcdef/lib-rustc_llvm": Fingerprint,
		"build/x86_64-unknown-linux-gnu/stage1/lib/rustlib/x86_64-unknown-linux-gnu/lib/libstd-0123456789abcdef.so":                            Ignore,
	} {
		if got := Classify(p); got != want {
			t.Errorf("Classify(%s) = %d, want %d", p, got, want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	data, err := os.ReadFile("testdata/lib-wrapper.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFingerprint(data)
	if err != nil {
		t.Fatal(err)
	}
	// The hex cargo wrote in gen-sys's lib-gen_sys for this dep.
	if !slices.Equal(got, []string{"3d821f10254266fe"}) {
		t.Errorf("deps %v", got)
	}
	for _, bad := range []string{`{`, `{"deps":[[1,"x"]]}`, `{"deps":[[1,"x",false,"y"]]}`} {
		if _, err := ParseFingerprint([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzBuild(f *testing.F) {
	data, _ := os.ReadFile("testdata/lib-wrapper.json")
	f.Add("target/release/.fingerprint/wrapper-a0e9faf960f49faa/lib-wrapper", string(data), "target/release/deps/libwrapper-a0e9faf960f49faa.rlib")
	f.Add("t/.fingerprint/x-0000000000000000/run-build-script-build-script-build", `{"deps":[]}`, "t/build/x-0000000000000000/out/a")
	f.Fuzz(func(t *testing.T, fp, js, out string) {
		files := []File{{Path: fp}, {Path: fp + ".json"}, {Path: out, SHA256: "x"}}
		tr, err := Build(files, func(p string) ([]byte, error) {
			if strings.HasSuffix(p, ".json") {
				return []byte(js), nil
			}
			return []byte("00"), nil
		})
		if err != nil {
			return
		}
		_ = Compare(tr, &Tree{}, "", "").String()
		_ = Classify(out)
	})
}
