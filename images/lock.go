package images

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// LabelLock holds an image's lock (without the image's own name and
// digest) as JSON in the config of every image Build makes.
const LabelLock = "io.reprobox.image.lock"

// ErrLockDigest means a build from a lock gave another digest than the one
// the lock was written for.
var ErrLockDigest = errors.New("the rebuilt image has another digest than its lock")

// LockVersion is the version of the lock format Build writes.
const LockVersion = 1

// Lock records what a built image was made from, enough to make it again
// bit for bit while its packages can still be had: the exact version and
// sha256 of every .deb installed, the suites and mirrors, the mmdebstrap
// version and arguments, and reprobox's own version (which fixes the
// compressor). Fields are declared in the alphabetical order of their JSON
// keys, so the JSON has sorted keys.
type Lock struct {
	// Image is the image the lock was written for; empty in the label.
	Image *LockImage `json:"image,omitempty"`
	// Locales are the locales generated in the image.
	Locales []string `json:"locales"`
	// LockVersion is LockVersion.
	LockVersion int `json:"lockVersion"`
	// Minimal is true for an image without BasePackages and locales.
	Minimal bool `json:"minimal"`
	// Mirror and SecurityMirror are the archive URLs the image records.
	Mirror string `json:"mirror"`
	// Mmdebstrap is the program's version and the arguments it was run
	// with.
	Mmdebstrap LockTool `json:"mmdebstrap"`
	// Packages is every installed package, sorted by name and architecture.
	Packages []LockedPackage `json:"packages"`
	// Reprobox is the version of reprobox that built the image.
	Reprobox string `json:"reprobox"`
	// Requested are the packages given to mmdebstrap --include.
	Requested      []string `json:"requested"`
	SecurityMirror string   `json:"securityMirror"`
	// SourceDateEpoch clamps the image's timestamps.
	SourceDateEpoch int64 `json:"sourceDateEpoch"`
	// Suites are the Debian suites packages came from.
	Suites []string `json:"suites"`
}

// LockImage names the image a lock file was written for.
type LockImage struct {
	Digest digest.Digest `json:"digest"`
	Name   string        `json:"name"`
}

// LockTool is a program and its arguments.
type LockTool struct {
	Args    []string `json:"args"`
	Version string   `json:"version"`
}

// LockedPackage is one installed Debian package.
type LockedPackage struct {
	Architecture string `json:"architecture"`
	Name         string `json:"name"`
	// SHA256 is the hex sha256 of the .deb that was installed.
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
}

func (p LockedPackage) String() string { return p.Name + "=" + p.Version }

var (
	debNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	debVersionRE = regexp.MustCompile(`^[A-Za-z0-9.+~:-]+$`)
	debArchRE    = regexp.MustCompile(`^[a-z0-9-]+$`)
	sha256HexRE  = regexp.MustCompile(`^` + sha256Hex + `$`)
)

// maxLock bounds a lock file.
const maxLock = 4 << 20

// ParseLock parses and checks a lock file. Errors wrap ErrInvalid.
func ParseLock(b []byte) (Lock, error) {
	if len(b) > maxLock {
		return Lock{}, fmt.Errorf("%w: lock: larger than %d bytes", ErrInvalid, maxLock)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Lock{}, fmt.Errorf("%w: lock: %v", ErrInvalid, err)
	}
	if l.LockVersion != LockVersion {
		return Lock{}, fmt.Errorf("%w: lock: lockVersion %d, this reprobox reads %d", ErrInvalid, l.LockVersion, LockVersion)
	}
	if l.Image != nil {
		if err := checkDigest(l.Image.Digest); err != nil {
			return Lock{}, fmt.Errorf("lock: image: %w", err)
		}
		if _, err := parseName(l.Image.Name); err != nil {
			return Lock{}, fmt.Errorf("lock: image: %w", err)
		}
	}
	for _, m := range []string{l.Mirror, l.SecurityMirror} {
		if !mirrorRE.MatchString(m) {
			return Lock{}, fmt.Errorf("%w: lock: mirror %q: want an http(s) URL", ErrInvalid, m)
		}
	}
	if l.SourceDateEpoch <= 0 {
		return Lock{}, fmt.Errorf("%w: lock: sourceDateEpoch %d", ErrInvalid, l.SourceDateEpoch)
	}
	if !slices.Equal(l.Suites, suites()) {
		return Lock{}, fmt.Errorf("%w: lock: suites %q; this reprobox builds %q", ErrInvalid, l.Suites, suites())
	}
	for _, p := range l.Requested {
		if !packageRE.MatchString(p) {
			return Lock{}, fmt.Errorf("%w: lock: requested package %q", ErrInvalid, p)
		}
	}
	for _, loc := range l.Locales {
		if !shellSafeRE.MatchString(loc) {
			return Lock{}, fmt.Errorf("%w: lock: locale %q", ErrInvalid, loc)
		}
	}
	if len(l.Packages) == 0 {
		return Lock{}, fmt.Errorf("%w: lock: no packages", ErrInvalid)
	}
	for i, p := range l.Packages {
		if !debNameRE.MatchString(p.Name) || !debVersionRE.MatchString(p.Version) || !debArchRE.MatchString(p.Architecture) || !sha256HexRE.MatchString(p.SHA256) {
			return Lock{}, fmt.Errorf("%w: lock: package %d: %q %q %q %q: want a Debian name, version, architecture and a sha256 in hex", ErrInvalid, i, p.Name, p.Version, p.Architecture, p.SHA256)
		}
		if i > 0 && comparePackages(l.Packages[i-1], p) >= 0 {
			return Lock{}, fmt.Errorf("%w: lock: packages not sorted or repeated at %s", ErrInvalid, p.Name)
		}
	}
	return l, nil
}

func comparePackages(a, b LockedPackage) int {
	return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Architecture, b.Architecture))
}

// ReadLock reads and checks a lock file.
func ReadLock(path string) (Lock, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Lock{}, fmt.Errorf("images: lock: %w: %s", ErrNotFound, path)
	} else if err != nil {
		return Lock{}, fmt.Errorf("images: lock: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLock+1))
	if err != nil {
		return Lock{}, fmt.Errorf("images: lock: %w", err)
	}
	l, err := ParseLock(b)
	if err != nil {
		return Lock{}, fmt.Errorf("images: %s: %w", path, err)
	}
	return l, nil
}

// Marshal returns the lock as indented JSON with sorted keys and a final
// newline.
func (l Lock) Marshal() []byte {
	return encodeLock(l, "  ")
}

// label returns the lock as the compact JSON of the image label.
func (l Lock) label() string {
	l.Image = nil
	return strings.TrimSuffix(string(encodeLock(l, "")), "\n")
}

// encodeLock writes JSON without HTML escapes, so the hooks in the
// mmdebstrap arguments read as written.
func encodeLock(l Lock, indent string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(l); err != nil {
		panic(err) // only strings, ints and bools
	}
	return b.Bytes()
}

// LockOf returns the lock recorded in a built image's config, with the
// image's name and digest. ok is false for an image without one.
func LockOf(img Image) (l Lock, ok bool, err error) {
	s, ok := img.Config.Config.Labels[LabelLock]
	if !ok {
		return Lock{}, false, nil
	}
	if l, err = ParseLock([]byte(s)); err != nil {
		return Lock{}, true, fmt.Errorf("images: %s: label %s: %w", img.Reference(), LabelLock, err)
	}
	l.Image = &LockImage{Name: img.Name, Digest: img.Digest}
	return l, true, nil
}

// toolchainPrefixes name the packages a lock summary shows.
var toolchainPrefixes = []string{"rustc", "cargo", "libstd-rust", "gcc", "cpp", "g++", "libc6", "binutils", "llvm", "clang", "lld"}

// Toolchain returns the compiler and C library packages of the lock.
func (l Lock) Toolchain() []LockedPackage {
	var out []LockedPackage
	for _, p := range l.Packages {
		for _, pre := range toolchainPrefixes {
			if p.Name == pre || strings.HasPrefix(p.Name, pre+"-") || (pre == "gcc" && regexp.MustCompile(`^gcc-[0-9]+$`).MatchString(p.Name)) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// LockPath is where Build writes the lock of an image: beside the store's
// OCI layout, DIR/image-locks/<manifest hex>.json.
func (s *Store) LockPath(d digest.Digest) string {
	return filepath.Join(s.dir, "image-locks", d.Encoded()+".json")
}

func (s *Store) writeLock(l Lock) (string, error) {
	p := s.LockPath(l.Image.Digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("images: write lock: %w", err)
	}
	if err := s.writeFileAtomic(p, l.Marshal()); err != nil {
		return "", fmt.Errorf("images: write lock: %w", err)
	}
	return p, nil
}

// Version is reprobox's version as the Go toolchain stamped it: the module
// version, else the VCS revision (with "+dirty" for a modified tree), else
// "devel". It is recorded in locks.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		return rev + dirty
	}
	return "devel"
}

// debLine is the prefix of the lines the build's customize hook writes to
// standard error, one per .deb in apt's cache: sha256, name, version,
// architecture.
const debLine = "reprobox-deb: "

// debHook is the customize hook that reports the .debs that were
// installed: mmdebstrap --skip=essential/unlink keeps the essential ones in
// /var/cache/apt/archives beside the others until its cleanup.
const debHook = `for f in "$1"/var/cache/apt/archives/*.deb; do printf '` + debLine + `%s %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$(dpkg-deb --show --showformat='${Package} ${Version} ${Architecture}' "$f")" >&2; done`

// lockedPackages joins the installed packages ("name=version") with the
// .debs the hook reported.
func lockedPackages(installed, debs []string) ([]LockedPackage, error) {
	byNameVersion := map[string]LockedPackage{}
	for _, line := range debs {
		f := strings.Fields(strings.TrimPrefix(line, debLine))
		if len(f) != 4 {
			return nil, fmt.Errorf("images: build: cannot parse %q from the package hook", line)
		}
		byNameVersion[f[1]+"="+f[2]] = LockedPackage{SHA256: f[0], Name: f[1], Version: f[2], Architecture: f[3]}
	}
	var out []LockedPackage
	var missing []string
	for _, nv := range installed {
		p, ok := byNameVersion[nv]
		if !ok {
			missing = append(missing, nv)
			continue
		}
		out = append(out, p)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("images: build: no .deb was seen for %s: cannot lock them", strings.Join(missing, ", "))
	}
	slices.SortFunc(out, comparePackages)
	return out, nil
}

// aptPreferences pins every package of the lock to its version, so that
// apt resolves the essential set and every dependency to them.
func aptPreferences(l Lock) []byte {
	var b bytes.Buffer
	for _, p := range l.Packages {
		fmt.Fprintf(&b, "Package: %s\nPin: version %s\nPin-Priority: 1001\n\n", p.Name, p.Version)
	}
	return b.Bytes()
}

// checkAgainstLock compares what a build installed with its lock and names
// each package that differs, and where it was looked for.
func checkAgainstLock(l Lock, got []LockedPackage, mirror, securityMirror string) error {
	want := map[string]LockedPackage{}
	for _, p := range l.Packages {
		want[p.Name+":"+p.Architecture] = p
	}
	var diffs []string
	for _, p := range got {
		k := p.Name + ":" + p.Architecture
		w, ok := want[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: installed but not in the lock", p))
		case w.Version != p.Version:
			diffs = append(diffs, fmt.Sprintf("%s: version %s is not available, got %s", w.Name, w.Version, p.Version))
		case w.SHA256 != p.SHA256:
			diffs = append(diffs, fmt.Sprintf("%s: the .deb has sha256 %s, the lock says %s", p, p.SHA256, w.SHA256))
		}
		delete(want, k)
	}
	for _, w := range want {
		diffs = append(diffs, fmt.Sprintf("%s: in the lock but not installed", w))
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return fmt.Errorf("%w: build --lock: %d packages differ from the lock, looked for in %s (%s, %s-updates) and %s (%s-security):\n  %s\nnothing was stored; if the mirror dropped these versions, rebuild from a snapshot of the archive, e.g. --mirror https://snapshot.debian.org/archive/debian/<TIME> --security-mirror https://snapshot.debian.org/archive/debian-security/<TIME>",
		ErrNotFound, len(diffs), mirror, Suite, Suite, securityMirror, Suite, strings.Join(diffs, "\n  "))
}

// fetchMirrors are where a build downloads packages from.
type fetchMirrors struct{ Mirror, SecurityMirror string }

// fromLock fills the options of a build from o.Lock, and returns where to
// fetch the packages from: o's mirrors if set, else the lock's.
func (o *BuildOptions) fromLock() (fetchMirrors, error) {
	l := o.Lock
	if l == nil {
		return fetchMirrors{}, nil
	}
	if len(o.Packages) > 0 || o.Minimal {
		return fetchMirrors{}, fmt.Errorf("%w: build --lock: the lock names the packages; give no packages and no --minimal", ErrInvalid)
	}
	if o.SourceDateEpoch != 0 && o.SourceDateEpoch != l.SourceDateEpoch {
		return fetchMirrors{}, fmt.Errorf("%w: build --lock: SOURCE_DATE_EPOCH %d, the lock has %d", ErrInvalid, o.SourceDateEpoch, l.SourceDateEpoch)
	}
	if !l.Minimal && !slices.Equal(l.Locales, Locales) {
		return fetchMirrors{}, fmt.Errorf("%w: build --lock: the lock's locales %q differ from this reprobox's %q", ErrInvalid, l.Locales, Locales)
	}
	f := fetchMirrors{Mirror: cmp.Or(o.Mirror, l.Mirror), SecurityMirror: cmp.Or(o.SecurityMirror, l.SecurityMirror)}
	for _, m := range []string{f.Mirror, f.SecurityMirror} {
		if !mirrorRE.MatchString(m) {
			return fetchMirrors{}, fmt.Errorf("%w: build: mirror %q: want an http(s) URL", ErrInvalid, m)
		}
	}
	f.Mirror, f.SecurityMirror = strings.TrimSuffix(f.Mirror, "/"), strings.TrimSuffix(f.SecurityMirror, "/")
	o.Mirror, o.SecurityMirror = l.Mirror, l.SecurityMirror
	o.Minimal = l.Minimal
	o.SourceDateEpoch = l.SourceDateEpoch
	o.Packages = slices.Clone(l.Requested)
	if o.Name == "" && l.Image != nil {
		o.Name = l.Image.Name
	}
	return f, nil
}

// lockArgs returns the arguments mmdebstrap really runs with: for a build
// from a lock, args plus a setup hook that pins every package with apt
// preferences (and points sources.list at the fetch mirrors), and a
// customize hook that removes the pins (and restores sources.list), so the
// image holds what the original build wrote. The image's history records
// args, as in the original build. cleanup removes the hooks' files.
func (s *Store) lockArgs(args []string, o BuildOptions, f fetchMirrors) ([]string, func(), error) {
	if o.Lock == nil {
		return args, func() {}, nil
	}
	dir, err := os.MkdirTemp(s.tmpDir(), "lock-")
	if err != nil {
		return nil, nil, fmt.Errorf("images: build: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	prefs := filepath.Join(dir, "preferences")
	if err := os.WriteFile(prefs, aptPreferences(*o.Lock), 0o644); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("images: build: %w", err)
	}
	const pinned = `"$1/etc/apt/preferences.d/reprobox-lock"`
	setup := `mkdir -p "$1/etc/apt/preferences.d" && cp ` + shellQuote(prefs) + " " + pinned
	customize := "rm -f " + pinned
	if f.Mirror != o.Mirror || f.SecurityMirror != o.SecurityMirror {
		sources := filepath.Join(dir, "sources.list")
		lines := fmt.Sprintf("deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n",
			f.Mirror, Suite, f.Mirror, Suite, f.SecurityMirror, Suite)
		if err := os.WriteFile(sources, []byte(lines), 0o644); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("images: build: %w", err)
		}
		orig := shellQuote(filepath.Join(dir, "sources.list.orig"))
		setup += ` && cp "$1/etc/apt/sources.list" ` + orig + " && cp " + shellQuote(sources) + ` "$1/etc/apt/sources.list"`
		customize += " && cp " + orig + ` "$1/etc/apt/sources.list"`
	}
	// Options go before the suite, the first positional argument.
	i := slices.Index(args, Suite)
	out := slices.Concat(args[:i:i], []string{"--setup-hook=" + setup, "--customize-hook=" + customize}, args[i:])
	return out, cleanup, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
