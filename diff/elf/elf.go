// Package elf reads the parts of an ELF file that explain why two builds differ:
// sections and where they lie, symbols with Rust names demangled, notes such as
// the GNU build-id, and the DWARF compilation units whose names and directories
// leak build paths.
//
// It uses debug/elf and debug/dwarf, but validates the headers first against the
// file size and bounds every section it reads into memory, so that hostile input
// gives a *FormatError with a byte offset rather than a panic or a huge allocation.
package elf

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ianlancetaylor/demangle"
)

// A FormatError reports malformed ELF data at a byte offset.
type FormatError struct {
	Off int64
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("elf: %s at offset %d", e.Msg, e.Off) }

// ErrTooLarge is wrapped by errors for sections larger than Limits allow.
var ErrTooLarge = errors.New("larger than the limit")

// Limits bound what a File reads. Zero fields take the defaults.
type Limits struct {
	MaxSections    int   // default 1<<16
	MaxSectionSize int64 // the largest section Data reads into memory; default 1 GiB
	MaxDWARF       int64 // the largest total of debug sections CompUnits reads; default 1 GiB
	MaxUnits       int   // compilation units returned; default 1<<18
}

func (l Limits) withDefaults() Limits {
	if l.MaxSections <= 0 {
		l.MaxSections = 1 << 16
	}
	if l.MaxSectionSize <= 0 {
		l.MaxSectionSize = 1 << 30
	}
	if l.MaxDWARF <= 0 {
		l.MaxDWARF = 1 << 30
	}
	if l.MaxUnits <= 0 {
		l.MaxUnits = 1 << 18
	}
	return l
}

// Magic opens every ELF file.
const Magic = "\x7fELF"

// IsELF reports whether prefix starts like an ELF file.
func IsELF(prefix []byte) bool { return strings.HasPrefix(string(prefix), Magic) }

// A File is an open ELF file.
type File struct {
	Header   Header
	Sections []Section

	f     *elf.File
	r     io.ReaderAt
	size  int64
	shoff int64
	shent int64
	lim   Limits

	dwarfOnce sync.Once
	dwarf     *dwarf.Data
	dwarfErr  error
}

// Header holds the ELF header fields worth comparing.
type Header struct {
	Class, Data, OSABI, Type, Machine string
	Entry                             uint64
}

// A Section is one section header.
type Section struct {
	Index      int
	Name       string
	Type       elf.SectionType
	Flags      elf.SectionFlag
	Addr       uint64
	Offset     uint64 // in the file
	Size       uint64 // in memory, after decompression
	FileSize   uint64 // in the file; 0 for SHT_NOBITS
	Link, Info uint32
	Addralign  uint64
	Entsize    uint64
	Compressed bool // SHF_COMPRESSED
}

// Exec reports whether the section holds code.
func (s *Section) Exec() bool { return s.Flags&elf.SHF_EXECINSTR != 0 }

// Strings reports whether the section is a table of NUL-terminated strings.
func (s *Section) Strings() bool {
	return s.Type == elf.SHT_STRTAB || s.Flags&elf.SHF_STRINGS != 0 ||
		s.Name == ".comment" || s.Name == ".debug_str" || s.Name == ".debug_line_str"
}

// Open validates the ELF headers of the size-byte file in r and reads its section
// table.
func Open(r io.ReaderAt, size int64, lim Limits) (f *File, err error) {
	lim = lim.withDefaults()
	f = &File{r: r, size: size, lim: lim}
	if err := f.validate(); err != nil {
		return nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			f, err = nil, &FormatError{0, fmt.Sprintf("debug/elf panic: %v", v)}
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, &FormatError{errOffset(err), err.Error()}
	}
	f.f = ef
	f.Header = Header{
		Class: ef.Class.String(), Data: ef.Data.String(), OSABI: ef.OSABI.String(),
		Type: ef.Type.String(), Machine: ef.Machine.String(), Entry: ef.Entry,
	}
	for i, s := range ef.Sections {
		sec := Section{
			Index: i, Name: s.Name, Type: s.Type, Flags: s.Flags, Addr: s.Addr,
			Offset: s.Offset, Size: s.Size, FileSize: s.FileSize, Link: s.Link, Info: s.Info,
			Addralign: s.Addralign, Entsize: s.Entsize, Compressed: s.Flags&elf.SHF_COMPRESSED != 0,
		}
		if s.Type == elf.SHT_NOBITS {
			sec.FileSize = 0
		} else if sec.Offset > uint64(size) || sec.FileSize > uint64(size)-sec.Offset {
			return nil, &FormatError{f.shoff + int64(i)*f.shent,
				fmt.Sprintf("section %q (offset %d, size %d) runs past the end of the file", s.Name, s.Offset, s.FileSize)}
		}
		f.Sections = append(f.Sections, sec)
	}
	return f, nil
}

// validate checks the ELF and section header tables against the file size before
// debug/elf allocates anything from them.
func (f *File) validate() error {
	var ident [elf.EI_NIDENT]byte
	if f.size < int64(len(ident)) {
		return &FormatError{0, "file too short for an ELF identification"}
	}
	if _, err := f.r.ReadAt(ident[:], 0); err != nil {
		return &FormatError{0, "reading identification: " + err.Error()}
	}
	if string(ident[:4]) != Magic {
		return &FormatError{0, "bad magic"}
	}
	var bo binary.ByteOrder
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return &FormatError{elf.EI_DATA, "unknown data encoding"}
	}
	var shoff, shent, shnum, phoff, phent, phnum int64
	switch elf.Class(ident[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		var h [64]byte
		if f.size < int64(len(h)) {
			return &FormatError{0, "file too short for an ELF64 header"}
		}
		if _, err := f.r.ReadAt(h[:], 0); err != nil {
			return &FormatError{0, "reading header: " + err.Error()}
		}
		phoff, shoff = int64(bo.Uint64(h[32:])), int64(bo.Uint64(h[40:]))
		phent, phnum = int64(bo.Uint16(h[54:])), int64(bo.Uint16(h[56:]))
		shent, shnum = int64(bo.Uint16(h[58:])), int64(bo.Uint16(h[60:]))
	case elf.ELFCLASS32:
		var h [52]byte
		if f.size < int64(len(h)) {
			return &FormatError{0, "file too short for an ELF32 header"}
		}
		if _, err := f.r.ReadAt(h[:], 0); err != nil {
			return &FormatError{0, "reading header: " + err.Error()}
		}
		phoff, shoff = int64(bo.Uint32(h[28:])), int64(bo.Uint32(h[32:]))
		phent, phnum = int64(bo.Uint16(h[42:])), int64(bo.Uint16(h[44:]))
		shent, shnum = int64(bo.Uint16(h[46:])), int64(bo.Uint16(h[48:]))
	default:
		return &FormatError{elf.EI_CLASS, "unknown class"}
	}
	if phnum > 0 && (phoff < 0 || phoff > f.size || phent*phnum > f.size-phoff) {
		return &FormatError{phoff, "program header table runs past the end of the file"}
	}
	if shoff == 0 {
		return nil
	}
	if shoff < 0 || shoff > f.size || shent <= 0 {
		return &FormatError{shoff, "section header table out of range"}
	}
	if shnum == 0 {
		// More than 0xff00 sections: the count is in section 0's size field.
		if f.size-shoff < shent || shent < 40 {
			return &FormatError{shoff, "section header table out of range"}
		}
		b := make([]byte, shent)
		if _, err := f.r.ReadAt(b, shoff); err != nil {
			return &FormatError{shoff, "reading section 0: " + err.Error()}
		}
		if shent >= 64 {
			shnum = int64(bo.Uint64(b[32:]))
		} else {
			shnum = int64(bo.Uint32(b[20:]))
		}
	}
	if shnum < 0 || shnum > int64(f.lim.MaxSections) {
		return &FormatError{shoff, fmt.Sprintf("%d sections, more than %d", shnum, f.lim.MaxSections)}
	}
	if shent*shnum > f.size-shoff {
		return &FormatError{shoff, "section header table runs past the end of the file"}
	}
	f.shoff, f.shent = shoff, shent
	return nil
}

// errOffset extracts the offset debug/elf puts in its error messages.
func errOffset(err error) int64 {
	var off int64
	s := err.Error()
	if i := strings.LastIndex(s, "at byte "); i >= 0 {
		fmt.Sscanf(s[i+len("at byte "):], "%v", &off)
	}
	return off
}

// Raw returns the section's bytes as stored in the file (compressed sections stay
// compressed), or nil for a section with no file data.
func (f *File) Raw(s *Section) *io.SectionReader {
	if s.FileSize == 0 {
		return nil
	}
	return io.NewSectionReader(f.r, int64(s.Offset), int64(s.FileSize))
}

// Data returns the section's content, decompressed, if it is within
// Limits.MaxSectionSize.
func (f *File) Data(s *Section) (b []byte, err error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	if s.Size > uint64(f.lim.MaxSectionSize) || s.FileSize > uint64(f.lim.MaxSectionSize) {
		return nil, fmt.Errorf("elf: section %s of %d bytes: %w %d", s.Name, s.Size, ErrTooLarge, f.lim.MaxSectionSize)
	}
	defer func() {
		if v := recover(); v != nil {
			b, err = nil, &FormatError{int64(s.Offset), fmt.Sprintf("debug/elf panic reading %s: %v", s.Name, v)}
		}
	}()
	b, err = f.f.Sections[s.Index].Data()
	if err != nil {
		return nil, &FormatError{int64(s.Offset), fmt.Sprintf("reading section %s: %v", s.Name, err)}
	}
	return b, nil
}

// A Symbol is one symbol table entry.
type Symbol struct {
	Name      string // as mangled
	Demangled string // Rust (legacy and v0) and C++ names demangled, hashes dropped
	Type      elf.SymType
	Bind      elf.SymBind
	Section   int // index, or an elf.SectionIndex special value
	Value     uint64
	Size      uint64
	Dynamic   bool // from .dynsym
}

// Symbols returns the entries of .symtab and .dynsym.
func (f *File) Symbols() (syms []Symbol, err error) {
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_DYNSYM) && s.Size > uint64(f.lim.MaxSectionSize) {
			return nil, fmt.Errorf("elf: symbol table %s: %w", s.Name, ErrTooLarge)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			syms, err = nil, &FormatError{0, fmt.Sprintf("debug/elf panic reading symbols: %v", v)}
		}
	}()
	add := func(list []elf.Symbol, dyn bool) {
		for _, s := range list {
			syms = append(syms, Symbol{
				Name: s.Name, Demangled: Demangle(s.Name), Type: elf.ST_TYPE(s.Info), Bind: elf.ST_BIND(s.Info),
				Section: int(s.Section), Value: s.Value, Size: s.Size, Dynamic: dyn,
			})
		}
	}
	st, err := f.f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, &FormatError{0, "reading .symtab: " + err.Error()}
	}
	add(st, false)
	dt, err := f.f.DynamicSymbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, &FormatError{0, "reading .dynsym: " + err.Error()}
	}
	add(dt, true)
	return syms, nil
}

// Demangle returns the readable form of a Rust (legacy or v0) or C++ symbol name
// without Rust's disambiguating hash, or name itself if it is not mangled.
// Suffixes that LLVM adds (".llvm.123", ".cold") are kept.
func Demangle(name string) string {
	base, suffix := name, ""
	if i := strings.Index(name, "E."); strings.HasPrefix(name, "_ZN") && i > 0 {
		base, suffix = name[:i+1], name[i+1:]
	} else if strings.HasPrefix(name, "_R") {
		if i := strings.IndexByte(name, '.'); i > 0 {
			base, suffix = name[:i], name[i:]
		}
	}
	d, err := demangle.ToString(base, demangle.NoParams, demangle.MaxLength(12))
	if err != nil {
		return name
	}
	return d + suffix
}

// SectionKey names a section so that the same section pairs between two builds:
// for function and data sections named after a Rust symbol (".text._ZN…17h…E"),
// the symbol is demangled, which drops the hash.
func SectionKey(name string) string {
	for _, p := range []string{".text.", ".data.rel.ro.", ".data.", ".rodata.", ".bss.", ".rela.text.", ".rela.data.rel.ro.", ".rela.data.", ".tbss.", ".tdata."} {
		if rest, ok := strings.CutPrefix(name, p); ok && (strings.HasPrefix(rest, "_ZN") || strings.HasPrefix(rest, "_R")) {
			return p + Demangle(rest)
		}
	}
	return name
}

// A Note is one entry of a SHT_NOTE section.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

// Notes parses the notes in a SHT_NOTE section's data.
func (f *File) Notes(s *Section) ([]Note, error) {
	data, err := f.Data(s)
	if err != nil {
		return nil, err
	}
	bo := f.f.ByteOrder
	align := 4
	if s.Addralign == 8 {
		align = 8
	}
	pad := func(n int) int { return (n + align - 1) &^ (align - 1) }
	var notes []Note
	for p := 0; p < len(data); {
		if len(data)-p < 12 {
			return notes, &FormatError{int64(s.Offset) + int64(p), "truncated note header"}
		}
		nsz, dsz, typ := int(bo.Uint32(data[p:])), int(bo.Uint32(data[p+4:])), bo.Uint32(data[p+8:])
		p += 12
		if nsz < 0 || dsz < 0 || nsz > len(data)-p || pad(nsz) > len(data)-p || dsz > len(data)-p-pad(nsz) {
			return notes, &FormatError{int64(s.Offset) + int64(p-12), "note runs past its section"}
		}
		n := Note{Name: strings.TrimRight(string(data[p:p+nsz]), "\x00"), Type: typ}
		p += pad(nsz)
		n.Desc = data[p : p+dsz]
		p += pad(dsz)
		if p > len(data) {
			p = len(data)
		}
		notes = append(notes, n)
	}
	return notes, nil
}

// BuildID returns the GNU build-id in hex, or "".
func (f *File) BuildID() string {
	for i := range f.Sections {
		s := &f.Sections[i]
		if s.Type != elf.SHT_NOTE {
			continue
		}
		notes, _ := f.Notes(s)
		for _, n := range notes {
			if n.Name == "GNU" && n.Type == 3 { // NT_GNU_BUILD_ID
				return fmt.Sprintf("%x", n.Desc)
			}
		}
	}
	return ""
}

// A CompUnit is a DWARF compilation unit's identity.
type CompUnit struct {
	Name     string
	CompDir  string
	Producer string
	Language int64
}

// HasDWARF reports whether the file has a .debug_info section.
func (f *File) HasDWARF() bool {
	for _, s := range f.Sections {
		if s.Name == ".debug_info" || s.Name == ".zdebug_info" {
			return true
		}
	}
	return false
}

// DWARF returns the file's debug information, read once, if the debug sections
// total at most Limits.MaxDWARF bytes.
func (f *File) DWARF() (*dwarf.Data, error) {
	f.dwarfOnce.Do(func() { f.dwarf, f.dwarfErr = f.readDWARF() })
	return f.dwarf, f.dwarfErr
}

func (f *File) readDWARF() (d *dwarf.Data, err error) {
	var total uint64
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") || strings.HasPrefix(s.Name, ".rela.debug_") {
			total += s.Size
		}
	}
	if total > uint64(f.lim.MaxDWARF) {
		return nil, fmt.Errorf("elf: %d bytes of debug sections: %w %d", total, ErrTooLarge, f.lim.MaxDWARF)
	}
	defer func() {
		if v := recover(); v != nil {
			d, err = nil, &FormatError{0, fmt.Sprintf("debug/dwarf panic: %v", v)}
		}
	}()
	d, err = f.f.DWARF()
	if err != nil {
		return nil, &FormatError{f.offsetOf(".debug_info"), "reading DWARF: " + err.Error()}
	}
	return d, nil
}

// CompUnits returns the DWARF compilation units in order.
func (f *File) CompUnits() (units []CompUnit, err error) {
	d, err := f.DWARF()
	if err != nil {
		return nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			units, err = nil, &FormatError{0, fmt.Sprintf("debug/dwarf panic: %v", v)}
		}
	}()
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			var de dwarf.DecodeError
			if errors.As(err, &de) {
				return units, &FormatError{f.offsetOf(de.Name) + int64(de.Offset), "DWARF: " + de.Err}
			}
			return units, &FormatError{f.offsetOf(".debug_info"), "DWARF: " + err.Error()}
		}
		if e == nil {
			return units, nil
		}
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagPartialUnit, dwarf.TagSkeletonUnit, dwarf.TagTypeUnit:
			u := CompUnit{}
			u.Name, _ = e.Val(dwarf.AttrName).(string)
			u.CompDir, _ = e.Val(dwarf.AttrCompDir).(string)
			u.Producer, _ = e.Val(dwarf.AttrProducer).(string)
			u.Language, _ = e.Val(dwarf.AttrLanguage).(int64)
			if len(units) >= f.lim.MaxUnits {
				return units, fmt.Errorf("elf: more than %d compilation units: %w", f.lim.MaxUnits, ErrTooLarge)
			}
			units = append(units, u)
		}
		r.SkipChildren()
	}
}

func (f *File) offsetOf(name string) int64 {
	for _, s := range f.Sections {
		if s.Name == name || s.Name == strings.Replace(name, ".debug_", ".zdebug_", 1) {
			return int64(s.Offset)
		}
	}
	return 0
}

// ByteOrder returns the file's byte order.
func (f *File) ByteOrder() binary.ByteOrder { return f.f.ByteOrder }
