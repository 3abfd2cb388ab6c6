package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seeds reads the seed lines of testdata/name (one input a line).
func seeds(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f.Add(line)
	}
}

func TestStatStartTime(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 1000 10", "42"},
		{"7 (a) b) (c) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 99 1000 10", "99"},
		{"7 (x) S 0 1", ""},
		{"no paren", ""},
		{"1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 -5 1000 10", ""},
	} {
		got, err := statStartTime(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("statStartTime(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := processOwner(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func FuzzStatStartTime(f *testing.F) {
	seeds(f, "stat.txt")
	f.Fuzz(func(t *testing.T, s string) {
		start, err := statStartTime(s)
		if err != nil {
			return
		}
		if start == "" || strings.ContainsAny(start, " :") {
			t.Fatalf("start time %q from %q", start, s)
		}
	})
}

func TestOwnerAlive(t *testing.T) {
	me, err := processOwner(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	pid, _, _ := strings.Cut(me, ":")
	for _, tc := range []struct {
		owner string
		alive bool
	}{
		{me, true},
		{pid + ":1", false},     // the pid, reused by another process
		{"2147483646:5", false}, // no such process
		{"garbage", true},       // not ours to judge
		{"-1:5", true},
	} {
		if got := ownerAlive(tc.owner); got != tc.alive {
			t.Errorf("ownerAlive(%q) = %v, want %v", tc.owner, got, tc.alive)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:  "/a b",
		`/plain`:   "/plain",
		`/x\134y`:  `/x\y`,
		`/end\04`:  `/end\04`,
		`/bad\09x`: `/bad\09x`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzUnescapeMount(f *testing.F) {
	seeds(f, "mountpoints.txt")
	f.Fuzz(func(t *testing.T, s string) {
		got := unescapeMount(s)
		if len(got) > len(s) {
			t.Fatalf("unescapeMount(%q) = %q: longer than its input", s, got)
		}
		if !strings.Contains(s, `\`) && got != s {
			t.Fatalf("unescapeMount(%q) = %q without an escape", s, got)
		}
	})
}
