//go:build cgo

// The gzip reader built with cgo: zlib's inflate, which takes less CPU than
// klauspost/compress's (see BenchmarkGunzip). Building it needs zlib's header
// and library (Debian: zlib1g-dev); CGO_ENABLED=0 builds gzip_pure.go instead.

package compress

/*
#cgo LDFLAGS: -lz
#include <stdlib.h>
#include <zlib.h>

// rb_new returns a raw-deflate (no zlib or gzip wrapper) inflate stream, or
// NULL with the zlib error in *ret.
static z_stream *rb_new(int *ret) {
	z_stream *s = calloc(1, sizeof *s);
	if (s == NULL) {
		*ret = Z_MEM_ERROR;
		return NULL;
	}
	*ret = inflateInit2(s, -15);
	if (*ret != Z_OK) {
		free(s);
		return NULL;
	}
	return s;
}

typedef struct {
	int ret;
	unsigned in_left, out_left;
} rb_result;

// rb_inflate inflates from in into out. The buffers are Go memory, so the stream
// keeps no pointer to them after the call.
static rb_result rb_inflate(z_stream *s, unsigned char *in, unsigned in_len, unsigned char *out, unsigned out_len) {
	rb_result r;
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	r.ret = inflate(s, Z_NO_FLUSH);
	r.in_left = s->avail_in;
	r.out_left = s->avail_out;
	s->next_in = Z_NULL;
	s->next_out = Z_NULL;
	return r;
}

static void rb_free(z_stream *s) {
	inflateEnd(s);
	free(s);
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"time"
	"unsafe"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// Buffer sizes of the zlib reader. Reads of at least zlibOut bytes are inflated
// straight into the caller's buffer; smaller ones (archive/tar reads 512-byte
// headers) go through an output buffer of that size, so that zlib always has
// room for its fast loop. The output buffer is small because what the caller
// does not take from it costs a copy.
const (
	zlibIn  = 256 << 10
	zlibOut = 32 << 10
)

// openGzip reads a gzip header from cr and returns a reader of the decompressed
// content of all the gzip members in cr, inflated by the system's zlib. It
// behaves as klauspost/compress's gzip.Reader: the same header checks, the same
// errors (gzip.ErrHeader, gzip.ErrChecksum, io.ErrUnexpectedEOF,
// flate.CorruptInputError), and members must follow each other to the end of
// the input. Only where deflate data is corrupt may the two differ: zlib may
// report corruption where Go's inflater, having read further, reports a
// truncation, and the offsets in flate.CorruptInputError differ.
func openGzip(cr *countingReader, info *Info) (*zlibReader, error) {
	z := &zlibReader{r: cr, in: make([]byte, zlibIn)}
	hdr, err := z.readHeader()
	if err != nil {
		return z, err
	}
	info.Name, info.Comment, info.OS, info.Extra = hdr.Name, hdr.Comment, hdr.OS, hdr.Extra
	if !hdr.ModTime.IsZero() && hdr.ModTime.Unix() != 0 {
		info.ModTime = hdr.ModTime.UTC()
	}
	return z, nil
}

// zlibReader is a multi-member gzip reader around zlib's raw inflate. It parses
// gzip headers and trailers itself and checks the CRC-32 with hash/crc32.
type zlibReader struct {
	r       io.Reader
	in      []byte // input buffer; in[inPos:inEnd] is not consumed yet
	inPos   int
	inEnd   int
	inEOF   bool  // r returned io.EOF
	read    int64 // bytes read from r
	out     []byte
	outPos  int
	outEnd  int
	s       *C.z_stream     // allocated at the first inflate
	cleanup runtime.Cleanup // frees s if the reader is dropped unclosed
	memIn   int64           // compressed bytes of the current member's deflate data consumed
	ended   bool            // the current member's deflate data ended; its trailer is next
	digest  uint32
	size    uint32
	err     error
}

// offset returns the number of compressed bytes consumed.
func (z *zlibReader) offset() int64 { return z.read - int64(z.inEnd-z.inPos) }

func (z *zlibReader) Read(p []byte) (int, error) {
	if z.outPos < z.outEnd {
		n := copy(p, z.out[z.outPos:z.outEnd])
		z.outPos += n
		return n, nil
	}
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if z.ended {
			if z.err = z.nextMember(); z.err != nil {
				return 0, z.err
			}
			continue
		}
		dst := p
		if len(p) < zlibOut {
			if z.out == nil {
				z.out = make([]byte, zlibOut)
			}
			dst = z.out
		}
		n, err := z.inflate(dst)
		z.digest = crc32.Update(z.digest, crc32.IEEETable, dst[:n])
		z.size += uint32(n)
		z.err = err
		if n == 0 {
			if err != nil {
				return 0, err
			}
			continue // an empty member, or one ending without more output
		}
		if len(p) < zlibOut {
			z.outPos, z.outEnd = copy(p, dst[:n]), n
			return z.outPos, nil
		}
		return n, nil
	}
}

// inflate writes at least one byte to dst, unless the member's deflate data
// ends first (z.ended) or is corrupt. dst must not be empty.
func (z *zlibReader) inflate(dst []byte) (int, error) {
	if z.s == nil {
		if err := z.initStream(); err != nil {
			return 0, err
		}
	}
	dst = dst[:min(len(dst), 1<<30)]
	for {
		if z.inPos == z.inEnd && !z.inEOF {
			if err := z.fill(); err != nil {
				return 0, err
			}
			continue
		}
		var in *C.uchar
		if z.inPos < z.inEnd {
			in = (*C.uchar)(unsafe.Pointer(&z.in[z.inPos]))
		} else {
			in = (*C.uchar)(unsafe.Pointer(&z.in[0])) // zlib wants a valid pointer
		}
		res := C.rb_inflate(z.s, in, C.uint(z.inEnd-z.inPos), (*C.uchar)(unsafe.Pointer(&dst[0])), C.uint(len(dst)))
		used := z.inEnd - z.inPos - int(res.in_left)
		z.inPos += used
		z.memIn += int64(used)
		out := len(dst) - int(res.out_left)
		switch res.ret {
		case C.Z_STREAM_END:
			z.ended = true
			return out, nil
		case C.Z_OK:
			if out > 0 {
				return out, nil
			}
		case C.Z_BUF_ERROR: // no progress: more input needed
			if out > 0 {
				return out, nil
			}
			if z.inPos < z.inEnd {
				return 0, errors.New("zlib: inflate made no progress")
			}
			if z.inEOF {
				return 0, io.ErrUnexpectedEOF
			}
		case C.Z_DATA_ERROR:
			return out, flate.CorruptInputError(z.memIn)
		case C.Z_MEM_ERROR:
			return out, errors.New("zlib: out of memory")
		default:
			return out, fmt.Errorf("zlib: inflate returned %d", int(res.ret))
		}
	}
}

func (z *zlibReader) initStream() error {
	var ret C.int
	s := C.rb_new(&ret)
	if s == nil {
		return fmt.Errorf("zlib: inflateInit2 returned %d", int(ret))
	}
	z.s = s
	z.cleanup = runtime.AddCleanup(z, func(s *C.z_stream) { C.rb_free(s) }, s)
	return nil
}

// nextMember checks the trailer of the member that ended and reads the next
// member's header; io.EOF means there is none.
func (z *zlibReader) nextMember() error {
	var buf [8]byte
	if err := z.readFull(buf[:]); err != nil {
		return noEOF(err)
	}
	if binary.LittleEndian.Uint32(buf[:4]) != z.digest || binary.LittleEndian.Uint32(buf[4:]) != z.size {
		return gzip.ErrChecksum
	}
	z.digest, z.size = 0, 0
	if _, err := z.readHeader(); err != nil {
		return err
	}
	return nil
}

func (z *zlibReader) Close() error {
	if z.s != nil {
		z.cleanup.Stop()
		C.rb_free(z.s)
		z.s = nil
	}
	if z.err == nil {
		z.err = errors.New("gzip: read after Close")
	}
	z.outPos, z.outEnd = 0, 0
	return nil
}

// fill reads more input into z.in, keeping the unconsumed bytes.
func (z *zlibReader) fill() error {
	if z.inPos > 0 {
		z.inEnd = copy(z.in, z.in[z.inPos:z.inEnd])
		z.inPos = 0
	}
	for range 100 {
		n, err := z.r.Read(z.in[z.inEnd:])
		z.inEnd += n
		z.read += int64(n)
		if errors.Is(err, io.EOF) {
			z.inEOF = true
			return nil
		}
		if err != nil || n > 0 {
			return err
		}
	}
	return io.ErrNoProgress
}

func (z *zlibReader) readByte() (byte, error) {
	for z.inPos == z.inEnd {
		if z.inEOF {
			return 0, io.EOF
		}
		if err := z.fill(); err != nil {
			return 0, err
		}
	}
	c := z.in[z.inPos]
	z.inPos++
	return c, nil
}

// readFull is io.ReadFull from the buffered input.
func (z *zlibReader) readFull(p []byte) error {
	n := 0
	for n < len(p) {
		if z.inPos == z.inEnd {
			if z.inEOF {
				if n == 0 {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			if err := z.fill(); err != nil {
				return err
			}
			continue
		}
		m := copy(p[n:], z.in[z.inPos:z.inEnd])
		z.inPos += m
		n += m
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// The gzip header flags (RFC 1952, section 2.3.1).
const (
	flagHdrCrc  = 1 << 1
	flagExtra   = 1 << 2
	flagName    = 1 << 3
	flagComment = 1 << 4
)

// readHeader reads a member's header as klauspost/compress's gzip.Reader does,
// with the same errors, and resets the inflate state for the member's data.
func (z *zlibReader) readHeader() (gzip.Header, error) {
	var hdr gzip.Header
	var buf [10]byte
	if err := z.readFull(buf[:]); err != nil {
		// Zero or more members: io.EOF here is the clean end.
		return hdr, err
	}
	if buf[0] != 0x1f || buf[1] != 0x8b || buf[2] != 8 {
		return hdr, gzip.ErrHeader
	}
	flg := buf[3]
	hdr.ModTime = time.Unix(int64(binary.LittleEndian.Uint32(buf[4:8])), 0)
	hdr.OS = buf[9]
	digest := crc32.ChecksumIEEE(buf[:])
	if flg&flagExtra != 0 {
		if err := z.readFull(buf[:2]); err != nil {
			return hdr, noEOF(err)
		}
		digest = crc32.Update(digest, crc32.IEEETable, buf[:2])
		data := make([]byte, binary.LittleEndian.Uint16(buf[:2]))
		if err := z.readFull(data); err != nil {
			return hdr, noEOF(err)
		}
		digest = crc32.Update(digest, crc32.IEEETable, data)
		hdr.Extra = data
	}
	var err error
	if flg&flagName != 0 {
		if hdr.Name, digest, err = z.readString(digest); err != nil {
			return hdr, err
		}
	}
	if flg&flagComment != 0 {
		if hdr.Comment, digest, err = z.readString(digest); err != nil {
			return hdr, err
		}
	}
	if flg&flagHdrCrc != 0 {
		if err := z.readFull(buf[:2]); err != nil {
			return hdr, noEOF(err)
		}
		if binary.LittleEndian.Uint16(buf[:2]) != uint16(digest) {
			return hdr, gzip.ErrHeader
		}
	}
	// Reserved FLG bits must be zero.
	if flg>>5 != 0 {
		return hdr, gzip.ErrHeader
	}
	z.digest, z.size, z.ended, z.memIn = 0, 0, false, 0
	if z.s != nil {
		if ret := C.inflateReset(z.s); ret != C.Z_OK {
			return hdr, fmt.Errorf("zlib: inflateReset returned %d", int(ret))
		}
	}
	return hdr, nil
}

// readString reads a NUL-terminated ISO 8859-1 string of at most 511 bytes, as
// UTF-8, and adds its bytes to digest. An input that ends inside the string
// gives io.EOF, as in klauspost/compress.
func (z *zlibReader) readString(digest uint32) (string, uint32, error) {
	var buf [512]byte
	needConv := false
	for i := range buf {
		c, err := z.readByte()
		if err != nil {
			return "", digest, err
		}
		buf[i] = c
		if c > 0x7f {
			needConv = true
		}
		if c == 0 {
			digest = crc32.Update(digest, crc32.IEEETable, buf[:i+1])
			if needConv {
				s := make([]rune, 0, i)
				for _, v := range buf[:i] {
					s = append(s, rune(v))
				}
				return string(s), digest, nil
			}
			return string(buf[:i]), digest, nil
		}
	}
	return "", digest, gzip.ErrHeader
}
