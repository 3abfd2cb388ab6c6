package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/rootless"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/buildkit"
	"github.com/reprobox/reprobox/sandbox/containerd"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
	"github.com/reprobox/reprobox/sandbox/pool"
)

// Backend names for --backend.
const (
	backendLibcontainer = "libcontainer"
	backendContainerd   = "containerd"
)

// daemonBackends are the backends that reach a daemon at an address (--addr);
// openWorker opens one worker of each.
var daemonBackends = []string{backendContainerd, backendBuildkit}

// defaultAddress is where a daemon backend's daemon listens when no --addr
// is given.
func defaultAddress(backend string) string {
	switch backend {
	case backendContainerd:
		return containerd.DefaultAddress
	case backendBuildkit:
		return buildkitDefaultAddress
	}
	return ""
}

// addBackendFlags gives cmd (a command that runs builds) the flags that
// choose the sandbox backend; openBackend reads them.
func addBackendFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.String("backend", backendLibcontainer, "sandbox the builds run in: libcontainer (embedded, no daemon), containerd (a running containerd daemon) or buildkit (a running buildkitd)")
	fl.StringArray("addr", nil, "address of a daemon backend's daemon (containerd: its socket, default "+containerd.DefaultAddress+"); repeat it to spread the builds over several daemons (workers)")
	fl.Int("worker-jobs", 0, "builds each worker (each --addr) runs at once (default 1 with several --addr; a check runs as many builds at once as all workers together)")
	fl.String("containerd-address", containerd.DefaultAddress, "socket of the containerd daemon (--backend containerd); the same as one --addr")
	fl.String("containerd-namespace", containerd.DefaultNamespace, "containerd namespace of reprobox's images, containers and snapshots (--backend containerd)")
	addBuildkitFlags(fl)
}

// workerOpts is what every worker of a run shares.
type workerOpts struct {
	dataDir string
	log     *slog.Logger
	// containerdNamespace is --containerd-namespace.
	containerdNamespace string
	// buildkitTLS is --tlscacert, --tlscert, --tlskey and --tlsservername.
	buildkitTLS buildkit.TLS
}

// openWorker opens one worker of the daemon backend name: the daemon at
// addr. It returns the backend and the function that closes it.
func openWorker(ctx context.Context, name, addr string, o workerOpts) (sandbox.Backend, func() error, error) {
	switch name {
	case backendContainerd:
		b, err := containerd.New(ctx, containerd.Config{
			Address:   addr,
			Namespace: o.containerdNamespace,
			StateDir:  filepath.Join(o.dataDir, "containerd"),
			Logger:    o.log,
		})
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	case backendBuildkit:
		return openBuildkitWorker(ctx, addr, o)
	}
	return nil, nil, fmt.Errorf("no daemon backend %q", name)
}

// openBackend opens the backend cmd's flags name (libcontainer when cmd has
// no backend flags), keeping its host state under the data directory dd
// (libcontainer in dd/run, containerd in dd/containerd), and returns it with
// the function that closes it. Opening removes what runs of killed reprobox
// processes left behind. A daemon backend with several --addr (or with
// --worker-jobs) is a pool (sandbox/pool) of one worker per address.
func openBackend(ctx context.Context, cmd *cobra.Command, dd string, log *slog.Logger) (sandbox.Backend, func() error, error) {
	fl := cmd.Flags()
	name := backendLibcontainer
	var addrs []string
	workerJobs := 0
	o := workerOpts{dataDir: dd, log: log, containerdNamespace: containerd.DefaultNamespace}
	if fl.Lookup("backend") != nil {
		name, _ = fl.GetString("backend")
		addrs, _ = fl.GetStringArray("addr")
		workerJobs, _ = fl.GetInt("worker-jobs")
		o.containerdNamespace, _ = fl.GetString("containerd-namespace")
		var err error
		if o.buildkitTLS, err = buildkitTLS(fl, name); err != nil {
			return nil, nil, err
		}
		if fl.Changed("containerd-address") {
			if len(addrs) > 0 {
				return nil, nil, usageErrorf("--containerd-address is another name for --addr: give the addresses with --addr only")
			}
			a, _ := fl.GetString("containerd-address")
			addrs = []string{a}
		}
	}
	if name == backendLibcontainer {
		if err := rootless.Err(); err != nil {
			return nil, nil, usageErrorf("%v", err)
		}
		switch {
		case fl.Changed("containerd-address") || fl.Changed("containerd-namespace"):
			return nil, nil, usageErrorf("--containerd-address and --containerd-namespace need --backend containerd")
		case len(addrs) > 0 || fl.Changed("worker-jobs"):
			return nil, nil, usageErrorf("--addr and --worker-jobs need a daemon backend (--backend containerd or buildkit): libcontainer runs the builds on this host")
		}
		b, err := libcontainer.New(libcontainer.Config{StateDir: filepath.Join(dd, "run"), Logger: log, FUSEDir: rootless.FUSEDir()})
		if err != nil {
			return nil, nil, err
		}
		return b, func() error { return nil }, nil
	}
	if !slices.Contains(daemonBackends, name) {
		return nil, nil, usageErrorf("--backend %q: choose libcontainer, containerd or buildkit", name)
	}
	if workerJobs < 0 || (fl.Changed("worker-jobs") && workerJobs == 0) {
		return nil, nil, usageErrorf("--worker-jobs %d: each worker runs at least one build at a time", workerJobs)
	}
	if fl.Changed("addr") && len(addrs) == 0 {
		return nil, nil, usageErrorf("--addr is empty: give the daemon's address")
	}
	if len(addrs) == 0 {
		addrs = []string{defaultAddress(name)}
	}
	for i, a := range addrs {
		if a == "" {
			return nil, nil, usageErrorf("--addr is empty: give the daemon's address")
		}
		if slices.Contains(addrs[:i], a) {
			return nil, nil, usageErrorf("--addr %s is given twice: each address is one worker", a)
		}
	}
	if len(addrs) == 1 && !fl.Changed("worker-jobs") {
		return openWorker(ctx, name, addrs[0], o)
	}
	var (
		workers []pool.Worker
		closers []func() error
	)
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	for _, a := range addrs {
		b, closeFn, err := openWorker(ctx, name, a, o)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("worker %s: %w", a, err)
		}
		closers = append(closers, closeFn)
		workers = append(workers, pool.Worker{Name: a, Backend: b, Jobs: workerJobs})
	}
	// A worker going down or coming back is said on stderr.
	plog := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := pool.New(pool.Config{Workers: workers, Logger: plog})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return p, closeAll, nil
}

// defaultJobs is how many builds run at once when --jobs is not given: all
// the slots of a pool of workers, else the host's CPUs over the CPUs of a
// build.
func defaultJobs(b sandbox.Backend, hostCPUs, buildCPUs int) int {
	if p, ok := b.(*pool.Pool); ok {
		return p.Slots()
	}
	return max(1, hostCPUs/max(1, buildCPUs))
}
