// Package published reads what a release published, for reprobox verify: a
// directory of files, a SHA256SUMS file (with or without the files beside it),
// or a Rust channel manifest (channel-rust-*.toml) whose [pkg.NAME.target.TRIPLE]
// tables give each tarball's URL and SHA-256.
//
// Published files are only ever opened read-only.
package published

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrInvalid marks published input that cannot be read as any of the forms:
// the caller's to fix.
var ErrInvalid = errors.New("invalid published input")

// Forms of published input.
const (
	FormDirectory  = "directory"
	FormSHA256SUMS = "sha256sums"
	FormChannel    = "channel-manifest"
)

// An Entry is one published artifact.
type Entry struct {
	// Name is the artifact's base file name, what it is matched by.
	Name string `json:"name"`
	// SHA256 is the published digest: the manifest's, or the file's own for a
	// directory.
	SHA256 string `json:"sha256"`
	// Origin says where the entry comes from: the manifest line, the
	// channel-manifest key, or the file's path in the directory.
	Origin string `json:"origin"`
	// File is the published file on disk, when it is at hand ("" otherwise).
	File string `json:"file,omitempty"`
	// FileSHA256 is the digest of File when it was hashed.
	FileSHA256 string `json:"file_sha256,omitempty"`
}

// Corrupt reports whether the file beside the manifest is not what the
// manifest says.
func (e Entry) Corrupt() bool { return e.File != "" && e.FileSHA256 != "" && e.FileSHA256 != e.SHA256 }

// A Set is everything a release published, sorted by name.
type Set struct {
	Form    string  `json:"form"`
	Where   string  `json:"where"`
	Entries []Entry `json:"entries"`
}

// Lookup returns the entry named name.
func (s *Set) Lookup(name string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(s.Entries, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return Entry{}, false
	}
	return s.Entries[i], true
}

// Load reads where: a directory, a SHA256SUMS-format file, or a channel
// manifest (a file whose name ends in .toml). Files beside a manifest are
// hashed when present.
func Load(where string) (*Set, error) {
	st, err := os.Stat(where)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
	}
	if st.IsDir() {
		return loadDir(where)
	}
	data, err := readLimited(where, 64<<20)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	form := FormSHA256SUMS
	if strings.HasSuffix(where, ".toml") {
		form = FormChannel
		entries, err = ParseChannelManifest(data)
	} else {
		entries, err = ParseSHA256SUMS(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
	}
	dir := filepath.Dir(where)
	for i := range entries {
		e := &entries[i]
		// The file beside: for SHA256SUMS the path as written, for a channel
		// manifest the URL's base name.
		rel := e.Name
		if form == FormSHA256SUMS {
			rel = filepath.FromSlash(e.Origin)
		}
		p := filepath.Join(dir, rel)
		if filepath.IsAbs(rel) {
			p = rel
		}
		fst, err := os.Stat(p)
		if err != nil || !fst.Mode().IsRegular() {
			continue
		}
		sum, err := HashFile(p)
		if err != nil {
			return nil, fmt.Errorf("published: hash %s: %w", p, err)
		}
		e.File, e.FileSHA256 = p, sum
	}
	s, err := newSet(form, where, entries)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
	}
	return s, nil
}

// skipInDir names files of a published directory that describe the release
// rather than belong to it.
func skipInDir(name string) bool {
	if strings.HasPrefix(name, ".") || name == "SHA256SUMS" || strings.HasPrefix(name, "SHA256SUMS.") {
		return true
	}
	for _, suf := range []string{".sha256", ".asc", ".sig", ".intoto.jsonl"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return strings.HasPrefix(name, "channel-rust-") && strings.HasSuffix(name, ".toml")
}

func loadDir(dir string) (*Set, error) {
	var entries []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || skipInDir(d.Name()) {
			return nil
		}
		sum, err := HashFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		entries = append(entries, Entry{Name: d.Name(), SHA256: sum, Origin: filepath.ToSlash(rel), File: p, FileSHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("published: read %s: %w", dir, err)
	}
	s, err := newSet(FormDirectory, dir, entries)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, dir, err)
	}
	return s, nil
}

// newSet sorts entries by name and refuses two different artifacts under one
// base name: they could not be matched to a build's artifacts unambiguously.
// The same name with the same digest (a manifest listing one tarball twice)
// is kept once.
func newSet(form, where string, entries []Entry) (*Set, error) {
	slices.SortStableFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	out := entries[:0]
	for _, e := range entries {
		if n := len(out); n > 0 && out[n-1].Name == e.Name {
			if out[n-1].SHA256 != e.SHA256 {
				return nil, fmt.Errorf("two published artifacts share the base name %s (%s and %s) with different digests; verify matches by base name: publish them in separate directories or manifests", e.Name, out[n-1].Origin, e.Origin)
			}
			continue
		}
		out = append(out, e)
	}
	return &Set{Form: form, Where: where, Entries: out}, nil
}

// ParseSHA256SUMS parses the output of sha256sum: "HEX  NAME" (text mode) or
// "HEX *NAME" (binary mode), with a leading backslash when the name holds a
// backslash, newline or carriage return escaped as \\, \n, \r (GNU
// coreutils), and the BSD tag form "SHA256 (NAME) = HEX". Blank lines are
// skipped; anything else is an error naming the line.
func ParseSHA256SUMS(data []byte) ([]Entry, error) {
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		sum, name, err := parseSumLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if name == "" || name == "." || name == ".." || strings.HasSuffix(name, "/") {
			return nil, fmt.Errorf("line %d: %q is not a file name", n, name)
		}
		if strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("line %d: the file name holds a NUL byte", n)
		}
		base := path.Base(name)
		if base == "." || base == ".." || base == "/" {
			return nil, fmt.Errorf("line %d: %q names no file", n, name)
		}
		entries = append(entries, Entry{Name: base, SHA256: sum, Origin: name})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errors.New("no checksum lines: expected lines of the form \"<sha256>  <file name>\" as sha256sum writes them")
	}
	return entries, nil
}

func parseSumLine(line string) (sum, name string, err error) {
	if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
		i := strings.LastIndex(rest, ") = ")
		if i < 0 {
			return "", "", errors.New(`BSD-style line without ") = "`)
		}
		sum, err := hexSum(rest[i+4:])
		return sum, rest[:i], err
	}
	escaped := strings.HasPrefix(line, "\\")
	if escaped {
		line = line[1:]
	}
	if len(line) < 66 || (line[64] != ' ') || (line[65] != ' ' && line[65] != '*') {
		return "", "", errors.New(`not "<64 hex digits><space><space or *><file name>"`)
	}
	sum, err = hexSum(line[:64])
	if err != nil {
		return "", "", err
	}
	name = line[66:]
	if escaped {
		name, err = unescape(name)
	}
	return sum, name, err
}

func hexSum(s string) (string, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("%q is not a SHA-256 digest (64 hex digits)", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("%q is not a SHA-256 digest (64 hex digits)", s)
	}
	return strings.ToLower(s), nil
}

// unescape undoes sha256sum's escaping of \\, \n and \r in names.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", errors.New("the escaped file name ends in a lone backslash")
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("unknown escape \\%c in the file name", s[i])
		}
	}
	return b.String(), nil
}

// channel is the part of a Rust channel manifest verify reads.
type channel struct {
	ManifestVersion string                `toml:"manifest-version"`
	Pkg             map[string]channelPkg `toml:"pkg"`
}

type channelPkg struct {
	Target map[string]channelTarget `toml:"target"`
}

type channelTarget struct {
	Available *bool  `toml:"available"`
	URL       string `toml:"url"`
	Hash      string `toml:"hash"`
	XZURL     string `toml:"xz_url"`
	XZHash    string `toml:"xz_hash"`
}

// ParseChannelManifest reads a Rust channel manifest (manifest-version "2"):
// every available [pkg.NAME.target.TRIPLE] table gives one entry per
// url/hash and xz_url/xz_hash pair, named by the URL's base name.
func ParseChannelManifest(data []byte) ([]Entry, error) {
	var ch channel
	if _, err := toml.Decode(string(data), &ch); err != nil {
		return nil, fmt.Errorf("not a channel manifest: %w", err)
	}
	if ch.ManifestVersion != "2" {
		return nil, fmt.Errorf("manifest-version is %q; only channel manifests of version \"2\" are read", ch.ManifestVersion)
	}
	var entries []Entry
	for _, pkg := range sortedKeys(ch.Pkg) {
		for _, triple := range sortedKeys(ch.Pkg[pkg].Target) {
			t := ch.Pkg[pkg].Target[triple]
			if t.Available != nil && !*t.Available {
				continue
			}
			key := fmt.Sprintf("pkg.%s.target.%s", pkg, triple)
			for _, p := range [][3]string{{"url", t.URL, t.Hash}, {"xz_url", t.XZURL, t.XZHash}} {
				field, u, h := p[0], p[1], p[2]
				if u == "" && h == "" {
					continue
				}
				if u == "" || h == "" {
					return nil, fmt.Errorf("%s has %s without its hash (or a hash without its URL)", key, field)
				}
				name, err := urlBase(u)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %w", key, field, err)
				}
				sum, err := hexSum(h)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				entries = append(entries, Entry{Name: name, SHA256: sum, Origin: key + "." + field})
			}
		}
	}
	if len(entries) == 0 {
		return nil, errors.New("the manifest lists no available [pkg.NAME.target.TRIPLE] with url/hash or xz_url/xz_hash")
	}
	return entries, nil
}

func urlBase(u string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", u, err)
	}
	p := parsed.Path
	if p == "" {
		p = parsed.Opaque
	}
	name := path.Base(p)
	if name == "." || name == "/" || name == ".." || strings.HasSuffix(p, "/") {
		return "", fmt.Errorf("URL %q names no file", u)
	}
	return name, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// HashFile is the SHA-256 of a file, opened read-only.
func HashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("published: read %s: %w", p, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d MiB: not a manifest", ErrInvalid, p, limit>>20)
	}
	return data, nil
}
