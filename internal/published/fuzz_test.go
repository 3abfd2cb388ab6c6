package published

import (
	"os"
	"path"
	"testing"
)

func seed(f *testing.F, files ...string) {
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzSHA256SUMS: any input parses or fails with an error; every entry has a
// base name and a 64-digit lowercase digest.
func FuzzSHA256SUMS(f *testing.F) {
	seed(f, "testdata/release/SHA256SUMS")
	f.Add([]byte(`\` + h1 + `  a\\b\nc` + "\nSHA256 (x) = " + h2 + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseSHA256SUMS(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Name == "" || len(e.SHA256) != 64 || path.Base(e.Name) != e.Name || e.Name == "." || e.Name == ".." {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

// FuzzChannelManifest: any input parses or fails; every entry is named.
func FuzzChannelManifest(f *testing.F) {
	seed(f, "testdata/release/channel-rust-1.85.0.toml", "testdata/channel-rust-1.85.0.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseChannelManifest(data)
		if err != nil {
			return
		}
		if len(entries) == 0 {
			t.Fatal("no entries and no error")
		}
		for _, e := range entries {
			if e.Name == "" || len(e.SHA256) != 64 || e.Origin == "" {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

// FuzzStage0: any input parses or fails.
func FuzzStage0(f *testing.F) {
	f.Add([]byte("compiler_version=1.84.0\ndist/a.tar.xz=" + h1 + "\n"))
	f.Add([]byte(`{"compiler":{"version":"1.72.0"},"checksums_sha256":{"dist/a":"` + h2 + `"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStage0(data)
		if err != nil {
			return
		}
		for _, tb := range s.Tarballs {
			if len(tb.SHA256) != 64 {
				t.Fatalf("bad tarball %+v", tb)
			}
		}
	})
}
