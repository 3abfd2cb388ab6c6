package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

func TestConfigLimits(t *testing.T) {
	base := "image = \"x\"\ncommand = [\"a\"]\nartifacts = [\"b\"]\n"
	for _, tc := range []struct {
		name, toml string
		want       policies.Limits
		err        string
	}{
		{"none", "", policies.Limits{}, ""},
		{"all", "memory = \"8g\"\ndisk = \"20GiB\"\npids = 2048\n", policies.Limits{MemoryBytes: 8 << 30, DiskBytes: 20 << 30, Pids: 2048}, ""},
		{"bytes", "memory = \"536870912\"\n", policies.Limits{MemoryBytes: 512 << 20}, ""},
		{"mebibytes", "disk = \"512m\"\n", policies.Limits{DiskBytes: 512 << 20}, ""},
		{"garbage", "memory = \"lots\"\n", policies.Limits{}, `memory = "lots"`},
		{"negative", "disk = \"-1g\"\n", policies.Limits{}, `disk = "-1g"`},
		{"too small", "memory = \"1m\"\n", policies.Limits{}, "below the minimum"},
		{"pids", "pids = 2\n", policies.Limits{}, "pids limit 2"},
		{"pids type", "pids = \"many\"\n", policies.Limits{}, "pids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(base+tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := LoadConfig(dir)
			if err == nil {
				err = cfg.Validate()
			}
			if tc.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a config error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := cfg.limits()
			if err != nil || got != tc.want {
				t.Errorf("limits %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestOOMFailure(t *testing.T) {
	o := &Outcome{Limits: policies.Limits{MemoryBytes: 8 << 30}.WithDefaults()}
	o.Result = &sandbox.Result{ExitCode: 137, Signal: 9, OOMKilled: true}
	if got := o.Failure(); !strings.Contains(got, "out of memory (limit 8.0 GiB") {
		t.Errorf("failure %q", got)
	}
	o.Result = &sandbox.Result{ExitCode: 101, OOMKilled: true}
	if got := o.Failure(); !strings.Contains(got, "status 101") || !strings.Contains(got, "out of memory") {
		t.Errorf("failure %q", got)
	}
	o.Result, o.DiskExceeded = &sandbox.Result{ExitCode: 137, Signal: 9}, true
	if got := o.Failure(); !strings.Contains(got, "disk limit of 64.0 GiB") {
		t.Errorf("failure %q", got)
	}
}
