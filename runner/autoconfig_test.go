package runner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
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

// TestDetectCargo runs the host's cargo on real projects made by cargo new.
func TestDetectCargo(t *testing.T) {
	testenv.NeedProgram(t, "cargo")
	ctx := context.Background()
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("cargo", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cargo %q: %v\n%s", args, err, out)
		}
	}
	parent := t.TempDir()
	run(parent, "new", "-q", "--vcs", "none", "app")
	dir := filepath.Join(parent, "app")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	p, err := DetectCargo(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Locked || !slices.Equal(p.Command, CargoCommand(false)) || !slices.Equal(p.Artifacts, []string{"target/release/app"}) {
		t.Errorf("fresh cargo new: %+v", p)
	}

	run(dir, "generate-lockfile", "--offline")
	// An attacker's project: cargo's configuration names a program to run as
	// rustc. Detection must not run anything of the project's on the host.
	pwned := filepath.Join(t.TempDir(), "pwned")
	write("evil.sh", "#!/bin/sh\ntouch "+pwned+"\nexec \"$@\"\n")
	if err := os.Chmod(filepath.Join(dir, "evil.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(".cargo/config.toml", "[build]\nrustc = \""+filepath.Join(dir, "evil.sh")+"\"\nrustc-wrapper = \""+filepath.Join(dir, "evil.sh")+"\"\ntarget-dir = \"out/t\"\n")
	p, err = DetectCargo(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Locked || !slices.Equal(p.Command, CargoCommand(true)) || !slices.Equal(p.Artifacts, []string{"out/t/release/app"}) {
		t.Errorf("locked, own target-dir: %+v", p)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("detection ran the project's configured rustc on the host")
	}

	// A toolchain pin the host does not have must not break detection.
	write("rust-toolchain.toml", "[toolchain]\nchannel = \"1.20.0\"\n")
	if p, err = DetectCargo(ctx, dir, true); err != nil {
		t.Fatalf("with an uninstalled toolchain pinned: %v", err)
	}
	if !slices.Equal(p.Artifacts, []string{"target/release/app"}) {
		t.Errorf("with a toolchain pin: %q", p.Artifacts)
	}

	if _, err := DetectCargo(ctx, t.TempDir(), true); !errors.Is(err, ErrNoProject) {
		t.Errorf("empty directory: %v, want ErrNoProject", err)
	}
	write("Cargo.toml", "[package\nname = ")
	if _, err := DetectCargo(ctx, dir, true); !errors.Is(err, ErrConfig) {
		t.Errorf("broken Cargo.toml: %v, want ErrConfig", err)
	}

	// The artifacts given: no cargo run, the command from the lock alone.
	t.Setenv("PATH", t.TempDir())
	if p, err = DetectCargo(ctx, dir, false); err != nil || !slices.Equal(p.Command, CargoCommand(true)) || p.Artifacts != nil {
		t.Errorf("without targets, no cargo on PATH: %+v, %v", p, err)
	}
	if _, err := DetectCargo(ctx, dir, true); !errors.Is(err, ErrConfig) {
		t.Errorf("no cargo on PATH: %v, want ErrConfig", err)
	}
}
