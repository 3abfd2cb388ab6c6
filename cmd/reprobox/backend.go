package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/containerd"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

// Backend names for --backend.
const (
	backendLibcontainer = "libcontainer"
	backendContainerd   = "containerd"
)

// backendFlags choose the sandbox backend builds run on.
type backendFlags struct {
	name                string
	containerdAddress   string
	containerdNamespace string
}

func (f *backendFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "backend", backendLibcontainer, "sandbox the builds run in: libcontainer (embedded, no daemon) or containerd (a running containerd daemon)")
	fl.StringVar(&f.containerdAddress, "containerd-address", containerd.DefaultAddress, "socket of the containerd daemon (--backend containerd)")
	fl.StringVar(&f.containerdNamespace, "containerd-namespace", containerd.DefaultNamespace, "containerd namespace of reprobox's images, containers and snapshots (--backend containerd)")
}

// newBackend opens the backend the flags name, keeping its host state under
// the data directory dd (libcontainer in dd/run, containerd in
// dd/containerd), and returns it with the function that closes it. Opening
// either removes what runs of killed reprobox processes left behind.
func (f *backendFlags) newBackend(ctx context.Context, dd string, log *slog.Logger) (sandbox.Backend, func() error, error) {
	switch f.name {
	case backendLibcontainer:
		if f.containerdAddress != containerd.DefaultAddress || f.containerdNamespace != containerd.DefaultNamespace {
			return nil, nil, usageErrorf("--containerd-address and --containerd-namespace need --backend containerd")
		}
		b, err := libcontainer.New(libcontainer.Config{StateDir: filepath.Join(dd, "run"), Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return b, func() error { return nil }, nil
	case backendContainerd:
		b, err := containerd.New(ctx, containerd.Config{
			Address:   f.containerdAddress,
			Namespace: f.containerdNamespace,
			StateDir:  filepath.Join(dd, "containerd"),
			Logger:    log,
		})
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	default:
		return nil, nil, usageErrorf("--backend %q: choose libcontainer or containerd", f.name)
	}
}
