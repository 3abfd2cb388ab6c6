package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		wantErr    string
	}{
		{"ok", `image = "x@sha256:` + strings.Repeat("a", 64) + `"
command = ["cargo", "build"]
artifacts = ["target/release/x"]
source_date_epoch = 5
env = { A = "1" }
timeout = "5m"`, ""},
		{"unknown key", "imgae = \"x\"\n", "unknown key(s) imgae"},
		{"bad toml", "image = [\n", "reprobox.toml"},
		{"absolute artifact", `image = "x"
command = ["true"]
artifacts = ["/etc/passwd"]`, "must be relative"},
		{"dotdot artifact", `image = "x"
command = ["true"]
artifacts = ["../x"]`, "must be relative"},
		{"bad timeout", `image = "x"
command = ["true"]
artifacts = ["x"]
timeout = "soon"`, "timeout"},
		{"no command", `image = "x"
artifacts = ["x"]`, "no build command"},
		{"no artifacts", `image = "x"
command = ["true"]`, "no artifacts"},
		{"bad exclude", `image = "x"
command = ["true"]
artifacts = ["x"]
exclude = ["a/b"]`, "top-level"},
		{"env sets a factor's variable", `image = "x"
command = ["true"]
artifacts = ["x"]
env = { TZ = "Europe/Paris" }`, "env.TZ in reprobox.toml: reprobox sets it (the timezone factor)"},
		{"env sets the preload", `image = "x"
command = ["true"]
artifacts = ["x"]
[env]
LD_PRELOAD = "/x.so"`, "env.LD_PRELOAD"},
		{"cpus 0", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\ncpus = 0\n", "cpus = 0"},
		{"cpus beyond the machine", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\ncpus = 100000\n", "nproc"},
		{"source date 0", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\nsource_date_epoch = 0\n", "source_date_epoch = 0"},
		{"source date after 9999", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\nsource_date_epoch = 253402300800\n", "year 10000"},
		{"empty program", "image = \"x\"\ncommand = [\"\", \"a\"]\nartifacts = [\"x\"]\n", "empty string"},
		{"NUL in env", "image = \"x\"\ncommand = [\"true\"]\nartifacts = [\"x\"]\nenv = { A = \"\\u0000\" }\n", "NUL byte"},
		{"position of a syntax error", "image = \"x\"\ncommand = [\"true\"\n", "reprobox.toml:2:18: expected a comma"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, found, err := LoadConfig(dir)
			if err == nil {
				err = cfg.Validate()
			}
			if tc.wantErr == "" {
				if err != nil || !found {
					t.Fatalf("err %v found %v", err, found)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want a config error containing %q", err, tc.wantErr)
			}
		})
	}
	if _, found, err := LoadConfig(t.TempDir()); found || err != nil {
		t.Errorf("missing file: found %v err %v", found, err)
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add("image = \"x\"\ncommand = [\"a\"]\nartifacts = [\"b\"]\n")
	f.Add("env = { A = \"1\" }\ntimeout = \"1h\"\n")
	f.Add("[[x]]\n")
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := LoadConfig(dir)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not a config error", err)
			}
			return
		}
		_ = cfg.Validate()
	})
}
