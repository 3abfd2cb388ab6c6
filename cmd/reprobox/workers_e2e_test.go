package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobox/reprobox/sandbox/buildkit/bktest"
	"github.com/reprobox/reprobox/sandbox/containerd/ctrtest"
)

// workersReport is the part of report.json about workers.
type workersReport struct {
	checkReport
	PerBuild []struct {
		N      int      `json:"n"`
		Set    []string `json:"set"`
		Worker string   `json:"worker"`
		Failed string   `json:"failed"`
	} `json:"per_build"`
	Workers        map[string]int `json:"workers"`
	WorkerFindings []struct {
		Worker string `json:"worker"`
	} `json:"worker_findings"`
}

// checkWorkers runs `reprobox check` of a fixture on the given containerd
// workers (--addr each, no --jobs: the pool's slots) and returns its report.
// When during is not nil it runs while the check does.
func checkWorkers(t *testing.T, crate string, addrs []string, during func()) (workersReport, result) {
	t.Helper()
	return checkOn(t, crate, []string{"--backend", "containerd"}, addrs, during)
}

// checkOn is checkWorkers with the backend's arguments given.
func checkOn(t *testing.T, crate string, backend, addrs []string, during func()) (workersReport, result) {
	t.Helper()
	dataDir, image := needImage(t)
	tmp := t.TempDir()
	js := filepath.Join(tmp, "report.json")
	args := append([]string{"check", "--image", image, "--data-dir", dataDir, "--out", filepath.Join(tmp, "out"), "--json", js,
		"--worker-jobs", "1"}, backend...)
	for _, a := range addrs {
		args = append(args, "--addr", a)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = fixture(crate)
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during()
	}
	err := cmd.Wait()
	r := result{out.String(), errb.String(), 0}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if r.code > 1 {
		t.Fatalf("check exit %d\n%s", r.code, r.stderr)
	}
	var rep workersReport
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, r
}

// TestCheckTwoContainerdWorkers checks a fixture crate over two private
// containerd daemons: the builds run on both and the report says which ran
// which. Then it checks again and kills one daemon (with its shims and the
// build running there) after that daemon's first build has started: the
// check reruns the lost build on the other daemon and its verdict is the
// same as with one worker.
func TestCheckTwoContainerdWorkers(t *testing.T) {
	needImage(t)
	d1, d2 := ctrtest.Start(t), ctrtest.Start(t)
	const crate = "time"

	one, r := checkWorkers(t, crate, []string{d2.Address}, nil)
	t.Logf("one worker: %v in %d builds", one.Culprits, one.Builds)
	if !slices.Equal(one.Culprits, []string{"time"}) {
		t.Fatalf("one worker: culprits %v, want [time]\n%s", one.Culprits, r.stdout)
	}

	two, r := checkWorkers(t, crate, []string{d1.Address, d2.Address}, nil)
	t.Logf("two workers: %v in %d builds, per worker %v", two.Culprits, two.Builds, two.Workers)
	if !slices.Equal(two.Culprits, one.Culprits) || two.Reproducible != one.Reproducible {
		t.Errorf("two workers: culprits %v, one worker %v", two.Culprits, one.Culprits)
	}
	if two.Workers[d1.Address] == 0 || two.Workers[d2.Address] == 0 || two.Workers[d1.Address]+two.Workers[d2.Address] != two.Builds {
		t.Errorf("builds per worker %v for %d builds: want both workers used", two.Workers, two.Builds)
	}
	if len(two.PerBuild) != two.Builds {
		t.Errorf("per_build lists %d of %d builds", len(two.PerBuild), two.Builds)
	}
	for _, b := range two.PerBuild {
		if b.Worker != d1.Address && b.Worker != d2.Address {
			t.Errorf("build %d ran on %q", b.N, b.Worker)
		}
	}
	if len(two.WorkerFindings) != 0 {
		t.Errorf("two identical workers named: %+v", two.WorkerFindings)
	}
	if !strings.Contains(r.stdout, "builds per worker: ") || !strings.Contains(r.stderr, " on worker "+d1.Address) {
		t.Errorf("the text report or the progress lines do not name the workers:\n%s\n%s", r.stdout, r.stderr)
	}

	var killed []int
	killed1, r := checkWorkers(t, crate, []string{d1.Address, d2.Address}, func() {
		killed = killWorker(t, d1)
	})
	t.Logf("killed %v of %s; %v in %d builds, per worker %v", killed, d1.Address, killed1.Culprits, killed1.Builds, killed1.Workers)
	if !slices.Equal(killed1.Culprits, one.Culprits) || killed1.Reproducible != one.Reproducible || killed1.Nondeterministic {
		t.Errorf("with a worker killed: culprits %v (nondeterministic %v), one worker %v\n%s", killed1.Culprits, killed1.Nondeterministic, one.Culprits, r.stderr)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "worker") {
			t.Log(l)
		}
	}
	if !strings.Contains(r.stderr, `msg="worker down" worker=`+d1.Address) {
		t.Errorf("stderr does not say the worker went down:\n%s", r.stderr)
	}
	if killed1.Workers[d2.Address] != killed1.Builds-killed1.Workers[d1.Address] || killed1.Workers[d2.Address] == 0 {
		t.Errorf("builds per worker %v of %d", killed1.Workers, killed1.Builds)
	}
}

// TestCheckBuildkitWorkerStopped checks a fixture over two private
// buildkitd and kills one of them (the daemon, its runc and the build it
// runs) once a build has started there: the check reruns the lost build on
// the other daemon and blames the factor it blames on one daemon.
func TestCheckBuildkitWorkerStopped(t *testing.T) {
	needImage(t)
	b1, b2 := bktest.Start(t), bktest.Start(t)
	const crate = "time"
	backend := []string{"--backend", "buildkit", "--vary", "all,-fileordering"}
	var killed []int
	rep, r := checkOn(t, crate, backend, []string{b1.Address, b2.Address}, func() {
		deadline := time.Now().Add(5 * time.Minute)
		var runc []int
		for len(runc) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no build started on %s in 5 minutes", b1.Address)
			}
			time.Sleep(100 * time.Millisecond)
			runc = procsMentioning("runc", b1.Dir)
		}
		time.Sleep(time.Second) // the build is running
		b1.Kill()
		for _, p := range procsMentioning("runc", b1.Dir) {
			killed = append(killed, p)
			killed = append(killed, descendants(p)...)
		}
		for _, p := range killed {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	t.Logf("killed %s (and %v); %v in %d builds, per worker %v", b1.Address, killed, rep.Culprits, rep.Builds, rep.Workers)
	if !slices.Equal(rep.Culprits, []string{"time"}) || rep.Nondeterministic {
		t.Errorf("with a worker killed: culprits %v (nondeterministic %v), want [time]\n%s", rep.Culprits, rep.Nondeterministic, r.stderr)
	}
	if !strings.Contains(r.stderr, `msg="worker down" worker=`+b1.Address) {
		t.Errorf("stderr does not say the worker went down:\n%s", r.stderr)
	}
	if rep.Workers[b2.Address] == 0 || rep.Workers[b1.Address]+rep.Workers[b2.Address] != rep.Builds {
		t.Errorf("builds per worker %v of %d", rep.Workers, rep.Builds)
	}
}

// procsMentioning lists the processes whose program's name starts with
// name and whose command line mentions s anywhere.
func procsMentioning(name, s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasPrefix(filepath.Base(args[0]), name) && strings.Contains(string(b), s) {
			out = append(out, pid)
		}
	}
	return out
}

// descendants lists pid's children, theirs, and so on.
func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(append(out, c), descendants(c)...)
	}
	return out
}

// killWorker waits until daemon d runs a task (a shim serves it), then kills
// the daemon, its shims and the containers' processes with SIGKILL, as a
// worker machine that is lost. It returns the pids killed.
func killWorker(t *testing.T, d *ctrtest.Daemon) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	var shims []int
	for len(shims) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no task started on %s in 5 minutes", d.Address)
		}
		time.Sleep(100 * time.Millisecond)
		shims = procsWith("containerd-shim", d.Address)
	}
	// The build has started: give it a moment to be really running.
	time.Sleep(time.Second)
	pids := procsWith("containerd", filepath.Join(d.Dir, "config.toml"))
	shims = procsWith("containerd-shim", d.Address)
	for _, s := range shims {
		pids = append(pids, s)
		// Each container's init is a child of its shim; killing it ends
		// its PID namespace.
		pids = append(pids, children(s)...)
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	// Nobody is left to unmount the killed containers' root filesystems
	// beneath the daemon's state directory: do it before the daemon's own
	// cleanup removes the directory (cleanups run last first).
	t.Cleanup(func() { unmountBelow(t, d.Dir) })
	return pids
}

// unmountBelow lazily unmounts every mount point beneath dir, deepest first.
func unmountBelow(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	var below []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			below = append(below, f[4])
		}
	}
	slices.SortFunc(below, func(a, b string) int { return len(b) - len(a) })
	for _, m := range below {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		}
	}
}

// procsWith lists the processes whose command line holds every word.
func procsWith(words ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		ok := len(args) > 0 && strings.HasPrefix(filepath.Base(args[0]), words[0])
		for _, w := range words[1:] {
			ok = ok && slices.Contains(args, w)
		}
		if ok {
			out = append(out, pid)
		}
	}
	return out
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if p, err := strconv.Atoi(e.Name()); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestBuildOnWorkers builds a fixture with two --addr: record.json names the
// worker that ran the build, and SHA256SUMS is the one-daemon build's.
func TestBuildOnWorkers(t *testing.T) {
	dataDir, image := needImage(t)
	d1, d2 := ctrtest.Start(t), ctrtest.Start(t)
	var sums []string
	for _, addrs := range [][]string{{"--addr", d1.Address}, {"--addr", d1.Address, "--addr", d2.Address}} {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"build", "--image", image, "--data-dir", dataDir, "--out", out, "--backend", "containerd"}, addrs...)
		r := reprobox(t, fixture("reproducible"), args...)
		if r.code != 0 {
			t.Fatalf("build %v: exit %d\n%s", addrs, r.code, r.stderr)
		}
		var rec struct {
			Worker string `json:"worker"`
		}
		data, err := os.ReadFile(filepath.Join(out, "record.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		switch {
		case len(addrs) == 2 && rec.Worker != "":
			t.Errorf("one daemon, no pool: record.json worker %q, want none", rec.Worker)
		case len(addrs) == 4 && rec.Worker != d1.Address && rec.Worker != d2.Address:
			t.Errorf("record.json worker %q, want one of the two daemons", rec.Worker)
		}
		b, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, string(b))
	}
	if sums[0] == "" || sums[0] != sums[1] {
		t.Errorf("SHA256SUMS: one daemon\n%s\ntwo workers\n%s", sums[0], sums[1])
	}
}
