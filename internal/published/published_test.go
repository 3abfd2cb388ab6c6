package published

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	h1 = "96b880aaaf718ca4bff5cee75a22b18fcb9d65a0400704c61acaddd9fca04fac"
	h2 = "0a144e707022d8ec97c91911a2e8a35cf42467fdab124cb51249bb1896339789"
	h3 = "13dd524055e6ebff2e68a12df378127aaf17d08ab2fb2fe89dbff23f897e9501"
)

func TestParseSHA256SUMS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Entry // Name, SHA256, Origin
		wantErr string
	}{
		{"text mode", h1 + "  a.tar.gz\n", []Entry{{Name: "a.tar.gz", SHA256: h1, Origin: "a.tar.gz"}}, ""},
		{"binary mode", h1 + " *dist/a.tar.xz\n", []Entry{{Name: "a.tar.xz", SHA256: h1, Origin: "dist/a.tar.xz"}}, ""},
		{"upper-case hex", strings.ToUpper(h1) + "  a\n", []Entry{{Name: "a", SHA256: h1, Origin: "a"}}, ""},
		{"escaped backslash", `\` + h1 + `  we\\ird` + "\n", []Entry{{Name: `we\ird`, SHA256: h1, Origin: `we\ird`}}, ""},
		{"escaped newline", `\` + h1 + `  two\nlines` + "\n", []Entry{{Name: "two\nlines", SHA256: h1, Origin: "two\nlines"}}, ""},
		{"BSD tag", "SHA256 (a b.tar) = " + h2 + "\n", []Entry{{Name: "a b.tar", SHA256: h2, Origin: "a b.tar"}}, ""},
		{"CRLF and blank lines", h1 + "  a\r\n\r\n" + h2 + "  b\r\n", []Entry{{Name: "a", SHA256: h1, Origin: "a"}, {Name: "b", SHA256: h2, Origin: "b"}}, ""},
		{"space in name", h1 + "  a b\n", []Entry{{Name: "a b", SHA256: h1, Origin: "a b"}}, ""},
		{"short digest", "abcd  a\n", nil, "line 1"},
		{"not hex", strings.Repeat("z", 64) + "  a\n", nil, "not a SHA-256"},
		{"one space", h1 + " a\n", nil, "line 1"},
		{"bad escape", `\` + h1 + `  a\x` + "\n", nil, "unknown escape"},
		{"empty", "\n\n", nil, "no checksum lines"},
		{"directory name", h1 + "  dist/\n", nil, "not a file name"},
		{"second line bad", h1 + "  a\nnonsense\n", nil, "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSHA256SUMS([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseChannelManifest(t *testing.T) {
	data, err := os.ReadFile("testdata/release/channel-rust-1.85.0.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseChannelManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "rust-src-1.85.0.tar.gz", SHA256: h1, Origin: "pkg.rust-src.target.*.url"},
		{Name: "rust-src-1.85.0.tar.xz", SHA256: h2, Origin: "pkg.rust-src.target.*.xz_url"},
		{Name: "rust-std-1.85.0-x86_64-unknown-linux-gnu.tar.xz", SHA256: h3, Origin: "pkg.rust-std.target.x86_64-unknown-linux-gnu.xz_url"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	bad := []struct{ name, in, wantErr string }{
		{"not toml", "[pkg", "not a channel manifest"},
		{"version 1", "manifest-version = \"1\"\n", "manifest-version"},
		{"url without hash", "manifest-version = \"2\"\n[pkg.a.target.x]\nxz_url = \"https://h/a.tar.xz\"\n", "without its hash"},
		{"url names no file", "manifest-version = \"2\"\n[pkg.a.target.x]\nxz_url = \"https://h/dist/\"\nxz_hash = \"" + h1 + "\"\n", "names no file"},
		{"bad hash", "manifest-version = \"2\"\n[pkg.a.target.x]\nurl = \"https://h/a.tar.gz\"\nhash = \"xyz\"\n", "not a SHA-256"},
		{"nothing available", "manifest-version = \"2\"\n[pkg.a.target.x]\navailable = false\n", "no available"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseChannelManifest([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// copyRelease copies the fixture release into a temporary directory.
func copyRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("testdata/release")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata/release", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadForms(t *testing.T) {
	dir := copyRelease(t)
	for _, tt := range []struct {
		where, form string
	}{
		{dir, FormDirectory},
		{filepath.Join(dir, "SHA256SUMS"), FormSHA256SUMS},
		{filepath.Join(dir, "channel-rust-1.85.0.toml"), FormChannel},
	} {
		t.Run(tt.form, func(t *testing.T) {
			s, err := Load(tt.where)
			if err != nil {
				t.Fatal(err)
			}
			if s.Form != tt.form || len(s.Entries) != 3 {
				t.Fatalf("form %s, %d entries: %+v", s.Form, len(s.Entries), s.Entries)
			}
			for _, e := range s.Entries {
				if e.File == "" || e.FileSHA256 != e.SHA256 || e.Corrupt() {
					t.Errorf("%s: file %q sha %s, manifest %s", e.Name, e.File, e.FileSHA256, e.SHA256)
				}
			}
			if e, ok := s.Lookup("rust-src-1.85.0.tar.xz"); !ok || e.SHA256 != h2 {
				t.Errorf("Lookup: %+v %v", e, ok)
			}
		})
	}
}

func TestLoadWithoutFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(h1+"  gone.tar.xz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Entries[0]; e.File != "" || e.Corrupt() || e.SHA256 != h1 {
		t.Fatalf("%+v", e)
	}
}

func TestLoadCorruptBeside(t *testing.T) {
	dir := copyRelease(t)
	// One byte of a tarball differs from what both manifests say.
	p := filepath.Join(dir, "rust-src-1.85.0.tar.xz")
	if err := os.WriteFile(p, []byte("rust-src xY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"SHA256SUMS", "channel-rust-1.85.0.toml"} {
		s, err := Load(filepath.Join(dir, m))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := s.Lookup("rust-src-1.85.0.tar.xz")
		if !e.Corrupt() || e.SHA256 != h2 || e.FileSHA256 == h2 {
			t.Errorf("%s: corrupt file not noticed: %+v", m, e)
		}
		if o, _ := s.Lookup("rust-src-1.85.0.tar.gz"); o.Corrupt() {
			t.Errorf("%s: intact file taken for corrupt", m)
		}
	}
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
		os.WriteFile(filepath.Join(dir, sub, "tool"), []byte(sub), 0o644)
	}
	_, err := Load(dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "share the base name tool") {
		t.Fatalf("err = %v", err)
	}
	// The same digest twice is one artifact.
	sums := h1 + "  x/tool\n" + h1 + "  y/tool\n"
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644)
	s, err := Load(filepath.Join(dir, "SHA256SUMS"))
	if err != nil || len(s.Entries) != 1 {
		t.Fatalf("%v %+v", err, s)
	}
}

func TestLoadBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, content string }{
		{"SHA256SUMS", "this is not a checksum file\n"},
		{"channel-rust-stable.toml", "manifest-version = 2\n"},
	} {
		p := filepath.Join(dir, tt.name)
		os.WriteFile(p, []byte(tt.content), 0o644)
		if _, err := Load(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent")); !errors.Is(err, ErrInvalid) {
		t.Errorf("absent: err = %v", err)
	}
}

// TestLoadReadOnly checks that loading never writes a published file: their
// bytes and times are the same afterwards, even when they are read-only.
func TestLoadReadOnly(t *testing.T) {
	dir := copyRelease(t)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	before := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		os.Chtimes(p, old, old)
		os.Chmod(p, 0o444)
		data, _ := os.ReadFile(p)
		sum := sha256.Sum256(data)
		before[p] = hex.EncodeToString(sum[:])
	}
	for _, w := range []string{dir, filepath.Join(dir, "SHA256SUMS"), filepath.Join(dir, "channel-rust-1.85.0.toml")} {
		if _, err := Load(w); err != nil {
			t.Fatal(err)
		}
	}
	for p, sum := range before {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(old) || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: mtime %v mode %v changed", p, st.ModTime(), st.Mode())
		}
		data, _ := os.ReadFile(p)
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: content changed", p)
		}
	}
}

func TestParseStage0(t *testing.T) {
	kv := "dist_server=https://static.rust-lang.org\n# comment\ncompiler_date=2025-01-09\ncompiler_version=1.84.0\n" +
		"dist/2025-01-09/rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz=" + h1 + "\n" +
		"dist/2025-01-09/cargo-1.84.0-x86_64-unknown-linux-gnu.tar.xz=" + h2 + "\n"
	s, err := ParseStage0([]byte(kv))
	if err != nil {
		t.Fatal(err)
	}
	if s.CompilerVersion != "1.84.0" || s.DistServer != "https://static.rust-lang.org" || len(s.Tarballs) != 2 || s.Tarballs[0].SHA256 != h2 {
		t.Fatalf("%+v", s)
	}
	js := `{"config":{"dist_server":"https://static.rust-lang.org"},"compiler":{"date":"2023-08-24","version":"1.72.0"},"checksums_sha256":{"dist/2023-08-24/rustc-1.72.0-x86_64-unknown-linux-gnu.tar.xz":"` + h3 + `"}}`
	s, err = ParseStage0([]byte(js))
	if err != nil || s.CompilerDate != "2023-08-24" || len(s.Tarballs) != 1 {
		t.Fatalf("%v %+v", err, s)
	}
	if _, err := ParseStage0([]byte("nonsense")); err == nil {
		t.Fatal("nonsense parsed")
	}
}
