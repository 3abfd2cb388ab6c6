// Package crateregistry serves a real cargo registry for tests: .crate files
// packaged from unpacked crate sources (Debian's librust-*-dev packages keep
// them in /usr/share/cargo/registry), a sparse index whose lines carry each
// .crate's sha256, and the download endpoint, over HTTP on loopback.
package crateregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// DebianRegistry is where Debian's librust-*-dev packages unpack crates.
const DebianRegistry = "/usr/share/cargo/registry"

// A Crate is one packaged crate.
type Crate struct {
	Name, Version string
	// Data is the .crate file (a gzipped tar of NAME-VERSION/...).
	Data []byte
	// Checksum is Data's sha256, as the index lists it.
	Checksum string
	// IndexLine is the crate's line in the sparse index.
	IndexLine []byte
}

// A Registry is a set of crates served over HTTP while its server runs.
type Registry struct {
	Crates []*Crate
	server *httptest.Server

	mu sync.Mutex
	// override replaces what the download endpoint serves for NAME-VERSION.
	override map[string][]byte
	hits     map[string]int
}

// Package makes a .crate of the crate source in dir (a directory holding
// Cargo.toml, normalized as cargo package writes it): every regular file under
// NAME-VERSION/ except .cargo-checksum.json, in sorted order, with fixed
// times and owners, so the same source gives the same bytes. Its index line
// comes from the Cargo.toml: dependencies (normal, build, dev, per target),
// features and links.
func Package(dir string) (*Crate, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Cargo.toml"))
	if err != nil {
		return nil, err
	}
	var man manifest
	if _, err := toml.Decode(string(data), &man); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	c := &Crate{Name: man.Package.Name, Version: man.Package.Version}
	if c.Name == "" || c.Version == "" {
		return nil, fmt.Errorf("%s: Cargo.toml names no package", dir)
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	prefix := c.Name + "-" + c.Version
	mtime := time.Unix(1700000000, 0)
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() && rel != ".cargo-checksum.json" {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	for _, rel := range files {
		body, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: path.Join(prefix, rel), Mode: mode, Size: int64(len(body)),
			ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatGNU}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	c.Data = buf.Bytes()
	sum := sha256.Sum256(c.Data)
	c.Checksum = hex.EncodeToString(sum[:])
	c.IndexLine, err = man.indexLine(c.Checksum)
	return c, err
}

type manifest struct {
	Package struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Links   string `toml:"links"`
	} `toml:"package"`
	Dependencies      map[string]any      `toml:"dependencies"`
	DevDependencies   map[string]any      `toml:"dev-dependencies"`
	BuildDependencies map[string]any      `toml:"build-dependencies"`
	Features          map[string][]string `toml:"features"`
	Target            map[string]struct {
		Dependencies      map[string]any `toml:"dependencies"`
		DevDependencies   map[string]any `toml:"dev-dependencies"`
		BuildDependencies map[string]any `toml:"build-dependencies"`
	} `toml:"target"`
}

// indexDep is a dependency in the index's format.
type indexDep struct {
	Name            string   `json:"name"`
	Req             string   `json:"req"`
	Features        []string `json:"features"`
	Optional        bool     `json:"optional"`
	DefaultFeatures bool     `json:"default_features"`
	Target          *string  `json:"target"`
	Kind            string   `json:"kind"`
	Registry        *string  `json:"registry"`
	Package         *string  `json:"package"`
}

func (m *manifest) indexLine(sum string) ([]byte, error) {
	var deps []indexDep
	add := func(table map[string]any, kind string, target *string) error {
		for name, v := range table {
			d := indexDep{Name: name, Req: "*", Features: []string{}, DefaultFeatures: true, Kind: kind, Target: target}
			switch v := v.(type) {
			case string:
				d.Req = v
			case map[string]any:
				if s, ok := v["version"].(string); ok {
					d.Req = s
				}
				if b, ok := v["optional"].(bool); ok {
					d.Optional = b
				}
				for _, k := range []string{"default-features", "default_features"} {
					if b, ok := v[k].(bool); ok {
						d.DefaultFeatures = b
					}
				}
				if fs, ok := v["features"].([]any); ok {
					for _, f := range fs {
						d.Features = append(d.Features, fmt.Sprint(f))
					}
				}
				if s, ok := v["package"].(string); ok {
					d.Package = &s
				}
			default:
				return fmt.Errorf("dependency %s: %T", name, v)
			}
			deps = append(deps, d)
		}
		return nil
	}
	for _, t := range []struct {
		m    map[string]any
		kind string
	}{{m.Dependencies, "normal"}, {m.DevDependencies, "dev"}, {m.BuildDependencies, "build"}} {
		if err := add(t.m, t.kind, nil); err != nil {
			return nil, err
		}
	}
	for cfg, t := range m.Target {
		for _, tt := range []struct {
			m    map[string]any
			kind string
		}{{t.Dependencies, "normal"}, {t.DevDependencies, "dev"}, {t.BuildDependencies, "build"}} {
			if err := add(tt.m, tt.kind, &cfg); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(deps, func(a, b indexDep) int { return strings.Compare(a.Name+" "+a.Kind, b.Name+" "+b.Kind) })
	feats := m.Features
	if feats == nil {
		feats = map[string][]string{}
	}
	line := map[string]any{"name": m.Package.Name, "vers": m.Package.Version, "deps": deps, "cksum": sum,
		"features": feats, "yanked": false}
	if m.Package.Links != "" {
		line["links"] = m.Package.Links
	}
	if deps == nil {
		line["deps"] = []indexDep{}
	}
	return json.Marshal(line)
}

// FromDirs packages the crate sources in dirs.
func FromDirs(dirs ...string) (*Registry, error) {
	r := &Registry{override: map[string][]byte{}, hits: map[string]int{}}
	for _, d := range dirs {
		c, err := Package(d)
		if err != nil {
			return nil, err
		}
		r.Crates = append(r.Crates, c)
	}
	return r, nil
}

// Start serves the registry on loopback: the sparse index at /index/
// (config.json, and one file per crate name at its prefix path) and the
// crates at /dl/NAME/VERSION/download. It returns the index's URL as cargo's
// config names it: sparse+http://127.0.0.1:PORT/index/.
func (r *Registry) Start() string {
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("/index/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"dl":%q,"api":%q}`, base+"/dl", base)
	})
	mux.HandleFunc("/index/", func(w http.ResponseWriter, req *http.Request) {
		name := path.Base(req.URL.Path)
		var lines []byte
		for _, c := range r.Crates {
			if strings.ToLower(c.Name) == name && req.URL.Path == "/index/"+Prefix(name)+"/"+name {
				lines = append(append(lines, c.IndexLine...), '\n')
			}
		}
		if lines == nil {
			http.NotFound(w, req)
			return
		}
		w.Write(lines)
	})
	mux.HandleFunc("/dl/{name}/{version}/download", func(w http.ResponseWriter, req *http.Request) {
		key := req.PathValue("name") + "-" + req.PathValue("version")
		r.mu.Lock()
		r.hits[key]++
		data, ok := r.override[key]
		r.mu.Unlock()
		if !ok {
			for _, c := range r.Crates {
				if c.Name+"-"+c.Version == key {
					data, ok = c.Data, true
				}
			}
		}
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Write(data)
	})
	r.server = httptest.NewServer(mux)
	base = r.server.URL
	return "sparse+" + base + "/index/"
}

// Close stops the server: nothing is reachable at its address afterwards.
func (r *Registry) Close() {
	if r.server != nil {
		r.server.Close()
	}
}

// Serve makes the download endpoint serve data for NAME-VERSION instead of
// the packaged crate (a changed crate on the registry).
func (r *Registry) Serve(nameVersion string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.override[nameVersion] = data
}

// Downloads is how often NAME-VERSION was downloaded.
func (r *Registry) Downloads(nameVersion string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[nameVersion]
}

// Prefix is the directory of a crate's index file: 1, 2, 3/a or ab/cd, of the
// lowercased name.
func Prefix(name string) string {
	name = strings.ToLower(name)
	switch len(name) {
	case 1:
		return "1"
	case 2:
		return "2"
	case 3:
		return "3/" + name[:1]
	}
	return name[:2] + "/" + name[2:4]
}

// CargoEnv is what the host's cargo needs in its environment to read a
// sparse index: nothing from cargo 1.68 on; before (Debian bookworm's cargo
// 1.65) the sparse-registry feature was unstable, and is turned on here.
func CargoEnv() []string {
	out, err := exec.Command("cargo", "--version").Output()
	if err != nil {
		return nil
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(out), "cargo %d.%d", &major, &minor); err != nil || major > 1 || minor >= 68 {
		return nil
	}
	return []string{"__CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=nightly", "CARGO_UNSTABLE_SPARSE_REGISTRY=true"}
}
