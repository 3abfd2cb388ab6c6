package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Perturbed values of the fixtures (see testdata/gen.sh).
const (
	fixtureBuildPath = "/build/reprobox-variant/a/b/src"
	fixtureHost      = "reprobox-variant"
)

var (
	shiftFrom = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	shiftTo   = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkOptions are the options a check would pass for the fixtures' factors.
func checkOptions() Options {
	return Options{
		Labels: []Label{
			{Factor: "build_path", Values: []string{fixtureBuildPath}},
			{Factor: "hostname", Values: []string{fixtureHost}},
		},
		TimeRanges: []TimeRange{{Factor: "time", From: shiftFrom, To: shiftTo}},
	}
}

var goldenTests = []struct {
	name    string
	a, b    string
	factors []string // Report.Factors
}{
	{"rlib", "testdata/rust/a/libtiny.rlib", "testdata/rust/b/libtiny.rlib", []string{"build_path"}},
	{"elf", "testdata/rust/a/hello", "testdata/rust/b/hello", []string{"build_path"}},
	{"code", "testdata/rust/a/libtiny.rlib", "testdata/rust/code/libtiny.rlib", nil},
	{"tar", "testdata/archive/a.tar", "testdata/archive/b.tar", []string{"build_path", "time"}},
	{"tar-gz", "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", []string{"build_path", "time"}},
	{"tar-xz", "testdata/archive/a.tar.xz", "testdata/archive/b.tar.xz", []string{"build_path", "time"}},
	{"tar-zst", "testdata/archive/a.tar.zst", "testdata/archive/b.tar.zst", []string{"build_path", "time"}},
	{"tar-bz2", "testdata/archive/a.tar.bz2", "testdata/archive/b.tar.bz2", []string{"build_path", "time"}},
	{"zip", "testdata/archive/a.zip", "testdata/archive/b.zip", []string{"build_path", "time"}},
	{"gzip-header", "testdata/archive/same-a.tar.gz", "testdata/archive/same-b.tar.gz", []string{"time"}},
	{"text", "testdata/text/a.txt", "testdata/text/b.txt", []string{"hostname", "time"}},
}

func TestGolden(t *testing.T) {
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Files(context.Background(), tt.a, tt.b, checkOptions())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Equal() {
				t.Fatal("Equal() = true for differing inputs")
			}
			if got := strings.Join(rep.Factors(), ","); got != strings.Join(tt.factors, ",") {
				t.Errorf("Factors() = %s, want %s", got, strings.Join(tt.factors, ","))
			}
			var text, js bytes.Buffer
			if err := rep.WriteText(&text, 5000); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, "testdata/"+tt.name+".golden", text.Bytes())
			golden(t, "testdata/"+tt.name+".json.golden", js.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, got)
	}
}

// TestDeterministic checks that the JSON does not depend on scheduling or on
// how much content fits in memory.
func TestDeterministic(t *testing.T) {
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			var outs []string
			for _, o := range []Options{{Workers: 1}, {Workers: 8}, {Workers: 3, MaxMemory: 4096}} {
				opts := checkOptions()
				opts.Workers, opts.MaxMemory, opts.TempDir = o.Workers, o.MaxMemory, t.TempDir()
				rep, err := Files(context.Background(), tt.a, tt.b, opts)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				if err := rep.WriteJSON(&b); err != nil {
					t.Fatal(err)
				}
				outs = append(outs, b.String())
			}
			for i := 1; i < len(outs); i++ {
				if outs[i] != outs[0] {
					t.Errorf("run %d differs from run 0:\n%s\nvs\n%s", i, outs[i], outs[0])
				}
			}
		})
	}
}

// find returns the node at path, or nil.
func find(r *Report, path string) *Node {
	var out *Node
	r.Walk(func(n *Node, _ int) bool {
		if n.Path == path {
			out = n
		}
		return out == nil
	})
	return out
}

func paths(r *Report) []string {
	var out []string
	r.Walk(func(n *Node, _ int) bool { out = append(out, n.Path+" "+string(n.Kind)); return true })
	return out
}

func TestLabels(t *testing.T) {
	tests := []struct {
		name, a, b string
		opts       Options
		path       string // node that must carry the labels
		labels     []string
	}{
		{
			name: "build path in .debug_str", a: "testdata/rust/a/libtiny.rlib", b: "testdata/rust/b/libtiny.rlib",
			opts:   checkOptions(),
			path:   "libtiny.rlib/libtiny.tiny.7378e45bed21101e-cgu.0.rcgu.o/.debug_str",
			labels: []string{"build_path"},
		},
		{
			name: "build path in rlib metadata", a: "testdata/rust/a/libtiny.rlib", b: "testdata/rust/b/libtiny.rlib",
			opts: checkOptions(), path: "libtiny.rlib/lib.rmeta/.rmeta", labels: []string{"build_path"},
		},
		{
			name: "build path in DWARF units", a: "testdata/rust/a/hello", b: "testdata/rust/b/hello",
			opts: checkOptions(), path: "hello/[dwarf]", labels: []string{"build_path"},
		},
		{
			name: "tar mtime in the shifted range", a: "testdata/archive/a.tar.gz", b: "testdata/archive/b.tar.gz",
			opts: checkOptions(), path: "a.tar.gz/pkg/etc/tool.conf", labels: []string{"time"},
		},
		{
			name: "zip mtime in the shifted range", a: "testdata/archive/a.zip", b: "testdata/archive/b.zip",
			opts: checkOptions(), path: "a.zip/pkg/etc/tool.conf", labels: []string{"time"},
		},
		{
			name: "gzip header time", a: "testdata/archive/same-a.tar.gz", b: "testdata/archive/same-b.tar.gz",
			opts: checkOptions(), path: "same-a.tar.gz", labels: []string{"time"},
		},
		{
			name: "host name and RFC 3339 time in text", a: "testdata/text/a.txt", b: "testdata/text/b.txt",
			opts: checkOptions(), path: "a.txt", labels: []string{"hostname", "time"},
		},
		{
			name: "epoch seconds in text", a: "testdata/text/a.txt", b: "testdata/text/b.txt",
			opts: Options{TimeRanges: []TimeRange{{Factor: "time", From: time.Unix(1900000000, 0), To: time.Unix(1900000000, 0)}}},
			path: "a.txt", labels: []string{"time"},
		},
		{
			name: "a time outside the range is not labelled", a: "testdata/archive/a.tar.gz", b: "testdata/archive/b.tar.gz",
			opts: Options{TimeRanges: []TimeRange{{Factor: "time", From: shiftTo, To: shiftTo.Add(time.Hour)}}},
			path: "a.tar.gz/pkg/etc/tool.conf", labels: nil,
		},
		{
			// "reprobox-variant" is the host name but also part of the build
			// path: inside the path, the path explains it.
			name: "value inside a longer value of another factor", a: "testdata/rust/a/libtiny.rlib", b: "testdata/rust/b/libtiny.rlib",
			opts: checkOptions(), path: "libtiny.rlib/lib.rmeta/.rmeta", labels: []string{"build_path"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Files(context.Background(), tt.a, tt.b, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			n := find(rep, tt.path)
			if n == nil {
				t.Fatalf("no node %s in %q", tt.path, paths(rep))
			}
			if strings.Join(n.Labels, ",") != strings.Join(tt.labels, ",") {
				t.Errorf("labels of %s = %q, want %q", tt.path, n.Labels, tt.labels)
			}
		})
	}
}

// TestCode compares builds from different code with different symbol mangling:
// the function whose bytes differ is named, and legacy and v0 names pair up.
func TestCode(t *testing.T) {
	rep, err := Files(context.Background(), "testdata/rust/a/libtiny.rlib", "testdata/rust/code/libtiny.rlib", Options{})
	if err != nil {
		t.Fatal(err)
	}
	obj := "libtiny.rlib/libtiny.tiny.7378e45bed21101e-cgu.0.rcgu.o"
	fns := find(rep, obj+"/[functions]")
	if fns == nil || len(fns.Details) != 1 || !strings.HasPrefix(fns.Details[0], "tiny::add: 1 byte differs of 8") {
		t.Errorf("[functions] = %+v", fns)
	}
	syms := find(rep, obj+"/[symbols]")
	if syms == nil || !strings.Contains(strings.Join(syms.Details, "\n"), "tiny::greet: _ZN4tiny5greet17he7278c44a8b55d4cE → _RNvCs9UEFDSzSaRu_4tiny5greet") {
		t.Errorf("[symbols] = %+v", syms)
	}
	// The function sections pair across manglings: only add's content differs.
	if n := find(rep, obj+"/.text._ZN4tiny5greet17he7278c44a8b55d4cE"); n == nil || n.Kind != Metadata {
		t.Errorf("greet's section: %+v", n)
	}
	if n := find(rep, obj+"/.text._ZN4tiny3add17hc5f776787bb3f164E"); n == nil || n.Kind != Changed {
		t.Errorf("add's section: %+v", n)
	}
	if dw := find(rep, obj+"/[dwarf]"); dw == nil || !strings.Contains(strings.Join(dw.Details, "\n"), "ConstValue 3 → 5") {
		t.Errorf("[dwarf] = %+v", dw)
	}
}

func TestLabelerTimes(t *testing.T) {
	l := newLabeler(nil, []TimeRange{{Factor: "time", From: shiftFrom, To: shiftTo}})
	tests := []struct {
		s    string
		want bool
	}{
		{"built 1900000000", true},
		{"built 1700000000", false},
		{"id 19000000001234", false}, // too many digits for epoch seconds
		{"at 2030-03-17T17:46:40Z", true},
		{"at 2030-03-17 17:46:40+02:00", true},
		{"at 2029-12-31T23:00:00-02:00", true}, // 01:00 UTC on Jan 1
		{"at 2029-12-31T23:00:00Z", false},
		{"date 2030-06-01", true},
		{"__DATE__ Mar 17 2030", true},
		{"__DATE__ Mar 17 2029", false},
		{"no digits", false},
	}
	for _, tt := range tests {
		set := map[string]bool{}
		l.scan(tt.s, set)
		if set["time"] != tt.want {
			t.Errorf("scan(%q) labelled %v, want %v", tt.s, set["time"], tt.want)
		}
	}
}

func TestEqual(t *testing.T) {
	rep, err := Files(context.Background(), "testdata/rust/a/hello", "testdata/rust/a/hello", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() || rep.Root != nil || len(rep.Factors()) != 0 {
		t.Fatalf("same file: Equal() = %v, Root = %v", rep.Equal(), rep.Root)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "identical") {
		t.Errorf("text for equal inputs = %q", b.String())
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil || doc["equal"] != true || doc["root"] != nil {
		t.Errorf("JSON for equal inputs = %s (%v)", b.String(), err)
	}
}

func TestMissing(t *testing.T) {
	_, err := Files(context.Background(), "testdata/nonexistent", "testdata/text/a.txt", Options{})
	if !isNotExist(err) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	_, err = Files(context.Background(), "testdata/text", "testdata/text/a.txt", Options{})
	if err == nil || !strings.Contains(err.Error(), "not comparable") {
		t.Errorf("dir vs file: err = %v", err)
	}
}

func TestWriteTextBound(t *testing.T) {
	rep, err := Files(context.Background(), "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, max := range []int{1, 3, 8, 20} {
		var b bytes.Buffer
		if err := rep.WriteText(&b, max); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(lines) > max+1 {
			t.Errorf("max %d: %d lines", max, len(lines))
		}
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "... ") || !strings.HasSuffix(last, " more differences not shown") {
			t.Errorf("max %d: last line %q", max, last)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(context.DeadlineExceeded)
	_, err := Files(ctx, "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", Options{})
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("cancelled: err = %v", err)
	}
}

func TestReaders(t *testing.T) {
	a, _ := os.ReadFile("testdata/archive/a.tar.zst")
	b, _ := os.ReadFile("testdata/archive/b.tar.zst")
	rep, err := Readers(context.Background(), "out.tar.zst", bytes.NewReader(a), int64(len(a)), bytes.NewReader(b), int64(len(b)), checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	n := find(rep, "out.tar.zst/pkg/lib/libtiny.rlib/libtiny.tiny.7378e45bed21101e-cgu.0.rcgu.o/.debug_str")
	if n == nil || n.Kind != Changed || strings.Join(n.Labels, ",") != "build_path" {
		t.Fatalf("nested .debug_str node = %+v in %q", n, paths(rep))
	}
}

func TestDirectories(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	old := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	shifted := time.Date(2030, 3, 17, 17, 46, 40, 0, time.UTC)
	rlibA, _ := os.ReadFile("testdata/rust/a/libtiny.rlib")
	rlibB, _ := os.ReadFile("testdata/rust/b/libtiny.rlib")
	write := func(dir, name string, data []byte, mode os.FileMode, mt time.Time) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{a, b} {
		write(d, "same.txt", []byte("same\n"), 0o644, old)
		write(d, "lib/deps/libtiny-0123456789abcdef.rlib", rlibA, 0o644, old)
	}
	write(a, "release/libtiny.rlib", rlibA, 0o644, old)
	write(b, "release/libtiny.rlib", rlibB, 0o644, old)
	write(a, "mode.sh", []byte("#!/bin/sh\n"), 0o755, old)
	write(b, "mode.sh", []byte("#!/bin/sh\n"), 0o700, old)
	write(a, "stamp", []byte("x\n"), 0o644, old)
	write(b, "stamp", []byte("x\n"), 0o644, shifted)
	write(a, "gone.txt", []byte("a\n"), 0o644, old)
	write(b, "new.txt", []byte("b\n"), 0o644, old)
	// A hash in a file name that changed with the build: paired, not added
	// and removed.
	write(a, "deps/tiny-1111111111111111.d", []byte("a\n"), 0o644, old)
	write(b, "deps/tiny-2222222222222222.d", []byte("b\n"), 0o644, old)
	if err := os.Symlink("same.txt", filepath.Join(a, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("mode.sh", filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}
	rep, err := Files(context.Background(), a, b, checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Kind{
		"release/libtiny.rlib":         Changed,
		"mode.sh":                      Metadata,
		"stamp":                        Metadata,
		"gone.txt":                     Removed,
		"new.txt":                      Added,
		"link":                         Metadata,
		"deps/tiny-1111111111111111.d": Changed,
	}
	for p, k := range want {
		n := find(rep, p)
		if n == nil {
			t.Errorf("no node %s in %q", p, paths(rep))
			continue
		}
		if n.Kind != k {
			t.Errorf("%s: kind %s, want %s", p, n.Kind, k)
		}
	}
	for _, p := range []string{"same.txt", "lib/deps/libtiny-0123456789abcdef.rlib", "lib", "release"} {
		if n := find(rep, p); n != nil {
			t.Errorf("unexpected node %s: %+v", p, n)
		}
	}
	if n := find(rep, "stamp"); n == nil || strings.Join(n.Labels, ",") != "time" {
		t.Errorf("stamp: %+v, want a time label", n)
	}
	if n := find(rep, "release/libtiny.rlib/libtiny.tiny.7378e45bed21101e-cgu.0.rcgu.o/.debug_str"); n == nil || n.Labels[0] != "build_path" {
		t.Errorf("nested .debug_str in a directory: %+v", n)
	}
	if got := strings.Join(rep.Factors(), ","); got != "build_path,time" {
		t.Errorf("Factors() = %s", got)
	}
	// Ignoring metadata leaves the content differences.
	opts := checkOptions()
	opts.IgnoreDirMetadata = true
	rep, err = Files(context.Background(), a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if find(rep, "stamp") != nil || find(rep, "mode.sh") != nil || find(rep, "release/libtiny.rlib") == nil {
		t.Errorf("IgnoreDirMetadata: %q", paths(rep))
	}
}
