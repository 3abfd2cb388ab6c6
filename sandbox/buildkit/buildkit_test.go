package buildkit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprobox/reprobox/sandbox"
)

func TestTrue(t *testing.T) {
	b := newBackend(t)
	res, _, stderr := run(t, b, shellJob(t, "true", nil))
	if !res.Success() {
		t.Fatalf("true: exit %d signal %d: %s", res.ExitCode, res.Signal, stderr)
	}
	assertClean(t)
}

func TestExitStatus(t *testing.T) {
	b := newBackend(t)
	for _, tc := range []struct {
		script       string
		code, signal int
	}{
		{"exit 0", 0, 0},
		{"exit 3", 3, 0},
		{"exit 255", 255, 0},
		{"no-such-command-here", 127, 0},
	} {
		t.Run(tc.script, func(t *testing.T) {
			res, _, _ := run(t, b, shellJob(t, tc.script, nil))
			if res.ExitCode != tc.code || res.Signal != tc.signal {
				t.Errorf("exit %d signal %d, want %d and %d", res.ExitCode, res.Signal, tc.code, tc.signal)
			}
		})
	}
}

// TestCollect: Collect sees the tree the build left, even when the build
// fails, and the build's writes never reach Source.Dir.
func TestCollect(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "echo out; echo err >&2; echo built > made; mkdir -p d/e; ln -s /etc/passwd d/link; exit 4", map[string]string{"in": "input"})
	var got string
	var called int
	job.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
		called++
		if res.ExitCode != 4 {
			t.Errorf("Collect saw exit %d", res.ExitCode)
		}
		data, err := os.ReadFile(filepath.Join(tree, "made"))
		if err != nil {
			return err
		}
		in, err := os.ReadFile(filepath.Join(tree, "in"))
		if err != nil {
			return err
		}
		if l, err := os.Readlink(filepath.Join(tree, "d/link")); err != nil || l != "/etc/passwd" {
			t.Errorf("link: %q %v", l, err)
		}
		got = string(data) + string(in)
		return nil
	}
	res, out, errs := run(t, b, job)
	if res.ExitCode != 4 || called != 1 || got != "built\ninput" {
		t.Errorf("exit %d, Collect called %d times, tree %q", res.ExitCode, called, got)
	}
	if out != "out" || !strings.Contains(errs, "err") {
		t.Errorf("stdout %q stderr %q", out, errs)
	}
	if _, err := os.Stat(filepath.Join(job.Source.Dir, "made")); err == nil {
		t.Error("the build's write reached Source.Dir")
	}
	assertClean(t)
}

// TestNeverCached: BuildKit would answer a repeated solve from its cache,
// and merge two identical solves running at once. Every job must run: two
// identical jobs that read the kernel's random numbers give two outputs, one
// after the other and side by side.
func TestNeverCached(t *testing.T) {
	b := newBackend(t)
	src := source(t, 1000, 1000, map[string]string{"x": "same"})
	job := func() *sandbox.Job {
		j := shellJob(t, "od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > random; cat random", nil)
		j.Source = src
		return j
	}
	var outs []string
	for range 2 {
		res, out, _ := run(t, b, job())
		if !res.Success() || len(out) != 32 {
			t.Fatalf("exit %d, output %q", res.ExitCode, out)
		}
		outs = append(outs, out)
	}
	var wg sync.WaitGroup
	side := make([]string, 2)
	for i := range side {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job()
			var got []byte
			j.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
				var err error
				got, err = os.ReadFile(filepath.Join(tree, "random"))
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if _, err := b.Run(ctx, j); err != nil {
				t.Error(err)
			}
			side[i] = string(got)
		}()
	}
	wg.Wait()
	outs = append(outs, side...)
	seen := map[string]bool{}
	for _, o := range outs {
		if o == "" || seen[o] {
			t.Errorf("outputs %q: a job's output was handed back twice (cached or merged)", outs)
		}
		seen[o] = true
	}
}

// TestCancel: a cancelled job is killed, Run returns the cause, and nothing
// of the job stays on the host.
func TestCancel(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "echo started; sleep 300", nil)
	started := make(chan struct{})
	job.Stdout = writerFunc(func(p []byte) (int, error) {
		if strings.Contains(string(p), "started") {
			select {
			case <-started:
			default:
				close(started)
			}
		}
		return len(p), nil
	})
	cause := errors.New("test cancels")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		select {
		case <-started:
		case <-time.After(2 * time.Minute):
		}
		cancel(cause)
	}()
	t0 := time.Now()
	res, err := b.Run(ctx, job)
	if err == nil || !errors.Is(err, cause) {
		t.Fatalf("Run = %v, %v; want the cancel's cause", res, err)
	}
	if d := time.Since(t0); d > 90*time.Second {
		t.Errorf("Run returned %v after the cancel", d)
	}
	assertClean(t)
	// The daemon is still usable, and no sleep of the job is left.
	res2, out, _ := run(t, b, shellJob(t, "echo ok", nil))
	if !res2.Success() || out != "ok" {
		t.Errorf("after the cancel: exit %d %q", res2.ExitCode, out)
	}
	if ps, _ := os.ReadDir("/proc"); ps != nil {
		for _, p := range ps {
			cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			if strings.Contains(string(cmd), "sleep\x00300") {
				t.Errorf("process %s (%q) of the cancelled job still runs", p.Name(), cmd)
			}
		}
	}
}

// TestDiskBytes: a build that writes past the bound is killed and the
// result says so.
func TestDiskBytes(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "i=0; while [ $i -lt 100 ]; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); sleep 0.05; done; echo finished", nil)
	job.DiskBytes = 10 << 20
	res, out, _ := run(t, b, job)
	if !res.DiskExceeded || res.Signal != 9 || res.ExitCode != 137 || strings.Contains(out, "finished") {
		t.Errorf("exit %d signal %d, disk exceeded %v, output %q", res.ExitCode, res.Signal, res.DiskExceeded, out)
	}
	small := shellJob(t, "head -c 1048576 /dev/zero > f", nil)
	small.DiskBytes = 10 << 20
	if res, _, _ := run(t, b, small); res.DiskExceeded || !res.Success() {
		t.Errorf("1 MiB under a 10 MiB bound: exit %d, disk exceeded %v", res.ExitCode, res.DiskExceeded)
	}
}

// TestReverseRefused: what the backend cannot apply is refused.
func TestReverseRefused(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "true", nil)
	job.FileOrdering = "reverse"
	_, err := b.Run(context.Background(), job)
	if !errors.Is(err, sandbox.ErrUnsupported) {
		t.Errorf("reverse order: %v, want ErrUnsupported", err)
	}
	for _, f := range b.Features() {
		if f == sandbox.FeatureReverseDirents {
			t.Error("Features lists reverse-dirents")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// assertClean checks that no job directory is left in the state directory.
func assertClean(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(stateDir(), "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}
