package containerd_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/containerd"
)

func run(t *testing.T, b sandbox.Backend, job *sandbox.Job) (*sandbox.Result, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	job.Stdout, job.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := b.Run(ctx, job)
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, errb.String())
	}
	return res, lines(out.Bytes()), lines(errb.Bytes())
}

func TestTrue(t *testing.T) {
	b := newBackend(t)
	res, _, stderr := run(t, b, shellJob(t, "true", nil))
	if !res.Success() {
		t.Fatalf("true: exit %d signal %d: %s", res.ExitCode, res.Signal, stderr)
	}
	assertClean(t, b)
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
	} {
		t.Run(tc.script, func(t *testing.T) {
			res, _, _ := run(t, b, shellJob(t, tc.script, nil))
			if res.ExitCode != tc.code || res.Signal != tc.signal {
				t.Errorf("exit %d signal %d, want %d and %d", res.ExitCode, res.Signal, tc.code, tc.signal)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	b := newBackend(t)
	res, out, errs := run(t, b, shellJob(t, "echo to-stdout; echo to-stderr >&2; head -c 300000 /dev/zero | tr '\\0' x; echo", nil))
	if !res.Success() {
		t.Fatalf("exit %d: %s", res.ExitCode, errs)
	}
	if !strings.HasPrefix(out, "to-stdout\n") || len(out) != len("to-stdout\n")+300000 {
		t.Errorf("stdout: %d bytes starting %q", len(out), out[:min(len(out), 20)])
	}
	if errs != "to-stderr" {
		t.Errorf("stderr %q", errs)
	}
}

var errDeadline = errors.New("the test's deadline")

func TestCancel(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "echo started; sleep 60", nil)
	pr, pw, _ := os.Pipe()
	job.Stdout = pw
	ctx, cancel := context.WithCancelCause(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 8)
		_, _ = pr.Read(buf) // the job has started
		time.Sleep(200 * time.Millisecond)
		cancelled <- time.Now()
		cancel(errDeadline)
	}()
	res, err := b.Run(ctx, job)
	pw.Close()
	if !errors.Is(err, errDeadline) || res != nil {
		t.Fatalf("Run = %v, %v; want an error wrapping the cause", res, err)
	}
	if d := time.Since(<-cancelled); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
	assertClean(t, b)
}

func TestFilesReadOnly(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, `cat /etc/reprobox-test/a.conf; stat -c %a /etc/reprobox-test/a.conf; echo x >> /etc/reprobox-test/a.conf && echo WRITABLE; cat /etc/hostname`, nil)
	job.Files = append(job.Files, sandbox.File{Path: "/etc/reprobox-test/a.conf", Mode: 0o644, Data: []byte("hello file\n")})
	res, out, _ := run(t, b, job)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	want := "hello file\n644\n" + job.Spec.Hostname
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestSourcePrivateAndCollect(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, `cat in.txt; echo out > new.txt; echo changed > in.txt; mkdir -p target/release; echo bin > target/release/app`, map[string]string{"in.txt": "original"})
	src := job.Source
	var collected map[string]string
	job.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
		collected = map[string]string{}
		for _, n := range []string{"in.txt", "new.txt", "target/release/app"} {
			b, err := os.ReadFile(filepath.Join(tree, n))
			if err != nil {
				return err
			}
			collected[n] = strings.TrimSpace(string(b))
		}
		if err := os.WriteFile(filepath.Join(tree, "x"), nil, 0o644); err == nil {
			t.Error("Collect's tree is writable")
		}
		return nil
	}
	res, out, errs := run(t, b, job)
	if !res.Success() || out != "original" {
		t.Fatalf("exit %d, output %q: %s", res.ExitCode, out, errs)
	}
	want := map[string]string{"in.txt": "changed", "new.txt": "out", "target/release/app": "bin"}
	for k, v := range want {
		if collected[k] != v {
			t.Errorf("collected %s = %q, want %q", k, collected[k], v)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(src.Dir, "in.txt")); string(b) != "original" {
		t.Errorf("the job wrote to Source.Dir: in.txt = %q", b)
	}
	if _, err := os.Stat(filepath.Join(src.Dir, "new.txt")); err == nil {
		t.Error("the job's new file reached Source.Dir")
	}
	// A second job of the same source (the cached snapshot) sees none of
	// the first one's writes.
	job2 := shellJob(t, `cat in.txt; echo; ls`, nil)
	job2.Source = src
	res, out, _ = run(t, b, job2)
	if !res.Success() || out != "original\nin.txt" {
		t.Errorf("second job: exit %d, output %q", res.ExitCode, out)
	}
	assertClean(t, b)
}

func TestDiskBytes(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, `i=0; while [ $i -lt 200 ]; do head -c 1048576 /dev/zero > f$i; i=$((i+1)); sleep 0.02; done; echo done`, nil)
	job.DiskBytes = 20 << 20
	res, out, _ := run(t, b, job)
	if !res.DiskExceeded || res.Signal != 9 || res.ExitCode != 137 || out == "done" {
		t.Errorf("DiskExceeded %v, exit %d, signal %d, output %q: want the job killed", res.DiskExceeded, res.ExitCode, res.Signal, out)
	}
	// Under the bound: not killed.
	job = shellJob(t, `head -c 1048576 /dev/zero > f; echo done`, nil)
	job.DiskBytes = 20 << 20
	res, out, _ = run(t, b, job)
	if res.DiskExceeded || !res.Success() || out != "done" {
		t.Errorf("small job: DiskExceeded %v, exit %d, output %q", res.DiskExceeded, res.ExitCode, out)
	}
}

func TestOOM(t *testing.T) {
	b := newBackend(t)
	// The shell itself holds the 300 MB (command substitution).
	job := shellJob(t, `echo before; a=$(head -c 300000000 /dev/zero | tr '\0' x); echo survived`, nil)
	lim := int64(64 << 20)
	job.Spec.Linux.Resources.Memory.Limit = &lim
	job.Spec.Linux.Resources.Memory.Swap = &lim
	res, out, _ := run(t, b, job)
	if !res.OOMKilled || res.Success() {
		t.Errorf("OOMKilled %v, exit %d: want killed at the memory limit", res.OOMKilled, res.ExitCode)
	}
	if out != "before" {
		t.Errorf("output %q, want what the job printed before it was killed", out)
	}
}

func TestConcurrent(t *testing.T) {
	b := newBackend(t)
	var wg sync.WaitGroup
	outs := make([]string, 2)
	for i := range outs {
		job := shellJob(t, `sleep 1; hostname; echo $$`, nil)
		job.ID = "concurrent-" + string(rune('a'+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			job.Stdout = &out
			res, err := b.Run(context.Background(), job)
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Success() {
				t.Errorf("job %d: exit %d", i, res.ExitCode)
			}
			outs[i] = lines(out.Bytes())
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if !strings.HasSuffix(o, "\n1") {
			t.Errorf("job %d: output %q, want the hostname and pid 1", i, o)
		}
	}
	assertClean(t, b)
}

func TestBadJobs(t *testing.T) {
	b := newBackend(t)
	ok := func() *sandbox.Job { return shellJob(t, "true", nil) }
	for _, tc := range []struct {
		name        string
		edit        func(*sandbox.Job)
		unsupported bool
	}{
		{"nil spec", func(j *sandbox.Job) { j.Spec = nil }, false},
		{"terminal", func(j *sandbox.Job) { j.Spec.Process.Terminal = true }, true},
		{"relative build path", func(j *sandbox.Job) { j.BuildPath = "build" }, false},
		{"unknown ordering", func(j *sandbox.Job) { j.FileOrdering = "shuffle" }, false},
		{"host bind mount", func(j *sandbox.Job) {
			j.Spec.Mounts = append(j.Spec.Mounts, specsBind("/etc", "/host-etc"))
		}, false},
		{"bad id", func(j *sandbox.Job) { j.ID = "../x" }, false},
		{"cgroups path", func(j *sandbox.Job) { j.Spec.Linux.CgroupsPath = "/x" }, true},
		{"bad personality", func(j *sandbox.Job) { j.Personality = 0x1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := ok()
			tc.edit(j)
			res, err := b.Run(context.Background(), j)
			if err == nil || res != nil {
				t.Fatalf("Run = %v, %v; want an error", res, err)
			}
			if got := errors.Is(err, sandbox.ErrUnsupported); got != tc.unsupported {
				t.Errorf("error %v: ErrUnsupported %v, want %v", err, got, tc.unsupported)
			}
		})
	}
}

// TestSameWriter gives stdout and stderr one writer, which the backend
// must not write from two goroutines at once (go test -race).
func TestSameWriter(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, `i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done`, nil)
	var both bytes.Buffer
	job.Stdout, job.Stderr = &both, &both
	res, err := b.Run(context.Background(), job)
	if err != nil || !res.Success() {
		t.Fatalf("Run = %v, %v", res, err)
	}
	if n := strings.Count(both.String(), "\n"); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}

// TestPruneSources: New removes a cached source snapshot unused for
// longer than SourceMaxAge, and keeps a recent one.
func TestPruneSources(t *testing.T) {
	b := newBackend(t)
	oldJob, newJob := shellJob(t, "true", map[string]string{"x": "old"}), shellJob(t, "true", map[string]string{"x": "new"})
	for _, j := range []*sandbox.Job{oldJob, newJob} {
		if res, _, _ := run(t, b, j); !res.Success() {
			t.Fatal("job failed")
		}
	}
	c, err := client.New(daemon(t).Address, client.WithDefaultNamespace(containerd.DefaultNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	sn := c.SnapshotService(containerd.DefaultSnapshotter)
	name := func(j *sandbox.Job) string { return "reprobox/source/" + j.Source.Digest }
	info, err := sn.Stat(ctx, name(oldJob))
	if err != nil {
		t.Fatal(err)
	}
	info.Labels[containerd.LabelLastUsed] = time.Now().Add(-containerd.SourceMaxAge - time.Hour).UTC().Format(time.RFC3339)
	if _, err := sn.Update(ctx, info, "labels."+containerd.LabelLastUsed); err != nil {
		t.Fatal(err)
	}
	newBackend(t)
	if _, err := sn.Stat(ctx, name(oldJob)); err == nil {
		t.Error("the old source snapshot is still there")
	}
	if _, err := sn.Stat(ctx, name(newJob)); err != nil {
		t.Errorf("the recent source snapshot is gone: %v", err)
	}
}

// TestMissingCommand: a command the image lacks, run through the
// personality program, exits 127 and says why.
func TestMissingCommand(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "true", nil)
	job.Spec.Process.Args = []string{"no-such-command", "x"}
	res, _, errs := run(t, b, job)
	if res.ExitCode != 127 || !strings.Contains(errs, "reprobox: exec no-such-command: No such file or directory") {
		t.Errorf("exit %d, stderr %q", res.ExitCode, errs)
	}
}

// TestSourceDigestCoversOwnership: one digest given for trees of two
// owners is refused, not silently served from the first one's snapshot.
func TestSourceDigestCoversOwnership(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, "true", map[string]string{"a": "1"})
	if res, _, _ := run(t, b, job); !res.Success() {
		t.Fatal("first job failed")
	}
	other := shellJob(t, "true", map[string]string{"a": "1"})
	other.Source.Digest = job.Source.Digest
	if err := os.Chown(other.Source.Dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	res, err := b.Run(context.Background(), other)
	if err == nil || !strings.Contains(err.Error(), "must cover ownership") {
		t.Fatalf("Run = %v, %v; want the digest refused", res, err)
	}
}

// TestDiskBytesAttacks: a build that writes past the bound and exits before
// the watchdog looks, or hides its writes below a tree nested deeper than a
// walk descends (relative mkdir in a loop, past PATH_MAX), is still over.
func TestDiskBytesAttacks(t *testing.T) {
	b := newBackend(t)
	for name, script := range map[string]string{
		"burst": `head -c 31457280 /dev/zero > f; echo done`,
		"deep":  `perl -e 'for (1..2100) { mkdir "d" or die "mkdir: $!"; chdir "d" or die "chdir: $!" } open(F, ">", "hidden") or die; print F "x" x 31457280; close F' && echo done`,
	} {
		t.Run(name, func(t *testing.T) {
			job := shellJob(t, script, nil)
			job.DiskBytes = 20 << 20
			res, out, _ := run(t, b, job)
			if !res.DiskExceeded {
				t.Errorf("DiskExceeded false (exit %d, output %q): the job's writes were not counted", res.ExitCode, out)
			}
		})
	}
}

// TestSourceMountNosuid: the job's writable snapshot is mounted on the host
// (for the bind into the container and for Collect); there a setuid binary or
// a device node the build made must mean nothing.
func TestSourceMountNosuid(t *testing.T) {
	b := newBackend(t)
	job := shellJob(t, `echo hi > f`, nil)
	var opts string
	job.Collect = func(_ context.Context, _ *sandbox.Result, tree string) error {
		src := filepath.Join(filepath.Dir(tree), "src")
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 5 && f[4] == src {
				opts = f[5]
			}
		}
		return nil
	}
	if res, _, _ := run(t, b, job); !res.Success() {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if !strings.Contains(opts, "nosuid") || !strings.Contains(opts, "nodev") {
		t.Errorf("the source snapshot's host mount has options %q, want nosuid and nodev", opts)
	}
}
