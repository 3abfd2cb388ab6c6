package elf

import (
	"bytes"
	stdelf "debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/diff/ar"
)

func hello(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/rust/a/hello")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object returns the relocatable object inside the fixture rlib.
func object(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../testdata/rust/a/libtiny.rlib")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ar.Read(bytes.NewReader(data), int64(len(data)), ar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasSuffix(m.Name, ".o") {
			return data[m.Offset : m.Offset+m.Size]
		}
	}
	t.Fatal("no object in the rlib")
	return nil
}

func open(t *testing.T, data []byte) *File {
	t.Helper()
	f, err := Open(bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestExecutable(t *testing.T) {
	f := open(t, hello(t))
	if f.Header.Type != "ET_DYN" || f.Header.Machine != "EM_X86_64" {
		t.Errorf("header %+v", f.Header)
	}
	if id := f.BuildID(); len(id) != 40 {
		t.Errorf("build-id %q", id)
	}
	names := map[string]bool{}
	for _, s := range f.Sections {
		names[s.Name] = true
	}
	for _, want := range []string{".text", ".debug_info", ".debug_str", ".comment", ".note.gnu.build-id"} {
		if !names[want] {
			t.Errorf("no section %s", want)
		}
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range syms {
		if s.Demangled == "main::main" && s.Type == stdelf.STT_FUNC && strings.HasPrefix(s.Name, "_ZN4main4main17h") {
			found = true
		}
	}
	if !found {
		t.Error("no main::main function symbol")
	}
	units, err := f.CompUnits()
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].CompDir != "/build/reprobox/src" || !strings.HasPrefix(units[0].Name, "src/main.rs") {
		t.Errorf("units %+v", units)
	}
}

// TestObject reads a relocatable object, whose DWARF needs relocations applied.
func TestObject(t *testing.T) {
	f := open(t, object(t))
	if f.Header.Type != "ET_REL" {
		t.Errorf("type %s", f.Header.Type)
	}
	units, err := f.CompUnits()
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].CompDir != "/build/reprobox/src" {
		t.Errorf("units %+v", units)
	}
	keys := map[string]bool{}
	for _, s := range f.Sections {
		keys[SectionKey(s.Name)] = true
	}
	if !keys[".text.tiny::greet"] {
		t.Errorf("no .text.tiny::greet among %v", keys)
	}
}

func TestDemangle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"_ZN4tiny5greet17h0123456789abcdefE", "tiny::greet"},
		{"_ZN4core3fmt9Arguments6new_v117h1234567812345678E.llvm.4242", "core::fmt::Arguments::new_v1.llvm.4242"},
		{"_RNvCs1234_4tiny5greet", "tiny::greet"},
		{"_RNvMs_NtCsd4VYFwevHkG_4core3fmtNtB4_9Formatter3pad", "<core::fmt::Formatter>::pad"},
		{"_ZN3foo3barEv", "foo::bar"},
		{"main", "main"},
		{"_ZN", "_ZN"},
	}
	for _, tt := range tests {
		if got := Demangle(tt.in); got != tt.want {
			t.Errorf("Demangle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := SectionKey(".text._ZN4tiny5greet17h0123456789abcdefE"); got != ".text.tiny::greet" {
		t.Errorf("SectionKey = %q", got)
	}
}

func TestMalformed(t *testing.T) {
	good := hello(t)
	shoff := int64(binary.LittleEndian.Uint64(good[40:]))
	patch := func(off int64, v uint64, size int) []byte {
		c := bytes.Clone(good)
		switch size {
		case 2:
			binary.LittleEndian.PutUint16(c[off:], uint16(v))
		case 8:
			binary.LittleEndian.PutUint64(c[off:], v)
		}
		return c
	}
	tests := []struct {
		name string
		data []byte
		off  int64
		msg  string
	}{
		{"empty", nil, 0, "too short"},
		{"bad magic", append([]byte("\x7fELG"), good[4:64]...), 0, "bad magic"},
		{"bad class", append([]byte("\x7fELF\x07"), good[5:64]...), 4, "unknown class"},
		{"truncated header", good[:40], 0, "too short"},
		{"section table past the end", good[:shoff+100], shoff, "section header table runs past"},
		{"section table offset past the end", patch(40, 1<<40, 8), 1 << 40, "out of range"},
		{"too many sections", patch(60, 0xffff, 2), shoff, "more than"},
		// Section 1's sh_offset points past the end of the file.
		{"section data past the end", patch(shoff+64+24, 1<<33, 8), shoff + 64, "runs past the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tt.data), int64(len(tt.data)), Limits{MaxSections: 1000})
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off != tt.off || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("err = %v, want %q at offset %d", err, tt.msg, tt.off)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	data := hello(t)
	f, err := Open(bytes.NewReader(data), int64(len(data)), Limits{MaxSectionSize: 1024, MaxDWARF: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Sections {
		s := &f.Sections[i]
		if s.Name == ".text" {
			if _, err := f.Data(s); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Data(.text) with a 1 KiB limit: %v", err)
			}
		}
	}
	if _, err := f.CompUnits(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("CompUnits with a 1 KiB limit: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(hello(f))
	f.Add(object(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := Open(bytes.NewReader(data), int64(len(data)), Limits{MaxSections: 4096, MaxSectionSize: 1 << 20, MaxDWARF: 4 << 20, MaxUnits: 1000})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FormatError", err)
			}
			return
		}
		for i := range ef.Sections {
			s := &ef.Sections[i]
			if s.FileSize > 0 && s.Offset+s.FileSize > uint64(len(data)) {
				t.Fatalf("section %q outside the input", s.Name)
			}
			ef.Data(s)
			if s.Type == stdelf.SHT_NOTE {
				ef.Notes(s)
			}
		}
		ef.BuildID()
		ef.Symbols()
		ef.CompUnits()
	})
}
