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

// addBackendFlags gives cmd (a command that runs builds) the flags that
// choose the sandbox backend; openBackend reads them.
func addBackendFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.String("backend", backendLibcontainer, "sandbox the builds run in: libcontainer (embedded, no daemon), containerd (a running containerd daemon) or buildkit (a buildkitd, with --addr)")
	fl.String("containerd-address", containerd.DefaultAddress, "socket of the containerd daemon (--backend containerd)")
	fl.String("containerd-namespace", containerd.DefaultNamespace, "containerd namespace of reprobox's images, containers and snapshots (--backend containerd)")
	addBuildkitFlags(fl)
}

// openBackend opens the backend cmd's flags name (libcontainer when cmd has
// no backend flags), keeping its host state under the data directory dd
// (libcontainer in dd/run, containerd in dd/containerd), and returns it with
// the function that closes it. Opening either removes what runs of killed
// reprobox processes left behind.
func openBackend(ctx context.Context, cmd *cobra.Command, dd string, log *slog.Logger) (sandbox.Backend, func() error, error) {
	fl := cmd.Flags()
	name, address, namespace := backendLibcontainer, containerd.DefaultAddress, containerd.DefaultNamespace
	if fl.Lookup("backend") != nil {
		name, _ = fl.GetString("backend")
		address, _ = fl.GetString("containerd-address")
		namespace, _ = fl.GetString("containerd-namespace")
	}
	if err := checkBuildkitFlags(fl, name); err != nil {
		return nil, nil, err
	}
	switch name {
	case backendLibcontainer:
		if fl.Changed("containerd-address") || fl.Changed("containerd-namespace") {
			return nil, nil, usageErrorf("--containerd-address and --containerd-namespace need --backend containerd")
		}
		b, err := libcontainer.New(libcontainer.Config{StateDir: filepath.Join(dd, "run"), Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return b, func() error { return nil }, nil
	case backendContainerd:
		b, err := containerd.New(ctx, containerd.Config{
			Address:   address,
			Namespace: namespace,
			StateDir:  filepath.Join(dd, "containerd"),
			Logger:    log,
		})
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	case backendBuildkit:
		return openBuildkit(ctx, fl, dd, log)
	default:
		return nil, nil, usageErrorf("--backend %q: choose libcontainer, containerd or buildkit", name)
	}
}
