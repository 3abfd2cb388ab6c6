package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
)

// interruptAt runs reprobox with args in dir and sends SIGINT when a line of
// its stderr contains trigger. It returns the exit status, all of stderr and
// the pid reprobox had.
func interruptAt(t *testing.T, dir, trigger string, args ...string) (code int, stderr string, pid int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(pipe)
	sent := false
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), trigger) {
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	code = waitExit(t, cmd)
	if !sent {
		t.Fatalf("reprobox never printed %q (exit %d):\n%s", trigger, code, b.String())
	}
	return code, b.String(), cmd.Process.Pid
}

// assertNoRunOf fails for any work directory or source snapshot of pid left
// in the data directory.
func assertNoRunOf(t *testing.T, dataDir string, pid int) {
	t.Helper()
	owners, _ := filepath.Glob(filepath.Join(dataDir, "work", "*", ".owner"))
	for _, o := range owners {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(pid)+" ") {
			t.Errorf("left behind: %s", filepath.Dir(o))
		}
	}
	for _, m := range strings.Split(mounts(t), "\n") {
		if f := strings.Fields(m); len(f) > 4 && strings.HasPrefix(f[4], dataDir+"/") && ownedBy(f[4], pid) {
			t.Errorf("mount left behind: %s", f[4])
		}
	}
}

// TestInterruptDuringSourceCopy presses Ctrl-C while reprobox copies a large
// source tree into its snapshot: the copy stops, the partial snapshot is
// removed, nothing is written, and reprobox exits 130.
func TestInterruptDuringSourceCopy(t *testing.T) {
	dataDir, image := needImage(t)
	project := filepath.Join(t.TempDir(), "project")
	copyDir(t, fixture("reproducible"), project)
	// 10000 small files: a second or more of copying, even on a fast machine.
	for d := range 100 {
		sub := filepath.Join(project, "data", strconv.Itoa(d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(sub, strconv.Itoa(f)), []byte(fmt.Sprint(d, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := fingerprint(t, project)
	out := filepath.Join(t.TempDir(), "out")
	code, stderr, pid := interruptAt(t, project, "copying the source into a pristine snapshot",
		"build", "--image", image, "--data-dir", dataDir, "--out", out, "--artifact", "x", "--", "true")
	if strings.Contains(stderr, "reprobox: snapshot of ") {
		t.Fatalf("the snapshot was completed after SIGINT: the copy does not stop when interrupted (or the tree is too small to catch it)\n%s", stderr)
	}
	if code != exitInterrupted || !strings.Contains(stderr, "interrupted by SIGINT") {
		t.Errorf("exit %d, want %d naming SIGINT\n%s", code, exitInterrupted, stderr)
	}
	assertNoRunOf(t, dataDir, pid)
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("an interrupted build wrote %s", out)
	}
	if fingerprint(t, project) != before {
		t.Error("the project changed")
	}
}

// TestInterruptDuringArtifactCopy presses Ctrl-C while reprobox copies a
// build's many artifacts to --out: it stops between artifacts, publishes no
// output directory, leaves no partial one, and exits 130.
func TestInterruptDuringArtifactCopy(t *testing.T) {
	dataDir, image := needImage(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	code, stderr, pid := interruptAt(t, fixture("reproducible"), "reprobox: copying 300 artifact(s)",
		"build", "--image", image, "--data-dir", dataDir, "--out", out, "--artifact", "a/*",
		"--", "sh", "-c", `mkdir a && i=0 && while [ $i -lt 300 ]; do head -c 1048576 /dev/zero >a/$i; i=$((i+1)); done`)
	if strings.Contains(stderr, "reprobox: built in") {
		t.Fatalf("the build was published after SIGINT: the artifact copy does not stop when interrupted (or is too small to catch it)\n%s", stderr)
	}
	if code != exitInterrupted || !strings.Contains(stderr, "interrupted by SIGINT") {
		t.Errorf("exit %d, want %d naming SIGINT\n%s", code, exitInterrupted, stderr)
	}
	assertNoRunOf(t, dataDir, pid)
	left, _ := os.ReadDir(parent)
	for _, e := range left {
		t.Errorf("an interrupted build left %s in the output's parent", e.Name())
	}
}

// TestInterruptDuringImport presses Ctrl-C while reprobox copies the layer
// of the default image (hundreds of MB) into an empty store, once the staged
// blob has grown past 1 MB: the store must stay as it was, with no staged blob
// left, and reprobox exits 130.
func TestInterruptDuringImport(t *testing.T) {
	src, _ := needImage(t)
	data := filepath.Join(t.TempDir(), "data")
	if r := reprobox(t, ".", "image", "ls", "--data-dir", data); r.code != 0 {
		t.Fatalf("ls: exit %d\n%s", r.code, r.stderr)
	}
	before := fingerprint(t, data)
	cmd := exec.Command(os.Args[0], "image", "import", filepath.Join(src, "oci"), "--data-dir", data)
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	staging := func() bool {
		blobs, _ := filepath.Glob(filepath.Join(data, "tmp", "blob-*"))
		for _, b := range blobs {
			if st, err := os.Stat(b); err == nil && st.Size() > 1<<20 {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(3 * time.Minute); !staging(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			_ = cmd.Process.Kill()
			t.Fatalf("the import never staged its layer:\n%s", errb.String())
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd)
	if code == 0 {
		t.Fatalf("the import completed after SIGINT: it does not stop while it copies a layer\n%s", errb.String())
	}
	if code != exitInterrupted || !strings.Contains(errb.String(), "interrupted by SIGINT") {
		t.Errorf("exit %d, want %d naming SIGINT\n%s", code, exitInterrupted, errb.String())
	}
	if after := fingerprint(t, data); after != before {
		t.Errorf("an interrupted import changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestInterruptDuringImageBuild presses Ctrl-C while mmdebstrap installs
// packages into its chroot (its /proc and /sys mounted): no process of
// mmdebstrap's may outlive reprobox, its chroot and mounts must be gone, the
// store unchanged, and reprobox exits 130. It needs the Debian mirror.
func TestInterruptDuringImageBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs mmdebstrap for a minute; not with -short")
	}
	testenv.NeedRoot(t)
	testenv.NeedProgram(t, "mmdebstrap")
	data := filepath.Join(t.TempDir(), "data")
	if r := reprobox(t, ".", "image", "ls", "--data-dir", data); r.code != 0 {
		t.Fatalf("ls: exit %d\n%s", r.code, r.stderr)
	}
	before := fingerprint(t, data)
	cmd := exec.Command(os.Args[0], "image", "build", "--name", "test/interrupted", "--data-dir", data)
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tempRE := regexp.MustCompile(`I: using (/\S+) as tempdir`)
	var chroot string
	var group int // mmdebstrap's process group
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) || strings.Contains(errb.String(), "E: ") {
			_ = cmd.Process.Kill()
			t.Fatalf("mmdebstrap never mounted its chroot's /proc:\n%s", errb.String())
		}
		if m := tempRE.FindStringSubmatch(errb.String()); m != nil && chroot == "" {
			chroot = m[1]
		}
		if group == 0 {
			group = childNamed(cmd.Process.Pid, "mmdebstrap")
		}
		if chroot != "" && group != 0 && strings.Contains(mounts(t), " "+chroot+"/proc ") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted {
		t.Errorf("exit %d, want %d\n%s", code, exitInterrupted, errb.String())
	}
	if pids := inGroup(group); len(pids) > 0 {
		t.Errorf("processes of mmdebstrap's group outlived reprobox: %v", pids)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	if strings.Contains(mounts(t), " "+chroot+"/") {
		t.Errorf("mounts left under %s", chroot)
	}
	if _, err := os.Lstat(chroot); err == nil {
		t.Errorf("chroot %s left behind", chroot)
	}
	if after := fingerprint(t, data); after != before {
		t.Errorf("an interrupted image build changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// childNamed is the pid of a child of parent whose command is name, or 0.
func childNamed(parent int, name string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		comm, fields := procStat(p)
		if comm == name && len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

// inGroup lists the processes in process group pgid.
func inGroup(pgid int) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		if _, fields := procStat(p); len(fields) > 2 && fields[2] == strconv.Itoa(pgid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads /proc/PID/stat: the command name and the fields after it
// (state, ppid, pgrp, ...).
func procStat(path string) (comm string, fields []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", nil
	}
	return s[open+1 : end], strings.Fields(s[end+1:])
}

// TestInterruptDuringUnpack presses Ctrl-C while the first build with an
// image unpacks its root filesystem: the partial tree is removed, no root
// filesystem is cached, and reprobox exits 130.
func TestInterruptDuringUnpack(t *testing.T) {
	src, image := needImage(t)
	data := filepath.Join(t.TempDir(), "data")
	if r := reprobox(t, ".", "image", "import", filepath.Join(src, "oci"), "--data-dir", data); r.code != 0 {
		t.Fatalf("import: exit %d\n%s", r.code, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "build", "--image", image, "--data-dir", data, "--out", out, "--artifact", "x", "--", "true")
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Unpacking: the partial tree has its /usr.
	unpacking := func() bool {
		m, _ := filepath.Glob(filepath.Join(data, "rootfs", ".tmp-*", "usr"))
		return len(m) > 0
	}
	for deadline := time.Now().Add(3 * time.Minute); !unpacking(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			_ = cmd.Process.Kill()
			t.Fatalf("the build never unpacked its root filesystem:\n%s", errb.String())
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != exitInterrupted || !strings.Contains(errb.String(), "interrupted by SIGINT") {
		t.Errorf("exit %d, want %d naming SIGINT\n%s", code, exitInterrupted, errb.String())
	}
	if strings.Contains(errb.String(), "reprobox: building ") {
		t.Fatalf("the unpack completed after SIGINT: it does not stop when interrupted\n%s", errb.String())
	}
	left, _ := os.ReadDir(filepath.Join(data, "rootfs"))
	for _, e := range left {
		t.Errorf("an interrupted unpack left %s", e.Name())
	}
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("an interrupted build wrote %s", out)
	}
}
