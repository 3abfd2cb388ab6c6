// Package tar walks tar archives as a stream, handing each member's header, the
// offset of its data in the stream and its content to a callback, with limits on
// the member count.
//
// It wraps archive/tar, which handles the ustar, PAX and GNU variants, and adds the
// byte offsets that archive/tar does not expose: errors carry the offset of the
// header that failed, and headers carry where their data starts, so a caller with
// random access to an uncompressed archive can read members without copying.
package tar

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A FormatError reports a malformed archive at a byte offset of the (decompressed)
// stream.
type FormatError struct {
	Off int64 // offset of the header block where the problem was found
	Err error
}

func (e *FormatError) Error() string { return fmt.Sprintf("tar: %v at offset %d", e.Err, e.Off) }
func (e *FormatError) Unwrap() error { return e.Err }

// ErrTooManyMembers is wrapped by the FormatError Walk returns when an archive
// has more members than Limits.MaxMembers.
var ErrTooManyMembers = errors.New("too many members")

// Limits bound what Walk accepts. Zero fields take the defaults.
type Limits struct {
	MaxMembers int // default 1<<20
}

// A Header is one member's header.
type Header struct {
	tar.Header
	Index        int   // position in the archive, from 0
	HeaderOffset int64 // offset of the member's first header block
	// Offset is where the member's data starts in the stream, or -1 when the data
	// is not stored contiguously (sparse files).
	Offset int64
}

// IsTar reports whether block, the first 512 bytes of a stream, is a tar header:
// it has the ustar magic, or its checksum is right.
func IsTar(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	if string(block[257:262]) == "ustar" {
		return true
	}
	// Old V7 archives: check the header checksum.
	sum := strings.Trim(string(block[148:156]), " \x00")
	if sum == "" {
		return false
	}
	var want int64
	for _, c := range []byte(sum) {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	var got int64
	for i, c := range block[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		got += int64(c)
	}
	return got == want && block[0] != 0
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r    io.Reader
	n    int64
	base int64 // the input's position when the walk started, for seekers
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// seekingCounter also passes seeks through, so that archive/tar skips unread
// member data without reading it.
type seekingCounter struct {
	countingReader
	s io.Seeker
}

func (c *seekingCounter) Seek(off int64, whence int) (int64, error) {
	pos, err := c.s.Seek(off, whence)
	if err == nil {
		c.n = pos - c.base
	}
	return pos - c.base, err
}

// Walk reads the archive from r and calls fn for each member in order with its
// header and a reader of its content, which is valid only during the call. fn may
// leave the content unread. An error from fn stops the walk and is returned as is;
// malformed input gives a *FormatError. Data after the end-of-archive marker is
// not read.
func Walk(ctx context.Context, r io.Reader, lim Limits, fn func(h *Header, content io.Reader) error) error {
	if lim.MaxMembers <= 0 {
		lim.MaxMembers = 1 << 20
	}
	cr := &countingReader{r: r}
	var tr *tar.Reader
	seekable := false
	if s, ok := r.(io.Seeker); ok {
		if base, err := s.Seek(0, io.SeekCurrent); err == nil {
			sc := &seekingCounter{countingReader: countingReader{r: r}, s: s}
			sc.base = base
			cr, tr, seekable = &sc.countingReader, tar.NewReader(sc), true
		}
	}
	if tr == nil {
		tr = tar.NewReader(cr)
	}
	var next int64 // where the next header starts: the end of the previous data, padded
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &FormatError{Off: next, Err: err}
		}
		if i >= lim.MaxMembers {
			return &FormatError{Off: next, Err: fmt.Errorf("%w: more than %d", ErrTooManyMembers, lim.MaxMembers)}
		}
		hdr := &Header{Header: *h, Index: i, HeaderOffset: next, Offset: cr.n}
		if isSparse(h) {
			hdr.Offset = -1
		}
		body := &bodyReader{r: tr, off: cr}
		if err := fn(hdr, body); err != nil {
			return err
		}
		// Finish the member ourselves so that a truncated body is reported at the
		// right offset rather than as a failure of the next header. A seekable
		// input is left to archive/tar, which seeks over the data.
		if !seekable {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return err
			}
		}
		if hdr.Offset >= 0 {
			end := hdr.Offset + h.Size
			next = end + (512-end%512)%512
		} else {
			next = cr.n
		}
	}
}

// bodyReader turns archive/tar's content errors into FormatErrors at the offset
// where they happened.
type bodyReader struct {
	r   io.Reader
	off *countingReader
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		var fe *FormatError
		if !errors.As(err, &fe) {
			err = &FormatError{Off: b.off.n, Err: err}
		}
	}
	return n, err
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
