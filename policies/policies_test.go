package policies

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseVary(t *testing.T) {
	all := Names()
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "all", want: all},
		{in: "all,-aslr", want: slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == "aslr" })},
		{in: "umask,time", want: []string{"time", "umask"}},
		{in: " time , umask ", want: []string{"time", "umask"}},
		{in: "time,bogus", wantErr: true},
		{in: "-time", wantErr: true},
		{in: "", wantErr: true},
		{in: "all,-all", wantErr: true},
	} {
		got, err := ParseVary(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseVary(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := ParseVary("nope"); !errors.Is(err, ErrUnknownFactor) {
		t.Errorf("unknown factor error %v does not wrap ErrUnknownFactor", err)
	}
}

func TestFactorsAreSixteenAndDistinct(t *testing.T) {
	if len(Factors) != 16 {
		t.Fatalf("%d factors, want 16", len(Factors))
	}
	base := Normalized(DefaultSourceDateEpoch)
	for _, f := range Factors {
		v := Perturb(base, []string{f.Name}, 42)
		if f.Value(v) == f.Value(base) {
			t.Errorf("%s: perturbed value %q equals the normalized one", f.Name, f.Value(v))
		}
		if v.SourceDateEpoch != base.SourceDateEpoch {
			t.Errorf("%s changes SOURCE_DATE_EPOCH", f.Name)
		}
		// Only this factor's value moves.
		for _, g := range Factors {
			if g.Name != f.Name && g.Value(v) != g.Value(base) {
				t.Errorf("perturbing %s also changes %s: %q", f.Name, g.Name, g.Value(v))
			}
		}
	}
}

func TestPerturbIsDeterministicInSeed(t *testing.T) {
	base := Normalized(DefaultSourceDateEpoch)
	a, b, c := Perturb(base, Names(), 7), Perturb(base, Names(), 7), Perturb(base, Names(), 8)
	if a.BuildPath != b.BuildPath || a.Hostname != b.Hostname || !slices.Equal(a.Env, b.Env) {
		t.Error("the same seed gave different values")
	}
	if a.BuildPath == c.BuildPath && a.Hostname == c.Hostname {
		t.Error("another seed gave the same values")
	}
	if len(base.Env) != 0 {
		t.Error("Perturb modified its input")
	}
}

func TestNumCPUsHalves(t *testing.T) {
	for _, c := range []struct{ normalized, perturbed int }{{1, 2}, {2, 1}, {3, 1}, {8, 4}, {16, 8}} {
		s := Normalized(1)
		s.CPUs = c.normalized
		if got := Perturb(s, []string{"num_cpus"}, 1).CPUs; got != c.perturbed {
			t.Errorf("num_cpus of %d CPUs perturbed to %d, want %d", c.normalized, got, c.perturbed)
		}
	}
}

func TestTimeShift(t *testing.T) {
	v := Perturb(Normalized(1700000000), []string{"time"}, 1)
	if 1700000000-v.Clock != 398*86400+6*3600+23*60 {
		t.Errorf("clock moved back by %d s", 1700000000-v.Clock)
	}
	// Close to 1970 the clock cannot go back that far: forward instead.
	if v := Perturb(Normalized(1000), []string{"time"}, 1); v.Clock != 1000+TimeShift {
		t.Errorf("SOURCE_DATE_EPOCH 1000: clock %d", v.Clock)
	}
}

func TestEnvironExact(t *testing.T) {
	s := Normalized(1700000000)
	got := strings.Join(s.Environ(), "\n")
	for _, want := range []string{"PATH=" + DefaultPath, "HOME=/home/builder", "CARGO_HOME=/home/builder/.cargo",
		"USER=builder", "LOGNAME=builder", "LANG=C.UTF-8", "TZ=UTC", "SOURCE_DATE_EPOCH=1700000000",
		"REPROBOX_CLOCK=1700000000", "LD_PRELOAD=" + TimeShim} {
		if !strings.Contains(got, want) {
			t.Errorf("environment lacks %s:\n%s", want, got)
		}
	}
	for _, absent := range []string{"LC_ALL=", "LANGUAGE=", "FAKETIME", "RUSTC_WRAPPER"} {
		if strings.Contains(got, absent) {
			t.Errorf("environment has %s", absent)
		}
	}
	s.Clock = 0
	if env := strings.Join(s.Environ(), "\n"); strings.Contains(env, "LD_PRELOAD") || strings.Contains(env, "REPROBOX_CLOCK") {
		t.Errorf("real clock, but the shim is preloaded:\n%s", env)
	}
	if !slices.IsSorted(s.Environ()) {
		t.Error("environment not sorted")
	}
}

func TestRender(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nbuilder:x:5:5::/nope:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := Normalized(1700000000)
	s.Clock = 0 // no time shim given
	spec, files, pers, err := Render(s, Host{Rootfs: rootfs, Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if pers != PersonalityAddrNoRandomize {
		t.Errorf("personality %#x", pers)
	}
	if spec.Hostname != DefaultHostname || spec.Domainname != DefaultDomainname || *spec.Process.User.Umask != 0o022 ||
		spec.Process.User.UID != 1000 || spec.Process.Cwd != DefaultBuildPath || !spec.Root.Readonly {
		t.Errorf("spec: %+v", spec.Process)
	}
	if spec.Root.Path != "" {
		t.Errorf("root path %q: the sandbox adds the image's root", spec.Root.Path)
	}
	for _, m := range spec.Mounts {
		if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
			t.Errorf("bind mount of the host path %s at %s", m.Source, m.Destination)
		}
	}
	if spec.Linux.Resources.CPU.Cpus != "0-1" {
		t.Errorf("cpuset %q", spec.Linux.Resources.CPU.Cpus)
	}
	passwd := fileData(t, files, "/etc/passwd")
	if !strings.Contains(string(passwd), "builder:x:1000:1000:reprobox build user:/home/builder:/bin/sh") || strings.Contains(string(passwd), "/nope") {
		t.Errorf("passwd:\n%s", passwd)
	}
	for _, f := range files {
		if f.Path == TimeShim {
			t.Errorf("time shim given with the real clock")
		}
	}
	// The normalized clock needs the time shim, which Render adds to the
	// files.
	if _, _, _, err := Render(Normalized(1), Host{Rootfs: rootfs, Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "time shim") {
		t.Errorf("no time shim: err %v", err)
	}
	_, files, _, err = Render(Normalized(1), Host{Rootfs: rootfs, TimeShim: []byte("not really a shared object"), Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileData(t, files, TimeShim); string(got) != "not really a shared object" {
		t.Errorf("time shim %q", got)
	}
	if _, _, _, err := Render(s, Host{Rootfs: rootfs}); err == nil {
		t.Error("empty command accepted")
	}
}

func FuzzParseVary(f *testing.F) {
	for _, s := range []string{"all", "all,-aslr", "time,umask", "-time", "", ",,", "all,-all,time"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseVary(s)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseVary(%q) selected nothing without an error", s)
		}
		for _, n := range got {
			if _, ok := Lookup(n); !ok {
				t.Fatalf("ParseVary(%q) returned unknown %q", s, n)
			}
		}
	})
}
