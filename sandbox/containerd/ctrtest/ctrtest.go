// Package ctrtest starts a private containerd daemon for tests: its own root,
// state directory and socket under a temporary directory, the CRI plugin
// disabled, stopped when the test ends. It works with Debian's containerd 1.6
// and with containerd 2.x (both read a version 2 configuration).
package ctrtest

import (
	"context"
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

// Config returns the configuration of a private daemon keeping everything
// under dir: root (content, snapshots, metadata) in dir/root, state (task
// bundles, the shims' sockets) in dir/state, and its API socket at
// dir/containerd.sock. It is what the README tells users to run.
func Config(dir string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), Socket(dir), Socket(dir)+".ttrpc", filepath.Join(dir, "opt"))
}

// Socket is the API socket of the daemon configured by Config(dir).
func Socket(dir string) string { return filepath.Join(dir, "containerd.sock") }

// A Daemon is a running private containerd.
type Daemon struct {
	// Address is its socket.
	Address string
	// Root and State are its root and state directories.
	Root, State string
	// Dir holds everything of the daemon; LogPath is its log.
	Dir, LogPath string
	cmd          *exec.Cmd
	done         chan struct{}
}

// Start starts a private containerd daemon for t, stopped when t ends. It
// skips t (a failure in CI) without root or the containerd program, which
// `make deps` installs. The daemon's log is shown when t fails.
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
			t.Logf("containerd log (%s):\n%s", d.LogPath, d.Log(60))
		}
		d.Stop()
	})
	return d
}

// Missing says what this machine lacks to run a private daemon, or "".
func Missing() string {
	if os.Geteuid() != 0 {
		return "needs root (containerd)"
	}
	for _, p := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Sprintf("needs %s on PATH (make deps installs the containerd package)", p)
		}
	}
	return ""
}

// New starts a private containerd daemon in a new temporary directory and
// waits until it serves its socket. Stop it with Stop.
func New() (*Daemon, error) {
	// A short directory: the socket's path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(Config(dir)), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "containerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a test's signals do not reach it; the
	// parent-death signal stops it when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	d := &Daemon{
		Address: Socket(dir), Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Dir: dir, LogPath: logPath, cmd: cmd, done: make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := net.Dial("unix", d.Address)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			err := fmt.Errorf("containerd exited at start-up: %s", d.Log(30))
			_ = os.RemoveAll(dir)
			return nil, err
		case <-ctx.Done():
			d.Stop()
			return nil, fmt.Errorf("containerd's socket %s did not appear in 30 s", d.Address)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log returns the last n lines of the daemon's log.
func (d *Daemon) Log(n int) string {
	b, _ := os.ReadFile(d.LogPath)
	return tail(string(b), n)
}

// Stop stops the daemon (SIGTERM, then SIGKILL after 10 s), unmounts
// whatever is still mounted beneath its directory and removes it.
func (d *Daemon) Stop() {
	d.stop()
	_ = exec.Command("umount", "-R", "-l", d.Root).Run()
	_ = exec.Command("umount", "-R", "-l", d.State).Run()
	_ = os.RemoveAll(d.Dir)
}

func (d *Daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
