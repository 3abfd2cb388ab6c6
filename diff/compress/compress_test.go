package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
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

// gzMember returns one gzip member: the header fields after the magic bytes
// (flags, mtime, XFL, OS and optional fields), the deflated data and a trailer
// with the data's CRC-32 and size.
func gzMember(t testing.TB, hdr, data []byte) []byte {
	t.Helper()
	b := bytes.NewBuffer([]byte{0x1f, 0x8b, 8})
	b.Write(hdr)
	w, err := flate.NewWriter(b, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(b.Bytes(), crc32.ChecksumIEEE(data)), uint32(len(data)))
}

// errClass names the kind of a gzip error.
func errClass(err error) string {
	var ce flate.CorruptInputError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, gzip.ErrHeader):
		return "bad header"
	case errors.Is(err, gzip.ErrChecksum):
		return "bad checksum"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.As(err, &ce):
		return "corrupt"
	}
	return err.Error()
}

// gunzip reads data with Open, in reads of chunk bytes.
func gunzip(data []byte, chunk int) ([]byte, *Info, error) {
	r, info, err := Open(Gzip, bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, info, nil
		}
		if err != nil {
			return out, info, err
		}
	}
}

// gunzipRef reads data with klauspost/compress's gzip reader, the reference
// for what Open must do.
func gunzipRef(data []byte) ([]byte, error) {
	z, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

// TestGzip checks the gzip reader on multi-member, truncated and corrupt
// streams against the expected results and against klauspost/compress's
// reader, reading in chunks of several sizes.
func TestGzip(t *testing.T) {
	text := bytes.Repeat([]byte("all work and no play makes jack a dull boy\n"), 5000)
	noise := make([]byte, 100<<10)
	for i := range noise {
		noise[i] = byte(i * i >> 3)
	}
	plain := []byte{0, 0, 0, 0, 0, 0, 3} // no flags, mtime 0, XFL 0, OS 3
	one := gzMember(t, plain, text)
	two := gzMember(t, plain, noise)
	empty := gzMember(t, plain, nil)
	// FEXTRA, FNAME (ISO 8859-1), FCOMMENT and FHCRC.
	fields := []byte{0x1e, 0x80, 0xa8, 0x40, 0x71, 0, 3, 2, 0, 'x', 'y', 'c', 'a', 'f', 0xe9, '.', 't', 'a', 'r', 0, 'h', 'i', 0}
	hcrc := crc32.ChecksumIEEE(append([]byte{0x1f, 0x8b, 8}, fields...))
	named := gzMember(t, binary.LittleEndian.AppendUint16(bytes.Clone(fields), uint16(hcrc)), text)
	badHcrc := gzMember(t, binary.LittleEndian.AppendUint16(bytes.Clone(fields), uint16(hcrc)+1), text)
	reserved := gzMember(t, []byte{0x20, 0, 0, 0, 0, 0, 3}, text)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x10; return b }
	hdrLen := 10

	tests := []struct {
		name string
		in   []byte
		want []byte // the content, or what must be read before the error
		err  string // errClass of the error
		open bool   // the error comes from Open
	}{
		{"one member", one, text, "ok", false},
		{"multi-member", cat(one, empty, two, one), cat(text, noise, text), "ok", false},
		{"empty member only", empty, nil, "ok", false},
		{"header fields", named, text, "ok", false},
		{"bad header CRC", badHcrc, nil, "bad header", true},
		{"reserved flag", reserved, nil, "bad header", true},
		{"empty input", nil, nil, "EOF", true},
		{"truncated header", one[:7], nil, "unexpected EOF", true},
		{"truncated name", named[:15], nil, "EOF", true}, // io.EOF, as klauspost/compress
		{"truncated deflate data", one[:len(one)/2], nil, "unexpected EOF", false},
		{"truncated after deflate data", one[:len(one)-8], text, "unexpected EOF", false},
		{"truncated trailer", one[:len(one)-3], text, "unexpected EOF", false},
		{"truncated second member", cat(one, two[:len(two)/2]), text, "unexpected EOF", false},
		{"truncated second header", cat(one, two[:6]), text, "unexpected EOF", false},
		// A later member's header is read as klauspost/compress reads it: an
		// input that ends in its name ends the stream.
		{"truncated second name", cat(one, named[:15]), text, "ok", false},
		{"bad CRC", flip(one, len(one)-6), text, "bad checksum", false},
		{"bad size", flip(one, len(one)-2), text, "bad checksum", false},
		{"bad CRC in second member", cat(one, flip(two, len(two)-8)), cat(text, noise), "bad checksum", false},
		{"corrupt deflate data", cat(one[:hdrLen], []byte{0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0}), nil, "corrupt", false},
		{"trailing zeros", cat(one, make([]byte, 4)), text, "unexpected EOF", false},
		{"trailing garbage", cat(one, []byte("garbage after the gzip stream")), text, "bad header", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refOut, refErr := gunzipRef(tt.in)
			if got := errClass(refErr); got != tt.err {
				t.Errorf("reference reader: %v, want %s", refErr, tt.err)
			}
			for _, chunk := range []int{1, 512, 40000, 1 << 20} {
				out, info, err := gunzip(tt.in, chunk)
				if got := errClass(err); got != tt.err {
					t.Errorf("read by %d: error %v, want %s", chunk, err, tt.err)
				}
				var fe *FormatError
				if err != nil && (!errors.As(err, &fe) || fe.Off < 0 || fe.Off > int64(len(tt.in))) {
					t.Errorf("read by %d: %v is not a FormatError with an offset in the input", chunk, err)
				}
				if (info == nil) != tt.open {
					t.Errorf("read by %d: Open failed: %v, want %v", chunk, info == nil, tt.open)
				}
				if tt.err == "ok" && !bytes.Equal(out, refOut) {
					t.Errorf("read by %d: content differs from the reference reader's", chunk)
				}
				if tt.err == "ok" && !bytes.Equal(out, tt.want) || !bytes.HasPrefix(out, tt.want) {
					t.Errorf("read by %d: got %d bytes, want %d", chunk, len(out), len(tt.want))
				}
			}
		})
	}
	_, info, err := gunzip(named, 512)
	if err != nil || info.Name != "café.tar" || info.Comment != "hi" || string(info.Extra) != "xy" ||
		info.OS != 3 || !info.ModTime.Equal(time.Unix(0x7140a880, 0)) {
		t.Errorf("header fields: %+v, %v", info, err)
	}
}

// FuzzGzip checks that Open's gzip reader gives the same content and the same
// kind of error as klauspost/compress's on any input.
func FuzzGzip(f *testing.F) {
	plain := []byte{0, 0, 0, 0, 0, 0, 3}
	one := gzMember(f, plain, []byte("hello, hello, hello, hello world\n"))
	f.Add(one)
	f.Add(append(bytes.Clone(one), one...))
	f.Add(append(bytes.Clone(one), 0, 0, 0, 0))
	f.Add(gzMember(f, []byte{0x1e, 0, 0, 0, 0, 0, 3, 1, 0, 'x', 'n', 0, 'c', 0, 0, 0}, []byte("abc")))
	data := read(f, "a.tar.gz")
	f.Add(data[:min(len(data), 4096)])
	f.Fuzz(func(t *testing.T, data []byte) {
		refOut, refErr := gunzipRef(data)
		out, _, err := gunzip(data, 1000)
		// Input that is both corrupt and truncated may fail either way,
		// depending on how far a decoder reads before it checks. (zlib also
		// rejects a degenerate code length code that Go's inflater accepts
		// and then fails on.)
		bad := map[string]bool{"corrupt": true, "unexpected EOF": true}
		if c, rc := errClass(err), errClass(refErr); c != rc && !(bad[c] && bad[rc]) {
			t.Fatalf("error %v, reference reader %v", err, refErr)
		}
		if !bytes.HasPrefix(out, refOut) && !bytes.HasPrefix(refOut, out) || err == nil && len(out) != len(refOut) {
			t.Fatalf("content of %d bytes differs from the reference reader's %d", len(out), len(refOut))
		}
		if err != nil {
			if fe := (*FormatError)(nil); !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
		}
	})
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
