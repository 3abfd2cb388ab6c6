package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/internal/testenv"
)

// A liveRun is what a running reprobox build owns on the host: found while it
// runs, checked to be gone after it stopped.
type liveRun struct {
	dataDir string
	pid     int
	marker  string   // sleep's argument, naming the build's process
	work    []string // its work directories
	states  []string // the backend's run directories (overlay, lock)
	cgroups []string
	mounts  []string
}

// observeRun records what the reprobox process pid owns while its build
// (the process running "sleep marker") runs.
func observeRun(t *testing.T, dataDir string, pid int, marker string) *liveRun {
	t.Helper()
	r := &liveRun{dataDir: dataDir, pid: pid, marker: marker, cgroups: cgroupsOf(t, sleepingPID(marker))}
	owners, _ := filepath.Glob(filepath.Join(dataDir, "work", "*", ".owner"))
	for _, o := range owners {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(pid)+" ") {
			w := filepath.Dir(o)
			r.work = append(r.work, w)
			r.states = append(r.states, filepath.Join(dataDir, "run", "runs", "rbx-"+filepath.Base(w)))
		}
	}
	for _, m := range strings.Split(mounts(t), "\n") {
		f := strings.Fields(m)
		if len(f) < 5 {
			continue
		}
		for _, d := range append(append([]string{}, r.work...), r.states...) {
			if f[4] == d || strings.HasPrefix(f[4], d+"/") {
				r.mounts = append(r.mounts, f[4])
			}
		}
	}
	// A build has a work directory with its source overlay, a backend run
	// with the root overlay, and a cgroup: else the test proves nothing.
	if len(r.work) == 0 || len(r.cgroups) == 0 || len(r.mounts) < 2 {
		t.Fatalf("the running build owns work %v, cgroups %v, mounts %v: the test proves nothing", r.work, r.cgroups, r.mounts)
	}
	return r
}

// assertGone fails the test for anything of the run still alive or present.
func (r *liveRun) assertGone(t *testing.T) {
	t.Helper()
	if pid := sleepingPID(r.marker); pid != 0 {
		t.Errorf("the build's process %d still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// No process left in the build's cgroups.
	for _, cg := range r.cgroups {
		if b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("processes left in %s: %s", cg, b)
		}
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup left behind: %s", cg)
		}
	}
	now := mounts(t)
	for _, m := range r.mounts {
		if strings.Contains(now, " "+m+" ") {
			t.Errorf("mount left behind: %s", m)
		}
	}
	for _, d := range append(append([]string{}, r.work...), r.states...) {
		if _, err := os.Lstat(d); err == nil {
			t.Errorf("run state left behind: %s", d)
		}
		if _, err := os.Lstat(d + ".lock"); err == nil && strings.Contains(d, "/runs/") {
			t.Errorf("run lock left behind: %s.lock", d)
		}
	}
	// The source snapshot of the run.
	owners, _ := filepath.Glob(filepath.Join(r.dataDir, "work", "source-*", ".owner"))
	for _, o := range owners {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(r.pid)+" ") {
			t.Errorf("source snapshot left behind: %s", filepath.Dir(o))
		}
	}
}

// waitExit waits for reprobox to end, up to three minutes (a loaded machine),
// and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Errorf("reprobox was killed by %v instead of stopping the build", ws.Signal())
				return -1
			}
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("reprobox did not end within three minutes of the signal")
		return -1
	}
}

// TestSIGHUPStopsBuild: a hangup (the terminal's window closed, an ssh
// session dropped) ends a build as Ctrl-C does.
func TestSIGHUPStopsBuild(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3456.789"
	cmd, errb := startSleepingBuild(t, dataDir, image, marker)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, errb)
	}
	if !strings.Contains(errb.String(), "interrupted by SIGHUP") {
		t.Errorf("stderr does not name SIGHUP:\n%s", errb)
	}
	run.assertGone(t)
}

// TestSecondSignalKeepsCleanup: Ctrl-C twice in a row (and then SIGTERM)
// still stops the build and removes everything; the second says so.
func TestSecondSignalKeepsCleanup(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3457.891"
	cmd, errb := startSleepingBuild(t, dataDir, image, marker)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	for _, sig := range []os.Signal{os.Interrupt, os.Interrupt, syscall.SIGTERM} {
		if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
	}
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, errb)
	}
	run.assertGone(t)
}

// TestClosedTerminalStopsBuild runs reprobox on a pseudo-terminal as its
// controlling terminal and closes the terminal, as closing a terminal window
// does: the kernel hangs up the session and later writes fail with EIO.
func TestClosedTerminalStopsBuild(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3458.912"
	master, slave := openPTY(t)
	cmd := exec.Command(os.Args[0], "build", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--progress", "1s",
		"--", "sh", "-c", "sleep "+marker+" & while :; do echo tick; sleep 0.2; done")
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out lockedBuffer
	go func() { _, _ = io.Copy(&out, master) }()
	waitSleeping(t, cmd, marker, &out)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	master.Close() // the terminal goes away
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, out.String())
	}
	run.assertGone(t)
}

// TestClosedPipeStopsBuild: `reprobox build 2>&1 | head -5`. The reader of
// reprobox's output exits while the build prints; reprobox must not die of
// SIGPIPE leaving the container running, but stop it and clean up.
func TestClosedPipeStopsBuild(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3459.123"
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "build", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x",
		"--", "sh", "-c", "sleep "+marker+" & while :; do echo tick; sleep 0.2; done")
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Read, as head does, until the build prints; then go away.
	var seen bytes.Buffer
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if sc.Text() == "tick" && sleeping(marker) {
			break
		}
	}
	if !sleeping(marker) {
		_ = cmd.Process.Kill()
		t.Fatalf("the build never ran:\n%s", seen.String())
	}
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	pr.Close()
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d", code, exitInterrupted)
	}
	run.assertGone(t)
}

// TestStraySIGPIPEIgnored: a SIGPIPE while stdout and stderr are fine (one of
// reprobox's own pipes, or kill -PIPE) does not stop the build.
func TestStraySIGPIPEIgnored(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3460.234"
	cmd, errb := startSleepingBuild(t, dataDir, image, marker)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	if err := cmd.Process.Signal(syscall.SIGPIPE); err != nil {
		t.Fatal(err)
	}
	// Observe for two seconds that the build goes on.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !sleeping(marker) {
			t.Fatalf("a stray SIGPIPE stopped the build:\n%s", errb)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted || !strings.Contains(errb.String(), "interrupted by SIGINT") {
		t.Errorf("exit %d, want %d naming SIGINT\n%s", code, exitInterrupted, errb)
	}
	run.assertGone(t)
}

// waitSleeping waits until the build runs "sleep marker".
func waitSleeping(t *testing.T, cmd *exec.Cmd, marker string, out interface{ String() string }) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !sleeping(marker) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the build never started:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// lockedBuffer is a bytes.Buffer safe for one writer and other readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCheckSIGHUPStopsEveryBuild: a hangup during a check, whose builds run
// in parallel, kills all of them and leaves no partial output directory.
func TestCheckSIGHUPStopsEveryBuild(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3461.345"
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "check", "--image", image, "--data-dir", dataDir, "--jobs", "2",
		"--out", filepath.Join(parent, "out"), "--artifact", "x", "--", "sleep", marker)
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitSleeping(t, cmd, marker, &errb)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted || !strings.Contains(errb.String(), "interrupted by SIGHUP") {
		t.Errorf("exit %d, want %d naming SIGHUP\n%s", code, exitInterrupted, errb.String())
	}
	run.assertGone(t)
	if sleeping(marker) {
		t.Error("a build of the check still runs")
	}
	left, _ := os.ReadDir(parent)
	for _, e := range left {
		t.Errorf("an interrupted check left %s in the output's parent", e.Name())
	}
}

// TestNohupKeepsBuilding: under nohup, which starts reprobox with SIGHUP
// ignored, a hangup must not stop the build.
func TestNohupKeepsBuilding(t *testing.T) {
	dataDir, image := needImage(t)
	testenv.NeedProgram(t, "nohup")
	const marker = "3462.456"
	cmd := exec.Command("nohup", os.Args[0], "build", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--", "sleep", marker)
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitSleeping(t, cmd, marker, &errb)
	run := observeRun(t, dataDir, cmd.Process.Pid, marker)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Observe for two seconds that the build goes on.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !sleeping(marker) {
			t.Fatalf("SIGHUP stopped a build started under nohup:\n%s", errb.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, errb.String())
	}
	run.assertGone(t)
}
