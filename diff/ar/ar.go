// Package ar lists the members of Unix ar archives, the container of Rust rlibs and
// static libraries, through an io.ReaderAt without copying member data.
//
// It reads the common (System V / GNU) variant with its long-name table and symbol
// tables, and the BSD variant's "#1/len" names. Every member is checked against the
// archive size before it is returned, so a hostile header can never make a caller
// read past the end of the archive.
package ar

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Magic opens every ar archive.
const Magic = "!<arch>\n"

const headerSize = 60

// A FormatError reports malformed archive data at a byte offset.
type FormatError struct {
	Off int64  // offset in the archive where the problem was found
	Msg string // what is wrong
}

func (e *FormatError) Error() string { return fmt.Sprintf("ar: %s at offset %d", e.Msg, e.Off) }

// Limits bound what Read accepts. Zero fields take the defaults.
type Limits struct {
	MaxMembers  int   // default 1<<20
	MaxNameSize int64 // the largest long-name table or BSD name read into memory; default 16 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxMembers <= 0 {
		l.MaxMembers = 1 << 20
	}
	if l.MaxNameSize <= 0 {
		l.MaxNameSize = 16 << 20
	}
	return l
}

// A Member is one file in an archive. Its data is the Size bytes at Offset.
type Member struct {
	Name         string // resolved long name; "/" and "/SYM64/" are GNU symbol tables, "__.SYMDEF" a BSD one
	HeaderOffset int64  // where the member's 60-byte header starts
	Offset       int64  // where the member's data starts
	Size         int64
	ModTime      int64 // seconds since the epoch, as written
	UID, GID     int64
	Mode         uint32
	RawHeader    string // the header as written, for comparing byte-identical encodings
}

// IsSymbolTable reports whether m is an archive symbol table rather than a file.
func (m *Member) IsSymbolTable() bool {
	return m.Name == "/" || m.Name == "/SYM64/" || m.Name == "__.SYMDEF" || m.Name == "__.SYMDEF SORTED"
}

// IsArchive reports whether prefix starts like an ar archive.
func IsArchive(prefix []byte) bool { return bytes.HasPrefix(prefix, []byte(Magic)) }

// Read lists the members of the archive in r, which is size bytes long, in order.
// The GNU long-name table ("//") is consumed and not returned.
func Read(r io.ReaderAt, size int64, lim Limits) ([]Member, error) {
	lim = lim.withDefaults()
	var magic [8]byte
	if size < int64(len(magic)) {
		return nil, &FormatError{0, "file too short for ar magic"}
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, &FormatError{0, "reading magic: " + err.Error()}
	}
	if string(magic[:]) == "!<thin>\n" {
		return nil, &FormatError{0, "thin archives are not supported"}
	}
	if string(magic[:]) != Magic {
		return nil, &FormatError{0, "bad magic"}
	}
	var (
		members  []Member
		longName []byte
		hdr      [headerSize]byte
	)
	off := int64(len(magic))
	for off < size {
		if len(members) >= lim.MaxMembers {
			return nil, &FormatError{off, fmt.Sprintf("more than %d members", lim.MaxMembers)}
		}
		if size-off < headerSize {
			// A single trailing newline pad is tolerated.
			if size-off == 1 {
				break
			}
			return nil, &FormatError{off, "truncated member header"}
		}
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return nil, &FormatError{off, "reading member header: " + err.Error()}
		}
		if hdr[58] != '`' || hdr[59] != '\n' {
			return nil, &FormatError{off + 58, "bad member header terminator"}
		}
		m := Member{HeaderOffset: off, Offset: off + headerSize, RawHeader: string(hdr[:])}
		var err error
		if m.Size, err = field(hdr[48:58], 10, off+48, "size"); err != nil {
			return nil, err
		}
		if m.Size > size-m.Offset {
			return nil, &FormatError{off + 48, fmt.Sprintf("member size %d runs past the end of the archive", m.Size)}
		}
		// Dates, ids and modes are informational: rustc and GNU ar in
		// deterministic mode write zeros, some tools write blanks.
		m.ModTime, _ = field(hdr[16:28], 10, off+16, "date")
		m.UID, _ = field(hdr[28:34], 10, off+28, "uid")
		m.GID, _ = field(hdr[34:40], 10, off+34, "gid")
		mode, _ := field(hdr[40:48], 8, off+40, "mode")
		m.Mode = uint32(mode)

		name := strings.TrimRight(string(hdr[0:16]), " ")
		switch {
		case name == "//":
			if m.Size > lim.MaxNameSize {
				return nil, &FormatError{off, "long-name table too large"}
			}
			longName = make([]byte, m.Size)
			if _, err := r.ReadAt(longName, m.Offset); err != nil {
				return nil, &FormatError{m.Offset, "reading long-name table: " + err.Error()}
			}
			off = next(m.Offset, m.Size)
			continue
		case name == "/" || name == "/SYM64/":
			m.Name = name
		case strings.HasPrefix(name, "#1/"):
			n, err := strconv.ParseInt(name[3:], 10, 64)
			if err != nil || n < 0 || n > m.Size || n > lim.MaxNameSize {
				return nil, &FormatError{off, "bad BSD long name length"}
			}
			buf := make([]byte, n)
			if _, err := r.ReadAt(buf, m.Offset); err != nil {
				return nil, &FormatError{m.Offset, "reading BSD long name: " + err.Error()}
			}
			m.Name = string(bytes.TrimRight(buf, "\x00"))
			m.Offset += n
			m.Size -= n
		case len(name) > 1 && name[0] == '/' && name[1] >= '0' && name[1] <= '9':
			i, err := strconv.ParseInt(name[1:], 10, 64)
			if err != nil || i < 0 || i >= int64(len(longName)) {
				return nil, &FormatError{off, "bad long-name reference " + strconv.Quote(name)}
			}
			s := longName[i:]
			if j := bytes.Index(s, []byte("/\n")); j >= 0 {
				s = s[:j]
			} else if j := bytes.IndexByte(s, '\n'); j >= 0 {
				s = s[:j]
			}
			m.Name = string(s)
		default:
			m.Name = strings.TrimSuffix(name, "/")
		}
		members = append(members, m)
		off = next(m.Offset, m.Size)
		if m.Offset+m.Size < m.Offset { // overflow guard, unreachable given the size check
			return nil, &FormatError{off, "member size overflows"}
		}
	}
	return members, nil
}

// next returns the offset of the header after data at off of length n, which is
// padded to an even offset.
func next(off, n int64) int64 {
	end := off + n
	return end + end&1
}

// field parses a space-padded numeric header field.
func field(b []byte, base int, off int64, what string) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, base, 64)
	if err != nil || v < 0 {
		return 0, &FormatError{off, fmt.Sprintf("bad %s field %q", what, s)}
	}
	return v, nil
}

// Symbols returns the symbol names in a GNU ("/" or "/SYM64/") symbol table member,
// in table order, each with the header offset of the member defining it.
func Symbols(r io.ReaderAt, m Member) ([]Symbol, error) {
	width := int64(4)
	switch m.Name {
	case "/":
	case "/SYM64/":
		width = 8
	default:
		return nil, &FormatError{m.HeaderOffset, "not a GNU symbol table: " + strconv.Quote(m.Name)}
	}
	if m.Size > 256<<20 {
		return nil, &FormatError{m.HeaderOffset, "symbol table too large"}
	}
	data := make([]byte, m.Size)
	if _, err := r.ReadAt(data, m.Offset); err != nil {
		return nil, &FormatError{m.Offset, "reading symbol table: " + err.Error()}
	}
	if int64(len(data)) < width {
		return nil, &FormatError{m.Offset, "symbol table too short"}
	}
	var n uint64
	if width == 4 {
		n = uint64(binary.BigEndian.Uint32(data))
	} else {
		n = binary.BigEndian.Uint64(data)
	}
	if n > uint64(len(data))/uint64(width) {
		return nil, &FormatError{m.Offset, fmt.Sprintf("symbol count %d exceeds table size", n)}
	}
	offs := data[width : width+int64(n)*width]
	names := data[width+int64(n)*width:]
	syms := make([]Symbol, 0, n)
	for i := range int64(n) {
		var o uint64
		if width == 4 {
			o = uint64(binary.BigEndian.Uint32(offs[i*4:]))
		} else {
			o = binary.BigEndian.Uint64(offs[i*8:])
		}
		j := bytes.IndexByte(names, 0)
		if j < 0 {
			return nil, &FormatError{m.Offset + int64(len(data)-len(names)), "unterminated symbol name"}
		}
		syms = append(syms, Symbol{Name: string(names[:j]), MemberOffset: int64(o)})
		names = names[j+1:]
	}
	return syms, nil
}

// A Symbol is one entry of an archive symbol table.
type Symbol struct {
	Name         string
	MemberOffset int64 // header offset of the member that defines it
}
