// Package cargolock reads Cargo.lock: the packages a cargo project's build
// uses, each with its source and, for a registry crate, the sha256 of its
// .crate file.
package cargolock

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrInvalid marks a Cargo.lock that cannot be read.
var ErrInvalid = errors.New("invalid Cargo.lock")

// The kinds of source a package comes from.
const (
	KindPath     = "path"     // a workspace member or a path dependency: no source
	KindRegistry = "registry" // registry+URL: a registry with a git index
	KindSparse   = "sparse"   // sparse+URL: a registry with a sparse (HTTP) index
	KindGit      = "git"      // git+URL?rev#commit: a git repository
)

// CratesIOGit and CratesIOSparse are the two spellings of crates.io's source.
const (
	CratesIOGit    = "registry+https://github.com/rust-lang/crates.io-index"
	CratesIOSparse = "sparse+https://index.crates.io/"
)

// A Lock is a parsed Cargo.lock.
type Lock struct {
	// Version is the lock format's version (1 when the file names none).
	Version int
	// Packages are in the file's order (cargo writes them sorted).
	Packages []Package
}

// A Package is one [[package]] entry.
type Package struct {
	Name    string
	Version string
	// Source is the source as cargo writes it ("" for a path package).
	Source string
	// Checksum is the sha256 of the .crate file, lowercase hex ("" when the
	// lock has none, as for path and git packages).
	Checksum string
}

// Kind is the kind of the package's source (KindPath, KindRegistry, KindSparse
// or KindGit).
func (p Package) Kind() string {
	k, _, _ := strings.Cut(p.Source, "+")
	if p.Source == "" {
		return KindPath
	}
	return k
}

// URL is the source's URL without its kind ("" for a path package). For a git
// source it keeps the query and fragment (the locked revision).
func (p Package) URL() string {
	_, u, _ := strings.Cut(p.Source, "+")
	return u
}

// IsCratesIO reports whether a source is crates.io's.
func IsCratesIO(source string) bool {
	return source == CratesIOGit || strings.TrimSuffix(source, "/") == strings.TrimSuffix(CratesIOSparse, "/")
}

// Parse reads a Cargo.lock. Every package must have a name, a version and a
// source of a known kind; names and versions are limited to the characters
// cargo allows (so each is safe as a file name), and a checksum is 64 hex
// digits. Lock format 1 keeps checksums in [metadata]; they are moved onto
// their packages. Errors wrap ErrInvalid.
func Parse(data []byte) (*Lock, error) {
	var raw struct {
		Version  *int `toml:"version"`
		Packages []struct {
			Name     string `toml:"name"`
			Version  string `toml:"version"`
			Source   string `toml:"source"`
			Checksum string `toml:"checksum"`
		} `toml:"package"`
		Metadata map[string]any `toml:"metadata"`
	}
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	l := &Lock{Version: 1}
	if raw.Version != nil {
		l.Version = *raw.Version
		if l.Version < 1 || l.Version > 4 {
			return nil, fmt.Errorf("%w: lock format version %d is unknown (known: 1 to 4)", ErrInvalid, l.Version)
		}
	}
	type key struct{ name, version, source string }
	seen := map[key]bool{}
	for i, rp := range raw.Packages {
		p := Package{Name: rp.Name, Version: rp.Version, Source: rp.Source, Checksum: rp.Checksum}
		if err := checkName(p.Name); err != nil {
			return nil, fmt.Errorf("%w: package %d: name %q %v", ErrInvalid, i+1, p.Name, err)
		}
		if err := checkVersion(p.Version); err != nil {
			return nil, fmt.Errorf("%w: package %s: version %q %v", ErrInvalid, p.Name, p.Version, err)
		}
		switch p.Kind() {
		case KindPath, KindRegistry, KindSparse, KindGit:
		default:
			return nil, fmt.Errorf("%w: package %s %s: source %q is of no kind cargo writes (registry+, sparse+, git+)", ErrInvalid, p.Name, p.Version, p.Source)
		}
		if p.Source != "" && !strings.Contains(p.URL(), "://") {
			return nil, fmt.Errorf("%w: package %s %s: source %q has no URL", ErrInvalid, p.Name, p.Version, p.Source)
		}
		if strings.ContainsFunc(p.Source, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("%w: package %s %s: source %q holds a space or control character", ErrInvalid, p.Name, p.Version, p.Source)
		}
		if p.Checksum != "" && !isHex64(p.Checksum) {
			return nil, fmt.Errorf("%w: package %s %s: checksum %q is not 64 lowercase hex digits", ErrInvalid, p.Name, p.Version, p.Checksum)
		}
		k := key{p.Name, p.Version, p.Source}
		if seen[k] {
			return nil, fmt.Errorf("%w: package %s %s from %q is listed twice", ErrInvalid, p.Name, p.Version, sourceName(p.Source))
		}
		seen[k] = true
		l.Packages = append(l.Packages, p)
	}
	// Format 1: [metadata] "checksum NAME VERSION (SOURCE)" = "SHA256".
	for k, v := range raw.Metadata {
		rest, ok := strings.CutPrefix(k, "checksum ")
		if !ok {
			continue
		}
		sum, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: [metadata] %q is not a string", ErrInvalid, k)
		}
		if sum == "<none>" {
			continue
		}
		if !isHex64(sum) {
			return nil, fmt.Errorf("%w: [metadata] %q: checksum %q is not 64 lowercase hex digits", ErrInvalid, k, sum)
		}
		name, rest, _ := strings.Cut(rest, " ")
		version, src, _ := strings.Cut(rest, " ")
		src = strings.TrimSuffix(strings.TrimPrefix(src, "("), ")")
		i := slices.IndexFunc(l.Packages, func(p Package) bool { return p.Name == name && p.Version == version && p.Source == src })
		if i < 0 {
			return nil, fmt.Errorf("%w: [metadata] %q names no package of the lock", ErrInvalid, k)
		}
		if l.Packages[i].Checksum != "" && l.Packages[i].Checksum != sum {
			return nil, fmt.Errorf("%w: package %s %s has two checksums", ErrInvalid, name, version)
		}
		l.Packages[i].Checksum = sum
	}
	return l, nil
}

func sourceName(s string) string {
	if s == "" {
		return "a path"
	}
	return s
}

// checkName allows what cargo allows in a package name: ASCII letters,
// digits, - and _, at most 128 bytes.
func checkName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > 128 {
		return errors.New("is longer than 128 bytes")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("holds %q, which no cargo package name holds", r)
		}
	}
	return nil
}

// checkVersion allows the characters of a semantic version: ASCII letters,
// digits, '.', '-' and '+', at most 128 bytes, starting with a digit.
func checkVersion(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > 128 {
		return errors.New("is longer than 128 bytes")
	}
	if s[0] < '0' || s[0] > '9' {
		return errors.New("does not start with a digit")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') {
			return fmt.Errorf("holds %q, which no semantic version holds", r)
		}
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
