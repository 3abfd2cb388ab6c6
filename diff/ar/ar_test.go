package ar

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func rlib(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/rust/a/libtiny.rlib")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// build makes an archive from header names and data.
func build(members ...[2]string) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12s%-6s%-6s%-8s%-10d`\n", m[0], "0", "0", "0", "644", len(m[1]))
		b.WriteString(m[1])
		if len(m[1])%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func TestRead(t *testing.T) {
	good := rlib(t)
	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		want    []string // member names
		errOff  int64    // want a *FormatError at this offset; -1 for none
		errText string
	}{
		{"rlib", good, Limits{}, []string{"/", "lib.rmeta", "libtiny.tiny.7378e45bed21101e-cgu.0.rcgu.o"}, -1, ""},
		{"gnu short and long names", build([2]string{"//", "a-rather-long-member-name.o/\n"}, [2]string{"short.o/", "x"}, [2]string{"/0", "yz"}),
			Limits{}, []string{"short.o", "a-rather-long-member-name.o"}, -1, ""},
		{"bsd long name", build([2]string{"#1/20", "bsd-long-name.o\x00\x00\x00\x00\x00data"}), Limits{}, []string{"bsd-long-name.o"}, -1, ""},
		{"empty", []byte(Magic), Limits{}, nil, -1, ""},
		{"bad magic", []byte("!<arch>X12345678"), Limits{}, nil, 0, "bad magic"},
		{"thin", []byte("!<thin>\n"), Limits{}, nil, 0, "thin"},
		{"too short", []byte("!<ar"), Limits{}, nil, 0, "too short"},
		{"truncated header", good[:40], Limits{}, nil, 8, "truncated member header"},
		{"size past end", good[:400], Limits{}, nil, 340, "runs past the end"},
		{"bad terminator", append(build([2]string{"a/", "x"})[:66:66], "XX"...), Limits{}, nil, 66, "terminator"},
		{"bad long-name reference", build([2]string{"/99", "x"}), Limits{}, nil, 8, "long-name reference"},
		{"too many members", build([2]string{"a/", "1"}, [2]string{"b/", "2"}, [2]string{"c/", "3"}), Limits{MaxMembers: 2}, nil, 132, "more than 2 members"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Read(bytes.NewReader(tt.data), int64(len(tt.data)), tt.lim)
			if tt.errOff >= 0 {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a *FormatError", err)
				}
				if fe.Off != tt.errOff || !strings.Contains(fe.Msg, tt.errText) {
					t.Fatalf("err = %v, want %q at offset %d", err, tt.errText, tt.errOff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.Name)
				if m.Offset+m.Size > int64(len(tt.data)) {
					t.Errorf("%s runs past the end", m.Name)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.want, ",") {
				t.Errorf("names = %q, want %q", names, tt.want)
			}
		})
	}
}

func TestSymbols(t *testing.T) {
	data := rlib(t)
	ms, err := Read(bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !ms[0].IsSymbolTable() {
		t.Fatalf("first member %q is not the symbol table", ms[0].Name)
	}
	syms, err := Symbols(bytes.NewReader(data), ms[0])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range syms {
		if strings.HasPrefix(s.Name, "_ZN4tiny5greet") {
			found = true
			if s.MemberOffset != ms[2].HeaderOffset {
				t.Errorf("%s points at %d, want the object file at %d", s.Name, s.MemberOffset, ms[2].HeaderOffset)
			}
		}
	}
	if !found {
		t.Errorf("no tiny::greet in %v", syms)
	}
	if _, err := Symbols(bytes.NewReader(data), Member{Name: "/", Offset: 0, Size: 3}); err == nil {
		t.Error("short symbol table: no error")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(rlib(f))
	f.Add(build([2]string{"//", "a-rather-long-member-name.o/\n"}, [2]string{"/0", "yz"}, [2]string{"/", "\x00\x00\x00\x01\x00\x00\x00\x08sym\x00"}))
	f.Add(build([2]string{"#1/3", "abcdef"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		ms, err := Read(r, int64(len(data)), Limits{MaxMembers: 1000, MaxNameSize: 1 << 16})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off < 0 || fe.Off > int64(len(data)) {
				t.Fatalf("error %v is not a FormatError within the input", err)
			}
			return
		}
		for _, m := range ms {
			if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > int64(len(data)) {
				t.Fatalf("member %q [%d,+%d) outside the input", m.Name, m.Offset, m.Size)
			}
			if m.Name == "/" || m.Name == "/SYM64/" {
				Symbols(r, m)
			}
		}
	})
}
