package rmeta

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/diff/ar"
	"github.com/reprobox/reprobox/diff/elf"
)

// metadata returns the .rmeta section of the fixture rlib's lib.rmeta.
func metadata(t testing.TB, side string) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/rust/" + side + "/libtiny.rlib")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ar.Read(bytes.NewReader(data), int64(len(data)), ar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name != "lib.rmeta" {
			continue
		}
		obj := data[m.Offset : m.Offset+m.Size]
		f, err := elf.Open(bytes.NewReader(obj), int64(len(obj)), elf.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Sections {
			if f.Sections[i].Name == ".rmeta" {
				b, err := f.Data(&f.Sections[i])
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
	}
	t.Fatal("no .rmeta section")
	return nil
}

func TestParse(t *testing.T) {
	for _, tt := range []struct{ side, path string }{
		{"a", "/build/reprobox/src/src/lib.rs"},
		{"b", "/build/reprobox-variant/a/b/src/src/lib.rs"},
	} {
		data := metadata(t, tt.side)
		m, err := Parse(bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != 10 || !strings.HasPrefix(m.Rustc, "rustc 1.") || m.Root == 0 || m.Root >= uint64(len(data)) {
			t.Errorf("%s: header %d %q %d", tt.side, m.Version, m.Rustc, m.Root)
		}
		var strs []string
		for _, s := range m.Strings {
			strs = append(strs, s.S)
			if !strings.HasPrefix(string(data[s.Off+1:]), s.S) {
				t.Errorf("string %q not at offset %d", s.S, s.Off)
			}
		}
		all := strings.Join(strs, "\n")
		for _, want := range []string{tt.path, "tiny", "greet", "x86_64-unknown-linux-gnu"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: no string %q in %q", tt.side, want, strs)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := metadata(t, "a")
	bad := bytes.Clone(good)
	copy(bad[8:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0})
	tests := []struct {
		name string
		data []byte
		lim  Limits
		off  int64
		msg  string
	}{
		{"short", []byte("rust"), Limits{}, 0, "too short"},
		{"magic", []byte("rusty\x00\x00\x0a........"), Limits{}, 0, "bad magic"},
		{"root past the end", bad, Limits{}, 8, "root position"},
		{"too large", good, Limits{MaxSize: 100}, 0, "more than 100"},
	}
	for _, tt := range tests {
		_, err := Parse(bytes.NewReader(tt.data), int64(len(tt.data)), tt.lim)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Off != tt.off || !strings.Contains(fe.Msg, tt.msg) {
			t.Errorf("%s: err = %v, want %q at offset %d", tt.name, err, tt.msg, tt.off)
		}
	}
	m, err := Parse(bytes.NewReader(good), int64(len(good)), Limits{MaxStrings: 3})
	if err != nil || len(m.Strings) != 3 || !m.Truncated {
		t.Errorf("MaxStrings 3: %d strings, truncated %v, %v", len(m.Strings), m.Truncated, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(metadata(f, "a"))
	f.Add([]byte("rust\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x03abc\xc1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
			return
		}
		for _, s := range m.Strings {
			if s.Off < 0 || s.Off+int64(len(s.S)) > int64(len(data)) {
				t.Fatalf("string %q at %d outside the input", s.S, s.Off)
			}
		}
	})
}
