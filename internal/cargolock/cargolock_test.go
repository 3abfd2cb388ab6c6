package cargolock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	data, err := os.ReadFile("testdata/v3.lock")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 3 || len(l.Packages) != 4 {
		t.Fatalf("version %d, %d packages", l.Version, len(l.Packages))
	}
	want := []struct{ name, kind, url string }{
		{"app", KindPath, ""},
		{"regex", KindRegistry, "https://github.com/rust-lang/crates.io-index"},
		{"serde", KindSparse, "http://127.0.0.1:8080/index/"},
		{"tool", KindGit, "https://example.com/tool.git?rev=abc#0123456789abcdef0123456789abcdef01234567"},
	}
	for i, w := range want {
		p := l.Packages[i]
		if p.Name != w.name || p.Kind() != w.kind || p.URL() != w.url {
			t.Errorf("package %d: %s %s %s, want %v", i, p.Name, p.Kind(), p.URL(), w)
		}
	}
	if !IsCratesIO(l.Packages[1].Source) || IsCratesIO(l.Packages[2].Source) || !IsCratesIO("sparse+https://index.crates.io/") {
		t.Errorf("IsCratesIO")
	}
	if l.Packages[2].Checksum != "bb7d1f0d3021d347a83e556fc4683dea2ea09d87bccdf88ff5c12545d89d5efb" {
		t.Errorf("checksum %q", l.Packages[2].Checksum)
	}
}

func TestParseV1(t *testing.T) {
	data, err := os.ReadFile("testdata/v1.lock")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1 || l.Packages[1].Checksum != "2dffe52ecf27772e601905b7522cb4ef790d2cc203488bbd0e2fe85fcb74566d" {
		t.Errorf("v1: %+v", l)
	}
}

func TestParseInvalid(t *testing.T) {
	pkg := func(name, version, source, sum string) string {
		return "version = 3\n[[package]]\nname = \"" + name + "\"\nversion = \"" + version + "\"\nsource = \"" + source + "\"\nchecksum = \"" + sum + "\"\n"
	}
	const sum = "2dffe52ecf27772e601905b7522cb4ef790d2cc203488bbd0e2fe85fcb74566d"
	const src = "registry+https://github.com/rust-lang/crates.io-index"
	for _, tc := range []struct{ name, data, want string }{
		{"not toml", "[[package]\n", "invalid"},
		{"unknown version", "version = 9\n", "version 9"},
		{"path name", pkg("../x", "1.0.0", src, sum), "name"},
		{"empty name", pkg("", "1.0.0", src, sum), "empty"},
		{"path version", pkg("x", "1.0/../../x", src, sum), "version"},
		{"version letter", pkg("x", "v1", src, sum), "digit"},
		{"unknown kind", pkg("x", "1.0.0", "file+/etc", sum), "no kind"},
		{"no url", pkg("x", "1.0.0", "registry+foo", sum), "no URL"},
		{"short checksum", pkg("x", "1.0.0", src, "abc"), "64"},
		{"upper checksum", pkg("x", "1.0.0", src, strings.ToUpper(sum)), "64"},
		{"twice", pkg("x", "1.0.0", src, sum) + strings.TrimPrefix(pkg("x", "1.0.0", src, sum), "version = 3\n"), "twice"},
		{"metadata for nothing", "[metadata]\n\"checksum x 1.0.0 (" + src + ")\" = \"" + sum + "\"\n", "names no package"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzParse: any input is parsed or refused with ErrInvalid; what is parsed
// has names and versions safe as file names and well-formed checksums.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.lock")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version = 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, p := range l.Packages {
			if checkName(p.Name) != nil || checkVersion(p.Version) != nil {
				t.Fatalf("accepted %q %q", p.Name, p.Version)
			}
			if strings.ContainsAny(p.Name+p.Version, "/\\\x00") || p.Version == ".." {
				t.Fatalf("unsafe file name %q %q", p.Name, p.Version)
			}
			if p.Checksum != "" && !isHex64(p.Checksum) {
				t.Fatalf("checksum %q", p.Checksum)
			}
			switch p.Kind() {
			case KindPath, KindRegistry, KindSparse, KindGit:
			default:
				t.Fatalf("kind %q", p.Kind())
			}
		}
	})
}
