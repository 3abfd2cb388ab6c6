// Package buildkit runs sandbox jobs on a BuildKit daemon (buildkitd, runc
// worker) through BuildKit's Go client, on this host or another.
//
// A job is one LLB solve: the image comes from reprobox's OCI layout
// (Job.Image.Layout) as an oci-layout source pinned by digest, served to the
// daemon from this process through the session's content store (no
// registry); the source and a control directory go as one local context,
// mounted at /.reprobox-job; the process runs with network none and the
// job's environment and hostname; the job directory comes back through the
// local exporter into a private directory, where Collect reads the tree.
//
// LLB cannot express most of a job's spec (umask, personality, CPU set,
// memory and pids limits, capabilities, seccomp, masked paths, tmpfs options,
// the domain name, the generated files over the image's /etc). So the job's
// first process is a small static entry program (compiled once with the
// host's C compiler, as the time shim is) that applies all of it as runc's
// init would, runs the build as its child, enforces Job.DiskBytes, and
// writes how the build ended where the build cannot reach. That needs the
// daemon to allow the security.insecure entitlement
// (buildkitd --allow-insecure-entitlement security.insecure): the entry
// program starts with every capability, and the build runs with only what
// the job's spec gives it (none, for reprobox's builds) under the job's own
// seccomp profile.
//
// BuildKit's cache never answers a job: the exec is marked IgnoreCache and its
// local context carries a fresh random nonce, so two identical jobs are two
// runs.
//
// Differences from the libcontainer backend: reverse directory order
// (FileOrdering "reverse") is not supported; Result.OOMKilled is never set
// (the entry program cannot tell an OOM kill from another SIGKILL); the
// seccomp program is compiled with libseccomp as runc does but without runc's
// ENOSYS patch for syscalls newer than libseccomp.
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/reprobox/reprobox/sandbox"
)

const backendName = "buildkit"

// TLS is how the client authenticates a tcp:// daemon, as buildctl's
// --tlscacert, --tlscert, --tlskey and --tlsservername.
type TLS struct {
	// CACert is the PEM file of the CA that signed the daemon's
	// certificate; "" means the system's roots.
	CACert string
	// Cert and Key are the client's certificate and key (both or neither).
	Cert, Key string
	// ServerName is the name the daemon's certificate must carry; "" means
	// the address's host.
	ServerName string
}

// Config configures a Backend.
type Config struct {
	// Address is the daemon's address: unix:///run/buildkit/buildkitd.sock,
	// tcp://host:port, or any address buildctl takes.
	Address string
	// TLS, when any of its fields is set, secures a tcp:// connection.
	TLS TLS
	// StateDir is a host directory for the entry program, the jobs' control
	// files and their exported trees. It is created if missing. "" means
	// <os.TempDir()>/reprobox-buildkit.
	StateDir string
	// Logger receives debug lines. Nil discards them.
	Logger *slog.Logger
}

// A Backend runs jobs on one BuildKit daemon. It is safe for concurrent use.
type Backend struct {
	client   *client.Client
	address  string
	stateDir string
	log      *slog.Logger

	// pidHelper is the PID entry program, compiled once per backend
	// (pid.go).
	pidHelper struct {
		once sync.Once
		path string
		err  error
	}
	entryOnce sync.Once
	entry     string
	entryErr  error
}

var (
	_ sandbox.Backend  = (*Backend)(nil)
	_ sandbox.Features = (*Backend)(nil)
)

// connectTimeout bounds New's first exchange with the daemon.
const connectTimeout = 20 * time.Second

// New connects to the daemon at cfg.Address and checks that it answers
// and has a worker. Close the Backend when done.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Address == "" {
		return nil, errors.New("buildkit: no daemon address (give --addr unix:///run/buildkit/buildkitd.sock or tcp://HOST:PORT)")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(os.TempDir(), "reprobox-buildkit")
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("buildkit: state directory: %w", err)
	}
	b := &Backend{address: cfg.Address, stateDir: dir, log: cfg.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{dir, b.jobsDir(), b.binDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("buildkit: %w", err)
		}
	}
	b.removeStale()
	var opts []client.ClientOpt
	t := cfg.TLS
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("buildkit: TLS: give both the client certificate and its key (--tlscert and --tlskey), or neither")
	}
	if t != (TLS{}) {
		if !strings.HasPrefix(cfg.Address, "tcp://") {
			return nil, fmt.Errorf("buildkit: TLS options need a tcp:// address, not %q", cfg.Address)
		}
		for _, f := range []string{t.CACert, t.Cert, t.Key} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("buildkit: TLS: %w", err)
			}
		}
		if t.CACert != "" {
			opts = append(opts, client.WithServerConfig(t.ServerName, t.CACert))
		} else {
			opts = append(opts, client.WithServerConfigSystem(t.ServerName))
		}
		if t.Cert != "" {
			opts = append(opts, client.WithCredentials(t.Cert, t.Key))
		}
	}
	c, err := client.New(ctx, cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("buildkit: connect to %s: %w", cfg.Address, err)
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	ws, err := c.ListWorkers(cctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("buildkit: no answer from the daemon at %s (is buildkitd running there?): %w", cfg.Address, err)
	}
	if len(ws) == 0 {
		c.Close()
		return nil, fmt.Errorf("buildkit: the daemon at %s has no worker", cfg.Address)
	}
	b.client = c
	return b, nil
}

// Close closes the connection to the daemon.
func (b *Backend) Close() error { return b.client.Close() }

// Address is the daemon's address, as given.
func (b *Backend) Address() string { return b.address }

// Features reports what the backend applies: Features.
func (b *Backend) Features() []sandbox.Feature {
	return slices.Clone(Features)
}

// Features is what the backend applies: everything but reverse directory
// order.
var Features = []sandbox.Feature{
	sandbox.FeatureCPUSet, sandbox.FeatureFiles, sandbox.FeaturePersonality, sandbox.FeaturePID,
	sandbox.FeatureUTSNames, sandbox.FeatureUmask, sandbox.FeatureUser,
}

// removeStale removes the job directories of reprobox processes that are
// gone (killed mid-job): a job directory is <pid>_<job id>_<random>.
func (b *Backend) removeStale() {
	ents, err := os.ReadDir(b.jobsDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, _, ok := strings.Cut(e.Name(), "_")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil || n <= 0 || n == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil {
			continue
		}
		p := filepath.Join(b.jobsDir(), e.Name())
		if err := os.RemoveAll(p); err != nil {
			b.log.Warn("cannot remove a dead run's job directory", "dir", p, "err", err)
		} else {
			b.log.Warn("removed a dead run's job directory", "dir", p)
		}
	}
}

func (b *Backend) jobsDir() string { return filepath.Join(b.stateDir, "jobs") }
func (b *Backend) binDir() string  { return filepath.Join(b.stateDir, "bin") }

func unsupported(what string, args ...any) error {
	return sandbox.Unsupported(backendName, fmt.Sprintf(what, args...))
}
