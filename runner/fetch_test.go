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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reprobox/reprobox/internal/cargolock"
	"github.com/reprobox/reprobox/internal/crateregistry"
	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/internal/safefs"
	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/sandbox"
)

func TestCrateURL(t *testing.T) {
	const sum = "abc"
	for _, tc := range []struct{ dl, name, want string }{
		{"https://static.crates.io/crates", "serde", "https://static.crates.io/crates/serde/1.0.0/download"},
		{"http://h/dl/", "serde", "http://h/dl/serde/1.0.0/download"},
		{"http://h/{crate}/{version}.crate", "a", "http://h/a/1.0.0.crate"},
		{"http://h/{prefix}/{crate}", "Serde", "http://h/Se/rd/Serde"},
		{"http://h/{lowerprefix}/{crate}-{sha256-checksum}", "Serde", "http://h/se/rd/Serde-abc"},
		{"http://h/{prefix}/{crate}", "abc", "http://h/3/a/abc"},
		{"http://h/{prefix}/{crate}", "ab", "http://h/2/ab"},
	} {
		if got := crateURL(tc.dl, tc.name, "1.0.0", sum); got != tc.want {
			t.Errorf("crateURL(%q, %q) = %q, want %q", tc.dl, tc.name, got, tc.want)
		}
	}
}

func TestResolveSource(t *testing.T) {
	mirror := "sparse+http://127.0.0.1:1/index/"
	cfg := &cargoConfig{Source: map[string]cargoSource{
		"crates-io": {ReplaceWith: "mirror"},
		"mirror":    {Registry: mirror},
		"loop-a":    {ReplaceWith: "loop-b"},
		"loop-b":    {ReplaceWith: "loop-a"},
		"altgit":    {Registry: "https://example.com/git-index"},
	}}
	rs, err := cfg.resolve(cargolock.CratesIOGit)
	if err != nil || rs.index != mirror || rs.name != "mirror" {
		t.Errorf("crates-io via mirror: %+v, %v", rs, err)
	}
	if rs, err := (&cargoConfig{}).resolve(cargolock.CratesIOGit); err != nil || rs.index != cargolock.CratesIOSparse {
		t.Errorf("crates-io unreplaced: %+v, %v", rs, err)
	}
	vend := &cargoConfig{Source: map[string]cargoSource{"crates-io": {ReplaceWith: "v"}, "v": {Directory: "vendor"}}}
	if rs, err := vend.resolve(cargolock.CratesIOSparse); err != nil || rs.vendored != "vendor" {
		t.Errorf("vendored: %+v, %v", rs, err)
	}
	if _, err := (&cargoConfig{Source: map[string]cargoSource{"crates-io": {ReplaceWith: "loop-a"}, "loop-a": {ReplaceWith: "crates-io"}}}).resolve(cargolock.CratesIOGit); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "loops") {
		t.Errorf("loop: %v", err)
	}
	if _, err := (&cargoConfig{Source: map[string]cargoSource{"crates-io": {ReplaceWith: "nowhere"}}}).resolve(cargolock.CratesIOGit); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("undefined: %v", err)
	}
	if _, err := cfg.resolve("registry+https://example.com/git-index"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("git index: %v", err)
	}
	if rs, err := cfg.resolve("sparse+https://reg.example.com/"); err != nil || rs.index != "sparse+https://reg.example.com/" {
		t.Errorf("alternative sparse registry: %+v, %v", rs, err)
	}
}

// testRegistry packages real crates from Debian's sources and serves them.
func testRegistry(t *testing.T, names ...string) *crateregistry.Registry {
	t.Helper()
	var dirs []string
	for _, n := range names {
		d := filepath.Join(crateregistry.DebianRegistry, n)
		if _, err := os.Stat(d); err != nil {
			testenv.Skip(t, "crate source %s is missing: apt-get install the librust-*-dev package of %s (make deps)", d, n)
		}
		dirs = append(dirs, d)
	}
	reg, err := crateregistry.FromDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// mirrorProject is a cargo project depending on deps, whose
// .cargo/config.toml points crates.io at the mirror index, the way a user
// points cargo at a mirror.
func mirrorProject(t *testing.T, index string, deps string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, data string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"+deps)
	write("src/main.rs", "fn main() {}\n")
	setMirror(t, dir, index)
	return dir
}

func setMirror(t *testing.T, dir, index string) {
	t.Helper()
	cfg := "[source.crates-io]\nreplace-with = \"mirror\"\n\n[source.mirror]\nregistry = \"" + index + "\"\n"
	if err := os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".cargo", "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostCargo runs the host's cargo in dir with a private CARGO_HOME.
func hostCargo(t *testing.T, dir string, args ...string) string {
	t.Helper()
	testenv.NeedProgram(t, "cargo")
	cmd := exec.Command("cargo", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), crateregistry.CargoEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cargo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestFetch: the crates of a lock that host cargo resolved against a real
// sparse registry on loopback are fetched once and verified; a second fetch
// with the registry stopped takes them from the cache; a crate changed in the
// cache is detected and fetched again; a registry serving another crate than
// the lock pins is refused naming the crate; the vendored tree is what cargo
// accepts offline and --locked.
func TestFetch(t *testing.T) {
	t.Setenv("CARGO_HOME", t.TempDir())
	reg := testRegistry(t, "memchr-2.5.0", "aho-corasick-0.7.19")
	index := reg.Start()
	defer reg.Close()
	dir := mirrorProject(t, index, "aho-corasick = \"0.7\"\n")
	hostCargo(t, dir, "generate-lockfile")
	cache := t.TempDir()
	var progress bytes.Buffer
	r := &Runner{CrateCache: cache, Progress: &progress}
	ctx := context.Background()
	deps, err := r.Fetch(ctx, dir)
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, progress.String())
	}
	if len(deps) != 2 || deps[0].Name != "aho-corasick" || deps[1].Name != "memchr" {
		t.Fatalf("deps %+v", deps)
	}
	for i, c := range []*crateregistry.Crate{reg.Crates[1], reg.Crates[0]} {
		if deps[i].Checksum != c.Checksum || deps[i].Version != c.Version || !cargolock.IsCratesIO(deps[i].Source) {
			t.Errorf("dep %+v, want %s %s %s from crates.io (replaced)", deps[i], c.Name, c.Version, c.Checksum)
		}
		if got, err := fileSHA256(filepath.Join(cache, "sha256", c.Checksum+".crate")); err != nil || got != c.Checksum {
			t.Errorf("cached %s: %s, %v", c.Name, got, err)
		}
		if n := reg.Downloads(c.Name + "-" + c.Version); n != 1 {
			t.Errorf("%s downloaded %d times", c.Name, n)
		}
	}

	// The registry stopped: the cache serves.
	reg.Close()
	progress.Reset()
	if _, err := r.Fetch(ctx, dir); err != nil {
		t.Fatalf("fetch from the cache with the registry stopped: %v", err)
	}
	if !strings.Contains(progress.String(), "0 downloaded, 2 from the cache") {
		t.Errorf("progress: %s", progress.String())
	}

	// A crate changed in the cache: detected; with the registry down the
	// error names the crate and the URL.
	memchr := filepath.Join(cache, "sha256", reg.Crates[0].Checksum+".crate")
	os.Chmod(memchr, 0o644)
	if err := os.WriteFile(memchr, []byte("not the crate"), 0o644); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	_, err = r.Fetch(ctx, dir)
	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "crate memchr 2.5.0") || !strings.Contains(err.Error(), strings.TrimPrefix(index, "sparse+")) {
		t.Errorf("unreachable registry: %v, want ErrFetch naming memchr and the URL", err)
	}
	if !strings.Contains(progress.String(), "cached crate memchr 2.5.0") || !strings.Contains(progress.String(), "was changed") {
		t.Errorf("the changed crate was not reported: %s", progress.String())
	}
	// The registry back (on another port): the changed crate is fetched again.
	index = reg.Start()
	setMirror(t, dir, index)
	if _, err := r.Fetch(ctx, dir); err != nil {
		t.Fatalf("refetch: %v", err)
	}
	if got, _ := fileSHA256(memchr); got != reg.Crates[0].Checksum {
		t.Errorf("the changed crate was not fetched again: sha256 %s", got)
	}
	if n := reg.Downloads("memchr-2.5.0"); n != 2 {
		t.Errorf("memchr downloaded %d times, want 2", n)
	}

	// The registry serves another crate than the lock pins.
	os.Remove(memchr)
	reg.Serve("memchr-2.5.0", reg.Crates[1].Data)
	_, err = r.Fetch(ctx, dir)
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "crate memchr 2.5.0") || !strings.Contains(err.Error(), reg.Crates[0].Checksum) {
		t.Errorf("checksum mismatch: %v, want ErrChecksum naming memchr and the lock's checksum", err)
	}
	if _, err := os.Stat(memchr); err == nil {
		t.Errorf("a crate with the wrong checksum was kept in the cache")
	}
	reg.Serve("memchr-2.5.0", reg.Crates[0].Data)

	// The vendored tree and config, as every build gets them: cargo accepts
	// them offline and --locked.
	vs, _, err := r.fetch(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap")
	if _, _, _, err := copyTree(ctx, dir, snap, nil, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := vs.install(ctx, snap, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(snap, ".cargo", "config.toml"))
	for _, want := range []string{`replace-with = "reprobox-vendored-crates-io"`, `directory = ".reprobox-vendor/crates-io"`, "offline = true"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config.toml does not say %s:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "127.0.0.1") {
		t.Errorf("config.toml still names the mirror:\n%s", conf)
	}
	reg.Close()
	out := hostCargo(t, snap, "metadata", "--offline", "--locked", "--format-version", "1")
	if !strings.Contains(out, ".reprobox-vendor/crates-io/memchr-2.5.0/Cargo.toml") {
		t.Errorf("cargo metadata does not read memchr from the vendored tree:\n%.2000s", out)
	}
	if _, err := os.Stat(filepath.Join(snap, ".reprobox-vendor/crates-io/aho-corasick-0.7.19/src/lib.rs")); err != nil {
		t.Error(err)
	}

	// A changed Cargo.lock between the fetch and the snapshot is refused.
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	snap2 := filepath.Join(t.TempDir(), "snap")
	if _, _, _, err := copyTree(ctx, dir, snap2, nil, 1700000000, 0, 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(snap2, "Cargo.lock"), append(lock, '\n'), 0o644)
	if err := vs.install(ctx, snap2, 1700000000, 0, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("changed lock: %v", err)
	}
}

// TestFetchLeavesAlone: a vendored project, a project without registry
// crates, and the refusals (no lock with registry dependencies, a git
// dependency with net.offline or a command transport, net.offline with an
// empty cache).
func TestFetchLeavesAlone(t *testing.T) {
	t.Setenv("CARGO_HOME", t.TempDir())
	ctx := context.Background()
	r := &Runner{CrateCache: t.TempDir()}
	const lock = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"memchr\"]\n\n" +
		"[[package]]\nname = \"memchr\"\nversion = \"2.5.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n" +
		"checksum = \"2dffe52ecf27772e601905b7522cb4ef790d2cc203488bbd0e2fe85fcb74566d\"\n"
	project := func(lockData, config string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte("[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nmemchr = \"2\"\n"), 0o644)
		os.MkdirAll(filepath.Join(dir, "src"), 0o755)
		os.WriteFile(filepath.Join(dir, "src", "main.rs"), []byte("fn main() {}\n"), 0o644)
		if lockData != "" {
			os.WriteFile(filepath.Join(dir, "Cargo.lock"), []byte(lockData), 0o644)
		}
		if config != "" {
			os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755)
			os.WriteFile(filepath.Join(dir, ".cargo", "config.toml"), []byte(config), 0o644)
		}
		return dir
	}
	vendored := project(lock, "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"vendor\"\n")
	if deps, err := r.Fetch(ctx, vendored); err != nil || deps != nil {
		t.Errorf("vendored project: %v, %v; want it left alone", deps, err)
	}
	if deps, err := r.Fetch(ctx, project("version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n", "")); err != nil || deps != nil {
		t.Errorf("no registry crate: %v, %v", deps, err)
	}
	const app = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"tool\"]\n"
	git := app + "\n[[package]]\nname = \"tool\"\nversion = \"0.3.0\"\nsource = \"git+https://example.com/tool.git?rev=abc#0123456789abcdef0123456789abcdef01234567\"\n"
	if _, err := r.Fetch(ctx, project(git, "[net]\noffline = true\n")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "net.offline") || !strings.Contains(err.Error(), "crate tool 0.3.0") {
		t.Errorf("git dependency, net.offline: %v", err)
	}
	badGit := app + "\n[[package]]\nname = \"tool\"\nversion = \"0.3.0\"\nsource = \"git+ext::sh%20-c%20touch%20/tmp/pwned%20https://x/#0123456789abcdef0123456789abcdef01234567\"\n"
	if _, err := r.Fetch(ctx, project(badGit, "")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "crate tool 0.3.0") {
		t.Errorf("git dependency with a command transport: %v", err)
	}
	if _, err := r.Fetch(ctx, project(lock, "[net]\noffline = true\n")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "net.offline") || !strings.Contains(err.Error(), "memchr") {
		t.Errorf("net.offline: %v", err)
	}
	if _, err := r.Fetch(ctx, project("version = 3\n[[package]\n", "")); !errors.Is(err, ErrConfig) {
		t.Errorf("broken lock: %v", err)
	}
	testenv.NeedProgram(t, "cargo")
	if _, err := r.Fetch(ctx, project("", "")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "no Cargo.lock") || !strings.Contains(err.Error(), "memchr") {
		t.Errorf("no lock: %v", err)
	}
}

// FuzzCargoConfig: any project cargo config is read and resolved or refused
// with ErrConfig; the snapshot's config written from it always replaces
// crates.io with the vendored directory and sets net.offline.
func FuzzCargoConfig(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/cargo-config/*.toml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Setenv("CARGO_HOME", f.TempDir())
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, ".cargo", "config.toml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadCargoConfig(dir)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		for _, src := range []string{cargolock.CratesIOGit, cargolock.CratesIOSparse, "sparse+https://r.example/"} {
			rs, err := cfg.resolve(src)
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("resolve %s: error %v is not ErrConfig", src, err)
				}
				continue
			}
			if rs.vendored == "" && !strings.HasPrefix(rs.index, "sparse+http") {
				t.Fatalf("resolve %s: %+v is neither vendored nor a sparse http index", src, rs)
			}
		}
		m := map[string]any{}
		if _, err := toml.Decode(string(data), &m); err != nil {
			return
		}
		vs := &vendorSet{sources: map[string]string{cargolock.CratesIOGit: "crates-io"}}
		vs.configure(m)
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(m); err != nil {
			return // a value the encoder cannot write back: writeConfig reports it
		}
		var back struct {
			Source map[string]cargoSource `toml:"source"`
			Net    struct{ Offline bool } `toml:"net"`
		}
		if _, err := toml.Decode(buf.String(), &back); err != nil {
			t.Fatalf("the written config does not read back: %v\n%s", err, buf.String())
		}
		if back.Source["crates-io"].ReplaceWith != "reprobox-vendored-crates-io" || back.Source["reprobox-vendored-crates-io"].Directory != VendorDir+"/crates-io" || !back.Net.Offline {
			t.Fatalf("written config:\n%s", buf.String())
		}
	})
}

// TestRecordDependencies: the record lists the plan's fetched crates, sorted,
// and an empty list (not null) when there are none.
func TestRecordDependencies(t *testing.T) {
	deps := []Dependency{
		{Name: "serde", Version: "1.0.152", Checksum: strings.Repeat("b", 64), Source: cargolock.CratesIOGit},
		{Name: "memchr", Version: "2.5.0", Checksum: strings.Repeat("a", 64), Source: cargolock.CratesIOGit},
		{Name: "memchr", Version: "2.4.0", Checksum: strings.Repeat("c", 64), Source: cargolock.CratesIOGit},
	}
	sortDeps(deps)
	o := &Outcome{Result: &sandbox.Result{}}
	var buf bytes.Buffer
	if err := jsonout.Write(&buf, NewRecord(&Plan{Dependencies: deps}, o)); err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Dependencies []map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rec.Dependencies {
		got = append(got, d["name"]+" "+d["version"]+" "+d["checksum"][:1]+" "+d["source"])
	}
	want := []string{"memchr 2.4.0 c " + cargolock.CratesIOGit, "memchr 2.5.0 a " + cargolock.CratesIOGit, "serde 1.0.152 b " + cargolock.CratesIOGit}
	if !slices.Equal(got, want) {
		t.Errorf("record dependencies %q, want %q", got, want)
	}
	buf.Reset()
	if err := jsonout.Write(&buf, NewRecord(&Plan{}, o)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"dependencies": []`) {
		t.Errorf("a record without dependencies:\n%s", buf.String())
	}
}

// TestUnpackRefusesEscapes: a crate whose checksum the lock pins but whose
// tar tries to write outside its NAME-VERSION directory (a .. path, an
// absolute path, a symbolic link to the host, a link then a file through it)
// is refused, and nothing lands outside the vendored tree.
func TestUnpackRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []tar.Header
	}{
		{"dotdot", []tar.Header{{Name: "evil-1.0.0/../../escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}}},
		{"absolute", []tar.Header{{Name: "/tmp/escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}}},
		{"other crate", []tar.Header{{Name: "other-1.0.0/escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}}},
		{"symlink", []tar.Header{
			{Name: "evil-1.0.0/link", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "evil-1.0.0/link/escaped", Typeflag: tar.TypeReg, Size: 4, Mode: 0o644}}},
		{"hard link", []tar.Header{{Name: "evil-1.0.0/passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}},
		// A bomb: the header claims more than a crate may unpack to (the
		// stream ends early; the header alone must stop it).
		{"bomb", []tar.Header{{Name: "evil-1.0.0/zeros", Typeflag: tar.TypeReg, Size: maxCrateUnpacked + 1, Mode: 0o644}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			gz := gzip.NewWriter(&buf)
			tw := tar.NewWriter(gz)
			for _, h := range tc.entries {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write([]byte("pwnd"))
				}
			}
			tw.Close()
			gz.Close()
			base := t.TempDir()
			file := filepath.Join(base, "evil.crate")
			os.WriteFile(file, buf.Bytes(), 0o444)
			sum := sha256.Sum256(buf.Bytes())
			snap := filepath.Join(base, "a", "b", "snap")
			os.MkdirAll(filepath.Join(snap, VendorDir), 0o755)
			root, err := safefs.OpenRoot(snap)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			c := vendoredCrate{Dependency: Dependency{Name: "evil", Version: "1.0.0", Checksum: hex.EncodeToString(sum[:])},
				file: file, dir: VendorDir + "/evil-1.0.0"}
			_, err = unpackCrate(root, c, time.Unix(1700000000, 0))
			if err == nil || !strings.Contains(err.Error(), "crate evil 1.0.0") {
				t.Errorf("unpack: %v, want an error naming the crate", err)
			} else if tc.name == "bomb" && !strings.Contains(err.Error(), "unpacks to more than") {
				t.Errorf("unpack: %v, want the bound named", err)
			}
			for _, p := range []string{filepath.Join(base, "escaped"), filepath.Join(base, "a", "escaped"), filepath.Join(base, "a", "b", "escaped"), "/tmp/escaped", "/escaped"} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

// TestTokensStayWithTheUser: a project's .cargo/config.toml (a pull request,
// a bisected commit) that points a registry the user has a token for, or
// crates.io, at its own index gets no token, and neither does a token the
// project's config sets itself.
func TestTokensStayWithTheUser(t *testing.T) {
	home, proj := t.TempDir(), t.TempDir()
	t.Setenv("CARGO_HOME", home)
	t.Setenv("CARGO_REGISTRY_TOKEN", "")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(home, "config.toml"), "[registries.corp]\nindex = \"sparse+https://corp.example/index/\"\n")
	write(filepath.Join(home, "credentials.toml"), "[registries.corp]\ntoken = \"CORP-SECRET\"\n[registry]\ntoken = \"CRATES-SECRET\"\n")
	cfg, err := loadCargoConfig(proj)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.token("corp", "sparse+https://corp.example/index/"); got != "CORP-SECRET" {
		t.Errorf("the user's own registry gets token %q, want its token", got)
	}
	if got := cfg.token("crates-io", cargolock.CratesIOSparse); got != "CRATES-SECRET" {
		t.Errorf("crates.io gets token %q, want its token", got)
	}
	write(filepath.Join(proj, ".cargo", "config.toml"), "[registries.corp]\nindex = \"sparse+https://evil.example/\"\ntoken = \"PROJECT\"\n"+
		"[registries.crates-io]\nindex = \"sparse+https://evil.example/\"\n")
	cfg, err = loadCargoConfig(proj)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cfg.resolve("registry+https://github.com/rust-lang/crates.io-index")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, index string }{
		{"corp", cfg.Registries["corp"].Index},
		{"corp", "sparse+https://evil.example/"},
		{rs.name, rs.index},
		{"crates-io", "sparse+https://evil.example/"},
	} {
		if got := cfg.token(c.name, c.index); got != "" {
			t.Errorf("registry %s at the project's index %s gets token %q", c.name, c.index, got)
		}
	}
}
