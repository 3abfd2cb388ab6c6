package runner

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"8g", 8 << 30, true},
		{"8G", 8 << 30, true},
		{"512MiB", 512 << 20, true},
		{"100k", 100 << 10, true},
		{"1t", 1 << 40, true},
		{"1048576", 1 << 20, true},
		{"1b", 1, true},
		{"8gb", 8 << 30, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"8388608t", 0, false},
		{"-1", 0, false},
		{"1.5g", 0, false},
		{"8x", 0, false},
		{"g", 0, false},
		{"", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	cfg := Config{Image: "x", Command: []string{"true"}, Artifacts: []string{"a"}, MaxOutput: "0"}
	if err := cfg.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "max_output") {
		t.Errorf("max_output = 0: %v", err)
	}
}

func FuzzParseSize(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "sizes.txt")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		// What it accepts is digits and a unit: the digits alone, times
		// the unit, give the same number.
		digits := strings.TrimRight(strings.TrimSpace(s), "kKmMgGtTiIbB")
		d, err := ParseSize(digits)
		if err != nil || (n != d && n%1024 != 0) {
			t.Fatalf("ParseSize(%q) = %d but digits %q give %d, %v", s, n, digits, d, err)
		}
	})
}

func TestOutMarkerRule(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if err := CheckOut(out); err != nil {
		t.Fatalf("missing out: %v", err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckOut(out); err != nil {
		t.Fatalf("empty out: %v", err)
	}
	for _, name := range []string{"record.json", "report.json"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp, err := NewOutTemp(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOut(out); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), out) {
		t.Errorf("unmarked out with record.json: %v, want ErrConfig naming it", err)
	}
	if err := PublishDir(tmp, out); !errors.Is(err, ErrConfig) {
		t.Errorf("PublishDir over an unmarked out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "record.json")); err != nil {
		t.Errorf("the user's file is gone: %v", err)
	}
	// A link as out is refused, even to a marked directory.
	marked := filepath.Join(parent, "marked")
	if err := os.Mkdir(marked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(marked); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(marked, link); err != nil {
		t.Fatal(err)
	}
	if err := CheckOut(link); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("out is a link: %v", err)
	}
	// A marked out is replaced by exchange; nothing is left beside it.
	if err := os.WriteFile(filepath.Join(tmp, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp2, err := NewOutTemp(marked)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp2, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PublishDir(tmp2, marked); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(marked)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != ".reprobox-out,new" {
		t.Errorf("published output holds %v", names)
	}
	// Partial outputs: a dead owner's is removed, a live one's and an
	// unmarked one are kept.
	dead := filepath.Join(parent, ".marked.partial-dead")
	foreign := filepath.Join(parent, ".marked.partial-foreign")
	for _, d := range []string{dead, foreign} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dead, ownerFile), []byte("99999999 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(dead); err != nil {
		t.Fatal(err)
	}
	live, err := NewOutTemp(marked)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOut(marked); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{dead: false, foreign: true, live: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", d, err == nil, want)
		}
	}
}

// TestCollectRefuses collects from a tree a hostile build left, without a
// container: links out of the tree, a FIFO, a control character in a name and
// more than the output limit are refused, and nothing outside is read.
func TestCollectRefuses(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	secret := filepath.Join(base, "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, []byte("secret"), 0o600))
	must(os.MkdirAll(filepath.Join(src, "out"), 0o755))
	must(os.WriteFile(filepath.Join(src, "out", "app"), []byte("app"), 0o755))
	must(os.WriteFile(filepath.Join(src, "out", "a\\b"), []byte("b"), 0o644))
	must(os.Symlink(base, filepath.Join(src, "up")))
	must(os.Symlink("/proc/self/root"+base, filepath.Join(src, "proc")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	must(os.WriteFile(filepath.Join(src, "forge\n"+strings.Repeat("0", 64)+"  x"), nil, 0o644))
	f, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	must(f.Truncate(1 << 40))
	f.Close()

	run := func(max int64, globs ...string) *Outcome {
		t.Helper()
		o := &Outcome{Dir: t.TempDir(), Result: &sandbox.Result{}, Settings: policies.Settings{}}
		done := make(chan error, 1)
		go func() { done <- o.collect(context.Background(), src, globs, max) }()
		select {
		case err := <-done:
			must(err)
		case <-time.After(30 * time.Second):
			t.Fatal("collect hangs")
		}
		return o
	}
	for _, tc := range []struct {
		glob, want string
	}{
		{"up/secret", "symbolic link"},
		{"up/*", "symbolic link"},
		{"proc/secret", "symbolic link"},
		{"fifo", "it is a FIFO"},
		{"forge*", "control character"},
		{"sparse", "max_output"},
	} {
		o := run(DefaultMaxOutput, tc.glob)
		if o.OK() || !strings.Contains(o.Failure(), tc.want) {
			t.Errorf("%s: OK %v, failure %q, want %q", tc.glob, o.OK(), o.Failure(), tc.want)
		}
		for _, a := range o.Artifacts {
			if b, _ := os.ReadFile(a.File); string(b) == "secret" {
				t.Errorf("%s: collected the secret as %s", tc.glob, a.Path)
			}
		}
	}
	o := run(DefaultMaxOutput, "out/*")
	if !o.OK() || len(o.Artifacts) != 2 {
		t.Fatalf("out/*: %v %v", o.Failure(), o.Artifacts)
	}
	if o := run(3, "out/*"); o.OK() || !strings.Contains(o.Failure(), "max_output") {
		t.Errorf("max 3 bytes: %q", o.Failure())
	}
	// SHA256SUMS from WriteOut: one line per artifact, verifiable.
	p := &Plan{Config: Config{Command: []string{"true"}}}
	o.Log = filepath.Join(o.Dir, "build.log")
	must(os.WriteFile(o.Log, nil, 0o644))
	out := filepath.Join(t.TempDir(), "out")
	must(WriteOut(context.Background(), p, o, out))
	sums, err := os.Open(filepath.Join(out, "SHA256SUMS"))
	must(err)
	defer sums.Close()
	n := 0
	for sc := bufio.NewScanner(sums); sc.Scan(); n++ {
		if !strings.HasPrefix(sc.Text(), o.Artifacts[n].SHA256+"  "+o.Artifacts[n].Path) {
			t.Errorf("line %d: %q", n, sc.Text())
		}
	}
	if n != 2 {
		t.Errorf("%d lines in SHA256SUMS", n)
	}
	if st, err := os.Lstat(filepath.Join(out, OutMarker)); err != nil || !st.Mode().IsRegular() {
		t.Errorf("no marker: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(out, ownerFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("owner file published: %v", err)
	}
}
