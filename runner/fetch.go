package runner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reprobox/reprobox/internal/cargolock"
	"github.com/reprobox/reprobox/internal/human"
	"github.com/reprobox/reprobox/internal/safefs"
)

// The fetch phase. Before any build of a cargo project with a Cargo.lock, the
// registry crates the lock names are downloaded on the host, once, into a
// content-addressed cache (CrateCache/sha256/CHECKSUM.crate), each checked
// against the lock's sha256 (and checked again, from the cache, on every use).
// Every build then gets them as a vendored directory source inside its
// pristine source snapshot: VendorDir/SOURCE/NAME-VERSION with a
// .cargo-checksum.json, owned by root and never written back, and a
// .cargo/config.toml that replaces every registry with that directory and sets
// net.offline. The build itself has no network; what it sees depends only on
// Cargo.lock. Git dependencies are fetched at their locked commits and
// vendored the same way (see fetchgit.go).

// VendorDir is where a build finds the fetched crates, relative to its build
// directory.
const VendorDir = ".reprobox-vendor"

// ErrChecksum marks a crate whose bytes do not match the checksum Cargo.lock
// pins. It is a config error (exit 2): the lock and the registry disagree, and
// only the user can say which is right; nothing was built.
var ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrConfig)

// ErrFetch marks a crate that could not be downloaded (an unreachable
// registry, an HTTP error): a failure of the environment, not of the input
// (exit 3); running again may succeed.
var ErrFetch = errors.New("fetch failed")

// A Dependency is one crate fetched for the builds, as the record lists it.
type Dependency struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Checksum string `json:"checksum"`
	// Source is the source Cargo.lock names (before any replacement).
	Source string `json:"source"`
	// Commit is, for a git dependency, the commit Cargo.lock pins (full
	// SHA-1), in place of a checksum: its hash pins the tree.
	Commit string `json:"commit,omitempty"`
}

// vendorSet is what the fetch phase hands to every snapshot.
type vendorSet struct {
	lockSum string
	crates  []vendoredCrate
	// sources maps a lock source to its directory under VendorDir.
	sources map[string]string
	// gitSources are the lock sources of git dependencies, parsed.
	gitSources map[string]cargolock.GitSource
}

type vendoredCrate struct {
	Dependency
	file string // in the cache
	dir  string // relative to the build directory
	// git is, for a git dependency, the cache entry, and gitPath the
	// package's directory in its tree.
	git     *gitEntry
	gitPath string
}

// cargoSource is one [source.NAME] table of a cargo config.
type cargoSource struct {
	ReplaceWith   string `toml:"replace-with"`
	Registry      string `toml:"registry"`
	Directory     string `toml:"directory"`
	LocalRegistry string `toml:"local-registry"`
	Git           string `toml:"git"`
}

// cargoConfig is what the fetch reads of cargo's configuration.
type cargoConfig struct {
	Source     map[string]cargoSource `toml:"source"`
	Registries map[string]struct {
		Index string `toml:"index"`
		Token string `toml:"token"`
	} `toml:"registries"`
	Registry struct {
		Token string `toml:"token"`
	} `toml:"registry"`
	Net struct {
		Offline *bool `toml:"offline"`
	} `toml:"net"`
	HTTP struct {
		Proxy string `toml:"proxy"`
	} `toml:"http"`
	// files are the files read, nearest first.
	files []string
	// trustedIndex is each registry's index as the user's own configuration
	// ($CARGO_HOME and the environment, never the project's files) gives it:
	// a token goes only there.
	trustedIndex map[string]string
}

// cargoHome is $CARGO_HOME, else ~/.cargo.
func cargoHome() string {
	if h := os.Getenv("CARGO_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cargo")
}

// loadCargoConfig reads cargo's configuration as cargo does for a build in
// dir: .cargo/config.toml (or the older .cargo/config, which wins when both
// exist) in dir and every parent, then $CARGO_HOME/config.toml and
// credentials.toml; a nearer file's value wins. The environment overrides
// (CARGO_NET_OFFLINE, CARGO_HTTP_PROXY, CARGO_REGISTRIES_NAME_INDEX and
// _TOKEN, CARGO_REGISTRY_TOKEN).
func loadCargoConfig(dir string) (*cargoConfig, error) {
	var paths []string
	for d := dir; ; d = filepath.Dir(d) {
		if p := configIn(filepath.Join(d, ".cargo")); p != "" {
			paths = append(paths, p)
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	var homePaths []string
	if home := cargoHome(); home != "" {
		for _, p := range []string{configIn(home), filepath.Join(home, "credentials.toml")} {
			if p != "" && !slices.Contains(paths, p) {
				paths = append(paths, p)
				homePaths = append(homePaths, p)
			}
		}
	}
	cfg, err := decodeConfigs(paths, homePaths)
	if err != nil {
		return nil, err
	}
	// Tokens and the indexes they are for come only from the user's own
	// files: a project (a pull request, a bisected commit) can name any
	// index in its .cargo/config.toml, and must not receive the user's
	// tokens by naming a registry the user has one for.
	home, err := decodeConfigs(homePaths, homePaths)
	if err != nil {
		return nil, err
	}
	cfg.trustedIndex = map[string]string{}
	cfg.Registry.Token = home.Registry.Token
	for name, r := range cfg.Registries {
		r.Token = home.Registries[name].Token
		cfg.Registries[name] = r
	}
	for name, r := range home.Registries {
		cfg.trustedIndex[name] = r.Index
	}
	if v, ok := os.LookupEnv("CARGO_NET_OFFLINE"); ok {
		b := v == "true"
		cfg.Net.Offline = &b
	}
	if v := os.Getenv("CARGO_HTTP_PROXY"); v != "" {
		cfg.HTTP.Proxy = v
	}
	for name, r := range cfg.Registries {
		env := "CARGO_REGISTRIES_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := os.Getenv(env + "_INDEX"); v != "" {
			r.Index = v
			cfg.trustedIndex[name] = v
		}
		if v := os.Getenv(env + "_TOKEN"); v != "" {
			r.Token = v
		}
		cfg.Registries[name] = r
	}
	if v := os.Getenv("CARGO_REGISTRY_TOKEN"); v != "" {
		cfg.Registry.Token = v
	}
	return cfg, nil
}

// decodeConfigs merges the cargo config files paths (nearest first) as cargo
// does: a nearer file's values win. The files of the user's own (in trusted)
// are read as they are; the others are the project's, which a build or a
// commit controls: they are read only as regular files, not through a link,
// and at most 1 MiB.
func decodeConfigs(paths, trusted []string) (*cargoConfig, error) {
	merged := map[string]any{}
	cfg := &cargoConfig{}
	// Farthest first, so that a nearer file's values replace it.
	for i := len(paths) - 1; i >= 0; i-- {
		data, err := readConfig(paths[i], slices.Contains(trusted, paths[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("%w: cargo config %s: %w", ErrConfig, paths[i], err)
		}
		var m map[string]any
		if _, err := toml.Decode(string(data), &m); err != nil {
			return nil, fmt.Errorf("%w: cargo config %s: %w", ErrConfig, paths[i], err)
		}
		mergeTOML(merged, m)
		cfg.files = append([]string{paths[i]}, cfg.files...)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(merged); err != nil {
		return nil, fmt.Errorf("runner: cargo config: %w", err)
	}
	if _, err := toml.Decode(buf.String(), cfg); err != nil {
		return nil, fmt.Errorf("%w: cargo config (%s): %w", ErrConfig, strings.Join(cfg.files, ", "), err)
	}
	return cfg, nil
}

// readConfig reads a cargo config file: a project's through safefs, as a
// regular file of at most 1 MiB.
func readConfig(path string, trusted bool) ([]byte, error) {
	if trusted {
		return os.ReadFile(path)
	}
	f, _, err := safefs.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err == nil && len(data) > 1<<20 {
		err = errors.New("larger than 1 MiB")
	}
	return data, err
}

// configIn is the config file cargo reads in a directory: config (the older
// name, which wins when both exist), else config.toml, else "".
func configIn(dotCargo string) string {
	for _, name := range []string{"config", "config.toml"} {
		p := filepath.Join(dotCargo, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// mergeTOML merges src into dst: tables recursively, any other value replaced.
func mergeTOML(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeTOML(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// A resolvedSource is where the crates of one lock source come from.
type resolvedSource struct {
	// index is the sparse index's URL (with its sparse+ prefix).
	index string
	// name is the configured name of the final source, for its token.
	name string
	// vendored is the directory (or local registry) the project's config
	// replaces the source with: the project is left as it is.
	vendored string
}

// sameURL compares registry URLs as cargo's source IDs do: the kind prefix
// registry+ dropped, a trailing slash ignored.
func sameURL(a, b string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, "registry+"), "/") }
	return norm(a) == norm(b)
}

// resolve follows the config's source replacement for a lock source.
func (c *cargoConfig) resolve(lockSource string) (resolvedSource, error) {
	name := ""
	if cargolock.IsCratesIO(lockSource) {
		name = "crates-io"
	} else {
		for n, s := range c.Source {
			if s.Registry != "" && sameURL(s.Registry, lockSource) {
				name = n
			}
		}
		for n, r := range c.Registries {
			if name == "" && r.Index != "" && sameURL(r.Index, lockSource) {
				name = n
			}
		}
	}
	seen := map[string]bool{}
	for name != "" {
		if seen[name] {
			return resolvedSource{}, fmt.Errorf("%w: cargo config (%s): source replacement loops through %q", ErrConfig, strings.Join(c.files, ", "), name)
		}
		seen[name] = true
		s, ok := c.Source[name]
		if !ok || s.ReplaceWith == "" {
			break
		}
		name = s.ReplaceWith
	}
	s, defined := c.Source[name]
	switch {
	case s.Directory != "" || s.LocalRegistry != "":
		return resolvedSource{vendored: s.Directory + s.LocalRegistry}, nil
	case s.Git != "":
		return resolvedSource{}, fmt.Errorf("%w: cargo config replaces %s with the git repository %s, which reprobox's fetch does not support yet: %w",
			ErrConfig, lockSource, s.Git, errors.ErrUnsupported)
	case s.Registry != "":
		return c.sparse(name, s.Registry, lockSource)
	}
	if r, ok := c.Registries[name]; ok && r.Index != "" {
		return c.sparse(name, r.Index, lockSource)
	}
	if name == "crates-io" {
		return resolvedSource{index: cargolock.CratesIOSparse, name: name}, nil
	}
	if name == "" {
		// An alternative registry named only by the lock's URL.
		return c.sparse("", lockSource, lockSource)
	}
	if !defined {
		return resolvedSource{}, fmt.Errorf("%w: cargo config (%s): replace-with names %q, which no [source] or [registries] table defines", ErrConfig, strings.Join(c.files, ", "), name)
	}
	return resolvedSource{}, fmt.Errorf("%w: cargo config (%s): source %q says neither registry, directory nor local-registry", ErrConfig, strings.Join(c.files, ", "), name)
}

func (c *cargoConfig) sparse(name, index, lockSource string) (resolvedSource, error) {
	if !strings.HasPrefix(index, "sparse+") {
		if index == "https://github.com/rust-lang/crates.io-index" || index == cargolock.CratesIOGit {
			// cargo itself reads crates.io through its sparse index.
			return resolvedSource{index: cargolock.CratesIOSparse, name: name}, nil
		}
		return resolvedSource{}, fmt.Errorf("%w: the crates of %s come from the registry %s, which has a git index: reprobox fetches only from sparse indexes (sparse+URL): %w",
			ErrConfig, lockSource, index, errors.ErrUnsupported)
	}
	u, err := url.Parse(strings.TrimPrefix(index, "sparse+"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return resolvedSource{}, fmt.Errorf("%w: registry index %q is not an http(s) URL", ErrConfig, index)
	}
	return resolvedSource{index: index, name: name}, nil
}

// token is the token of registry name for a request to its index, or "":
// the crates.io token goes only to crates.io, another registry's only to
// the index the user's own configuration gives it.
func (c *cargoConfig) token(name, index string) string {
	if name == "crates-io" {
		if strings.TrimSuffix(index, "/") != strings.TrimSuffix(cargolock.CratesIOSparse, "/") {
			return ""
		}
		return c.Registry.Token
	}
	trusted := c.trustedIndex[name]
	if trusted == "" || strings.TrimSuffix(trusted, "/") != strings.TrimSuffix(index, "/") {
		return ""
	}
	return c.Registries[name].Token
}

// fetch is the fetch phase for the project in dir (see the comment at the top
// of this file). It returns nil when there is nothing to give the builds: no
// CrateCache, no Cargo.toml, no registry crate or git dependency in the lock,
// or a project whose own cargo config already replaces its registries (or a
// git source) with a directory.
func (r *Runner) fetch(ctx context.Context, dir string) (*vendorSet, []Dependency, error) {
	if r.CrateCache == "" {
		return nil, nil, nil
	}
	if _, err := os.Lstat(filepath.Join(dir, "Cargo.toml")); err != nil {
		return nil, nil, nil
	}
	lockPath := filepath.Join(dir, "Cargo.lock")
	f, _, err := safefs.OpenFile(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, needsLock(ctx, dir)
	} else if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrConfig, lockPath, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("runner: %s: %w", lockPath, err)
	}
	lock, err := cargolock.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrConfig, lockPath, err)
	}
	var pkgs, gitPkgs []cargolock.Package
	gitSrcs := map[string]cargolock.GitSource{}
	for _, p := range lock.Packages {
		switch p.Kind() {
		case cargolock.KindPath:
		case cargolock.KindGit:
			g, err := cargolock.ParseGitSource(p.Source)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: crate %s %s: %w", ErrConfig, lockPath, p.Name, p.Version, err)
			}
			gitSrcs[p.Source] = g
			gitPkgs = append(gitPkgs, p)
		default:
			if p.Checksum == "" {
				return nil, nil, fmt.Errorf("%w: crate %s %s from %s has no checksum in %s, so its download cannot be verified: regenerate the lock with cargo",
					ErrConfig, p.Name, p.Version, p.Source, lockPath)
			}
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) == 0 && len(gitPkgs) == 0 {
		return nil, nil, nil
	}
	cfg, err := loadCargoConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range gitSrcs {
		for _, s := range cfg.Source {
			if s.Git != "" && s.ReplaceWith != "" && strings.TrimSuffix(s.Git, "/") == strings.TrimSuffix(g.URL, "/") {
				r.progressf("reprobox: the cargo config replaces the git source %s: the project is taken as vendored, nothing fetched\n", g.URL)
				return nil, nil, nil
			}
		}
	}
	resolved := map[string]resolvedSource{}
	for _, p := range pkgs {
		if _, ok := resolved[p.Source]; ok {
			continue
		}
		rs, err := cfg.resolve(p.Source)
		if err != nil {
			return nil, nil, fmt.Errorf("crate %s %s: %w", p.Name, p.Version, err)
		}
		if rs.vendored != "" {
			r.progressf("reprobox: the cargo config replaces %s with the directory %s: the project is taken as vendored, nothing fetched\n", p.Source, rs.vendored)
			return nil, nil, nil
		}
		resolved[p.Source] = rs
	}
	sum := sha256.Sum256(data)
	vs := &vendorSet{lockSum: hex.EncodeToString(sum[:]), sources: map[string]string{}}
	for src := range resolved {
		d := "crates-io"
		if !cargolock.IsCratesIO(src) {
			h := sha256.Sum256([]byte(src))
			d = "registry-" + hex.EncodeToString(h[:6])
		}
		vs.sources[src] = d
	}
	offline := cfg.Net.Offline != nil && *cfg.Net.Offline
	f2 := &fetcher{r: r, cfg: cfg, offline: offline, client: httpClient(cfg), indexes: map[string]*indexConfig{}}
	if err := os.MkdirAll(filepath.Join(r.CrateCache, "sha256"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("runner: crate cache: %w", err)
	}
	start := time.Now()
	errs := make([]error, len(pkgs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, p := range pkgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f2.ensure(ctx, p, resolved[p.Source])
		}()
	}
	wg.Wait()
	for _, err := range errs { // the first in the lock's order
		if err != nil {
			return nil, nil, err
		}
	}
	var deps []Dependency
	for _, p := range pkgs {
		d := Dependency{Name: p.Name, Version: p.Version, Checksum: p.Checksum, Source: p.Source}
		deps = append(deps, d)
		vs.crates = append(vs.crates, vendoredCrate{Dependency: d, file: f2.cached(p.Checksum),
			dir: path.Join(VendorDir, vs.sources[p.Source], p.Name+"-"+p.Version)})
	}
	if len(pkgs) > 0 {
		r.progressf("reprobox: fetch: %d crates pinned by Cargo.lock: %d downloaded, %d from the cache (%s), in %s\n",
			len(pkgs), f2.downloaded, len(pkgs)-f2.downloaded, r.CrateCache, time.Since(start).Round(100*time.Millisecond))
	}
	if len(gitPkgs) > 0 {
		// Git repositories one after the other: one entry per URL and
		// commit, shared by the packages they hold.
		start := time.Now()
		f2.downloaded = 0
		entries := map[string]*gitEntry{}
		var sources []string
		for _, p := range gitPkgs {
			if _, ok := entries[p.Source]; !ok {
				sources = append(sources, p.Source)
				e, err := f2.ensureGit(ctx, p, gitSrcs[p.Source])
				if err != nil {
					return nil, nil, err
				}
				entries[p.Source] = &e
			}
		}
		vs.gitSources = map[string]cargolock.GitSource{}
		for _, src := range sources {
			g := gitSrcs[src]
			h := sha256.Sum256([]byte(g.SourceID()))
			vs.sources[src] = "git-" + hex.EncodeToString(h[:6])
			vs.gitSources[src] = g
		}
		for _, p := range gitPkgs {
			e := entries[p.Source]
			rel, err := gitPackage(*e, p.Name, p.Version)
			if err != nil {
				return nil, nil, err
			}
			d := Dependency{Name: p.Name, Version: p.Version, Source: p.Source, Commit: gitSrcs[p.Source].Commit}
			deps = append(deps, d)
			vs.crates = append(vs.crates, vendoredCrate{Dependency: d, git: e, gitPath: rel,
				dir: path.Join(VendorDir, vs.sources[p.Source], p.Name+"-"+p.Version)})
		}
		r.progressf("reprobox: fetch: %d git dependencies pinned by Cargo.lock, from %d repositories: %d fetched, %d from the cache (%s), in %s\n",
			len(gitPkgs), len(sources), f2.downloaded, len(sources)-f2.downloaded, r.gitCache(), time.Since(start).Round(100*time.Millisecond))
	}
	sortDeps(deps)
	return vs, deps, nil
}

func sortDeps(deps []Dependency) {
	slices.SortFunc(deps, func(a, b Dependency) int {
		return cmpJoin(a.Name, b.Name, a.Version, b.Version, a.Source, b.Source)
	})
}

func cmpJoin(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

func (r *Runner) progressf(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format, args...)
	}
}

// needsLock refuses a project without Cargo.lock whose manifests name
// dependencies outside the workspace (read with the host's cargo metadata
// --no-deps, offline): without a lock nothing pins what would be fetched. A
// project without such dependencies (as after cargo new) needs no fetch.
func needsLock(ctx context.Context, dir string) error {
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		return nil // the build says what it cannot resolve offline
	}
	cmd := exec.CommandContext(ctx, cargo, "metadata", "--offline", "--no-deps", "--format-version", "1",
		"--manifest-path", filepath.Join(dir, "Cargo.toml"))
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		return nil // DetectCargo or the build reports a broken manifest
	}
	var md struct {
		Packages []struct {
			Dependencies []struct {
				Name   string  `json:"name"`
				Source *string `json:"source"`
			} `json:"dependencies"`
		} `json:"packages"`
	}
	if json.Unmarshal(out, &md) != nil {
		return nil
	}
	var names []string
	for _, p := range md.Packages {
		for _, d := range p.Dependencies {
			if d.Source != nil && *d.Source != "" {
				names = append(names, d.Name)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return fmt.Errorf("%w: %s has no Cargo.lock, and its dependencies (%s) would be resolved to whatever versions a registry has today: a lock is what makes the fetch and the build reproducible: run `cargo generate-lockfile` (or `reprobox fetch --generate-lock`) and keep Cargo.lock with the project",
		ErrConfig, dir, strings.Join(names, ", "))
}

// GenerateLock writes Cargo.lock for the project in dir with the host's cargo
// (cargo generate-lockfile, with the user's registry configuration and
// network), for a project that has none.
func GenerateLock(ctx context.Context, dir string, stderr io.Writer) error {
	if _, err := os.Lstat(filepath.Join(dir, "Cargo.lock")); err == nil {
		return fmt.Errorf("%w: %s already has a Cargo.lock: --generate-lock writes one only where there is none", ErrConfig, dir)
	}
	cargo, err := exec.LookPath("cargo")
	if err != nil {
		return fmt.Errorf("%w: --generate-lock runs cargo generate-lockfile, and cargo is not on PATH", ErrConfig)
	}
	cmd := exec.CommandContext(ctx, cargo, "generate-lockfile", "--manifest-path", filepath.Join(dir, "Cargo.toml"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%w: cargo generate-lockfile in %s: %w", ErrFetch, dir, err)
	}
	return nil
}

// Fetch runs the fetch phase alone for the project in dir and returns the
// crates it made available (sorted).
func (r *Runner) Fetch(ctx context.Context, dir string) ([]Dependency, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	_, deps, err := r.fetch(ctx, abs)
	return deps, err
}

// indexConfig is a sparse index's config.json.
type indexConfig struct {
	DL           string `json:"dl"`
	AuthRequired bool   `json:"auth-required"`
}

type fetcher struct {
	r       *Runner
	cfg     *cargoConfig
	offline bool
	client  *http.Client

	mu         sync.Mutex
	indexes    map[string]*indexConfig
	downloaded int
}

func httpClient(cfg *cargoConfig) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if cfg.HTTP.Proxy != "" {
		p := cfg.HTTP.Proxy
		if !strings.Contains(p, "://") {
			p = "http://" + p
		}
		if u, err := url.Parse(p); err == nil {
			tr.Proxy = http.ProxyURL(u)
		}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}
}

func (f *fetcher) cached(sum string) string {
	return filepath.Join(f.r.CrateCache, "sha256", sum+".crate")
}

// ensure makes the crate's verified .crate file present in the cache: a
// cached file is hashed again, and one that no longer matches (changed,
// truncated) is removed and fetched again.
func (f *fetcher) ensure(ctx context.Context, p cargolock.Package, rs resolvedSource) error {
	file := f.cached(p.Checksum)
	got, err := fileSHA256(file)
	switch {
	case err == nil && got == p.Checksum:
		return nil
	case err == nil:
		f.r.progressf("reprobox: the cached crate %s %s (%s) was changed: sha256 %s, want %s: fetching it again\n", p.Name, p.Version, file, got, p.Checksum)
		if err := os.Remove(file); err != nil {
			return fmt.Errorf("runner: crate cache: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("runner: crate cache: %w", err)
	}
	if f.offline {
		return fmt.Errorf("%w: crate %s %s is not in the crate cache %s, and the cargo config sets net.offline (or CARGO_NET_OFFLINE): fetch it once with the network allowed",
			ErrConfig, p.Name, p.Version, f.r.CrateCache)
	}
	ic, err := f.index(ctx, p, rs)
	if err != nil {
		return err
	}
	u := crateURL(ic.DL, p.Name, p.Version, p.Checksum)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: crate %s %s: download URL %q: %w", ErrConfig, p.Name, p.Version, u, err)
	}
	f.auth(req, ic, rs)
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%w: crate %s %s: download %s: %w", ErrFetch, p.Name, p.Version, u, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: crate %s %s: download %s: HTTP status %s", ErrFetch, p.Name, p.Version, u, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".download-*")
	if err != nil {
		return fmt.Errorf("runner: crate cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	const maxCrate = 1 << 30
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxCrate+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%w: crate %s %s: download %s: %w", ErrFetch, p.Name, p.Version, u, err)
	}
	if n > maxCrate {
		return fmt.Errorf("%w: crate %s %s: %s is larger than 1 GiB", ErrFetch, p.Name, p.Version, u)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.Checksum {
		return fmt.Errorf("%w: crate %s %s downloaded from %s has sha256 %s, but Cargo.lock pins %s: the registry serves another crate than the lock names (a changed or tampered crate, or an edited lock); nothing was built: check the registry, or the lock",
			ErrChecksum, p.Name, p.Version, u, got, p.Checksum)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return fmt.Errorf("runner: crate cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("runner: crate cache: %w", err)
	}
	f.mu.Lock()
	f.downloaded++
	f.mu.Unlock()
	return nil
}

// unwrapURL drops url.Error's repetition of the method and URL, which the
// message gives already.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (f *fetcher) auth(req *http.Request, ic *indexConfig, rs resolvedSource) {
	if ic.AuthRequired {
		if t := f.cfg.token(rs.name, rs.index); t != "" {
			req.Header.Set("Authorization", t)
		}
	}
}

// index reads (once) the config.json of a sparse index.
func (f *fetcher) index(ctx context.Context, p cargolock.Package, rs resolvedSource) (*indexConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ic, ok := f.indexes[rs.index]; ok {
		return ic, nil
	}
	base := strings.TrimPrefix(rs.index, "sparse+")
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u := base + "config.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: registry index %s: %w", ErrConfig, u, err)
	}
	resp, err := f.client.Do(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		// A registry asks for the token by refusing config.json (HTTP
		// 401), as cargo expects; only then is it sent.
		if t := f.cfg.token(rs.name, rs.index); t != "" {
			resp.Body.Close()
			req.Header.Set("Authorization", t)
			resp, err = f.client.Do(req)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%w: crate %s %s: registry %s unreachable: %w", ErrFetch, p.Name, p.Version, u, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: crate %s %s: registry index %s: HTTP status %s", ErrFetch, p.Name, p.Version, u, resp.Status)
	}
	var ic indexConfig
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(data, &ic)
	}
	if err != nil || ic.DL == "" {
		return nil, fmt.Errorf("%w: crate %s %s: registry index %s: no download URL (dl) in its config.json: %v", ErrFetch, p.Name, p.Version, u, err)
	}
	f.indexes[rs.index] = &ic
	return &ic, nil
}

// crateURL is a crate's download URL from an index's dl template, as cargo
// makes it: the markers {crate}, {version}, {prefix}, {lowerprefix} and
// {sha256-checksum} replaced, or /NAME/VERSION/download appended when dl has
// none.
func crateURL(dl, name, version, sum string) string {
	markers := []string{"{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"}
	if !slices.ContainsFunc(markers, func(m string) bool { return strings.Contains(dl, m) }) {
		return strings.TrimSuffix(dl, "/") + "/" + name + "/" + version + "/download"
	}
	prefix := indexPrefix(name)
	return strings.NewReplacer("{crate}", name, "{version}", version, "{prefix}", prefix,
		"{lowerprefix}", strings.ToLower(prefix), "{sha256-checksum}", sum).Replace(dl)
}

// indexPrefix is the directory of a crate's file in an index: 1, 2, 3/a, ab/cd.
func indexPrefix(name string) string {
	switch len(name) {
	case 0:
		return ""
	case 1:
		return "1"
	case 2:
		return "2"
	case 3:
		return "3/" + name[:1]
	}
	return name[:2] + "/" + name[2:4]
}

// install unpacks the fetched crates into the snapshot at dir (VendorDir, owned
// by root, files read-only for the build user) and writes the cargo config
// that makes the build use them, offline, into the snapshot's
// .cargo/config.toml (the project's own config merged in, its [source] tables
// replaced). Every .crate is hashed again as it is unpacked.
func (vs *vendorSet) install(ctx context.Context, dir string, sde int64, uid, gid int) error {
	root, err := safefs.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("runner: vendor the crates: %w", err)
	}
	defer root.Close()
	lock, _, err := root.Open("Cargo.lock")
	if err != nil {
		return fmt.Errorf("runner: vendor the crates: Cargo.lock: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, lock)
	lock.Close()
	if err != nil {
		return fmt.Errorf("runner: vendor the crates: Cargo.lock: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != vs.lockSum {
		return fmt.Errorf("%w: Cargo.lock changed after the crates were fetched: run again", ErrConfig)
	}
	if _, err := root.Lstat(VendorDir); err == nil {
		return fmt.Errorf("%w: the project has its own %s, where reprobox puts the fetched crates: rename it", ErrConfig, VendorDir)
	}
	clamp := time.Unix(sde, 0)
	if err := root.Mkdir(VendorDir, 0o755); err != nil {
		return fmt.Errorf("runner: vendor the crates: %w", err)
	}
	dirs := []string{VendorDir}
	for _, d := range vs.sources {
		if err := root.Mkdir(path.Join(VendorDir, d), 0o755); err != nil {
			return fmt.Errorf("runner: vendor the crates: %w", err)
		}
		dirs = append(dirs, path.Join(VendorDir, d))
	}
	verified := map[*gitEntry]bool{}
	for _, c := range vs.crates {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var d []string
		var err error
		if c.git != nil {
			// The cached tree is checked against the commit again, as it
			// is used.
			if !verified[c.git] {
				if err := verifyGitEntry(*c.git); err != nil {
					return fmt.Errorf("%w: crate %s %s: the cached checkout %s of git %s at %s changed while in use: %w: run again to fetch it anew",
						ErrChecksum, c.Name, c.Version, c.git.dir, c.git.src.URL, c.git.src.Commit, err)
				}
				verified[c.git] = true
			}
			d, err = copyGitPackage(root, c, clamp)
		} else {
			d, err = unpackCrate(root, c, clamp)
		}
		if err != nil {
			return err
		}
		dirs = append(dirs, d...)
	}
	// Directory times last, deepest first.
	slices.Sort(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Lchtimes(dirs[i], clamp, clamp); err != nil {
			return fmt.Errorf("runner: vendor the crates: %w", err)
		}
	}
	return vs.writeConfig(root, dir, clamp, uid, gid)
}

// unpackCrate unpacks the .crate of c into root at c.dir, hashing it on the
// way: a crate whose file no longer matches its checksum is an error. Only
// files and directories under NAME-VERSION/ are allowed. It returns the
// directories it made.
// Bounds of what one crate unpacks to.
const (
	maxCrateUnpacked = 512 << 20
	maxCrateEntries  = 100_000
)

func unpackCrate(root *safefs.Root, c vendoredCrate, clamp time.Time) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("runner: crate %s %s (%s): %w", c.Name, c.Version, c.file, err)
	}
	f, _, err := safefs.OpenFile(c.file)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	h := sha256.New()
	gz, err := gzip.NewReader(io.TeeReader(f, h))
	if err != nil {
		return fail(err)
	}
	if err := root.Mkdir(c.dir, 0o755); err != nil {
		return fail(err)
	}
	dirs := []string{c.dir}
	prefix := c.Name + "-" + c.Version + "/"
	tr := tar.NewReader(gz)
	var unpacked, entries int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		name := hdr.Name
		rel, ok := strings.CutPrefix(name, prefix)
		rel = strings.TrimSuffix(rel, "/")
		if ok && rel == "" {
			continue
		}
		if !ok || !fs.ValidPath(rel) {
			return fail(fmt.Errorf("entry %q is not a plain path under %s", name, prefix))
		}
		if rel == ".cargo-checksum.json" {
			continue // reprobox writes its own
		}
		// A crate whose checksum the lock pins may still be a bomb: bound
		// what it unpacks to, as cargo does (512 MiB).
		if entries++; entries > maxCrateEntries {
			return fail(fmt.Errorf("more than %d entries", maxCrateEntries))
		}
		if unpacked += max(hdr.Size, 0); unpacked > maxCrateUnpacked {
			return fail(fmt.Errorf("unpacks to more than %s", human.Bytes(maxCrateUnpacked)))
		}
		target := path.Join(c.dir, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(target, 0o755); err != nil {
				return fail(err)
			}
			dirs = append(dirs, target)
		case tar.TypeReg:
			if err := root.MkdirAll(path.Dir(target), 0o755); err != nil {
				return fail(err)
			}
			perm := fs.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				perm = 0o755
			}
			out, err := root.Create(target, perm)
			if err != nil {
				return fail(fmt.Errorf("entry %q: %w", name, err))
			}
			_, err = io.Copy(out, io.LimitReader(tr, hdr.Size))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fail(err)
			}
			mt := hdr.ModTime
			if mt.After(clamp) || mt.Before(time.Unix(0, 0)) {
				mt = clamp
			}
			if err := root.Lchtimes(target, mt, mt); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("entry %q is a %s, which reprobox does not unpack from a crate", name, tarType(hdr.Typeflag)))
		}
	}
	if _, err := io.Copy(io.Discard, f); err != nil { // the rest of the file, for the hash
		return fail(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != c.Checksum {
		return fail(fmt.Errorf("%w: the cached file changed while in use: sha256 %s, want %s: run again to fetch it anew", ErrChecksum, got, c.Checksum))
	}
	if err := writeCargoChecksum(root, c.dir, c.Checksum, clamp); err != nil {
		return fail(err)
	}
	return dirs, nil
}

// writeCargoChecksum writes the .cargo-checksum.json of a vendored package
// in dir, as cargo vendor does: no file sums, and the package's checksum
// (null for a git package, "" here).
func writeCargoChecksum(root *safefs.Root, dir, checksum string, clamp time.Time) error {
	var pkg any
	if checksum != "" {
		pkg = checksum
	}
	sum, _ := json.Marshal(map[string]any{"files": map[string]string{}, "package": pkg})
	name := path.Join(dir, ".cargo-checksum.json")
	out, err := root.Create(name, 0o644)
	if err != nil {
		return err
	}
	_, err = out.Write(sum)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return root.Lchtimes(name, clamp, clamp)
}

func tarType(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// writeConfig writes the snapshot's .cargo/config.toml: the project's own
// (config, which cargo prefers, else config.toml) with [source] replaced by
// the vendored directories and net.offline set; the older .cargo/config is
// removed so cargo reads only this file.
func (vs *vendorSet) writeConfig(root *safefs.Root, dir string, clamp time.Time, uid, gid int) error {
	fail := func(err error) error { return fmt.Errorf("runner: vendor the crates: .cargo/config.toml: %w", err) }
	mode, err := root.Lstat(".cargo")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := root.Mkdir(".cargo", 0o755); err != nil {
			return fail(err)
		}
		if err := root.Lchown(".cargo", uid, gid); err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(err)
	case !mode.IsDir():
		return fmt.Errorf("%w: the project's .cargo is a %s, not a directory: reprobox writes the vendored sources' config there", ErrConfig, safefs.TypeName(mode))
	}
	m := map[string]any{}
	for _, name := range []string{"config", "config.toml"} {
		f, _, err := root.Open(".cargo/" + name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("%w: the project's .cargo/%s: %w", ErrConfig, name, err)
		}
		data, err := io.ReadAll(io.LimitReader(f, 16<<20))
		f.Close()
		if err != nil {
			return fail(err)
		}
		if _, err := toml.Decode(string(data), &m); err != nil {
			return fmt.Errorf("%w: the project's .cargo/%s: %w", ErrConfig, name, err)
		}
		break
	}
	vs.configure(m)
	var buf bytes.Buffer
	buf.WriteString("# Written by reprobox for this build: the crates Cargo.lock pins, fetched and\n# verified before the build, from the directory " + VendorDir + "; no network.\n")
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return fail(err)
	}
	for _, name := range []string{"config", "config.toml"} {
		if err := os.Remove(filepath.Join(dir, ".cargo", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
	}
	out, err := root.Create(".cargo/config.toml", 0o644)
	if err != nil {
		return fail(err)
	}
	_, err = out.Write(buf.Bytes())
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := root.Lchown(".cargo/config.toml", uid, gid); err != nil {
		return fail(err)
	}
	for _, p := range []string{".cargo/config.toml", ".cargo"} {
		if err := root.Lchtimes(p, clamp, clamp); err != nil {
			return fail(err)
		}
	}
	return nil
}

// configure edits a decoded cargo config: every registry source of the lock
// replaced by its vendored directory, the project's own [source] tables
// dropped (they said where to download from, which the fetch did), and
// net.offline set.
func (vs *vendorSet) configure(m map[string]any) {
	src := map[string]any{}
	for lockSource, d := range vs.sources {
		vendored := "reprobox-vendored-" + d
		src[vendored] = map[string]any{"directory": path.Join(VendorDir, d)}
		if g, ok := vs.gitSources[lockSource]; ok {
			// As cargo vendor writes it: the source ID without the
			// commit, its URL and reference.
			t := map[string]any{"git": g.URL, "replace-with": vendored}
			if g.RefKind != "" {
				t[g.RefKind] = g.Ref
			}
			src[g.SourceID()] = t
			continue
		}
		if cargolock.IsCratesIO(lockSource) {
			src["crates-io"] = map[string]any{"replace-with": vendored}
			continue
		}
		reg := strings.TrimPrefix(lockSource, "registry+")
		src["reprobox-"+d] = map[string]any{"registry": reg, "replace-with": vendored}
	}
	m["source"] = src
	net, _ := m["net"].(map[string]any)
	if net == nil {
		net = map[string]any{}
	}
	net["offline"] = true
	m["net"] = net
}
