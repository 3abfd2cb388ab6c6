package tar

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

func fixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/archive/a.tar")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// onlyReader hides Seek, as a decompressor does.
type onlyReader struct{ io.Reader }

func TestWalk(t *testing.T) {
	data := fixture(t)
	want := []string{"pkg/", "pkg/README", "pkg/lib/libtiny.rlib", "pkg/bin/tool", "pkg/etc/tool.conf", "pkg/share/notes.txt", "pkg/share/old.txt"}
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{{"seekable", bytes.NewReader(data)}, {"stream", onlyReader{bytes.NewReader(data)}}} {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			err := Walk(context.Background(), tc.r, Limits{}, func(h *Header, body io.Reader) error {
				names = append(names, h.Name)
				if h.Typeflag != tar.TypeReg {
					return nil
				}
				// The offset locates exactly the content.
				if h.Offset < 0 || h.Offset+h.Size > int64(len(data)) {
					t.Fatalf("%s: offset %d out of range", h.Name, h.Offset)
				}
				got, err := io.ReadAll(body)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data[h.Offset:h.Offset+h.Size]) {
					t.Errorf("%s: content at offset %d differs from the body", h.Name, h.Offset)
				}
				if h.HeaderOffset%512 != 0 || h.HeaderOffset >= h.Offset {
					t.Errorf("%s: header offset %d, data offset %d", h.Name, h.HeaderOffset, h.Offset)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != len(want) {
				t.Fatalf("names = %q, want %q", names, want)
			}
			for i := range want {
				if names[i] != want[i] {
					t.Errorf("member %d = %q, want %q", i, names[i], want[i])
				}
			}
		})
	}
}

func TestWalkErrors(t *testing.T) {
	data := fixture(t)
	corrupt := bytes.Clone(data)
	copy(corrupt[512+148:], "zzzzzzz") // the second header's checksum
	tests := []struct {
		name string
		data []byte
		lim  Limits
		off  int64
		is   error
	}{
		{"truncated in a header", data[:512+100], Limits{}, 512, nil},
		{"truncated in content", data[:3*512+200], Limits{}, -1, io.ErrUnexpectedEOF},
		{"bad checksum", corrupt, Limits{}, 512, nil},
		{"too many members", data, Limits{MaxMembers: 3}, -1, ErrTooManyMembers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.data), onlyReader{bytes.NewReader(tt.data)}} {
				err := Walk(context.Background(), r, tt.lim, func(h *Header, body io.Reader) error {
					_, err := io.Copy(io.Discard, body)
					return err
				})
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a *FormatError", err)
				}
				if tt.off >= 0 && fe.Off != tt.off {
					t.Errorf("offset %d, want %d (%v)", fe.Off, tt.off, err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("err = %v, want %v", err, tt.is)
				}
			}
		})
	}
}

func TestIsTar(t *testing.T) {
	data := fixture(t)
	if !IsTar(data) {
		t.Error("fixture not recognized")
	}
	v7 := bytes.Clone(data[:512])
	copy(v7[257:], make([]byte, 8)) // drop the magic: V7 is recognized by checksum
	var sum int64
	for i, c := range v7 {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	copy(v7[148:], []byte(string(rune('0'+sum>>15&7))+string(rune('0'+sum>>12&7))+string(rune('0'+sum>>9&7))+
		string(rune('0'+sum>>6&7))+string(rune('0'+sum>>3&7))+string(rune('0'+sum&7))+"\x00 "))
	if !IsTar(v7) {
		t.Error("V7 header not recognized")
	}
	if IsTar(make([]byte, 512)) || IsTar([]byte("short")) || IsTar(bytes.Repeat([]byte("x"), 512)) {
		t.Error("non-tar recognized")
	}
}

func FuzzWalk(f *testing.F) {
	data := fixture(f)
	f.Add(data)
	f.Add(data[:1536])
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	w.WriteHeader(&tar.Header{Name: "pax-long-" + string(bytes.Repeat([]byte("n"), 120)), Size: 3, Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"user.x": "y"}})
	w.Write([]byte("abc"))
	w.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "abc"})
	w.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range []io.Reader{bytes.NewReader(data), onlyReader{bytes.NewReader(data)}} {
			err := Walk(context.Background(), r, Limits{MaxMembers: 1000}, func(h *Header, body io.Reader) error {
				if h.Offset > int64(len(data)) {
					t.Fatalf("offset %d past the input", h.Offset)
				}
				_, err := io.Copy(io.Discard, io.LimitReader(body, 1<<20))
				return err
			})
			var fe *FormatError
			if err != nil && !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
		}
	})
}
