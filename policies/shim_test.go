package policies

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
)

// compileProbe builds a test program from testdata with the host's C compiler.
func compileProbe(t *testing.T, name string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		testenv.Skip(t, "no C compiler: apt-get install gcc")
	}
	out := filepath.Join(t.TempDir(), name)
	if msg, err := exec.Command(cc, "-O2", "-Wall", "-o", out, filepath.Join("testdata", name+".c"), "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("compile %s: %v: %s", name, err, msg)
	}
	return out
}

func buildShim(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		testenv.Skip(t, "no C compiler: apt-get install gcc")
	}
	shim, err := BuildTimeShim(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return shim
}

// runPreloaded runs prog with the shim preloaded and env added, killed after
// 20 s (a deadlock).
func runPreloaded(t *testing.T, shim string, env []string, prog string, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), append([]string{"LD_PRELOAD=" + shim}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish in 20 s under the time shim (deadlock?)", filepath.Base(prog))
	}
	if err != nil {
		t.Fatalf("%s: %v: %s", filepath.Base(prog), err, stderr.String())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	return got
}

func TestTimeShimFreezesWallClockAndFileTimes(t *testing.T) {
	shim := buildShim(t)
	probe := compileProbe(t, "clockprobe")
	dir := t.TempDir()
	const clock = 1700000000
	fresh, old := filepath.Join(dir, "fresh"), filepath.Join(dir, "old")
	for _, f := range []string{fresh, old} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file older than the clock keeps its time; a file written now (after
	// the clock) appears written at the clock.
	oldTime := time.Unix(clock-86400*365, 0)
	if err := os.Chtimes(old, oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	env := []string{"REPROBOX_CLOCK=" + strconv.Itoa(clock)}
	got := runPreloaded(t, shim, env, probe, fresh)
	want := strconv.Itoa(clock)
	for _, k := range []string{"time", "gettimeofday", "timespec_get", "realtime", "realtime_coarse", "tai",
		"stat", "lstat", "fstat", "fstatat", "statx", "statx_ctime"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %s (fresh file)", k, got[k], want)
		}
	}
	if got["monotonic_runs"] != "1" {
		t.Errorf("the monotonic clock does not run: %q", got["monotonic_runs"])
	}
	got = runPreloaded(t, shim, env, probe, old)
	for _, k := range []string{"stat", "lstat", "fstat", "fstatat", "statx"} {
		if got[k] != strconv.FormatInt(oldTime.Unix(), 10) {
			t.Errorf("%s = %q, want the old file's own time %d", k, got[k], oldTime.Unix())
		}
	}

	// Without REPROBOX_CLOCK everything passes through.
	got = runPreloaded(t, shim, nil, probe, fresh)
	now := time.Now().Unix()
	for _, k := range []string{"time", "realtime", "stat", "statx"} {
		v, err := strconv.ParseInt(got[k], 10, 64)
		if err != nil || v < now-60 || v > now+60 {
			t.Errorf("without a clock, %s = %q, want about %d", k, got[k], now)
		}
	}
}

// TestTimeShimUnderSelfTimedMalloc runs a program whose malloc reads the clock
// while it holds a non-recursive init lock, as jemalloc (linked into every
// upstream rustc) does. Under libfaketime, whose clock_gettime initializes
// lazily and mallocs on the way, such a program deadlocks at start-up; the
// shim's clock functions must reach neither malloc nor dlsym.
func TestTimeShimUnderSelfTimedMalloc(t *testing.T) {
	shim := buildShim(t)
	prog := compileProbe(t, "mallocclock")
	got := runPreloaded(t, shim, []string{"REPROBOX_CLOCK=1700000000"}, prog)
	if got["started: time"] != "1700000000" {
		t.Errorf("output %v, want started: time=1700000000", got)
	}
}
