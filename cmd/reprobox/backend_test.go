package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestBackendFlags checks the choice of backend from the flags: bad
// combinations are usage errors, a containerd without a daemon is an error
// naming the socket and what to do.
func TestBackendFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--backend", "docker"}, true, `--backend "docker"`},
		{[]string{"--containerd-address", "/x.sock"}, true, "need --backend containerd"},
		{[]string{"--backend", "containerd", "--containerd-address", "/nonexistent/containerd.sock"}, false, "no daemon socket at /nonexistent/containerd.sock"},
		{[]string{"--backend", "containerd", "--containerd-namespace", "bad/ns", "--containerd-address", "/nonexistent.sock"}, false, `namespace "bad/ns"`},
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
				t.Fatalf("newBackend = %v, want an error", b)
			}
			if errors.Is(err, errUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (usage %v), want one containing %q (usage %v)", err, errors.Is(err, errUsage), tc.want, tc.usage)
			}
		})
	}
}
