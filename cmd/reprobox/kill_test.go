package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGKILLedBuildIsCleanedByNextRun kills reprobox with SIGKILL while its
// build runs, then checks that the next run kills the orphaned container and
// removes every mount, cgroup and directory the killed run made.
func TestSIGKILLedBuildIsCleanedByNextRun(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "1234.567" // sleep's argument, to find the build's process
	cmd, _ := startSleepingBuild(t, dataDir, image, marker)
	// What the run owns: its mounts, work directories and cgroups.
	var work []string // the killed run's work directories, by their owner file
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "work", "*", ".owner"))
	for _, o := range dirs {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(cmd.Process.Pid)+" ") {
			work = append(work, filepath.Dir(o))
		}
	}
	// Its mounts: below its work directories, and its container's overlay
	// (the backend's run "rbx-ID" for work directory ID). Other runs may be
	// going on at the same time.
	var owned []string
	for _, m := range strings.Split(mounts(t), "\n") {
		f := strings.Fields(m)
		if len(f) < 5 {
			continue
		}
		for _, w := range work {
			run := filepath.Join(dataDir, "run", "runs", "rbx-"+filepath.Base(w))
			if strings.HasPrefix(f[4], w+"/") || strings.HasPrefix(f[4], run+"/") {
				owned = append(owned, f[4])
			}
		}
	}
	cgroups := cgroupsOf(t, sleepingPID(marker))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !sleeping(marker) {
		t.Fatal("the container died with reprobox: nothing to clean up, the test proves nothing")
	}
	if len(owned) == 0 || len(cgroups) == 0 || len(work) == 0 {
		t.Fatalf("the killed run had no mounts (%v), cgroups (%v) or work directories (%v): the test proves nothing", owned, cgroups, work)
	}

	// Any command that opens the runner cleans up.
	r := reprobox(t, fixture("reproducible"), "build", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(t.TempDir(), "out2"), "--artifact", "x", "--", "touch", "x")
	if r.code != 0 {
		t.Fatalf("next build: exit %d\n%s", r.code, r.stderr)
	}
	for i := 0; sleeping(marker); i++ {
		if i > 50 {
			t.Fatal("the orphaned build is still running")
		}
		time.Sleep(100 * time.Millisecond)
	}
	now := mounts(t)
	for _, m := range owned {
		if strings.Contains(now, " "+m+" ") {
			t.Errorf("mount left behind: %s", m)
		}
	}
	for _, w := range work {
		if _, err := os.Stat(w); err == nil {
			t.Errorf("work directory left behind: %s", w)
		}
	}
	for _, cg := range cgroups {
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup left behind: %s", cg)
		}
	}
}

// cgroupsOf lists the cgroup directories of a process, one per hierarchy.
func cgroupsOf(t *testing.T, pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.Contains(parts[2], "reprobox") {
			continue
		}
		ctrl := strings.TrimPrefix(parts[1], "name=")
		if ctrl == "" {
			ctrl = "unified"
		}
		if i := strings.IndexByte(ctrl, ','); i >= 0 {
			ctrl = ctrl[:i]
		}
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ctrl, parts[2]))
	}
	return dirs
}

// TestInterruptCleansUp sends SIGINT (Ctrl-C) to a running build: reprobox
// must stop the container, remove what the run made and exit 130.
func TestInterruptCleansUp(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "2345.678"
	cmd, errb := startSleepingBuild(t, dataDir, image, marker)
	cgroups := cgroupsOf(t, sleepingPID(marker))
	if len(cgroups) == 0 {
		t.Fatal("the build has no reprobox cgroup: the test proves nothing")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want status 130\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", errb.String())
	}
	if sleeping(marker) {
		t.Error("the build is still running")
	}
	for _, cg := range cgroups {
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("cgroup left behind: %s", cg)
		}
	}
	for _, m := range strings.Split(mounts(t), "\n") {
		if f := strings.Fields(m); len(f) > 4 && strings.HasPrefix(f[4], dataDir+"/") && ownedBy(f[4], cmd.Process.Pid) {
			t.Errorf("mount left behind: %s", f[4])
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "work", "*", ".owner"))
	for _, o := range dirs {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(cmd.Process.Pid)+" ") {
			t.Errorf("work directory left behind: %s", filepath.Dir(o))
		}
	}
}

// startSleepingBuild starts `reprobox build -- sleep marker` and returns once
// the sleep runs in its container.
func startSleepingBuild(t *testing.T, dataDir, image, marker string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return startSleeping(t, marker, "build", "--image", image, "--data-dir", dataDir,
		"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--", "sleep", marker)
}

// startSleeping starts reprobox with args, in the reproducible fixture, and
// returns once a build's `sleep marker` runs in its container.
func startSleeping(t *testing.T, marker string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	errb := &bytes.Buffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !sleeping(marker) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the build never started: %s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cmd, errb
}

// ownedBy reports whether a path lies in a work directory owned by pid.
func ownedBy(path string, pid int) bool {
	for dir := path; dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if b, err := os.ReadFile(filepath.Join(dir, ".owner")); err == nil {
			return strings.HasPrefix(string(b), strconv.Itoa(pid)+" ")
		}
	}
	return false
}

// sleeping reports whether a process runs "sleep marker".
func sleeping(marker string) bool { return sleepingPID(marker) != 0 }

// sleepingPID is the pid of the process running "sleep marker", or 0.
func sleepingPID(marker string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && string(b) == "sleep\x00"+marker+"\x00" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

func mounts(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
