// Package compress opens the compressed streams reprobox looks inside (gzip, xz,
// zstd and bzip2) with bounds on the memory a decoder may allocate and on the
// bytes it may produce, so that a decompression bomb is an error, not an outage.
//
// gzip is inflated by the system's zlib when built with cgo (it needs zlib's
// header and library: Debian's zlib1g-dev), and by klauspost/compress without.
package compress

import (
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Formats, as returned by Detect.
const (
	Gzip  = "gzip"
	XZ    = "xz"
	Zstd  = "zstd"
	Bzip2 = "bzip2"
)

// Ext returns the usual file name extension of a format, without the dot.
func Ext(format string) string {
	switch format {
	case Gzip:
		return "gz"
	case Zstd:
		return "zst"
	case Bzip2:
		return "bz2"
	}
	return format
}

// ErrTooLarge is wrapped by the error a reader returns when its output would
// exceed Limits.MaxOutput, or a header asks for more memory than Limits.MaxWindow.
var ErrTooLarge = errors.New("exceeds the decompression limit")

// A FormatError reports a corrupt or over-limit stream. Off is the number of
// compressed bytes consumed when the problem was found: the problem lies at or
// before it.
type FormatError struct {
	Format string
	Off    int64
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: %v at compressed offset %d", e.Format, e.Err, e.Off)
}
func (e *FormatError) Unwrap() error { return e.Err }

// Limits bound a decoder. Zero fields take the defaults.
type Limits struct {
	MaxOutput int64 // bytes a stream may decompress to; default 64 GiB
	MaxWindow int64 // the largest xz dictionary or zstd window accepted; default 256 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxOutput <= 0 {
		l.MaxOutput = 64 << 30
	}
	if l.MaxWindow <= 0 {
		l.MaxWindow = 256 << 20
	}
	return l
}

// Info is what a stream's header says about its content.
type Info struct {
	// gzip only:
	Name    string
	Comment string
	ModTime time.Time // zero when unset
	OS      byte
	Extra   []byte
	// Size is the decompressed size when the format records it (xz), else -1.
	Size int64
}

// Detect returns the format of a stream from its first bytes, or "".
func Detect(prefix []byte) string {
	switch {
	case bytes.HasPrefix(prefix, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(prefix, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case bytes.HasPrefix(prefix, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case len(prefix) >= 10 && bytes.HasPrefix(prefix, []byte("BZh")) && prefix[3] >= '1' && prefix[3] <= '9' &&
		(bytes.Equal(prefix[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
			bytes.Equal(prefix[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})):
		return Bzip2
	}
	return ""
}

// Open returns a reader of the decompressed content of the size-byte stream in r.
// Errors from the reader are *FormatErrors.
func Open(format string, r io.ReaderAt, size int64, lim Limits) (io.ReadCloser, *Info, error) {
	lim = lim.withDefaults()
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	info := &Info{Size: -1}
	fail := func(err error) (io.ReadCloser, *Info, error) {
		var fe *FormatError
		if errors.As(err, &fe) {
			return nil, nil, err
		}
		return nil, nil, &FormatError{Format: format, Off: cr.n, Err: err}
	}
	var (
		rd    io.Reader
		close func()
		off   = func() int64 { return cr.n } // compressed bytes consumed
	)
	switch format {
	case Gzip:
		z, err := openGzip(cr, info)
		if err != nil {
			return nil, nil, &FormatError{Format: format, Off: z.offset(), Err: err}
		}
		rd, close, off = z, func() { z.Close() }, z.offset
	case XZ:
		n, err := CheckXZ(r, size, lim.MaxWindow)
		if err != nil {
			return fail(err)
		}
		info.Size = n
		if n > lim.MaxOutput {
			return fail(fmt.Errorf("%w: %d bytes declared, limit %d", ErrTooLarge, n, lim.MaxOutput))
		}
		z, err := xz.ReaderConfig{}.NewReader(cr)
		if err != nil {
			return fail(err)
		}
		rd = z
	case Zstd:
		z, err := zstd.NewReader(cr,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(lim.MaxWindow)),
			zstd.WithDecoderMaxMemory(uint64(lim.MaxOutput)))
		if err != nil {
			return fail(err)
		}
		rd, close = z, z.Close
	case Bzip2:
		rd = bzip2.NewReader(cr)
	default:
		return nil, nil, fmt.Errorf("compress: unknown format %q", format)
	}
	return &limitReader{r: rd, format: format, left: lim.MaxOutput, max: lim.MaxOutput, off: off, close: close}, info, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// limitReader stops a decoder at the output limit and types its errors.
type limitReader struct {
	r      io.Reader
	format string
	left   int64
	max    int64
	off    func() int64
	close  func()
	err    error
}

func (l *limitReader) Read(p []byte) (n int, err error) {
	if l.err != nil {
		return 0, l.err
	}
	defer func() {
		// Decoders of hostile input must not take the process down.
		if v := recover(); v != nil {
			n, err = 0, &FormatError{Format: l.format, Off: l.off(), Err: fmt.Errorf("decoder panic: %v", v)}
			l.err = err
		}
	}()
	if l.left <= 0 {
		var one [1]byte
		if m, _ := l.r.Read(one[:]); m > 0 {
			l.err = &FormatError{Format: l.format, Off: l.off(), Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.max)}
			return 0, l.err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err = l.r.Read(p)
	l.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		var fe *FormatError
		if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			err = fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		if !errors.As(err, &fe) {
			err = &FormatError{Format: l.format, Off: l.off(), Err: err}
		}
		l.err = err
	}
	return n, err
}

func (l *limitReader) Close() error {
	if l.close != nil {
		l.close()
	}
	return nil
}
