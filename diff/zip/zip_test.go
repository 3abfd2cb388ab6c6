package zip

import (
	stdzip "archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/archive/a.zip")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRead checks members and content against archive/zip.
func TestRead(t *testing.T) {
	data := fixture(t)
	a, err := Read(bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	std, err := stdzip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Members) != len(std.File) {
		t.Fatalf("%d members, archive/zip has %d", len(a.Members), len(std.File))
	}
	for i := range a.Members {
		m, sf := &a.Members[i], std.File[i]
		if m.Name != sf.Name || m.Size != sf.UncompressedSize64 || m.CRC32 != sf.CRC32 || m.Mode() != sf.Mode() {
			t.Errorf("member %d: %+v, archive/zip: %+v", i, m, sf.FileHeader)
		}
		if !m.Modified.Equal(time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)) && m.Name != "pkg/etc/tool.conf" {
			t.Errorf("%s: modified %v", m.Name, m.Modified)
		}
		r, err := a.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		sr, _ := sf.Open()
		want, _ := io.ReadAll(sr)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs from archive/zip's", m.Name)
		}
	}
}

func TestReadErrors(t *testing.T) {
	data := fixture(t)
	eocd := bytes.LastIndex(data, []byte("PK\x05\x06"))
	cdOff := int(binary.LittleEndian.Uint32(data[eocd+16:]))
	patch := func(off int, b ...byte) []byte {
		c := bytes.Clone(data)
		copy(c[off:], b)
		return c
	}
	tests := []struct {
		name string
		data []byte
		lim  Limits
		off  int64
		msg  string
	}{
		{"no end record", data[:len(data)-30], Limits{}, int64(len(data) - 30), "no end of central directory"},
		{"too short", []byte("PK\x05"), Limits{}, 0, "too short"},
		{"bad central header", patch(cdOff, 'X'), Limits{}, int64(cdOff), "bad central directory header"},
		{"count larger than directory", patch(eocd+10, 0xff, 0xff), Limits{}, int64(eocd), "out of range"},
		{"too many members", data, Limits{MaxMembers: 2}, int64(eocd), "more than 2"},
		{"directory too large", data, Limits{MaxDirectorySize: 10}, int64(eocd), "more than 10"},
		{"local header offset out of range", patch(cdOff+42, 0xff, 0xff, 0xff, 0x7f), Limits{}, int64(cdOff), "local header offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.data), int64(len(tt.data)), tt.lim)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off != tt.off || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("err = %v, want %q at offset %d", err, tt.msg, tt.off)
			}
		})
	}
}

func TestOpenChecks(t *testing.T) {
	data := fixture(t)
	a, err := Read(bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := a.Members[0]
	for _, tc := range []struct {
		name string
		edit func(m *Member)
		msg  string
	}{
		{"crc", func(m *Member) { m.CRC32++ }, "CRC-32"},
		{"longer than declared", func(m *Member) { m.Size-- }, "longer than"},
		{"shorter than declared", func(m *Member) { m.Size++ }, "shorter than"},
		{"method", func(m *Member) { m.Method = 99 }, "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := m
			tc.edit(&mm)
			r, err := a.Open(&mm)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add(fixture(f))
	var b bytes.Buffer
	w := stdzip.NewWriter(&b)
	fw, _ := w.CreateHeader(&stdzip.FileHeader{Name: "s.txt", Method: stdzip.Store})
	fw.Write([]byte("stored"))
	w.SetComment("comment")
	w.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data), int64(len(data)), Limits{MaxMembers: 1000})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
			return
		}
		for i := range a.Members {
			m := &a.Members[i]
			if m.Size > 1<<20 {
				continue
			}
			r, err := a.Open(m)
			if err != nil {
				continue
			}
			n, _ := io.Copy(io.Discard, r)
			if uint64(n) > m.Size {
				t.Fatalf("%s: read %d bytes, declared %d", m.Name, n, m.Size)
			}
		}
	})
}
