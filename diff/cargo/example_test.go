package cargo_test

import (
	"fmt"

	"github.com/reprobox/reprobox/diff/cargo"
)

// Two builds of a crate whose build script generated different code: the
// build script's run is where they first diverge.
func ExampleCompare() {
	build := func(hash, generated string) *cargo.Tree {
		prints := map[string]string{
			"target/release/.fingerprint/foo-sys-" + hash + "01/run-build-script-build-script-build":      "0100000000000000",
			"target/release/.fingerprint/foo-sys-" + hash + "01/run-build-script-build-script-build.json": `{"deps":[]}`,
			"target/release/.fingerprint/foo-sys-" + hash + "02/lib-foo_sys":                              "0200000000000000",
			"target/release/.fingerprint/foo-sys-" + hash + "02/lib-foo_sys.json":                         `{"deps":[[0,"build_script_build",false,1]]}`,
		}
		files := []cargo.File{
			{Path: "target/release/build/foo-sys-" + hash + "01/out/bindings.rs", SHA256: generated},
			{Path: "target/release/deps/libfoo_sys-" + hash + "02.rlib", SHA256: "rlib " + generated},
		}
		for p := range prints {
			files = append(files, cargo.File{Path: p})
		}
		t, err := cargo.Build(files, func(p string) ([]byte, error) { return []byte(prints[p]), nil })
		if err != nil {
			panic(err)
		}
		return t
	}
	d := cargo.Compare(build("00000000000000", "a"), build("11111111111111", "b"), "", "")
	fmt.Println(d)
	// Output:
	// first divergence: build script of foo-sys (run), OUT_DIR bindings.rs; then foo-sys (lib)
}
