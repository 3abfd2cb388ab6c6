// Package zip lists the members of zip archives through an io.ReaderAt and opens
// their content, bounded by the sizes the archive declares.
//
// It reads the central directory, zip64 records and the extended-timestamp extra
// field, and reports malformed input as a *FormatError with the byte offset of the
// record that failed. Stored and deflated members can be opened; other methods are
// listed but not decompressed.
package zip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"time"

	"github.com/klauspost/compress/flate"
)

// A FormatError reports malformed archive data at a byte offset.
type FormatError struct {
	Off int64
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("zip: %s at offset %d", e.Msg, e.Off) }

// ErrMethod is returned by Open for a compression method it cannot decompress.
var ErrMethod = errors.New("zip: unsupported compression method")

// Compression methods.
const (
	Store   = 0
	Deflate = 8
)

const (
	sigEOCD      = 0x06054b50
	sigEOCD64    = 0x06064b50
	sigLocator64 = 0x07064b50
	sigCentral   = 0x02014b50
	sigLocal     = 0x04034b50
)

// Limits bound what Read accepts. Zero fields take the defaults.
type Limits struct {
	MaxMembers       int   // default 1<<20
	MaxDirectorySize int64 // the largest central directory read into memory; default 256 MiB
}

// An Archive is a zip file's central directory.
type Archive struct {
	r       io.ReaderAt
	size    int64
	Comment string
	Members []Member
}

// A Member is one central directory entry.
type Member struct {
	Name           string
	Comment        string
	Extra          []byte
	Method         uint16
	Flags          uint16
	CreatorVersion uint16 // the high byte names the host system (3 is Unix)
	ReaderVersion  uint16
	CRC32          uint32
	CompressedSize uint64
	Size           uint64
	// Modified is the extended-timestamp mtime (UTC) when present, else the
	// MS-DOS date and time read as UTC.
	Modified     time.Time
	ExternalAttr uint32
	HeaderOffset int64 // offset of the local file header
	// DataOffset is where the compressed data starts; it is valid only after
	// the local header has been read by Open or DataRange.
	dataOffset int64
}

// Mode returns the Unix mode bits when the creator recorded them, and otherwise
// a mode derived from the MS-DOS attributes.
func (m *Member) Mode() fs.FileMode {
	switch m.CreatorVersion >> 8 {
	case 3, 19: // Unix, OS X
		u := m.ExternalAttr >> 16
		mode := fs.FileMode(u & 0o777)
		switch u & 0o170000 {
		case 0o040000:
			mode |= fs.ModeDir
		case 0o120000:
			mode |= fs.ModeSymlink
		}
		return mode
	}
	mode := fs.FileMode(0o666)
	if m.ExternalAttr&0x01 != 0 {
		mode = 0o444
	}
	if m.ExternalAttr&0x10 != 0 {
		mode |= fs.ModeDir | 0o111
	}
	return mode
}

// IsZip reports whether prefix starts like a zip archive.
func IsZip(prefix []byte) bool {
	return len(prefix) >= 4 && (binary.LittleEndian.Uint32(prefix) == sigLocal || binary.LittleEndian.Uint32(prefix) == sigEOCD)
}

// Read reads the central directory of the size-byte archive in r.
func Read(r io.ReaderAt, size int64, lim Limits) (*Archive, error) {
	if lim.MaxMembers <= 0 {
		lim.MaxMembers = 1 << 20
	}
	if lim.MaxDirectorySize <= 0 {
		lim.MaxDirectorySize = 256 << 20
	}
	eocdOff, eocd, err := findEOCD(r, size)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	count := uint64(le.Uint16(eocd[10:]))
	cdSize := uint64(le.Uint32(eocd[12:]))
	cdOff := uint64(le.Uint32(eocd[16:]))
	clen := int(le.Uint16(eocd[20:]))
	a := &Archive{r: r, size: size}
	if 22+clen <= len(eocd) {
		a.Comment = string(eocd[22 : 22+clen])
	}
	// A zip64 end record is announced by a locator just before the end record.
	if eocdOff >= 20 {
		var loc [20]byte
		if _, err := r.ReadAt(loc[:], eocdOff-20); err == nil && le.Uint32(loc[:]) == sigLocator64 {
			off := int64(le.Uint64(loc[8:]))
			var rec [56]byte
			if off < 0 || off > size-56 {
				return nil, &FormatError{eocdOff - 20, "zip64 end record offset out of range"}
			}
			if _, err := r.ReadAt(rec[:], off); err != nil || le.Uint32(rec[:]) != sigEOCD64 {
				return nil, &FormatError{off, "bad zip64 end record"}
			}
			count = le.Uint64(rec[32:])
			cdSize = le.Uint64(rec[40:])
			cdOff = le.Uint64(rec[48:])
			eocdOff = off
		}
	}
	if count > uint64(lim.MaxMembers) {
		return nil, &FormatError{eocdOff, fmt.Sprintf("%d members, more than %d", count, lim.MaxMembers)}
	}
	if cdSize > uint64(lim.MaxDirectorySize) {
		return nil, &FormatError{eocdOff, fmt.Sprintf("central directory of %d bytes, more than %d", cdSize, lim.MaxDirectorySize)}
	}
	if cdSize > uint64(eocdOff) || cdOff > uint64(eocdOff) || count > cdSize/46 {
		return nil, &FormatError{eocdOff, "central directory size out of range"}
	}
	// Data may be prefixed (self-extracting archives): offsets are then relative
	// to where the archive starts.
	base := int64(0)
	if cdOff+cdSize < uint64(eocdOff) {
		base = eocdOff - int64(cdSize) - int64(cdOff)
	} else if cdOff+cdSize > uint64(eocdOff) {
		return nil, &FormatError{eocdOff, "central directory overlaps the end record"}
	}
	cd := make([]byte, cdSize)
	start := base + int64(cdOff)
	if _, err := r.ReadAt(cd, start); err != nil {
		return nil, &FormatError{start, "reading central directory: " + err.Error()}
	}
	a.Members = make([]Member, 0, count)
	p := 0
	for i := uint64(0); i < count; i++ {
		off := start + int64(p)
		if len(cd)-p < 46 || le.Uint32(cd[p:]) != sigCentral {
			return nil, &FormatError{off, "bad central directory header"}
		}
		h := cd[p : p+46]
		n, e, c := int(le.Uint16(h[28:])), int(le.Uint16(h[30:])), int(le.Uint16(h[32:]))
		if len(cd)-p-46 < n+e+c {
			return nil, &FormatError{off, "central directory entry runs past the directory"}
		}
		m := Member{
			CreatorVersion: le.Uint16(h[4:]),
			ReaderVersion:  le.Uint16(h[6:]),
			Flags:          le.Uint16(h[8:]),
			Method:         le.Uint16(h[10:]),
			CRC32:          le.Uint32(h[16:]),
			CompressedSize: uint64(le.Uint32(h[20:])),
			Size:           uint64(le.Uint32(h[24:])),
			ExternalAttr:   le.Uint32(h[38:]),
			HeaderOffset:   int64(le.Uint32(h[42:])),
			dataOffset:     -1,
		}
		m.Modified = dosTime(le.Uint16(h[14:]), le.Uint16(h[12:]))
		m.Name = string(cd[p+46 : p+46+n])
		m.Extra = append([]byte(nil), cd[p+46+n:p+46+n+e]...)
		m.Comment = string(cd[p+46+n+e : p+46+n+e+c])
		if err := m.readExtra(off); err != nil {
			return nil, err
		}
		m.HeaderOffset += base
		if m.HeaderOffset < 0 || m.HeaderOffset > size-30 {
			return nil, &FormatError{off, fmt.Sprintf("local header offset %d out of range", m.HeaderOffset)}
		}
		if m.CompressedSize > uint64(size) {
			return nil, &FormatError{off, fmt.Sprintf("compressed size %d larger than the archive", m.CompressedSize)}
		}
		a.Members = append(a.Members, m)
		p += 46 + n + e + c
	}
	return a, nil
}

// readExtra applies the zip64 and extended-timestamp extra fields.
func (m *Member) readExtra(off int64) error {
	le := binary.LittleEndian
	x := m.Extra
	for len(x) >= 4 {
		id, n := le.Uint16(x), int(le.Uint16(x[2:]))
		if len(x)-4 < n {
			return &FormatError{off, "extra field runs past its block"}
		}
		b := x[4 : 4+n]
		switch id {
		case 0x0001: // zip64
			take := func(v *uint64) bool {
				if len(b) < 8 {
					return false
				}
				*v = le.Uint64(b)
				b = b[8:]
				return true
			}
			if m.Size == 0xffffffff && !take(&m.Size) ||
				m.CompressedSize == 0xffffffff && !take(&m.CompressedSize) {
				return &FormatError{off, "short zip64 extra field"}
			}
			if m.HeaderOffset == 0xffffffff {
				var v uint64
				if !take(&v) || v > 1<<62 {
					return &FormatError{off, "bad zip64 header offset"}
				}
				m.HeaderOffset = int64(v)
			}
		case 0x5455: // extended timestamp
			if len(b) >= 5 && b[0]&1 != 0 {
				m.Modified = time.Unix(int64(int32(le.Uint32(b[1:]))), 0).UTC()
			}
		}
		x = x[4+n:]
	}
	return nil
}

func dosTime(d, t uint16) time.Time {
	return time.Date(int(d>>9)+1980, time.Month(d>>5&0xf), int(d&0x1f),
		int(t>>11), int(t>>5&0x3f), int(t&0x1f)*2, 0, time.UTC)
}

func findEOCD(r io.ReaderAt, size int64) (int64, []byte, error) {
	if size < 22 {
		return 0, nil, &FormatError{0, "file too short for a zip end record"}
	}
	n := int64(22 + 65535)
	if n > size {
		n = size
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil {
		return 0, nil, &FormatError{size - n, "reading end record: " + err.Error()}
	}
	for i := len(buf) - 22; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) == sigEOCD {
			clen := int(binary.LittleEndian.Uint16(buf[i+20:]))
			if i+22+clen <= len(buf) {
				return size - n + int64(i), buf[i:], nil
			}
		}
	}
	return 0, nil, &FormatError{size, "no end of central directory record"}
}

// DataRange returns the offset and length of m's compressed data in the archive,
// reading its local header.
func (a *Archive) DataRange(m *Member) (int64, int64, error) {
	if m.dataOffset >= 0 {
		return m.dataOffset, int64(m.CompressedSize), nil
	}
	var h [30]byte
	if _, err := a.r.ReadAt(h[:], m.HeaderOffset); err != nil {
		return 0, 0, &FormatError{m.HeaderOffset, "reading local header: " + err.Error()}
	}
	if binary.LittleEndian.Uint32(h[:]) != sigLocal {
		return 0, 0, &FormatError{m.HeaderOffset, "bad local header signature"}
	}
	off := m.HeaderOffset + 30 + int64(binary.LittleEndian.Uint16(h[26:])) + int64(binary.LittleEndian.Uint16(h[28:]))
	if off > a.size || int64(m.CompressedSize) > a.size-off {
		return 0, 0, &FormatError{m.HeaderOffset, "member data runs past the end of the archive"}
	}
	m.dataOffset = off
	return off, int64(m.CompressedSize), nil
}

// Raw returns m's compressed data.
func (a *Archive) Raw(m *Member) (*io.SectionReader, error) {
	off, n, err := a.DataRange(m)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(a.r, off, n), nil
}

// Open returns a reader of m's decompressed content. It fails with a *FormatError
// if the content is longer or shorter than m.Size or its CRC-32 is wrong, so the
// caller can trust m.Size as a bound.
func (a *Archive) Open(m *Member) (io.Reader, error) {
	off, n, err := a.DataRange(m)
	if err != nil {
		return nil, err
	}
	raw := io.NewSectionReader(a.r, off, n)
	var rd io.Reader
	switch m.Method {
	case Store:
		rd = raw
	case Deflate:
		rd = flate.NewReader(raw)
	default:
		return nil, fmt.Errorf("%w %d", ErrMethod, m.Method)
	}
	return &checkReader{r: rd, left: int64(m.Size), crc: m.CRC32, off: off, m: m}, nil
}

// checkReader enforces the declared size and CRC.
type checkReader struct {
	r    io.Reader
	left int64
	crc  uint32
	h    uint32
	off  int64
	m    *Member
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Anything beyond the declared size is an error, not more data.
		var one [1]byte
		if n, _ := io.ReadFull(c.r, one[:]); n > 0 {
			return 0, &FormatError{c.off, fmt.Sprintf("%s: content longer than its declared size %d", c.m.Name, c.m.Size)}
		}
		if c.h != c.crc {
			return 0, &FormatError{c.off, fmt.Sprintf("%s: CRC-32 mismatch", c.m.Name)}
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.h = crc32.Update(c.h, crc32.IEEETable, p[:n])
	if err == io.EOF {
		if c.left > 0 {
			return n, &FormatError{c.off, fmt.Sprintf("%s: content shorter than its declared size %d", c.m.Name, c.m.Size)}
		}
		err = nil
	} else if err != nil {
		return n, &FormatError{c.off, fmt.Sprintf("%s: %v", c.m.Name, err)}
	}
	return n, err
}
