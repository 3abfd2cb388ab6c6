package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestBuildkitFlags checks --backend buildkit's flags: bad combinations and
// missing files are usage errors naming the flag; an address where no
// daemon answers is an error naming the address.
func TestBuildkitFlags(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--tlscert", ca}, true, "--tlscert needs --backend buildkit"},
		{[]string{"--backend", "containerd", "--tlscacert", ca}, true, "--tlscacert needs --backend buildkit"},
		{[]string{"--backend", "buildkit"}, false, "unix:///run/buildkit/buildkitd.sock"},
		{[]string{"--backend", "buildkit", "--addr", "/x.sock"}, true, "unix:// or tcp://"},
		{[]string{"--backend", "buildkit", "--addr", "unix:///a.sock", "--tlscacert", ca}, true, "need a tcp:// --addr"},
		{[]string{"--backend", "buildkit", "--addr", "tcp://127.0.0.1:1", "--tlscert", ca}, true, "--tlscert and --tlskey go together"},
		{[]string{"--backend", "buildkit", "--addr", "tcp://127.0.0.1:1", "--tlscacert", "/nonexistent/ca.pem"}, true, "--tlscacert"},
		{[]string{"--backend", "buildkit", "--addr", "unix:///nonexistent/buildkitd.sock"}, false, "unix:///nonexistent/buildkitd.sock"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := &cobra.Command{Use: "x"}
			addBackendFlags(cmd)
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			b, closeFn, err := openBackend(context.Background(), cmd, t.TempDir(), nil)
			if err == nil {
				closeFn()
				t.Fatalf("openBackend = %v, want an error", b)
			}
			if errors.Is(err, errUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (usage %v), want one containing %q (usage %v)", err, errors.Is(err, errUsage), tc.want, tc.usage)
			}
		})
	}
}
