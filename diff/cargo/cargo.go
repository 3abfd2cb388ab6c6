// Package cargo reads the intermediate outputs of a cargo build (its target
// tree: build scripts' OUT_DIR and output, each crate's rlib, rmeta and
// executable) as units with their dependency edges, and compares two builds
// unit by unit in dependency order to find where they first diverge.
//
// Units and edges come from cargo's fingerprint directories
// (target/<profile>/.fingerprint/<package>-<hash>/<kind>-<target> and its
// .json), which cargo writes for every unit it builds, offline, in every
// cargo since 2018: the hex file holds the unit's fingerprint and the JSON
// lists the fingerprints of the units it depends on. Output files are
// assigned to units by the metadata hash in their names. The hashes differ
// between builds (they cover the build path, for one), so units of two builds
// are matched by profile directory, package, kind and target name.
//
// Trees are read by the caller (see Build); this package only interprets
// paths and the fingerprint files, so it reads nothing from disk.
package cargo

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A File is one regular file of a build tree.
type File struct {
	// Path is relative to the tree's root, with slashes.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

// Unit kinds.
const (
	KindBuildScript    = "build-script"     // the compiled build script
	KindBuildScriptRun = "build-script-run" // its run: OUT_DIR and output
	KindLib            = "lib"
	KindBin            = "bin"
)

// A Unit is one thing cargo built: a crate compiled for one target, a build
// script compiled, or a build script run.
type Unit struct {
	// ID matches the unit across builds: profile, package, kind, target.
	ID      string `json:"id"`
	Profile string `json:"profile"` // e.g. target/release
	Package string `json:"package"`
	Kind    string `json:"kind"`
	Target  string `json:"target"`
	// Hash is the metadata hash in the unit's file names; it is not
	// compared.
	Hash string `json:"-"`
	// Deps are the IDs of the units this one was built from, sorted.
	Deps []string `json:"deps,omitempty"`
	// Files are the unit's outputs, keyed by Name (the path within the
	// profile with the metadata hash taken out).
	Files []UnitFile `json:"files"`

	fingerprint string
	depPrints   []string
}

// A UnitFile is one output of a unit.
type UnitFile struct {
	// Name is stable across builds: "out/bindings.rs", "output",
	// "libfoo.rlib".
	Name string `json:"name"`
	File
}

// Name is how reports call the unit: "build script of foo-sys (run)",
// "foo (lib)", "app (bin)", prefixed with the x.py stage directory when the
// unit is in one.
func (u *Unit) Name() string {
	var s string
	switch u.Kind {
	case KindBuildScriptRun:
		s = "build script of " + u.Package + " (run)"
	case KindBuildScript:
		s = "build script of " + u.Package + " (compiled)"
	case KindLib:
		s = u.Package + " (lib)"
		if strings.ReplaceAll(u.Package, "-", "_") != u.Target {
			s = u.Package + " (lib " + u.Target + ")"
		}
	default:
		s = u.Target + " (" + u.Kind + ")"
		if u.Target != u.Package {
			s = u.Target + " (" + u.Kind + " of " + u.Package + ")"
		}
	}
	if st := stageOf(u.Profile); st.name != "" {
		s = st.name + ": " + s
	}
	return s
}

// A Tree is the units of one build.
type Tree struct {
	// Units are sorted by ID.
	Units []*Unit `json:"units"`
}

// Unit returns the unit with an ID, or nil.
func (t *Tree) Unit(id string) *Unit {
	i, ok := slices.BinarySearchFunc(t.Units, id, func(u *Unit, id string) int { return strings.Compare(u.ID, id) })
	if !ok {
		return nil
	}
	return t.Units[i]
}

// Bytes is the size of every file assigned to a unit.
func (t *Tree) Bytes() int64 {
	var n int64
	for _, u := range t.Units {
		for _, f := range u.Files {
			n += f.Size
		}
	}
	return n
}

// A Role says what Build needs of a file of the tree.
type Role int

// Roles of files.
const (
	Ignore      Role = iota // not part of any unit
	Fingerprint             // a fingerprint file: Build reads it
	Output                  // a unit's output: hashed and compared
)

// MaxFingerprintSize bounds a fingerprint file Build reads.
const MaxFingerprintSize = 1 << 20

// Classify says what a path of a tree is to Build, from the path alone, so
// that a caller hashes and keeps only what is compared.
func Classify(p string) Role {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	parent := path.Base(dir)
	grand := path.Base(path.Dir(dir))
	switch {
	case grand == ".fingerprint":
		if base == "invoked.timestamp" || strings.HasPrefix(base, "dep-") {
			return Ignore
		}
		return Fingerprint
	case parent == "deps":
		if strings.HasSuffix(base, ".d") {
			return Ignore // dep-info: absolute paths of this build
		}
		return Output
	}
	// build/<pkg>-<hash>/... and build/<pkg>-<hash>/out/...
	parts := strings.Split(p, "/")
	for i := len(parts) - 3; i >= 0; i-- {
		if parts[i] != "build" || i+2 >= len(parts) || !isPkgDir(parts[i+1]) {
			continue
		}
		rest := parts[i+2:]
		switch {
		case rest[0] == "out" && len(rest) > 1:
			return Output
		case len(rest) == 1:
			switch {
			case rest[0] == "output", rest[0] == "stderr", rest[0] == "build-script-build":
				return Output
			case strings.HasPrefix(rest[0], "build_script_") && !strings.HasSuffix(rest[0], ".d"):
				return Output
			}
		}
		return Ignore
	}
	return Ignore
}

var pkgDirRE = regexp.MustCompile(`^(.+)-([0-9a-f]{16})$`)

func isPkgDir(s string) bool { return pkgDirRE.MatchString(s) }

// fingerprintJSON is the part of a cargo fingerprint Build reads: each dep is
// [package id hash, crate name, public, fingerprint].
type fingerprintJSON struct {
	Deps [][]json.RawMessage `json:"deps"`
}

// ParseFingerprint reads a fingerprint's JSON and returns the fingerprints of
// the units it depends on, as the hex cargo writes in the unit's hash file.
func ParseFingerprint(data []byte) ([]string, error) {
	var fp fingerprintJSON
	if err := json.Unmarshal(data, &fp); err != nil {
		return nil, fmt.Errorf("cargo: fingerprint: %w", err)
	}
	var out []string
	for i, d := range fp.Deps {
		if len(d) < 4 {
			return nil, fmt.Errorf("cargo: fingerprint: dep %d has %d fields, want 4", i, len(d))
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(d[3])), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cargo: fingerprint: dep %d: %w", i, err)
		}
		out = append(out, hexLE(n))
	}
	return out, nil
}

// hexLE is cargo's util::to_hex: the little-endian bytes of n in hex.
func hexLE(n uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	return hex.EncodeToString(b[:])
}

// Build assembles the units of a tree from its files (as classified by
// Classify; others are ignored) and read, which returns the content of a
// Fingerprint file. Only unparseable fingerprints are errors.
func Build(files []File, read func(path string) ([]byte, error)) (*Tree, error) {
	t := &Tree{}
	byHash := map[string]*Unit{} // profile + "\x00" + metadata hash → unit
	var outputs []File
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	for _, f := range files {
		switch Classify(f.Path) {
		case Output:
			outputs = append(outputs, f)
		case Fingerprint:
			if strings.HasSuffix(f.Path, ".json") || !have[f.Path+".json"] {
				continue
			}
			dir, name := path.Split(f.Path)
			dir = strings.TrimSuffix(dir, "/")
			m := pkgDirRE.FindStringSubmatch(path.Base(dir))
			if m == nil {
				continue
			}
			profile := path.Dir(path.Dir(dir))
			kind, target := splitKind(name)
			u := &Unit{Profile: profile, Package: m[1], Hash: m[2], Kind: kind, Target: target}
			hexData, err := read(f.Path)
			if err != nil {
				return nil, fmt.Errorf("cargo: read %s: %w", f.Path, err)
			}
			u.fingerprint = strings.TrimSpace(string(hexData))
			js, err := read(f.Path + ".json")
			if err != nil {
				return nil, fmt.Errorf("cargo: read %s.json: %w", f.Path, err)
			}
			if u.depPrints, err = ParseFingerprint(js); err != nil {
				return nil, fmt.Errorf("%w (in %s.json)", err, f.Path)
			}
			t.Units = append(t.Units, u)
			byHash[profile+"\x00"+u.Hash] = u
		}
	}
	// IDs, made unique when a package has two units of one kind and target
	// (two versions, or host and target builds of one crate).
	slices.SortFunc(t.Units, func(a, b *Unit) int {
		return strings.Compare(a.Profile+"\x00"+a.Package+"\x00"+a.Kind+"\x00"+a.Target+"\x00"+a.Hash,
			b.Profile+"\x00"+b.Package+"\x00"+b.Kind+"\x00"+b.Target+"\x00"+b.Hash)
	})
	seen := map[string]int{}
	for _, u := range t.Units {
		id := u.Profile + " " + u.Package + " " + u.Kind + " " + u.Target
		seen[id]++
		if seen[id] > 1 {
			id += "#" + strconv.Itoa(seen[id])
		}
		u.ID = id
	}
	slices.SortFunc(t.Units, func(a, b *Unit) int { return strings.Compare(a.ID, b.ID) })
	// Edges by fingerprint, within a profile directory.
	byPrint := map[string]*Unit{}
	for _, u := range t.Units {
		byPrint[u.Profile+"\x00"+u.fingerprint] = u
	}
	for _, u := range t.Units {
		for _, p := range u.depPrints {
			if d := byPrint[u.Profile+"\x00"+p]; d != nil && d != u && !slices.Contains(u.Deps, d.ID) {
				u.Deps = append(u.Deps, d.ID)
			}
		}
		slices.Sort(u.Deps)
	}
	// Outputs by the metadata hash in their directory or file name.
	for _, f := range outputs {
		u, name := ownerOf(f.Path, byHash)
		if u == nil {
			continue
		}
		u.Files = append(u.Files, UnitFile{Name: name, File: f})
	}
	for _, u := range t.Units {
		slices.SortFunc(u.Files, func(a, b UnitFile) int { return strings.Compare(a.Name, b.Name) })
	}
	return t, nil
}

// splitKind splits a fingerprint file name into kind and target.
func splitKind(name string) (kind, target string) {
	switch {
	case strings.HasPrefix(name, "run-build-script-"):
		return KindBuildScriptRun, strings.TrimPrefix(name, "run-build-script-")
	case strings.HasPrefix(name, "build-script-"):
		return KindBuildScript, strings.TrimPrefix(name, "build-script-")
	}
	if k, t, ok := strings.Cut(name, "-"); ok {
		return k, t
	}
	return name, name
}

var hashSuffixRE = regexp.MustCompile(`-([0-9a-f]{16})(\.[A-Za-z0-9]+)?$`)

// ownerOf finds the unit an output belongs to and the output's stable name.
func ownerOf(p string, byHash map[string]*Unit) (*Unit, string) {
	parts := strings.Split(p, "/")
	n := len(parts)
	if n >= 2 && parts[n-2] == "deps" {
		m := hashSuffixRE.FindStringSubmatch(parts[n-1])
		if m == nil {
			return nil, ""
		}
		profile := path.Join(parts[:n-2]...)
		if n == 2 {
			profile = "."
		}
		u := byHash[profile+"\x00"+m[1]]
		return u, strings.Replace(parts[n-1], "-"+m[1], "", 1)
	}
	for i := n - 3; i >= 0; i-- {
		if parts[i] != "build" {
			continue
		}
		m := pkgDirRE.FindStringSubmatch(parts[i+1])
		if m == nil {
			continue
		}
		profile := path.Join(parts[:i]...)
		if i == 0 {
			profile = "."
		}
		u := byHash[profile+"\x00"+m[2]]
		return u, strings.ReplaceAll(path.Join(parts[i+2:]...), "-"+m[2], "")
	}
	return nil, ""
}

// A stage is where an x.py profile directory sits in rustc's bootstrap.
type stage struct {
	name  string // "stage1-std", "" outside x.py
	order int    // stages in build order
}

var stageRE = regexp.MustCompile(`(?:^|/)stage(\d+)(?:-([a-z-]+))?(?:/|$)`)

// stageOf reads the x.py stage of a profile directory such as
// build/x86_64-unknown-linux-gnu/stage1-std/x86_64-unknown-linux-gnu/release.
// Each stage's std is built by the previous stage's compiler, so any output of
// an earlier stage can change every output of a later one.
func stageOf(profile string) stage {
	m := stageRE.FindStringSubmatch(profile)
	if m == nil {
		return stage{}
	}
	n, _ := strconv.Atoi(m[1])
	sub := map[string]int{"": 0, "std": 1, "rustc": 2, "codegen": 3, "tools": 4}
	o, ok := sub[m[2]]
	if !ok {
		o = 5
	}
	name := "stage" + m[1]
	if m[2] != "" {
		name += "-" + m[2]
	}
	return stage{name: name, order: (n+1)*10 + o}
}
