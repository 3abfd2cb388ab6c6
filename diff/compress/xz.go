package compress

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

var (
	xzMagic  = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	xzFooter = []byte{'Y', 'Z'}
)

// maxXZIndex bounds the index of one xz stream read into memory.
const maxXZIndex = 64 << 20

// CheckXZ reads the indexes of the xz file in r from its end, and the header of
// every block they point to, without decompressing anything. It returns the total
// decompressed size, and an error wrapping ErrTooLarge if any block asks for a
// dictionary larger than maxDict. This is what lets Open refuse a hostile header
// before the decoder allocates the dictionary it names.
func CheckXZ(r io.ReaderAt, size, maxDict int64) (int64, error) {
	fail := func(off int64, format string, args ...any) (int64, error) {
		return 0, &FormatError{Format: XZ, Off: off, Err: fmt.Errorf(format, args...)}
	}
	var total int64
	end := size
	for streams := 0; end > 0; streams++ {
		// Stream padding: zero bytes, in multiples of four, between streams.
		var w [4]byte
		for end >= 4 {
			if _, err := r.ReadAt(w[:], end-4); err != nil {
				return fail(end-4, "reading: %v", err)
			}
			if w != [4]byte{} {
				break
			}
			end -= 4
		}
		if end == 0 && streams > 0 {
			break
		}
		if end < 24 {
			return fail(end, "truncated stream")
		}
		var foot [12]byte
		if _, err := r.ReadAt(foot[:], end-12); err != nil {
			return fail(end-12, "reading footer: %v", err)
		}
		if !bytes.Equal(foot[10:], xzFooter) {
			return fail(end-12, "bad stream footer")
		}
		indexSize := (int64(binary.LittleEndian.Uint32(foot[4:])) + 1) * 4
		indexOff := end - 12 - indexSize
		if indexSize > maxXZIndex || indexOff < 12 {
			return fail(end-12, "index size %d out of range", indexSize)
		}
		index := make([]byte, indexSize)
		if _, err := r.ReadAt(index, indexOff); err != nil {
			return fail(indexOff, "reading index: %v", err)
		}
		if index[0] != 0 {
			return fail(indexOff, "bad index indicator")
		}
		p := 1
		n, ok := vli(index, &p)
		if !ok || n > uint64(indexSize)/2 {
			return fail(indexOff, "bad index record count")
		}
		type block struct{ padded, unpadded, size int64 }
		blocks := make([]block, 0, n)
		var blocksSize int64
		for i := uint64(0); i < n; i++ {
			u, ok1 := vli(index, &p)
			s, ok2 := vli(index, &p)
			if !ok1 || !ok2 || u < 5 || u > uint64(size) || s > 1<<62 {
				return fail(indexOff+int64(p), "bad index record")
			}
			b := block{unpadded: int64(u), padded: (int64(u) + 3) &^ 3, size: int64(s)}
			blocks = append(blocks, b)
			blocksSize += b.padded
			if blocksSize > size {
				return fail(indexOff+int64(p), "blocks larger than the file")
			}
			total += b.size
			if total < 0 || total > 1<<62 {
				return fail(indexOff+int64(p), "decompressed size overflows")
			}
		}
		start := indexOff - blocksSize - 12
		if start < 0 {
			return fail(indexOff, "index describes more data than precedes it")
		}
		var head [12]byte
		if _, err := r.ReadAt(head[:], start); err != nil || !bytes.Equal(head[:6], xzMagic) {
			return fail(start, "bad stream header")
		}
		off := start + 12
		for _, b := range blocks {
			if err := checkXZBlock(r, off, b.unpadded, maxDict); err != nil {
				return 0, err
			}
			off += b.padded
		}
		end = start
	}
	return total, nil
}

// checkXZBlock reads one block header and checks its LZMA2 dictionary size.
func checkXZBlock(r io.ReaderAt, off, unpadded, maxDict int64) error {
	fail := func(at int64, format string, args ...any) error {
		return &FormatError{Format: XZ, Off: at, Err: fmt.Errorf(format, args...)}
	}
	var b0 [1]byte
	if _, err := r.ReadAt(b0[:], off); err != nil {
		return fail(off, "reading block header: %v", err)
	}
	hsize := (int64(b0[0]) + 1) * 4
	if b0[0] == 0 || hsize > unpadded {
		return fail(off, "bad block header size")
	}
	h := make([]byte, hsize)
	if _, err := r.ReadAt(h, off); err != nil {
		return fail(off, "reading block header: %v", err)
	}
	flags := h[1]
	p := 2
	if flags&0x40 != 0 {
		if _, ok := vli(h, &p); !ok {
			return fail(off, "bad compressed size")
		}
	}
	if flags&0x80 != 0 {
		if _, ok := vli(h, &p); !ok {
			return fail(off, "bad uncompressed size")
		}
	}
	for i := 0; i < int(flags&3)+1; i++ {
		id, ok1 := vli(h, &p)
		np, ok2 := vli(h, &p)
		if !ok1 || !ok2 || np > uint64(len(h)-p) {
			return fail(off, "bad filter flags")
		}
		if id == 0x21 { // LZMA2
			if np != 1 {
				return fail(off, "bad LZMA2 properties")
			}
			d := dictSize(h[p])
			if d < 0 {
				return fail(off+int64(p), "bad LZMA2 dictionary size")
			}
			if d > maxDict {
				return &FormatError{Format: XZ, Off: off + int64(p),
					Err: fmt.Errorf("%w: dictionary of %d bytes, limit %d", ErrTooLarge, d, maxDict)}
			}
		}
		p += int(np)
	}
	return nil
}

func dictSize(c byte) int64 {
	switch {
	case c > 40:
		return -1
	case c == 40:
		return 1<<32 - 1
	}
	return int64(2|c&1) << (c/2 + 11)
}

// vli decodes an xz variable-length integer at *p.
func vli(b []byte, p *int) (uint64, bool) {
	var v uint64
	for i := 0; i < 9; i++ {
		if *p >= len(b) {
			return 0, false
		}
		c := b[*p]
		*p++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, !(i > 0 && c == 0)
		}
	}
	return 0, false
}
