package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/reprobox/reprobox/diff/ar"
	"github.com/reprobox/reprobox/diff/compress"
	"github.com/reprobox/reprobox/diff/elf"
	"github.com/reprobox/reprobox/diff/rmeta"
	"github.com/reprobox/reprobox/diff/tar"
	"github.com/reprobox/reprobox/diff/zip"
)

// engine holds what one comparison shares: options, labeller, worker slots and
// the memory budget.
type engine struct {
	opts Options
	lab  *labeler
	mat  matchers
	sem  chan struct{} // worker slots beyond the calling goroutine
	mem  atomic.Int64  // bytes of the memory budget left

	mu    sync.Mutex
	fatal error // an I/O failure of the inputs themselves
}

func newEngine(opts Options) *engine {
	opts = opts.withDefaults()
	e := &engine{opts: opts, lab: newLabeler(opts.Labels, opts.TimeRanges), mat: newMatchers(opts.Matchers), sem: make(chan struct{}, opts.Workers)}
	e.mem.Store(opts.MaxMemory)
	return e
}

func (e *engine) setFatal(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fatal == nil {
		e.fatal = err
	}
}

// reserve takes n bytes from the memory budget, or reports that it cannot.
func (e *engine) reserve(n int64) bool {
	for {
		cur := e.mem.Load()
		if cur < n {
			return false
		}
		if e.mem.CompareAndSwap(cur, cur-n) {
			return true
		}
	}
}

func (e *engine) release(n int64) { e.mem.Add(n) }

// A blob is content with random access.
type blob struct {
	ra   io.ReaderAt
	size int64
}

func (b blob) section(off, n int64) blob { return blob{io.NewSectionReader(b.ra, off, n), n} }

// readAll reads a blob into memory; callers bound the size first.
func (b blob) readAll() ([]byte, error) {
	buf := make([]byte, b.size)
	n, err := b.ra.ReadAt(buf, 0)
	if n == len(buf) {
		return buf, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// group runs functions on free worker slots, or inline when none is free, so that
// nested fan-out can never deadlock.
type group struct {
	e  *engine
	wg sync.WaitGroup
}

func (g *group) Go(f func()) {
	select {
	case g.e.sem <- struct{}{}:
		g.wg.Add(1)
		go func() {
			defer func() {
				<-g.e.sem
				g.wg.Done()
			}()
			f()
		}()
	default:
		f()
	}
}

func (g *group) Wait() { g.wg.Wait() }

// collector gathers child nodes from concurrent comparisons.
type collector struct {
	mu    sync.Mutex
	nodes []*Node
}

func (c *collector) add(n *Node) {
	if n == nil {
		return
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
}

// A spool holds content in memory within the budget, or in a temporary file.
type spool struct {
	e        *engine
	buf      []byte
	reserved int64
	f        *os.File
	size     int64
	pooled   bool // buf came from getBuf
}

// bufPools recycle member buffers by power-of-two capacity: streaming a large
// archive of small members would otherwise allocate its whole size, and run the
// garbage collector hundreds of times.
var bufPools [48]sync.Pool

// getBuf returns a buffer of length n with a power-of-two capacity.
func getBuf(n int64) []byte {
	c := bits.Len64(uint64(max(n, 4096) - 1))
	if v := bufPools[c].Get(); v != nil {
		return (*v.(*[]byte))[:n]
	}
	return make([]byte, n, 1<<c)
}

func putBuf(b []byte) {
	c := bits.Len64(uint64(cap(b) - 1))
	if cap(b) == 1<<c && c < len(bufPools) {
		b = b[:0]
		bufPools[c].Put(&b)
	}
}

// newPooledSpool reserves memory for and returns an in-memory spool of n bytes,
// or nil if the budget does not allow it.
func (e *engine) newPooledSpool(n int64) *spool {
	c := int64(1) << bits.Len64(uint64(max(n, 4096)-1))
	if !e.reserve(c) {
		return nil
	}
	return &spool{e: e, buf: getBuf(n), reserved: c, size: n, pooled: true}
}

var errTooLarge = errors.New("content larger than the limit")

// newSpool copies r into a spool. hint is the expected size, or -1; more than
// limit bytes is an error.
func (e *engine) newSpool(ctx context.Context, r io.Reader, hint, limit int64) (*spool, error) {
	s := &spool{e: e}
	if hint >= 0 && hint <= limit && e.reserve(hint) {
		s.reserved = hint
		s.buf = make([]byte, hint)
		if _, err := io.ReadFull(r, s.buf); err != nil {
			s.Close()
			return nil, err
		}
		s.size = hint
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			s.Close()
			return nil, fmt.Errorf("content longer than its declared %d bytes", hint)
		}
		return s, nil
	}
	const chunk = 1 << 20
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			s.Close()
			return nil, err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if s.size+int64(n) > limit {
				s.Close()
				return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, limit)
			}
			if s.f == nil && int64(len(s.buf)+n) > s.reserved {
				if e.reserve(chunk) {
					s.reserved += chunk
				} else if err := s.toFile(); err != nil {
					s.Close()
					return nil, err
				}
			}
			if s.f != nil {
				if _, werr := s.f.Write(buf[:n]); werr != nil {
					s.Close()
					return nil, werr
				}
			} else {
				s.buf = append(s.buf, buf[:n]...)
			}
			s.size += int64(n)
		}
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
}

func (s *spool) toFile() error {
	f, err := os.CreateTemp(s.e.opts.TempDir, "reprobox-diff-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // the open descriptor keeps it until Close
	if _, err := f.Write(s.buf); err != nil {
		f.Close()
		return err
	}
	s.f, s.buf = f, nil
	s.e.release(s.reserved)
	s.reserved = 0
	return nil
}

func (s *spool) blob() blob {
	if s.f != nil {
		return blob{s.f, s.size}
	}
	return blob{bytes.NewReader(s.buf), s.size}
}

func (s *spool) Close() {
	if s == nil {
		return
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if s.pooled && s.buf != nil {
		putBuf(s.buf)
	}
	s.buf = nil
	s.e.release(s.reserved)
	s.reserved = 0
}

// equal reports whether two blobs hold the same bytes, comparing chunks in
// parallel and stopping at the first difference.
func (e *engine) equal(ctx context.Context, a, b blob) (bool, error) {
	if a.size != b.size {
		return false, nil
	}
	const chunk = 4 << 20
	n := (a.size + chunk - 1) / chunk
	if n <= 1 {
		return equalRange(a, b, 0, a.size, make([]byte, a.size), make([]byte, a.size))
	}
	workers := int64(e.opts.Workers)
	if workers > n {
		workers = n
	}
	var (
		next     atomic.Int64
		differ   atomic.Bool
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ba, bb := make([]byte, chunk), make([]byte, chunk)
			for !differ.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				off := i * chunk
				l := min(chunk, a.size-off)
				eq, err := equalRange(a, b, off, l, ba, bb)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					differ.Store(true)
					return
				}
				if !eq {
					differ.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return false, firstErr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return !differ.Load(), nil
}

func equalRange(a, b blob, off, n int64, ba, bb []byte) (bool, error) {
	ba, bb = ba[:n], bb[:n]
	if err := readFull(a.ra, ba, off); err != nil {
		return false, err
	}
	if err := readFull(b.ra, bb, off); err != nil {
		return false, err
	}
	return bytes.Equal(ba, bb), nil
}

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Formats detected by sniff.
const (
	fmtEmpty  = "empty"
	fmtELF    = "elf"
	fmtAr     = "ar"
	fmtZip    = "zip"
	fmtTar    = "tar"
	fmtRmeta  = "rmeta"
	fmtText   = "text"
	fmtBinary = "binary"
)

// sniff names a blob's format from its first bytes.
func sniff(b blob) string {
	if b.size == 0 {
		return fmtEmpty
	}
	buf := make([]byte, min(b.size, 8192))
	n, _ := b.ra.ReadAt(buf, 0)
	buf = buf[:n]
	return sniffBytes(buf, b.size)
}

func sniffBytes(buf []byte, size int64) string {
	switch {
	case size == 0:
		return fmtEmpty
	case elf.IsELF(buf):
		return fmtELF
	case ar.IsArchive(buf):
		return fmtAr
	case zip.IsZip(buf):
		return fmtZip
	case rmeta.IsRmeta(buf):
		return fmtRmeta
	case compress.Detect(buf) != "":
		return compress.Detect(buf)
	case tar.IsTar(buf):
		return fmtTar
	case isText(buf, int64(len(buf)) == size):
		return fmtText
	}
	return fmtBinary
}

// isText reports whether buf looks like UTF-8 text. If whole is false, buf is a
// prefix and may end inside a character.
func isText(buf []byte, whole bool) bool {
	if bytes.IndexByte(buf, 0) >= 0 {
		return false
	}
	if !whole {
		// Drop a trailing partial character.
		for i := 0; i < utf8.UTFMax && len(buf) > 0; i++ {
			if utf8.Valid(buf) {
				break
			}
			buf = buf[:len(buf)-1]
		}
	}
	if !utf8.Valid(buf) {
		return false
	}
	ctl := 0
	for _, c := range buf {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1b {
			ctl++
		}
	}
	return ctl*100 <= len(buf)
}

// compare compares two blobs at path and returns the difference, or nil if
// they are identical.
func (e *engine) compare(ctx context.Context, path string, a, b blob, depth int) *Node {
	if ctx.Err() != nil {
		return nil
	}
	eq, err := e.equal(ctx, a, b)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		n := e.node(path, fmtBinary, Changed)
		n.n.Error = "reading: " + err.Error()
		n.n.Summary = "could not be read"
		return n.done()
	}
	if eq {
		return nil
	}
	fa, fb := sniff(a), sniff(b)
	if fa != fb {
		n := e.node(path, fa+" → "+fb, Changed)
		n.n.Summary = fmt.Sprintf("format differs: %s in A, %s in B", fa, fb)
		e.byteDiff(ctx, n, a, b)
		return n.done()
	}
	if depth > e.opts.MaxDepth {
		n := e.node(path, fa, Changed)
		n.n.Error = fmt.Sprintf("containers nested more than %d deep: not opened", e.opts.MaxDepth)
		e.byteDiff(ctx, n, a, b)
		return n.done()
	}
	node, err := e.dispatch(ctx, fa, path, a, b, depth)
	if err != nil {
		n := e.node(path, fa, Changed)
		n.n.Error = err.Error()
		e.byteDiff(ctx, n, a, b)
		return n.done()
	}
	return node
}

// dispatch runs the comparer for a format. An error means the input could not
// be parsed as that format; panics become errors.
func (e *engine) dispatch(ctx context.Context, format, path string, a, b blob, depth int) (n *Node, err error) {
	defer func() {
		if v := recover(); v != nil {
			e.opts.Logger.Debug("diff: panic", "path", path, "panic", v, "stack", string(debug.Stack()))
			n, err = nil, fmt.Errorf("internal error comparing %s: %v", format, v)
		}
	}()
	switch format {
	case fmtELF:
		return e.diffELF(ctx, path, a, b, depth)
	case fmtAr:
		return e.diffAr(ctx, path, a, b, depth)
	case fmtZip:
		return e.diffZip(ctx, path, a, b, depth)
	case fmtTar:
		return e.diffTar(ctx, path, fmtTar, tarSource{ra: &a}, tarSource{ra: &b}, depth)
	case compress.Gzip, compress.XZ, compress.Zstd, compress.Bzip2:
		return e.diffCompressed(ctx, path, format, a, b, depth)
	case fmtRmeta:
		return e.diffRmeta(ctx, path, a, b)
	case fmtText:
		return e.diffText(ctx, path, a, b)
	}
	n2 := e.node(path, format, Changed)
	e.byteDiff(ctx, n2, a, b)
	return n2.done(), nil
}

// A nodeBuilder accumulates a node's details, bounded, and its labels.
type nodeBuilder struct {
	e      *engine
	n      *Node
	labels map[string]bool
	brief  bool // byteDiff gives only its summary
}

func (e *engine) node(path, format string, kind Kind) *nodeBuilder {
	return &nodeBuilder{e: e, n: &Node{Path: path, Format: format, Kind: kind}, labels: map[string]bool{}}
}

// line adds a detail line, or counts it as omitted past the bound.
func (b *nodeBuilder) line(format string, args ...any) {
	s := format
	if len(args) > 0 {
		s = fmt.Sprintf(format, args...)
	}
	if len(b.n.Details) >= b.e.opts.MaxDetailLines {
		b.n.Omitted++
		return
	}
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	b.n.Details = append(b.n.Details, s)
}

// evidence scans differing content for labelled values.
func (b *nodeBuilder) evidence(s ...string) {
	for _, x := range s {
		b.e.lab.scan(x, b.labels)
	}
}

// lineEv adds a detail line and scans it.
func (b *nodeBuilder) lineEv(s string) {
	b.evidence(s)
	b.line("%s", s)
}

// done sorts children and labels and returns the node.
func (b *nodeBuilder) done() *Node {
	n := b.n
	sort.Slice(n.Children, func(i, j int) bool { return n.Children[i].Path < n.Children[j].Path })
	for _, l := range n.Labels {
		b.labels[l] = true
	}
	n.Labels = n.Labels[:0]
	for l := range b.labels {
		n.Labels = append(n.Labels, l)
	}
	sort.Strings(n.Labels)
	if len(n.Labels) == 0 {
		n.Labels = nil
	}
	return n
}

// join appends a member name to a path.
func join(path, name string) string {
	if path == "." || path == "" {
		return name
	}
	return path + "/" + name
}

// plural formats a count with a noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	if strings.HasSuffix(noun, "s") || strings.HasSuffix(noun, "sh") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
