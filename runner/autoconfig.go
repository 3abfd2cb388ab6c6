package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultImage is the image a cargo project without reprobox.toml builds in.
// It is resolved to its digest in the local store, and the digest recorded.
const DefaultImage = "reprobox/rust"

// ErrNoProject marks a directory with neither reprobox.toml nor Cargo.toml.
var ErrNoProject = errors.New("no project")

// A CargoProject is what reprobox detected in a cargo project without a
// reprobox.toml: the build command and the artifacts.
type CargoProject struct {
	// Locked says whether the project has a Cargo.lock.
	Locked bool
	// Command is the build command (see CargoCommand).
	Command []string
	// Artifacts are the outputs of the package's targets, relative to the
	// build directory.
	Artifacts []string
	// From says which targets the artifacts are: "bin targets" or, in a
	// project without any, "library targets".
	From string
}

// CargoCommand is the build command of a cargo project. --offline: the build
// has no network, and cargo says so clearly instead of failing to resolve a
// registry's host. --locked when the project has a Cargo.lock: the lock is what
// pins the dependencies, and a build that would change it fails. Without a
// Cargo.lock (cargo new writes none before the first build), --locked would
// always fail, so the command leaves it out and cargo writes a lock inside each
// build's private copy of the source, from what it can reach offline.
func CargoCommand(locked bool) []string {
	if locked {
		return []string{"cargo", "build", "--release", "--locked", "--offline"}
	}
	return []string{"cargo", "build", "--release", "--offline"}
}

// DetectCargo reads the cargo project in dir with the host's cargo (cargo
// metadata --offline --no-deps: nothing is fetched, no build script runs). A
// directory without Cargo.toml gives an error wrapping ErrNoProject. With
// targets false (the artifacts are given otherwise) only the command is
// detected, and cargo is not run.
func DetectCargo(ctx context.Context, dir string, targets bool) (*CargoProject, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "Cargo.toml")); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has neither %s nor Cargo.toml", ErrNoProject, dir, ConfigFile)
	} else if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if !targets {
		_, err := os.Stat(filepath.Join(abs, "Cargo.lock"))
		return &CargoProject{Locked: err == nil, Command: CargoCommand(err == nil)}, nil
	}
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		return nil, fmt.Errorf("%w: cargo is not on PATH, so the targets of %s cannot be read: install cargo, or pass --artifact target/release/NAME, or write %s", ErrConfig, dir, ConfigFile)
	}
	cmd := exec.CommandContext(ctx, cargo, "metadata", "--offline", "--no-deps", "--format-version", "1",
		"--manifest-path", filepath.Join(abs, "Cargo.toml"))
	cmd.Dir = abs
	// rustup's proxy reads a toolchain pin (rust-toolchain.toml) from the
	// working directory and fails when that toolchain is not installed on the
	// host; the build uses the image's cargo anyway. Run from / then: cargo
	// reads the manifest all the same, but not the project's .cargo/config.toml.
	for _, f := range []string{"rust-toolchain", "rust-toolchain.toml"} {
		if _, err := os.Lstat(filepath.Join(abs, f)); err == nil {
			cmd.Dir = "/"
		}
	}
	// The host's own target directory setting is no business of the build.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "CARGO_TARGET_DIR=") })
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: cargo metadata in %s failed (%v): %s", ErrConfig, dir, err, strings.TrimSpace(stderr.String()))
	}
	md, err := ParseCargoMetadata(stdout.Bytes())
	if err != nil {
		return nil, err
	}
	if filepath.Clean(md.WorkspaceRoot) != abs {
		return nil, fmt.Errorf("%w: %s is a member of the cargo workspace at %s, and a build sees only %s: run reprobox in %s",
			ErrConfig, dir, md.WorkspaceRoot, dir, md.WorkspaceRoot)
	}
	p := &CargoProject{Artifacts: md.Artifacts, From: md.From}
	if len(p.Artifacts) == 0 {
		return nil, fmt.Errorf("%w: the cargo project in %s defines no bin or library target: pass --artifact PATH (relative to the project), or write artifacts in %s", ErrConfig, dir, ConfigFile)
	}
	if _, err := os.Stat(filepath.Join(abs, "Cargo.lock")); err == nil {
		p.Locked = true
	}
	p.Command = CargoCommand(p.Locked)
	return p, nil
}

// CargoMetadata is what reprobox takes from `cargo metadata --no-deps`.
type CargoMetadata struct {
	WorkspaceRoot string
	// Artifacts are sorted, relative to WorkspaceRoot.
	Artifacts []string
	From      string
}

// ParseCargoMetadata reads the JSON of `cargo metadata --format-version 1
// --no-deps`. The artifacts are target/release/NAME for every bin target of
// every workspace member; a workspace without bin targets gives its libraries'
// outputs instead (libNAME.rlib, .so for cdylib, dylib and proc-macro, .a for
// staticlib). Malformed JSON or a target name that is not a plain file name is
// an ErrConfig.
func ParseCargoMetadata(data []byte) (*CargoMetadata, error) {
	var md struct {
		Version         *int   `json:"version"`
		WorkspaceRoot   string `json:"workspace_root"`
		TargetDirectory string `json:"target_directory"`
		Packages        []struct {
			Name    string `json:"name"`
			Targets []struct {
				Name string   `json:"name"`
				Kind []string `json:"kind"`
			} `json:"targets"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("%w: cargo metadata output: %w", ErrConfig, err)
	}
	if md.Version == nil || *md.Version != 1 {
		return nil, fmt.Errorf("%w: cargo metadata output: not format version 1", ErrConfig)
	}
	if !filepath.IsAbs(md.WorkspaceRoot) {
		return nil, fmt.Errorf("%w: cargo metadata output: workspace_root %q is not an absolute path", ErrConfig, md.WorkspaceRoot)
	}
	// The project's own target-dir setting (in its .cargo/config.toml) holds
	// inside the build too; one outside the project came from the host's
	// configuration, which the build does not see.
	target := "target"
	if rel, err := filepath.Rel(md.WorkspaceRoot, md.TargetDirectory); err == nil && filepath.IsAbs(md.TargetDirectory) &&
		rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
		target = filepath.ToSlash(rel)
	}
	if strings.ContainsAny(target, "\\*?[\x00") {
		return nil, fmt.Errorf("%w: cargo metadata output: target directory %q has glob characters: pass --artifact", ErrConfig, md.TargetDirectory)
	}
	var bins, libs []string
	for _, p := range md.Packages {
		for _, t := range p.Targets {
			if t.Name == "" || strings.ContainsAny(t.Name, "/\\*?[\x00") || t.Name == "." || t.Name == ".." {
				return nil, fmt.Errorf("%w: cargo metadata output: package %q has a target named %q", ErrConfig, p.Name, t.Name)
			}
			for _, k := range t.Kind {
				lib := "lib" + strings.ReplaceAll(t.Name, "-", "_")
				switch k {
				case "bin":
					bins = append(bins, target+"/release/"+t.Name)
				case "lib", "rlib":
					libs = append(libs, target+"/release/"+lib+".rlib")
				case "cdylib", "dylib", "proc-macro":
					libs = append(libs, target+"/release/"+lib+".so")
				case "staticlib":
					libs = append(libs, target+"/release/"+lib+".a")
				}
			}
		}
	}
	out := &CargoMetadata{WorkspaceRoot: md.WorkspaceRoot, Artifacts: bins, From: "bin targets"}
	if len(bins) == 0 {
		out.Artifacts, out.From = libs, "library targets"
	}
	slices.Sort(out.Artifacts)
	out.Artifacts = slices.Compact(out.Artifacts)
	return out, nil
}
