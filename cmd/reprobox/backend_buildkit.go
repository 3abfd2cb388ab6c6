package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/buildkit"
)

const backendBuildkit = "buildkit"

// buildkitDefaultAddress is buildctl's default daemon address.
const buildkitDefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// buildkitTLSFlags are the TLS flags of --backend buildkit, named as
// buildctl names them.
var buildkitTLSFlags = []string{"tlscacert", "tlscert", "tlskey", "tlsservername"}

// addBuildkitFlags registers the flags of --backend buildkit (its daemons'
// addresses are --addr).
func addBuildkitFlags(fl *pflag.FlagSet) {
	fl.String("tlscacert", "", "CA certificate (PEM) the buildkitd's TLS certificate must chain to (--backend buildkit, tcp://)")
	fl.String("tlscert", "", "client certificate (PEM) for buildkitd (--backend buildkit, tcp://)")
	fl.String("tlskey", "", "client key (PEM) for buildkitd (--backend buildkit, tcp://)")
	fl.String("tlsservername", "", "name buildkitd's TLS certificate must carry; default: the address's host (--backend buildkit)")
}

// buildkitTLS reads the TLS flags, which need --backend buildkit; the files
// they name must exist.
func buildkitTLS(fl *pflag.FlagSet, backend string) (buildkit.TLS, error) {
	var tls buildkit.TLS
	if fl.Lookup("tlscacert") == nil {
		return tls, nil
	}
	if backend != backendBuildkit {
		for _, name := range buildkitTLSFlags {
			if fl.Changed(name) {
				return tls, usageErrorf("--%s needs --backend buildkit", name)
			}
		}
		return tls, nil
	}
	tls.CACert, _ = fl.GetString("tlscacert")
	tls.Cert, _ = fl.GetString("tlscert")
	tls.Key, _ = fl.GetString("tlskey")
	tls.ServerName, _ = fl.GetString("tlsservername")
	if (tls.Cert == "") != (tls.Key == "") {
		return tls, usageErrorf("--tlscert and --tlskey go together")
	}
	for flag, file := range map[string]string{"tlscacert": tls.CACert, "tlscert": tls.Cert, "tlskey": tls.Key} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return tls, usageErrorf("--%s: %v", flag, err)
		}
	}
	return tls, nil
}

// openBuildkitWorker opens the BuildKit backend of the daemon at addr, its
// state under the data directory (buildkit/).
func openBuildkitWorker(ctx context.Context, addr string, o workerOpts) (sandbox.Backend, func() error, error) {
	if !strings.Contains(addr, "://") {
		return nil, nil, usageErrorf("--addr %q: give a unix:// or tcp:// address for --backend buildkit", addr)
	}
	if o.buildkitTLS != (buildkit.TLS{}) && !strings.HasPrefix(addr, "tcp://") {
		return nil, nil, usageErrorf("the --tls flags need a tcp:// --addr, not %q", addr)
	}
	b, err := buildkit.New(ctx, buildkit.Config{
		Address:  addr,
		TLS:      o.buildkitTLS,
		StateDir: filepath.Join(o.dataDir, "buildkit"),
		Logger:   o.log,
	})
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}
