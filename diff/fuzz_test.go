package diff

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// FuzzReaders runs the whole engine on two inputs. Seeds are fixture pairs, so
// the mutations reach every format's parser and the comparers above them.
func FuzzReaders(f *testing.F) {
	for _, p := range [][2]string{
		{"text/a.txt", "text/b.txt"},
		{"archive/a.tar.gz", "archive/b.tar.gz"},
		{"archive/a.tar.zst", "archive/b.tar.zst"},
		{"archive/a.zip", "archive/b.zip"},
		{"rust/a/libtiny.rlib", "rust/b/libtiny.rlib"},
	} {
		f.Add(readFixture(f, p[0]), readFixture(f, p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		opts := Options{
			Workers: 2, MaxMemory: 1 << 20, MaxExpand: 8 << 20, MaxStructured: 4 << 20,
			MaxMembers: 500, MaxDepth: 6, TempDir: t.TempDir(),
			Labels:   []Label{{Factor: "build_path", Values: []string{"/build/reprobox-variant"}}},
			Matchers: allMatchers,
		}
		rep, err := Readers(context.Background(), "x", bytes.NewReader(a), int64(len(a)), bytes.NewReader(b), int64(len(b)), opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Equal() != bytes.Equal(a, b) {
			t.Fatalf("Equal() = %v for inputs that are equal: %v", rep.Equal(), bytes.Equal(a, b))
		}
		if err := rep.WriteText(io.Discard, 50); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteHTML(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
