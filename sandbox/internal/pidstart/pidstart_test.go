package pidstart

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/sandbox"
)

func specWith(ann map[string]string) *specs.Spec {
	return &specs.Spec{
		Annotations: ann,
		Process:     &specs.Process{Args: []string{"cargo", "build"}},
		Linux:       &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}},
	}
}

func TestLastPID(t *testing.T) {
	for _, tc := range []struct {
		val     string
		set     bool
		want    int
		wantErr bool
	}{
		{set: false, want: 0},
		{val: "100", set: true, want: 100},
		{val: "1", set: true, want: 1},
		{val: "30000", set: true, want: 30000},
		{val: "30001", set: true, wantErr: true},
		{val: "0", set: true, wantErr: true},
		{val: "-5", set: true, wantErr: true},
		{val: "0100", set: true, wantErr: true},
		{val: "+100", set: true, wantErr: true},
		{val: "", set: true, wantErr: true},
		{val: "1e3", set: true, wantErr: true},
	} {
		ann := map[string]string{"other": "x"}
		if tc.set {
			ann[sandbox.AnnotationLastPID] = tc.val
		}
		got, err := LastPID(specWith(ann))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("LastPID(%q) = %d, %v; want %d, error %v", tc.val, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzLastPID checks that the annotation parser never panics and accepts
// only the canonical decimal form of a PID in range.
func FuzzLastPID(f *testing.F) {
	for _, s := range []string{"100", "1", "30000", "30001", "0", "-5", "0100", "+100", "", "1e3", " 100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := LastPID(specWith(map[string]string{sandbox.AnnotationLastPID: s}))
		if err != nil {
			return
		}
		if n < 1 || n > sandbox.MaxLastPID || strconv.Itoa(n) != s {
			t.Errorf("LastPID(%q) = %d accepted", s, n)
		}
	})
}

func TestApply(t *testing.T) {
	spec := specWith(nil)
	orig := spec.Process
	if err := Apply(spec, "/state/bin/pidstart-x", 100); err != nil {
		t.Fatal(err)
	}
	if want := []string{Path, "100", "cargo", "build"}; !slices.Equal(spec.Process.Args, want) {
		t.Errorf("args %q, want %q", spec.Process.Args, want)
	}
	if !slices.Equal(orig.Args, []string{"cargo", "build"}) {
		t.Errorf("the caller's process was modified: %q", orig.Args)
	}
	m := spec.Mounts[len(spec.Mounts)-1]
	if m.Destination != Path || m.Source != "/state/bin/pidstart-x" || !slices.Contains(m.Options, "ro") {
		t.Errorf("mount %+v", m)
	}
	shared := specWith(nil)
	shared.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}}
	if err := Apply(shared, "/x", 100); err == nil {
		t.Error("a shared PID namespace accepted")
	}
}

// TestEntryProgram runs the compiled entry program as PID 1 of a new PID
// namespace (unshare(1)): the command's first child gets LAST+1 whatever
// happened before, and it refuses to run as another PID or past LAST.
func TestEntryProgram(t *testing.T) {
	testenv.NeedRoot(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		testenv.Skip(t, "no unshare(1): %v", err)
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(unshare, append([]string{"--pid", "--fork"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// The first child reads the namespace's last PID: its own.
	for _, last := range []int{5, 100, 1234} {
		out, err := run(bin, strconv.Itoa(last), "sh", "-c", "x=$(cat /proc/sys/kernel/ns_last_pid); echo $x")
		if err != nil || out != strconv.Itoa(last+1) {
			t.Errorf("last %d: %q, %v; want %d", last, out, err, last+1)
		}
	}
	// Not PID 1.
	if out, err := exec.Command(bin, "100", "true").CombinedOutput(); err == nil || !strings.Contains(string(out), "not as PID 1") {
		t.Errorf("as an ordinary process: %v, %s", err, out)
	}
	// The namespace is past LAST: a shell took PIDs, then executes it.
	if out, err := run("sh", "-c", "/bin/true; /bin/true; exec "+bin+" 2 true"); err == nil || !strings.Contains(out, "past 2") {
		t.Errorf("past LAST: %v, %s", err, out)
	}
	if out, err := run(bin, "abc", "true"); err == nil || !strings.Contains(out, "bad last PID") {
		t.Errorf("bad LAST: %v, %s", err, out)
	}
}
