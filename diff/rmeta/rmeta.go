// Package rmeta reads the parts of Rust crate metadata (the lib.rmeta of an rlib,
// or a .rmeta file) that explain why two builds differ: the format version, the
// rustc version and the strings the metadata holds, such as source paths, crate
// names and their disambiguating hashes.
//
// rustc's metadata encoding is unstable between compiler versions, so this package
// does not decode its tables. It reads the stable header and finds strings by the
// encoder's own framing: a LEB128 length, the UTF-8 bytes and the 0xC1 sentinel.
package rmeta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// Magic opens every metadata blob; the byte after it is the format version.
const Magic = "rust\x00\x00\x00"

// strSentinel ends every string in rustc's opaque encoder.
const strSentinel = 0xC1

// A FormatError reports malformed metadata at a byte offset.
type FormatError struct {
	Off int64
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("rmeta: %s at offset %d", e.Msg, e.Off) }

// Limits bound what Parse accepts. Zero fields take the defaults.
type Limits struct {
	MaxSize    int64 // the largest blob read into memory; default 256 MiB
	MaxStrings int   // strings kept; default 1<<20
}

// Metadata is what Parse found.
type Metadata struct {
	Version int    // metadata format version
	Root    uint64 // position of the crate root record
	Rustc   string // the compiler version string, as rustc wrote it
	Strings []String
	// Truncated reports that more strings were found than Limits.MaxStrings.
	Truncated bool
}

// A String is one string in the metadata and where it starts.
type String struct {
	Off int64
	S   string
}

// IsRmeta reports whether prefix starts like crate metadata.
func IsRmeta(prefix []byte) bool {
	return len(prefix) > len(Magic) && bytes.HasPrefix(prefix, []byte(Magic))
}

// Parse reads size bytes of metadata from r.
func Parse(r io.ReaderAt, size int64, lim Limits) (*Metadata, error) {
	if lim.MaxSize <= 0 {
		lim.MaxSize = 256 << 20
	}
	if lim.MaxStrings <= 0 {
		lim.MaxStrings = 1 << 20
	}
	if size > lim.MaxSize {
		return nil, &FormatError{0, fmt.Sprintf("metadata of %d bytes, more than %d", size, lim.MaxSize)}
	}
	if size < int64(len(Magic))+1 {
		return nil, &FormatError{0, "too short for a metadata header"}
	}
	data := make([]byte, size)
	if n, err := r.ReadAt(data, 0); n < len(data) {
		return nil, &FormatError{int64(n), fmt.Sprintf("reading metadata: %v", err)}
	}
	if !bytes.HasPrefix(data, []byte(Magic)) {
		return nil, &FormatError{0, "bad magic"}
	}
	m := &Metadata{Version: int(data[len(Magic)])}
	p := len(Magic) + 1
	// Since format version 8 the root position is a little-endian u64; older
	// versions used a big-endian u32.
	if m.Version >= 8 && len(data) >= p+8 {
		m.Root = binary.LittleEndian.Uint64(data[p:])
		p += 8
	} else if len(data) >= p+4 {
		m.Root = uint64(binary.BigEndian.Uint32(data[p:]))
		p += 4
	}
	if m.Root > uint64(size) {
		return nil, &FormatError{int64(len(Magic) + 1), fmt.Sprintf("root position %d past the end", m.Root)}
	}
	if s, _, ok := stringAt(data, p); ok {
		m.Rustc = s
	}
	m.Strings, m.Truncated = scan(data, lim.MaxStrings)
	return m, nil
}

// stringAt decodes an encoder string starting at p: LEB128 length, bytes,
// sentinel. It returns the string and the offset after the sentinel.
func stringAt(data []byte, p int) (string, int, bool) {
	var n uint64
	var shift uint
	i := p
	for ; i < len(data) && i-p < 3; i++ {
		b := data[i]
		n |= uint64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			i++
			goto done
		}
	}
	return "", 0, false
done:
	if n == 0 || n > 1<<16 || uint64(len(data)-i) < n+1 {
		return "", 0, false
	}
	end := i + int(n)
	if data[end] != strSentinel {
		return "", 0, false
	}
	s := data[i:end]
	if !utf8.Valid(s) {
		return "", 0, false
	}
	for _, c := range s {
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			return "", 0, false
		}
	}
	return string(s), end + 1, true
}

// scan finds every encoder string in data: each offset where a LEB128 length,
// that many printable UTF-8 bytes and the sentinel follow.
func scan(data []byte, max int) ([]String, bool) {
	var out []String
	for p := 0; p < len(data); p++ {
		s, end, ok := stringAt(data, p)
		if !ok {
			continue
		}
		// A length byte that is itself printable can make a longer match that
		// ends at the same sentinel; the innermost match is the real string.
		for {
			s2, end2, ok2 := stringAt(data, p+1)
			if !ok2 || end2 != end {
				break
			}
			s, p = s2, p+1
		}
		if len(out) >= max {
			return out, true
		}
		out = append(out, String{Off: int64(p), S: s})
		p = end - 1
	}
	return out, false
}
