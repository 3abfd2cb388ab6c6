package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestBadInputExit2 runs the built reprobox on bad input of every kind a user
// (or a script with an empty variable) gives: each must exit 2 with a message
// naming the problem, before anything is written: no output directory, no
// data directory, the project untouched.
func TestBadInputExit2(t *testing.T) {
	const okConfig = "image = \"reprobox/rust\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\n"
	tooMany := strconv.Itoa(runtime.NumCPU() + 1)
	for _, tc := range []struct {
		name   string
		config string // reprobox.toml of the project; empty: none
		args   []string
		want   []string // in stderr
	}{
		{"nothing after --", "", []string{"build", "--image", "reprobox/rust", "--artifact", "x", "--"}, []string{"nothing after --"}},
		{"empty command in config", "image = \"x\"\ncommand = []\nartifacts = [\"x\"]\n", []string{"build"}, []string{"no build command"}},
		{"empty program", "", []string{"build", "--image", "reprobox/rust", "--artifact", "x", "--", "", "arg"}, []string{"program is an empty string"}},
		{"empty program in config", "image = \"x\"\ncommand = [\"\"]\nartifacts = [\"x\"]\n", []string{"build"}, []string{"program is an empty string"}},
		{"NUL in a command argument", "image = \"x\"\ncommand = [\"sh\", \"a\\u0000b\"]\nartifacts = [\"x\"]\n", []string{"build"}, []string{"command argument", "NUL byte"}},
		{"NUL in the program", "image = \"x\"\ncommand = [\"true\\u0000\"]\nartifacts = [\"x\"]\n", []string{"check"}, []string{"NUL byte"}},
		{"NUL in env", okConfig + "env = { A = \"x\\u0000y\" }\n", []string{"build"}, []string{"env.A", "NUL byte"}},
		{"NUL in env key", okConfig + "env = { \"A\\u0000\" = \"x\" }\n", []string{"build"}, []string{"env key"}},
		{"NUL in an artifact glob", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\\u0000/../../etc\"]\n", []string{"build"}, []string{"artifact", "NUL byte"}},
		{"NUL in the image name", "image = \"reprobox/rust\\u0000x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\n", []string{"build"}, []string{"image", "NUL byte"}},
		{"NUL in exclude", okConfig + "exclude = [\"a\\u0000\"]\n", []string{"build"}, []string{"exclude"}},
		{"empty artifact glob", "", []string{"build", "--image", "reprobox/rust", "--artifact", "", "--", "true"}, []string{"artifact glob is empty"}},
		{"project is a file", "", []string{"build", "Cargo.toml", "--image", "reprobox/rust"}, []string{"Cargo.toml is not a directory"}},
		{"project does not exist", "", []string{"check", "no-such-dir", "--image", "reprobox/rust"}, []string{"no-such-dir", "no such file or directory"}},
		{"unknown subcommand", "", []string{"biuld"}, []string{`unknown command "biuld"`, "did you mean build?"}},
		{"unknown image subcommand", "", []string{"image", "rmi", "x"}, []string{`unknown command "rmi" for "reprobox image"`}},
		{"unknown flag", "", []string{"build", "--cpu", "2"}, []string{"unknown flag: --cpu"}},
		{"more CPUs than the machine", okConfig, []string{"build", "--cpus", tooMany}, []string{"cpus = " + tooMany, "nproc"}},
		{"more CPUs in config", okConfig + "cpus = " + tooMany + "\n", []string{"check"}, []string{"nproc"}},
		{"--cpus 0", okConfig, []string{"build", "--cpus", "0"}, []string{"--cpus 0", "at least 1 CPU"}},
		{"--cpus -3", okConfig, []string{"build", "--cpus", "-3"}, []string{"--cpus -3"}},
		{"cpus = 0", okConfig + "cpus = 0\n", []string{"build"}, []string{"cpus = 0", "at least 1 CPU"}},
		{"cpus negative", okConfig + "cpus = -1\n", []string{"build"}, []string{"cpus = -1"}},
		{"cpus not a number", okConfig + "cpus = \"two\"\n", []string{"build"}, []string{"line 4", "cpus"}},
		{"source date 0", okConfig, []string{"build", "--source-date-epoch", "0"}, []string{"source_date_epoch = 0"}},
		{"source date negative", okConfig + "source_date_epoch = -1\n", []string{"build"}, []string{"source_date_epoch = -1"}},
		{"source date after 9999", okConfig + "source_date_epoch = 253402300800\n", []string{"check"}, []string{"source_date_epoch = 253402300800", "year 10000"}},
		{"source date not an integer", okConfig + "source_date_epoch = 1.7e9\n", []string{"build"}, []string{"line 4", "source_date_epoch", "float"}},
		{"source date a string", okConfig + "source_date_epoch = \"yesterday\"\n", []string{"build"}, []string{"source_date_epoch", "string"}},
		{"source date flag not a number", okConfig, []string{"build", "--source-date-epoch", "now"}, []string{"--source-date-epoch"}},
		{"bad --timeout", okConfig, []string{"build", "--timeout", "soon"}, []string{`timeout "soon"`}},
		{"negative --timeout", okConfig, []string{"build", "--timeout", "-5m"}, []string{`timeout "-5m"`}},
		{"malformed toml", "image = \"x\"\ncommand = [\"true\"\nartifacts = [\"x\"]\n", []string{"build"}, []string{"reprobox.toml:3:"}},
		{"unknown key", okConfig + "artifact = [\"y\"]\n", []string{"build"}, []string{"unknown key(s) artifact"}},
		{"--jobs 0", okConfig, []string{"check", "--jobs", "0"}, []string{"--jobs 0"}},
		{"--jobs negative", okConfig, []string{"check", "--jobs", "-1"}, []string{"--jobs"}},
		{"--seed invalid", okConfig, []string{"check", "--seed", "-1"}, []string{"--seed"}},
		{"--vary unknown", okConfig, []string{"check", "--vary", "time,clock"}, []string{"clock"}},
		{"--bound above 1", okConfig, []string{"check", "--bound", "2"}, []string{"--bound 2", "between 0 and 1"}},
		{"--bound 0", okConfig, []string{"check", "--bound", "0"}, []string{"--bound 0"}},
		{"--max-builds 1", okConfig, []string{"check", "--max-builds", "1"}, []string{"--max-builds 1", "at least 2 builds"}},
		{"--max-builds negative", okConfig, []string{"check", "--max-builds", "-3"}, []string{"--max-builds"}},
		{"--out empty", okConfig, []string{"build", "--out", ""}, []string{"--out is empty"}},
		{"two project directories", okConfig, []string{"build", ".", "."}, []string{"at most one project directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			project := filepath.Join(tmp, "project")
			copyDir(t, fixture("reproducible"), project)
			cfgPath := filepath.Join(project, "reprobox.toml")
			if tc.config != "" {
				if err := os.WriteFile(cfgPath, []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(cfgPath); err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, project)
			dataDir, out := filepath.Join(tmp, "data"), filepath.Join(tmp, "out")
			args := append([]string{"--data-dir", dataDir}, tc.args...)
			if tc.args[0] == "build" || tc.args[0] == "check" {
				args = append([]string{tc.args[0], "--data-dir", dataDir, "--out", out}, tc.args[1:]...)
				if tc.name == "--out empty" {
					args = append([]string{tc.args[0], "--data-dir", dataDir}, tc.args[1:]...)
				}
			}
			r := reprobox(t, project, args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 {
				t.Errorf("want one line of error, got %d:\n%s", n+1, r.stderr)
			}
			for _, p := range []string{out, dataDir, filepath.Join(project, "reprobox-out")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("bad input wrote %s", p)
				}
			}
			if after := fingerprint(t, project); after != before {
				t.Errorf("the project changed:\n%s\nnow:\n%s", before, after)
			}
		})
	}
}

// copyDir copies a small fixture tree.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fingerprint lists every entry of a tree with its mode, mtime (files
// only) and content hash.
func fingerprint(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sum := ""
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum = hex.EncodeToString(h[:])
		}
		mtime := info.ModTime().UnixNano()
		if info.IsDir() {
			mtime = 0 // changes with staging files in it; entries show what matters
		}
		fmt.Fprintf(&b, "%s %v %d %s\n", rel, info.Mode(), mtime, sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
