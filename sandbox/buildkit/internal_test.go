package buildkit

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/sandbox"
)

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want *sandbox.Result
		err  string
	}{
		{"exit 0\nsignal 0\nduration_ns 5\ndisk 0\n", &sandbox.Result{Duration: 5}, ""},
		{"exit 137\nsignal 9\nduration_ns 1000000000\ndisk 1\n", &sandbox.Result{ExitCode: 137, Signal: 9, Duration: time.Second, DiskExceeded: true}, ""},
		{"exit 0\nsignal 0\nduration_ns 5\n", nil, "no disk"},
		{"exit 0\nexit 1\nsignal 0\nduration_ns 5\ndisk 0\n", nil, "bad status line"},
		{"exit -1\nsignal 0\nduration_ns 5\ndisk 0\n", nil, "bad status line"},
		{"exit 0\nsignal 99\nduration_ns 5\ndisk 0\n", nil, "bad signal"},
		{"exit 0\nsignal 0\nduration_ns 5\ndisk 0\nmore 1\n", nil, "unknown status key"},
		{"", nil, "no exit"},
	} {
		got, err := parseStatus([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/status/*")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parseStatus(data)
		if err == nil && (res.ExitCode < 0 || res.Signal < 0 || res.Signal > 64 || res.Duration < 0) {
			t.Errorf("accepted %q as %+v", data, res)
		}
	})
}

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-1": "0,1", "0-2,5": "0,1,2,5", "3,1": "3,1"} {
		if got, err := cpuList(in); err != nil || got != want {
			t.Errorf("cpuList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "2-1", "-1", "0-99999", "1,", "1024"} {
		if got, err := cpuList(in); err == nil {
			t.Errorf("cpuList(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-1", "0-2,5", "1023"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := cpuList(s)
		if err != nil {
			return
		}
		for _, c := range strings.Split(got, ",") {
			if c == "" || strings.ContainsAny(c, "- ") {
				t.Errorf("cpuList(%q) = %q", s, got)
			}
		}
	})
}

// TestRemoveStale: the job directory of a dead reprobox process goes, a
// live one's stays.
func TestRemoveStale(t *testing.T) {
	b := &Backend{stateDir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	dead := filepath.Join(b.jobsDir(), "999999999_job_1")
	live := filepath.Join(b.jobsDir(), strconv.Itoa(os.Getppid())+"_job_2")
	for _, d := range []string{filepath.Join(dead, "out", "tree"), live} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b.removeStale()
	if _, err := os.Stat(dead); err == nil {
		t.Error("a dead process's job directory is left")
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's job directory went: %v", err)
	}
}
