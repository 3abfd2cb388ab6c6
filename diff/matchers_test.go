package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"
)

// tarOf writes a tar of the named members, in the order given, each holding
// its name.
func tarOf(t testing.TB, names ...string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, n := range names {
		data := []byte(n + "\n")
		if err := w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)),
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// elfish is an ELF header followed by a data area that holds a frame of
// words: a return address, a saved stack pointer, a length. It is not a valid
// ELF file, so the diff compares its bytes.
func elfish(stack uint64, length uint64) []byte {
	b := make([]byte, 256)
	copy(b, "\x7fELF\x02\x01\x01")
	copy(b[64:], "frame:\x00\x00")
	binary.LittleEndian.PutUint64(b[72:], 0x555555555189) // return address, normalized
	binary.LittleEndian.PutUint64(b[80:], stack)
	binary.LittleEndian.PutUint64(b[88:], length)
	copy(b[96:], "end of frame")
	return b
}

var allMatchers = []Matcher{
	{Factor: "fileordering", Kind: MatchReorder},
	{Factor: "aslr", Kind: MatchAddress},
	{Factor: "locale", Kind: MatchDecimalComma},
	{Factor: "locale", Kind: MatchCollation},
}

func matchedFactors(t *testing.T, a, b []byte, ms []Matcher) []string {
	t.Helper()
	rep, err := Readers(context.Background(), "x", bytes.NewReader(a), int64(len(a)), bytes.NewReader(b), int64(len(b)),
		Options{Matchers: ms, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Equal() {
		t.Fatal("inputs compare equal")
	}
	return rep.Factors()
}

// TestMatchers diffs real-looking pairs and checks the factor each kind names,
// and that a difference of another shape names none.
func TestMatchers(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []byte
		want []string
	}{
		{"reordered lines", []byte("src/a.rs\nsrc/b.rs\nsrc/c.rs\nsrc/main.rs\n"),
			[]byte("src/main.rs\nsrc/c.rs\nsrc/b.rs\nsrc/a.rs\n"), []string{"fileordering"}},
		{"reordered entries of a line", []byte("OBJS = a.o b.o c.o\nCFLAGS = -O2\n"),
			[]byte("OBJS = c.o b.o a.o\nCFLAGS = -O2\n"), []string{"fileordering"}},
		{"reordered tar members", tarOf(t, "pkg/a", "pkg/b", "pkg/c"), tarOf(t, "pkg/c", "pkg/b", "pkg/a"), []string{"fileordering"}},
		{"printed stack address", []byte("buf at 0x7fffffffe3a0\nok\n"), []byte("buf at 0x7ffd5a3c1e20\nok\n"), []string{"aslr"}},
		{"address in a repr", []byte("<Node object at 0x7ffff7a0c1d0>, size 3\n"),
			[]byte("<Node object at 0x7f3b2c41e1d0>, size 3\n"), []string{"aslr"}},
		{"stack address word in binary", elfish(0x7fffffffe3a0, 42), elfish(0x7ffd5a3c1e20, 42), []string{"aslr"}},
		{"decimal comma", []byte("pi = 3.141593\nratio: 0.50\n"), []byte("pi = 3,141593\nratio: 0,50\n"), []string{"locale"}},
		{"grouped decimal comma", []byte("total 1234567.89 bytes\n"), []byte("total 1\u202f234\u202f567,89 bytes\n"), []string{"locale"}},

		{"glued literals reordered", []byte("\x00\x00fmtsrc/main.rsalpha.txt,bravo.txt,charlie.txt,delta.txtcalled unwrap\x00"),
			[]byte("\x00\x00fmtsrc/main.rsdelta.txt,charlie.txt,bravo.txt,alpha.txtcalled unwrap\x00"), []string{"fileordering"}},
		{"bare address in a binary", []byte("\x00\x01\x02seed 555555558a30called\x00"), []byte("\x00\x01\x02seed 56197c40fa30called\x00"), []string{"aslr"}},

		{"sorted by a collation", []byte("Util\nalloc\nsocket\nthread\nzlib\n"), []byte("alloc\nsocket\nUtil\nzlib\nthread\n"), []string{"locale"}},
		{"sorted entries by a collation", []byte("MODULES = Util alloc socket thread zlib\n"), []byte("MODULES = alloc socket Util zlib thread\n"), []string{"locale"}},
		{"reverse of byte order", []byte("alloc\nsocket\nthread\n"), []byte("thread\nsocket\nalloc\n"), []string{"fileordering"}},
		// sort(1) in C and in a UTF-8 locale, printed into a string
		// literal: two words swapped inside a sorted list.
		{"case-insensitive sort in a literal", []byte("pub const INFO: &str = \"Alpha Beta alpha beta \";\n"),
			[]byte("pub const INFO: &str = \"Alpha alpha Beta beta \";\n"), []string{"locale"}},
		{"two words swapped", []byte("derive(Clone, Debug)\n"), []byte("derive(Debug, Clone)\n"), []string{"fileordering"}},

		// Other shapes: none of the kinds may name its factor.
		{"bare hash", []byte("dep-1a2b3c4d5e6f\n"), []byte("dep-9f8e7d6c5b4a\n"), nil},
		{"long hash", []byte("metadata=55aa55aa55aa55aa\n"), []byte("metadata=7f0011223344aabb\n"), nil},
		{"glued literals changed", []byte("\x00\x00fmtalpha.txt,bravo.txtcalled\x00"), []byte("\x00\x00fmtbravo.txt,alpha.txcalled\x00"), nil},
		{"added line", []byte("a\nb\n"), []byte("a\nb\nc\n"), nil},
		{"reordered and changed lines", []byte("src/a.rs\nsrc/b.rs\n"), []byte("src/b.rs\nsrc/a2.rs\n"), nil},
		{"tar with a member replaced", tarOf(t, "pkg/a", "pkg/b"), tarOf(t, "pkg/b", "pkg/c"), nil},
		{"hash, not address", []byte("id 0xdeadbeef\n"), []byte("id 0xcafebabe\n"), nil},
		{"kernel address", []byte("at 0xffffffff81000000\n"), []byte("at 0xffffffff82000000\n"), nil},
		{"address on one side", []byte("ptr 0x7ffd5a3c1e20\n"), []byte("ptr (nil)\n"), nil},
		{"address and other text", []byte("buf at 0x7fffffffe3a0 pass 1\n"), []byte("buf at 0x7ffd5a3c1e20 pass 2\n"), nil},
		{"small word in binary", elfish(0x7fffffffe3a0, 42), elfish(0x7fffffffe3a0, 43), nil},
		{"two 32-bit fields in binary", elfish(41<<32|1203, 42), elfish(57<<32|988, 42), nil},
		{"random word in binary", elfish(0x9e3779b97f4a7c15, 42), elfish(0x7f4a7c159e3779b9, 42), nil},
		{"number changed", []byte("pi = 3.141593\n"), []byte("pi = 3.141594\n"), nil},
		{"comma on both sides", []byte("v = 3,14\n"), []byte("v = 3,15\n"), nil},
		{"comma and other text", []byte("pi = 3.14 (C)\n"), []byte("pi = 3,14 (fr)\n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := matchedFactors(t, tc.a, tc.b, allMatchers)
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("factors = %v, want %v", got, tc.want)
			}
			// Without matchers, nothing names a factor.
			if got := matchedFactors(t, tc.a, tc.b, nil); len(got) > 0 {
				t.Errorf("without matchers: factors = %v", got)
			}
		})
	}
}

func TestNewMatchersIgnoresUnknown(t *testing.T) {
	m := newMatchers([]Matcher{{Factor: "x", Kind: "nonsense"}, {Factor: "", Kind: MatchReorder}, {Factor: "a", Kind: MatchReorder}, {Factor: "a", Kind: MatchReorder}})
	if len(m) != 1 || !slices.Equal(m[MatchReorder], []string{"a"}) {
		t.Errorf("matchers = %v", m)
	}
}

// FuzzLineMatchers checks the line matchers' invariants: equal lines never
// match, and each matcher is symmetric.
func FuzzLineMatchers(f *testing.F) {
	for _, s := range [][2]string{
		{"buf at 0x7fffffffe3a0\n", "buf at 0x7ffd5a3c1e20\n"},
		{"pi = 3.141593", "pi = 3,141593"},
		{"total 1234567.89 bytes", "total 1\u202f234\u202f567,89 bytes"},
		{"OBJS = a.o b.o c.o", "OBJS = c.o b.o a.o"},
		{"a, b c", "b c, a"},
		{"fmtsrc/main.rsalpha.txt,bravo.txt,charlie.txtcalled", "fmtsrc/main.rscharlie.txt,bravo.txt,alpha.txtcalled"},
		{"seed 555555558a30called", "seed 56197c40fa30called"},
		{"id 0xdeadbeef", "id 0xcafebabe"},
		{`INFO = "Alpha Beta alpha beta ";`, `INFO = "Alpha alpha Beta beta ";`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, x, y string) {
		for name, fn := range map[string]func(string, string) bool{
			"address": addressesDiffer, "decimal-comma": decimalCommaDiffers,
			"entries": func(x, y string) bool { _, _, ok := entriesReordered(x, y); return ok },
			"collation": func(x, y string) bool {
				ex, ey := strings.FieldsFunc(x, entrySep), strings.FieldsFunc(y, entrySep)
				return collated(ex, ey) || collated(ey, ex)
			},
		} {
			if fn(x, x) {
				t.Fatalf("%s: %q matches itself", name, x)
			}
			if fn(x, y) != fn(y, x) {
				t.Fatalf("%s: not symmetric for %q, %q", name, x, y)
			}
		}
	})
}

// FuzzWordsAreAddresses checks that the word matcher never matches equal
// bytes, is symmetric, and only matches words in the user-space range.
func FuzzWordsAreAddresses(f *testing.F) {
	f.Add(elfish(0x7fffffffe3a0, 42)[80:88], elfish(0x7ffd5a3c1e20, 42)[80:88])
	f.Add(elfish(0x7fffffffe3a0, 42)[64:96], elfish(0x7ffd5a3c1e20, 43)[64:96])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if wordsAreAddresses(a, a) {
			t.Fatal("equal bytes match")
		}
		if wordsAreAddresses(a, b) != wordsAreAddresses(b, a) {
			t.Fatal("not symmetric")
		}
		if wordsAreAddresses(a, b) {
			for off := 0; off+8 <= min(len(a), len(b)); off += 8 {
				va, vb := binary.LittleEndian.Uint64(a[off:]), binary.LittleEndian.Uint64(b[off:])
				if va != vb && (!userAddress(va) || !userAddress(vb)) {
					t.Fatalf("word %d: %#x, %#x matched", off/8, va, vb)
				}
			}
		}
	})
}

// FuzzSameMultiset checks the reordering test against sorting.
func FuzzSameMultiset(f *testing.F) {
	f.Add("a\nb\nc", "c\nb\na")
	f.Add("a\na\nb", "a\nb\nb")
	f.Fuzz(func(t *testing.T, x, y string) {
		a, b := splitLines([]byte(x)), splitLines([]byte(y))
		sa, sb := slices.Clone(a), slices.Clone(b)
		slices.Sort(sa)
		slices.Sort(sb)
		want := len(a) > 0 && slices.Equal(sa, sb) && !slices.Equal(a, b)
		if got := sameMultiset(a, b); got != want {
			t.Fatalf("sameMultiset(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}
