package compress

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/archive/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decompress(data []byte, lim Limits) ([]byte, *Info, error) {
	r, info, err := Open(Detect(data), bytes.NewReader(data), int64(len(data)), lim)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	return out, info, err
}

func TestOpen(t *testing.T) {
	want := read(t, "a.tar")
	for _, tt := range []struct{ name, format string }{
		{"a.tar.gz", Gzip}, {"a.tar.xz", XZ}, {"a.tar.zst", Zstd}, {"a.tar.bz2", Bzip2},
	} {
		data := read(t, tt.name)
		if f := Detect(data); f != tt.format {
			t.Errorf("%s: Detect = %q, want %q", tt.name, f, tt.format)
		}
		got, info, err := decompress(data, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs from a.tar", tt.name)
		}
		if tt.format == XZ && info.Size != int64(len(want)) {
			t.Errorf("xz declared size %d, want %d", info.Size, len(want))
		}
	}
	_, info, err := decompress(read(t, "same-b.tar.gz"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !info.ModTime.Equal(time.Unix(1900000000, 0)) || info.Name != "same.tar" {
		t.Errorf("gzip header %+v", info)
	}
}

func TestBombs(t *testing.T) {
	zeros := make([]byte, 8<<20)
	var gz, zs, xzb bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(zeros)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(zeros)
	zw.Close()
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(zeros)
	xw.Close()
	for _, b := range []*bytes.Buffer{&gz, &zs, &xzb} {
		data := b.Bytes()
		_, _, err := decompress(data, Limits{MaxOutput: 1 << 20})
		var fe *FormatError
		if !errors.Is(err, ErrTooLarge) || !errors.As(err, &fe) {
			t.Errorf("%s bomb: err = %v, want ErrTooLarge", Detect(data), err)
		}
		// Within the limit it decompresses.
		if out, _, err := decompress(data, Limits{MaxOutput: 8 << 20}); err != nil || len(out) != len(zeros) {
			t.Errorf("%s: %d bytes, %v", Detect(data), len(out), err)
		}
	}
}

func TestXZHeaders(t *testing.T) {
	data := read(t, "a.tar.xz") // xz -6: an 8 MiB dictionary
	if _, err := CheckXZ(bytes.NewReader(data), int64(len(data)), 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("8 MiB dictionary, 1 MiB limit: %v", err)
	}
	// A header asking for a 4 GiB dictionary is refused before decoding.
	huge := bytes.Clone(data)
	if huge[14] != 0x21 || huge[15] != 1 {
		t.Fatalf("unexpected block header % x", huge[12:20])
	}
	huge[16] = 40
	_, _, err := decompress(huge, Limits{})
	var fe *FormatError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &fe) || fe.Off != 16 {
		t.Errorf("4 GiB dictionary: %v", err)
	}
	// Concatenated streams with padding are summed.
	b := read(t, "b.tar.xz")
	cat := append(append(bytes.Clone(data), 0, 0, 0, 0), b...)
	n, err := CheckXZ(bytes.NewReader(cat), int64(len(cat)), 1<<30)
	if err != nil || n != 2*40960 {
		t.Errorf("two streams: %d, %v", n, err)
	}
	out, _, err := decompress(cat, Limits{})
	if err != nil || len(out) != 2*40960 {
		t.Errorf("two streams decompress to %d bytes: %v", len(out), err)
	}
	for _, cut := range []int{len(data) - 1, len(data) - 13, 20} {
		if _, err := CheckXZ(bytes.NewReader(data[:cut]), int64(cut), 1<<30); !errors.As(err, &fe) {
			t.Errorf("truncated to %d: %v", cut, err)
		}
	}
}

func TestCorrupt(t *testing.T) {
	for _, name := range []string{"a.tar.gz", "a.tar.zst", "a.tar.bz2"} {
		data := read(t, name)
		trunc := data[:len(data)/2]
		_, _, err := decompress(trunc, Limits{})
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Off <= 0 || fe.Off > int64(len(trunc)) {
			t.Errorf("%s truncated: %v", name, err)
		}
		flipped := bytes.Clone(data)
		for i := len(data) / 3; i < len(data)/3+64; i++ {
			flipped[i] ^= 0x55
		}
		if _, _, err := decompress(flipped, Limits{}); !errors.As(err, &fe) {
			t.Errorf("%s corrupted: %v", name, err)
		}
	}
	if _, _, err := Open("lz4", bytes.NewReader(nil), 0, Limits{}); err == nil || !strings.Contains(err.Error(), "unknown format") {
		t.Errorf("unknown format: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	for _, n := range []string{"a.tar.gz", "a.tar.xz", "a.tar.zst", "a.tar.bz2"} {
		data := read(f, n)
		f.Add(data[:min(len(data), 4096)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		format := Detect(data)
		if format == "" {
			return
		}
		r, _, err := Open(format, bytes.NewReader(data), int64(len(data)), Limits{MaxOutput: 4 << 20, MaxWindow: 8 << 20})
		if err != nil {
			return
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		if n > 4<<20 {
			t.Fatalf("read %d bytes past the limit", n)
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("error %v is not a FormatError", err)
		}
	})
}
