package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/buildkit"
)

const backendBuildkit = "buildkit"

// buildkitFlags are the flags of --backend buildkit: the daemon's address
// and its TLS files, named as buildctl names them.
var buildkitFlags = []string{"addr", "tlscacert", "tlscert", "tlskey", "tlsservername"}

// addBuildkitFlags registers the flags of --backend buildkit.
func addBuildkitFlags(fl *pflag.FlagSet) {
	fl.StringArray("addr", nil, "address of a buildkitd (--backend buildkit): unix:///run/buildkit/buildkitd.sock or tcp://HOST:PORT")
	fl.String("tlscacert", "", "CA certificate (PEM) the buildkitd's TLS certificate must chain to (--backend buildkit, tcp://)")
	fl.String("tlscert", "", "client certificate (PEM) for buildkitd (--backend buildkit, tcp://)")
	fl.String("tlskey", "", "client key (PEM) for buildkitd (--backend buildkit, tcp://)")
	fl.String("tlsservername", "", "name buildkitd's TLS certificate must carry; default: the address's host (--backend buildkit)")
}

// checkBuildkitFlags refuses the buildkit flags with another backend.
func checkBuildkitFlags(fl *pflag.FlagSet, backend string) error {
	if backend == backendBuildkit {
		return nil
	}
	for _, name := range buildkitFlags {
		if f := fl.Lookup(name); f != nil && f.Changed {
			return usageErrorf("--%s needs --backend buildkit", name)
		}
	}
	return nil
}

// buildkitConfig is the backend configuration the flags give, with its
// state under the data directory dd (dd/buildkit).
func buildkitConfig(fl *pflag.FlagSet, dd string, log *slog.Logger) (buildkit.Config, error) {
	addrs, _ := fl.GetStringArray("addr")
	switch {
	case len(addrs) == 0:
		return buildkit.Config{}, usageErrorf("--backend buildkit needs the daemon's address: --addr unix:///run/buildkit/buildkitd.sock or --addr tcp://HOST:PORT")
	case len(addrs) > 1:
		return buildkit.Config{}, usageErrorf("--backend buildkit here takes one --addr, not %d", len(addrs))
	}
	addr := addrs[0]
	if !strings.Contains(addr, "://") {
		return buildkit.Config{}, usageErrorf("--addr %q: give a unix:// or tcp:// address", addr)
	}
	var tls buildkit.TLS
	tls.CACert, _ = fl.GetString("tlscacert")
	tls.Cert, _ = fl.GetString("tlscert")
	tls.Key, _ = fl.GetString("tlskey")
	tls.ServerName, _ = fl.GetString("tlsservername")
	if tls != (buildkit.TLS{}) && !strings.HasPrefix(addr, "tcp://") {
		return buildkit.Config{}, usageErrorf("the --tls flags need a tcp:// --addr, not %q", addr)
	}
	if (tls.Cert == "") != (tls.Key == "") {
		return buildkit.Config{}, usageErrorf("--tlscert and --tlskey go together")
	}
	for flag, file := range map[string]string{"tlscacert": tls.CACert, "tlscert": tls.Cert, "tlskey": tls.Key} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return buildkit.Config{}, usageErrorf("--%s: %v", flag, err)
		}
	}
	return buildkit.Config{Address: addr, TLS: tls, StateDir: filepath.Join(dd, "buildkit"), Logger: log}, nil
}

// openBuildkit opens the BuildKit backend the flags name.
func openBuildkit(ctx context.Context, fl *pflag.FlagSet, dd string, log *slog.Logger) (sandbox.Backend, func() error, error) {
	cfg, err := buildkitConfig(fl, dd, log)
	if err != nil {
		return nil, nil, err
	}
	b, err := buildkit.New(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}
