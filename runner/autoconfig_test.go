package runner

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseCargoMetadata(t *testing.T) {
	for _, tc := range []struct {
		file      string
		artifacts []string
		from      string
	}{
		{"hello-bin.json", []string{"target/release/hello-bin"}, "bin targets"},
		{"multi.json", []string{"target/release/extra-tool", "target/release/multi"}, "bin targets"},
		// A workspace: the bin targets of every member, libraries left out.
		{"ws.json", []string{"target/release/app"}, "bin targets"},
		// No bin target anywhere: the libraries' outputs, hyphens as cargo names files.
		{"just-lib.json", []string{"target/release/libjust_lib.rlib"}, "library targets"},
		{"cdy.json", []string{"target/release/libcdy.a", "target/release/libcdy.rlib", "target/release/libcdy.so"}, "library targets"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "cargo-metadata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			md, err := ParseCargoMetadata(data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(md.Artifacts, tc.artifacts) || md.From != tc.from {
				t.Errorf("got %q from %s, want %q from %s", md.Artifacts, md.From, tc.artifacts, tc.from)
			}
			if !filepath.IsAbs(md.WorkspaceRoot) {
				t.Errorf("workspace root %q", md.WorkspaceRoot)
			}
		})
	}
}

func TestParseCargoMetadataErrors(t *testing.T) {
	for _, tc := range []struct{ name, json string }{
		{"not json", `{"version": 1,`},
		{"no version", `{"workspace_root": "/p", "packages": []}`},
		{"version 2", `{"version": 2, "workspace_root": "/p", "packages": []}`},
		{"relative root", `{"version": 1, "workspace_root": "p", "packages": []}`},
		{"target escapes", `{"version": 1, "workspace_root": "/p", "packages": [{"name": "x", "targets": [{"name": "../../etc/passwd", "kind": ["bin"]}]}]}`},
		{"target glob", `{"version": 1, "workspace_root": "/p", "packages": [{"name": "x", "targets": [{"name": "*", "kind": ["bin"]}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCargoMetadata([]byte(tc.json)); !errors.Is(err, ErrConfig) {
				t.Errorf("err %v, want ErrConfig", err)
			}
		})
	}
}

// TestParseCargoMetadataTargetDir: a target-dir inside the project (its own
// .cargo/config.toml) is kept; one outside came from the host and is not.
func TestParseCargoMetadataTargetDir(t *testing.T) {
	js := func(td string) []byte {
		return []byte(`{"version": 1, "workspace_root": "/p", "target_directory": "` + td + `", "packages": [{"name": "x", "targets": [{"name": "x", "kind": ["bin"]}]}]}`)
	}
	for td, want := range map[string]string{
		"/p/target":   "target/release/x",
		"/p/build/t":  "build/t/release/x",
		"/elsewhere":  "target/release/x",
		"/p/../p2/t":  "target/release/x",
		"relative":    "target/release/x",
		"/p":          "target/release/x",
		"/p/..hidden": "..hidden/release/x",
	} {
		md, err := ParseCargoMetadata(js(td))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(md.Artifacts, []string{want}) {
			t.Errorf("target_directory %s: %q, want %s", td, md.Artifacts, want)
		}
	}
}

func TestCargoCommand(t *testing.T) {
	if got := CargoCommand(true); !slices.Contains(got, "--locked") || !slices.Contains(got, "--offline") {
		t.Errorf("locked: %q", got)
	}
	if got := CargoCommand(false); slices.Contains(got, "--locked") || !slices.Contains(got, "--offline") {
		t.Errorf("unlocked: %q", got)
	}
}

// FuzzParseCargoMetadata: any input is parsed or refused with ErrConfig, and
// every artifact is a valid, relative, sorted config artifact.
func FuzzParseCargoMetadata(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "cargo-metadata", "*.json"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version": 1, "workspace_root": "/p", "target_directory": "/p/t", "packages": [{"targets": [{"name": "a-b", "kind": ["bin", "lib"]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseCargoMetadata(data)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if !slices.IsSorted(md.Artifacts) {
			t.Errorf("artifacts not sorted: %q", md.Artifacts)
		}
		if len(md.Artifacts) > 0 {
			c := Config{Image: "x", Command: []string{"cargo"}, Artifacts: md.Artifacts}
			if err := c.Validate(); err != nil {
				t.Errorf("artifacts %q are not a valid config: %v", md.Artifacts, err)
			}
		}
	})
}
