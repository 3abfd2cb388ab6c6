package containerd_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/containerd"
)

// assertClean fails t if the daemon holds a container, task, job snapshot
// or lease of reprobox, or a mount of the daemon or the backend's state is
// left on the host.
func assertClean(t *testing.T, _ *containerd.Backend) {
	t.Helper()
	d := daemon(t)
	c, err := client.New(d.Address, client.WithDefaultNamespace(containerd.DefaultNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cs {
		t.Errorf("container %s left", ct.ID())
		if _, err := ct.Task(ctx, nil); err == nil {
			t.Errorf("task %s left", ct.ID())
		}
	}
	err = c.SnapshotService(containerd.DefaultSnapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive || strings.HasPrefix(info.Name, "reprobox/job/") {
			t.Errorf("snapshot %s (%v) left", info.Name, info.Kind)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := c.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		t.Errorf("lease %s left", l.ID)
	}
	for _, m := range hostMounts(t) {
		for _, dir := range []string{d.Root, d.State, stateDir(t)} {
			if m == dir || strings.HasPrefix(m, dir+"/") {
				t.Errorf("mount %s left", m)
			}
		}
	}
	for _, sub := range []string{"jobs"} {
		ents, _ := os.ReadDir(filepath.Join(stateDir(t), sub))
		for _, e := range ents {
			t.Errorf("state directory %s/%s left", sub, e.Name())
		}
	}
}

func hostMounts(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// The child process of TestLeftovers: it runs a long job and is killed.
const childEnv = "REPROBOX_CONTAINERD_TEST_CHILD"

// maybeChild runs the child's part when the test binary was started as one.
func maybeChild() bool {
	arg := os.Getenv(childEnv)
	if arg == "" {
		return false
	}
	var addr, state, img, layout, src, digest, ordering string
	fmt.Sscan(arg, &addr, &state, &img, &layout, &src, &digest, &ordering)
	b, err := containerd.New(context.Background(), containerd.Config{Address: addr, StateDir: state})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	s := policies.Normalized(policies.DefaultSourceDateEpoch)
	s.Clock = 0
	spec, files, pers, err := render(s, "/nonexistent", "", []string{"/bin/sh", "-c", "echo running; sleep 300"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	job := &sandbox.Job{
		ID: "leftover", Image: sandbox.Image{Digest: img, Layout: layout},
		Source: sandbox.Source{Digest: digest, Dir: src}, BuildPath: s.BuildPath,
		FileOrdering: ordering, Spec: spec, Personality: pers, Stdout: os.Stdout,
		Files: append(files, sandbox.File{Path: "/etc/leftover", Mode: 0o644, Data: []byte("x")}),
	}
	_, err = b.Run(context.Background(), job)
	fmt.Fprintln(os.Stderr, "child: Run returned:", err)
	os.Exit(4)
	return true
}

// TestLeftovers kills (SIGKILL) a process mid-build, then checks that the
// next New removes its task, container, snapshots, lease and mounts.
func TestLeftovers(t *testing.T) {
	for _, ordering := range []string{"native", "reverse"} {
		t.Run(ordering, func(t *testing.T) {
			d := daemon(t)
			img, _ := testImage(t)
			s := policies.Normalized(policies.DefaultSourceDateEpoch)
			src := source(t, s.UID, s.GID, map[string]string{"a": "1"})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{
				d.Address, stateDir(t), img.Digest, img.Layout, src.Dir, src.Digest, ordering}, " "))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "running\n" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child: %q, %v", line, err)
			}
			// Mid-build: the task runs, everything is mounted.
			if !hasMountUnder(t, stateDir(t)) {
				t.Error("no mount of the running job under the state directory: the test would prove nothing")
			}
			if ordering == "reverse" && disorderfsOf(stateDir(t)) == "" {
				t.Error("no disorderfs for the running job: the test would prove nothing")
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			time.Sleep(100 * time.Millisecond)
			b := newBackend(t) // removes the leftovers
			assertClean(t, b)
			// disorderfs ends when its mount goes.
			deadline := time.Now().Add(10 * time.Second)
			for p := disorderfsOf(stateDir(t)); p != ""; p = disorderfsOf(stateDir(t)) {
				if time.Now().After(deadline) {
					t.Errorf("disorderfs still runs: %s", p)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// disorderfsOf returns the command line of a disorderfs process working
// beneath dir, or "".
func disorderfsOf(dir string) string {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, "disorderfs ") && strings.Contains(cmd, dir+"/") {
			return cmd
		}
	}
	return ""
}

func hasMountUnder(t *testing.T, dir string) bool {
	for _, m := range hostMounts(t) {
		if strings.HasPrefix(m, dir+"/") {
			return true
		}
	}
	return false
}
