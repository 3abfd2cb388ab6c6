// Package bktest starts a private BuildKit daemon for tests: buildkitd with
// the runc worker, its own root directory and unix socket under a temporary
// directory (no TCP listener), security.insecure allowed (reprobox's entry
// program needs it), stopped when the test ends.
//
// The daemon is the buildkitd that `make buildkitd` (part of `make deps`)
// builds from BuildKit's module source into ~/.cache/reprobox; the
// REPROBOX_BUILDKITD variable names another. Without it, or without root
// or runc, a test is skipped (a failure in CI, where skips are refused).
package bktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
)

// Version is the BuildKit release the Makefile builds.
const Version = "v0.34.2"

// Binary is the buildkitd the tests run: $REPROBOX_BUILDKITD, else
// ~/.cache/reprobox/buildkit-<Version>/buildkitd (make buildkitd), else
// buildkitd on PATH. "" when there is none.
func Binary() string {
	if p := os.Getenv("REPROBOX_BUILDKITD"); p != "" {
		return p
	}
	if dir, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(dir, "reprobox", "buildkit-"+Version, "buildkitd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "reprobox", "buildkit-"+Version, "buildkitd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p
	}
	return ""
}

// Missing says what this machine lacks to run a private daemon, or "".
func Missing() string {
	if os.Geteuid() != 0 {
		return "buildkitd with the runc worker needs root"
	}
	if Binary() == "" {
		return "no buildkitd: run `make buildkitd` (it builds BuildKit " + Version + " into ~/.cache/reprobox) or set REPROBOX_BUILDKITD"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "no runc for buildkitd's worker (apt-get install runc)"
	}
	return ""
}

// A Daemon is a running private buildkitd.
type Daemon struct {
	// Address is its unix:// address.
	Address string
	// Dir holds everything of the daemon; LogPath is its log.
	Dir, LogPath string
	cmd          *exec.Cmd
	done         chan struct{}
}

// Start starts a private daemon for t, stopped when t ends, its log shown
// when t fails.
func Start(t testing.TB) *Daemon {
	t.Helper()
	if reason := Missing(); reason != "" {
		testenv.Skip(t, "%s", reason)
	}
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd log (%s):\n%s", d.LogPath, d.Log(60))
		}
		d.Stop()
	})
	return d
}

// New starts a private daemon in a new temporary directory. Stop it.
func New() (*Daemon, error) { return NewTCP("", nil) }

// NewTCP starts a private daemon listening on tcpAddr (tcp://127.0.0.1:PORT;
// "" for its unix socket only) with extra arguments (TLS files). Stop it.
func NewTCP(tcpAddr string, extra []string) (*Daemon, error) {
	if reason := Missing(); reason != "" {
		return nil, errors.New(reason)
	}
	// Short: a unix socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "bk-")
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Address: "unix://" + filepath.Join(dir, "buildkitd.sock"),
		Dir:     dir,
		LogPath: filepath.Join(dir, "buildkitd.log"),
		done:    make(chan struct{}),
	}
	log, err := os.Create(d.LogPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := Args(dir)
	if tcpAddr != "" {
		args = append(args, "--addr", tcpAddr)
	}
	cmd := exec.Command(Binary(), append(args, extra...)...)
	// Whole outputs: BuildKit clips a step's log at 2 MiB and 200 KiB/s by
	// default, and a job's output is the build's.
	cmd.Env = append(os.Environ(), "BUILDKIT_STEP_LOG_MAX_SIZE=-1", "BUILDKIT_STEP_LOG_MAX_SPEED=-1")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start buildkitd: %w", err)
	}
	d.cmd = cmd
	go func() { _ = cmd.Wait(); close(d.done) }()
	sock := strings.TrimPrefix(d.Address, "unix://")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			err := fmt.Errorf("buildkitd exited at start: %s", d.Log(20))
			d.Stop()
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("buildkitd did not listen within a minute: %s", d.Log(20))
			d.Stop()
			return nil, err
		}
	}
}

// Args are the arguments of a private daemon keeping everything under dir:
// the runc worker only, its root in dir/root, its socket dir/buildkitd.sock,
// security.insecure allowed. It is what the README tells users to run.
func Args(dir string) []string {
	return []string{
		"--root", filepath.Join(dir, "root"),
		"--addr", "unix://" + filepath.Join(dir, "buildkitd.sock"),
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-binary", "runc",
		"--allow-insecure-entitlement", "security.insecure",
		"--group", "0",
	}
}

// Stop stops the daemon (SIGTERM, then SIGKILL after ten seconds) and
// removes its directory.
func (d *Daemon) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	// Never through a mount the daemon left behind.
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), " "+d.Dir+"/") {
		return
	}
	_ = os.RemoveAll(d.Dir)
}

// Kill kills the daemon at once (SIGKILL), as a machine that disappears.
func (d *Daemon) Kill() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

// Log is the last n lines of the daemon's log.
func (d *Daemon) Log(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Wait waits for ctx or until the daemon has exited.
func (d *Daemon) Wait(ctx context.Context) error {
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
