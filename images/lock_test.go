package images

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func sampleLock() Lock {
	return Lock{
		Image:       &LockImage{Name: "reprobox/rust", Digest: digest.Digest("sha256:" + strings.Repeat("ab", 32))},
		Locales:     slices.Clone(Locales),
		LockVersion: LockVersion,
		Mirror:      DefaultMirror, SecurityMirror: DefaultSecurityMirror,
		Mmdebstrap: LockTool{Version: "1.3.5", Args: []string{"--mode=root", "--variant=minbase"}},
		Packages: []LockedPackage{
			{Name: "cargo-web", Version: "1.85.0+dfsg1-1~deb12u1", Architecture: "amd64", SHA256: strings.Repeat("1", 64)},
			{Name: "gcc-12", Version: "12.2.0-14+deb12u1", Architecture: "amd64", SHA256: strings.Repeat("2", 64)},
			{Name: "libc6-dev", Version: "2.36-9+deb12u14", Architecture: "amd64", SHA256: strings.Repeat("3", 64)},
			{Name: "rustc-web", Version: "1.85.0+dfsg1-1~deb12u1", Architecture: "amd64", SHA256: strings.Repeat("4", 64)},
			{Name: "tzdata", Version: "2025b-0+deb12u2", Architecture: "all", SHA256: strings.Repeat("5", 64)},
		},
		Reprobox:        "devel",
		Requested:       []string{"cargo-web", "rustc-web"},
		SourceDateEpoch: DefaultSourceDateEpoch,
		Suites:          suites(),
	}
}

// TestParseLock: the sample round-trips through its JSON, which has sorted
// keys; malformed locks are refused with ErrInvalid.
func TestParseLock(t *testing.T) {
	l := sampleLock()
	b := l.Marshal()
	writeGolden(t, "lock/sample.json", b)
	golden, err := os.ReadFile(filepath.Join("testdata", "lock", "sample.json"))
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(golden) != string(b) {
		t.Errorf("lock JSON differs from testdata/lock/sample.json:\n%s", b)
	}
	got, err := ParseLock(b)
	if err != nil {
		t.Fatalf("ParseLock: %v", err)
	}
	if string(got.Marshal()) != string(b) {
		t.Errorf("round trip changed the lock:\n%s", got.Marshal())
	}
	edit := func(f func(*Lock)) []byte {
		l := sampleLock()
		f(&l)
		return l.Marshal()
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"not json", []byte("{")},
		{"unknown field", []byte(strings.Replace(string(b), `"locales"`, `"evil": 1, "locales"`, 1))},
		{"version", edit(func(l *Lock) { l.LockVersion = 2 })},
		{"bad digest", edit(func(l *Lock) { l.Image.Digest = "sha256:abc" })},
		{"bad mirror", edit(func(l *Lock) { l.Mirror = "file:///etc" })},
		{"shell in mirror", edit(func(l *Lock) { l.SecurityMirror = "http://x/$(reboot)" })},
		{"suites", edit(func(l *Lock) { l.Suites = []string{"sid"} })},
		{"sde", edit(func(l *Lock) { l.SourceDateEpoch = 0 })},
		{"requested", edit(func(l *Lock) { l.Requested = []string{"a;reboot"} })},
		{"locale", edit(func(l *Lock) { l.Locales = []string{"C.UTF-8'; reboot; '"} })},
		{"no packages", edit(func(l *Lock) { l.Packages = nil })},
		{"bad version", edit(func(l *Lock) { l.Packages[0].Version = "1.0\nPin-Priority: 2000" })},
		{"bad sha256", edit(func(l *Lock) { l.Packages[0].SHA256 = "xyz" })},
		{"unsorted", edit(func(l *Lock) { l.Packages[0], l.Packages[1] = l.Packages[1], l.Packages[0] })},
		{"repeated", edit(func(l *Lock) { l.Packages[1] = l.Packages[0] })},
		{"too large", make([]byte, maxLock+1)},
	} {
		if _, err := ParseLock(tc.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseLock = %v, want ErrInvalid", tc.name, err)
		}
	}
	if got := l.Toolchain(); len(got) != 4 || got[0].Name != "cargo-web" || got[3].Name != "rustc-web" {
		t.Errorf("Toolchain = %v", got)
	}
}

func FuzzParseLock(f *testing.F) {
	addSeeds(f, "lock/*.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLock(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// What parses must survive a round trip and make safe preferences.
		again, err := ParseLock(l.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if string(again.Marshal()) != string(l.Marshal()) {
			t.Fatal("round trip changed the lock")
		}
		prefs := string(aptPreferences(l))
		if strings.Count(prefs, "Package: ") != len(l.Packages) || strings.Count(prefs, "\n") != 4*len(l.Packages) {
			t.Fatalf("preferences for %d packages:\n%s", len(l.Packages), prefs)
		}
	})
}

func TestLockedPackages(t *testing.T) {
	debs := []string{
		debLine + strings.Repeat("a", 64) + " zlib1g 1:1.2.13.dfsg-1 amd64",
		debLine + strings.Repeat("b", 64) + " base-files 12.4+deb12u8 amd64",
	}
	got, err := lockedPackages([]string{"base-files=12.4+deb12u8", "zlib1g=1:1.2.13.dfsg-1"}, debs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "base-files" || got[1].SHA256 != strings.Repeat("a", 64) || got[1].Version != "1:1.2.13.dfsg-1" {
		t.Errorf("lockedPackages = %+v", got)
	}
	if _, err := lockedPackages([]string{"base-files=12.4+deb12u8", "hello=2.10-3"}, debs); err == nil || !strings.Contains(err.Error(), "hello=2.10-3") {
		t.Errorf("a package without a .deb: %v, want an error naming it", err)
	}
	if _, err := lockedPackages(nil, []string{debLine + "garbage"}); err == nil {
		t.Error("a malformed hook line was accepted")
	}
}

func TestCheckAgainstLock(t *testing.T) {
	l := sampleLock()
	if err := checkAgainstLock(l, l.Packages, DefaultMirror, DefaultSecurityMirror); err != nil {
		t.Fatalf("same packages: %v", err)
	}
	got := slices.Clone(l.Packages)
	got[1].Version = "12.2.0-14+deb12u2"
	got[4].SHA256 = strings.Repeat("9", 64)
	got = append(got[:2], got[3:]...) // libc6-dev missing
	got = append(got, LockedPackage{Name: "zsh", Version: "5.9-4", Architecture: "amd64", SHA256: strings.Repeat("8", 64)})
	err := checkAgainstLock(l, got, "http://mirror.example/debian", DefaultSecurityMirror)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("checkAgainstLock = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"gcc-12: version 12.2.0-14+deb12u1 is not available, got 12.2.0-14+deb12u2",
		"libc6-dev=2.36-9+deb12u14: in the lock but not installed", "tzdata=2025b-0+deb12u2: the .deb has sha256 9999",
		"zsh=5.9-4: installed but not in the lock", "http://mirror.example/debian (bookworm, bookworm-updates)", "snapshot.debian.org"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLockArgs: a build from a lock runs mmdebstrap with hooks that pin
// every package and undo themselves; the recorded arguments stay those of
// a plain build.
func TestLockArgs(t *testing.T) {
	s := newStore(t)
	l := sampleLock()
	o := BuildOptions{Lock: &l}
	fetch, err := o.fromLock()
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != "reprobox/rust" || o.SourceDateEpoch != l.SourceDateEpoch || !slices.Equal(o.Packages, l.Requested) {
		t.Errorf("options from the lock: %+v", o)
	}
	o, err = o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	args := mmdebstrapArgs(o, o.Packages)
	run, cleanup, err := s.lockArgs(args, o, fetch)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(run, "\n")
	if !strings.Contains(joined, `--setup-hook=mkdir -p "$1/etc/apt/preferences.d" && cp '`) ||
		!strings.Contains(joined, `--customize-hook=rm -f "$1/etc/apt/preferences.d/reprobox-lock"`) ||
		strings.Contains(joined, "sources.list") {
		t.Errorf("lock arguments:\n%s", joined)
	}
	if i := slices.Index(run, Suite); i < 0 || !slices.Equal(run[i:], args[slices.Index(args, Suite):]) {
		t.Errorf("positional arguments changed:\n%s", joined)
	}
	des, _ := os.ReadDir(s.tmpDir())
	if len(des) != 1 {
		t.Fatalf("%d temp dirs", len(des))
	}
	prefs, err := os.ReadFile(filepath.Join(s.tmpDir(), des[0].Name(), "preferences"))
	if err != nil || !strings.Contains(string(prefs), "Package: gcc-12\nPin: version 12.2.0-14+deb12u1\nPin-Priority: 1001\n") {
		t.Errorf("preferences: %v\n%s", err, prefs)
	}
	cleanup()
	if des, _ := os.ReadDir(s.tmpDir()); len(des) != 0 {
		t.Errorf("cleanup left %d files", len(des))
	}

	// Another fetch mirror: sources.list is swapped in and restored.
	o2 := BuildOptions{Lock: &l, Mirror: "https://snapshot.debian.org/archive/debian/20261130T000000Z"}
	fetch, err = o2.fromLock()
	if err != nil {
		t.Fatal(err)
	}
	if o2.Mirror != DefaultMirror || fetch.Mirror != "https://snapshot.debian.org/archive/debian/20261130T000000Z" || fetch.SecurityMirror != DefaultSecurityMirror {
		t.Errorf("mirrors: recorded %s, fetch %+v", o2.Mirror, fetch)
	}
	o2, _ = o2.withDefaults()
	run, cleanup, err = s.lockArgs(mmdebstrapArgs(o2, o2.Packages), o2, fetch)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if joined := strings.Join(run, "\n"); !strings.Contains(joined, `"$1/etc/apt/sources.list"`) || strings.Contains(joined, "snapshot.debian.org") {
		t.Errorf("lock arguments with a fetch mirror:\n%s", joined)
	}

	for _, bad := range []BuildOptions{
		{Lock: &l, Packages: []string{"x"}},
		{Lock: &l, Minimal: true},
		{Lock: &l, SourceDateEpoch: 1},
		{Lock: &l, Mirror: "ftp://x"},
	} {
		if _, err := bad.fromLock(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestMmdebstrapArgsMinimal(t *testing.T) {
	o, err := BuildOptions{Minimal: true}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(mmdebstrapArgs(o, nil), "\n")
	if strings.Contains(args, "--include") || strings.Contains(args, "locale-gen") || !strings.Contains(args, "--skip=essential/unlink") || !strings.Contains(args, debLine) {
		t.Errorf("minimal arguments:\n%s", args)
	}
}
