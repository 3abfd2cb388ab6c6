package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// TestMalformed feeds broken inputs: each must give a node with a typed error
// naming an offset, and (where nothing could be parsed) a byte-level diff,
// without panicking or allocating without bound.
func TestMalformed(t *testing.T) {
	hello := readFixture(t, "rust/a/hello")
	rlib := readFixture(t, "rust/a/libtiny.rlib")
	tgz := readFixture(t, "archive/a.tar.gz")
	txz := readFixture(t, "archive/a.tar.xz")
	zipA := readFixture(t, "archive/a.zip")
	shoff := binary.LittleEndian.Uint64(hello[40:])

	hugeDict := bytes.Clone(txz)
	hugeDict[16] = 40 // LZMA2 dictionary of 4 GiB
	badSection := bytes.Clone(hello)
	binary.LittleEndian.PutUint64(badSection[shoff+64+24:], 1<<33) // section 1 offset past the end
	eocd := bytes.LastIndex(zipA, []byte("PK\x05\x06"))
	zipCount := bytes.Clone(zipA)
	binary.LittleEndian.PutUint16(zipCount[eocd+10:], 0xffff) // 65535 members claimed
	var many bytes.Buffer
	tw := tar.NewWriter(&many)
	for i := range 100 {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%03d", i), Mode: 0o644, Typeflag: tar.TypeReg})
	}
	tw.Close()
	manyOther := bytes.Clone(many.Bytes())
	manyOther[len(manyOther)-2000] ^= 1

	tests := []struct {
		name     string
		a, b     []byte
		opts     Options
		path     string // node holding the error
		err      string // substring of Node.Error
		fallback bool   // the node holds a byte diff
	}{
		{"truncated ELF", hello, hello[:shoff+100], Options{}, "x", "section header table runs past the end of the file at offset", true},
		{"ELF section past the end", hello, badSection, Options{}, "x", "runs past the end of the file at offset", true},
		{"truncated rlib", rlib, rlib[:400], Options{}, "x", "ar: member size 3064 runs past the end of the archive at offset 340", true},
		{"truncated tar.gz", tgz, tgz[:len(tgz)/2], Options{}, "x", "at offset", false},
		{"xz asking for a 4 GiB dictionary", txz, hugeDict, Options{}, "x", "exceeds the decompression limit: dictionary of 4294967295 bytes", true},
		{"gzip bomb", gzipped(make([]byte, 4<<20)), gzipped(make([]byte, 4<<20+1)), Options{MaxExpand: 1 << 20}, "x", "exceeds the decompression limit", true},
		{"zip claiming 65535 members", zipA, zipCount, Options{}, "x", "central directory size out of range at offset", true},
		{"tar with too many members", many.Bytes(), manyOther, Options{MaxMembers: 10}, "x", "too many members", false},
		{"zip without an end record", zipA, zipA[:len(zipA)-40], Options{}, "x", "no end of central directory record at offset", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Readers(context.Background(), tt.path, bytes.NewReader(tt.a), int64(len(tt.a)), bytes.NewReader(tt.b), int64(len(tt.b)), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			n := find(rep, tt.path)
			if n == nil {
				t.Fatalf("no node %s in %q", tt.path, paths(rep))
			}
			if !strings.Contains(n.Error, tt.err) {
				t.Errorf("error %q, want %q", n.Error, tt.err)
			}
			if tt.fallback && !hasLinePrefix(n.Details, "@ 0x") && !hasLinePrefix(n.Details, "size: ") {
				t.Errorf("no byte diff in %q", n.Details)
			}
			var b bytes.Buffer
			if err := rep.WriteText(&b, 100); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSpool compares archives whose members do not fit the memory budget, so
// that they are spooled to temporary files or re-read in a second pass.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	opts := checkOptions()
	opts.MaxMemory = 1024
	opts.TempDir = dir
	rep, err := Files(context.Background(), "testdata/archive/a.tar.xz", "testdata/archive/b.tar.xz", opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := find(rep, "a.tar.xz/pkg/lib/libtiny.rlib/lib.rmeta/.rmeta"); n == nil || n.Labels[0] != "build_path" {
		t.Errorf("rmeta through a spooled member: %+v", n)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
