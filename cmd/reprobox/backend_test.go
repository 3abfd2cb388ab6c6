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
		{[]string{"--addr", "/x.sock"}, true, "--addr and --worker-jobs need a daemon backend"},
		{[]string{"--worker-jobs", "2"}, true, "--addr and --worker-jobs need a daemon backend"},
		{[]string{"--backend", "containerd", "--addr", "/a.sock", "--containerd-address", "/b.sock"}, true, "another name for --addr"},
		{[]string{"--backend", "containerd", "--addr", "/a.sock", "--addr", "/a.sock"}, true, "given twice"},
		{[]string{"--backend", "containerd", "--addr", ""}, true, "--addr is empty"},
		{[]string{"--backend", "containerd", "--worker-jobs", "0"}, true, "--worker-jobs 0"},
		{[]string{"--backend", "containerd", "--addr", "/nonexistent/a.sock"}, false, "no daemon socket at /nonexistent/a.sock"},
		{[]string{"--backend", "containerd", "--addr", "/nonexistent/a.sock", "--addr", "/nonexistent/b.sock"}, false, "worker /nonexistent/a.sock: containerd: no daemon socket"},
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
