package diff

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	stdtar "archive/tar"

	"github.com/reprobox/reprobox/diff/ar"
	"github.com/reprobox/reprobox/diff/compress"
	"github.com/reprobox/reprobox/diff/elf"
	"github.com/reprobox/reprobox/diff/tar"
	"github.com/reprobox/reprobox/diff/zip"
)

// A tarSource is one side of a tar comparison: an uncompressed archive with
// random access, or a function that opens the decompressed stream (again).
type tarSource struct {
	ra   *blob
	open func() (io.ReadCloser, error)
}

func (s tarSource) stream() (io.ReadCloser, error) {
	if s.ra != nil {
		return io.NopCloser(io.NewSectionReader(s.ra.ra, 0, s.ra.size)), nil
	}
	return s.open()
}

// A tarEntry is a member seen in the first pass over a tar stream.
type tarEntry struct {
	h    *tar.Header
	sum  []byte
	mu   sync.Mutex
	data *spool // content kept in memory, or spooled in the second pass
}

func (t *tarEntry) takeData() *spool {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.data
	t.data = nil
	return d
}

func (t *tarEntry) setData(s *spool) {
	t.mu.Lock()
	t.data = s
	t.mu.Unlock()
}

// isRegular reports whether a member has content (archive/tar reports the old
// '\x00' type as TypeReg).
func isRegular(h *stdtar.Header) bool {
	return h.Typeflag == stdtar.TypeReg || h.Typeflag == stdtar.TypeGNUSparse || h.Typeflag == stdtar.TypeCont
}

// errStopWalk ends a walk early once everything wanted was read.
var errStopWalk = errors.New("stop walk")

// walkTar is the first pass over one side. Stream members up to keepMax bytes
// are kept in memory when the budget allows, and compared exactly as they pair
// up; larger ones are hashed, so that most differing members need no second
// pass. Entries are sent as they are read.
func (e *engine) walkTar(ctx context.Context, src tarSource, out chan<- *tarEntry) error {
	defer close(out)
	r, err := src.stream()
	if err != nil {
		return err
	}
	defer r.Close()
	stream := src.ra == nil
	var in io.Reader = r
	if !stream {
		in = io.NewSectionReader(src.ra.ra, 0, src.ra.size)
	}
	keepMax := e.opts.MaxMemory / 16
	return tar.Walk(ctx, in, tar.Limits{MaxMembers: e.opts.MaxMembers}, func(h *tar.Header, body io.Reader) error {
		ent := &tarEntry{h: h}
		if stream && isRegular(&h.Header) {
			var sp *spool
			if h.Size >= 0 && h.Size <= keepMax {
				sp = e.newPooledSpool(h.Size)
			}
			if sp != nil {
				if _, err := io.ReadFull(body, sp.buf); err != nil {
					sp.Close()
					return err
				}
				ent.data = sp
			} else {
				hs := sha256.New()
				if _, err := io.Copy(hs, body); err != nil {
					return err
				}
				ent.sum = hs.Sum(nil)
			}
		}
		select {
		case out <- ent:
			return nil
		case <-ctx.Done():
			ent.takeData().Close()
			return ctx.Err()
		}
	})
}

// sameContent reports whether two first-pass entries are known to hold the same
// content: both kept and byte-equal, or both hashed with equal digests.
func sameContent(x, y *tarEntry) bool {
	if x.h.Size != y.h.Size {
		return false
	}
	if x.sum != nil && y.sum != nil {
		return bytes.Equal(x.sum, y.sum)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	y.mu.Lock()
	defer y.mu.Unlock()
	return x.data != nil && y.data != nil && bytes.Equal(x.data.buf, y.data.buf)
}

// extractTar is the second pass over a stream: it spools the members at the
// wanted indexes.
func (e *engine) extractTar(ctx context.Context, src tarSource, want map[int]*tarEntry) error {
	if len(want) == 0 {
		return nil
	}
	r, err := src.stream()
	if err != nil {
		return err
	}
	defer r.Close()
	left := len(want)
	err = tar.Walk(ctx, r, tar.Limits{MaxMembers: e.opts.MaxMembers}, func(h *tar.Header, body io.Reader) error {
		ent, ok := want[h.Index]
		if !ok {
			return nil
		}
		sp, err := e.newSpool(ctx, body, h.Size, e.opts.MaxExpand)
		if err != nil {
			return err
		}
		ent.setData(sp)
		left--
		if left == 0 {
			return errStopWalk
		}
		return nil
	})
	if errors.Is(err, errStopWalk) {
		return nil
	}
	return err
}

// diffTar compares two tar archives member by member.
func (e *engine) diffTar(ctx context.Context, path, format string, sa, sb tarSource, depth int) (*Node, error) {
	var (
		chA, chB     = make(chan *tarEntry, 16), make(chan *tarEntry, 16)
		errA, errB   error
		wg           sync.WaitGroup
		listA, listB []*tarEntry
	)
	wg.Add(2)
	go func() { defer wg.Done(); errA = e.walkTar(ctx, sa, chA) }()
	go func() { defer wg.Done(); errB = e.walkTar(ctx, sb, chB) }()
	// Pair members as they arrive, and free the kept content of equal pairs at
	// once: with archives in the same order, memory stays small. Equal pairs
	// get a shared marker digest.
	pendA, pendB := map[string]*tarEntry{}, map[string]*tarEntry{}
	twins := 0
	match := func(x *tarEntry, other, mine map[string]*tarEntry) {
		name := x.h.Name
		if y, ok := other[name]; ok {
			delete(other, name)
			if x.sum == nil && y.sum == nil && sameContent(x, y) {
				twins++
				x.sum = []byte(fmt.Sprintf("equal #%d", twins))
				y.sum = x.sum
				x.takeData().Close()
				y.takeData().Close()
			}
			return
		}
		if _, dup := mine[name]; !dup {
			mine[name] = x
		}
	}
	for a, b := chA, chB; a != nil || b != nil; {
		select {
		case x, ok := <-a:
			if !ok {
				a = nil
				continue
			}
			listA = append(listA, x)
			match(x, pendB, pendA)
		case y, ok := <-b:
			if !ok {
				b = nil
				continue
			}
			listB = append(listB, y)
			match(y, pendA, pendB)
		}
	}
	wg.Wait()
	defer func() {
		for _, l := range [][]*tarEntry{listA, listB} {
			for _, t := range l {
				t.takeData().Close()
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Both sides unreadable from the start: not a tar we can compare.
	if errA != nil && len(listA) == 0 || errB != nil && len(listB) == 0 {
		return nil, firstErr("in A: ", errA, "in B: ", errB)
	}
	ma, mb := e.tarMembers(listA, sa), e.tarMembers(listB, sb)
	p := pairMembers(ma, mb)

	// Second pass for differing stream members whose content was not kept.
	wantA, wantB := map[int]*tarEntry{}, map[int]*tarEntry{}
	for _, pr := range p.pairs {
		x, y := listA[pr[0]], listB[pr[1]]
		if ma[pr[0]].kind != "file" || mb[pr[1]].kind != "file" || sameContent(x, y) {
			continue
		}
		if sa.ra == nil && x.data == nil {
			wantA[x.h.Index] = x
		}
		if sb.ra == nil && y.data == nil {
			wantB[y.h.Index] = y
		}
	}
	var xa, xb error
	wg.Add(2)
	go func() { defer wg.Done(); xa = e.extractTar(ctx, sa, wantA) }()
	go func() { defer wg.Done(); xb = e.extractTar(ctx, sb, wantB) }()
	wg.Wait()

	n := e.node(path, format, Changed)
	if errA != nil || errB != nil {
		n.n.Error = firstErr("in A: ", errA, "in B: ", errB).Error()
	} else if xa != nil || xb != nil {
		n.n.Error = firstErr("in A (second pass): ", xa, "in B (second pass): ", xb).Error()
	}
	st := e.compareMembers(ctx, n, path, ma, mb, p, true, depth)
	if st.empty() && len(n.n.Details) == 0 && n.n.Error == "" {
		if sa.ra == nil && sb.ra == nil {
			if eq, err := streamsEqual(ctx, sa, sb); err == nil && eq {
				return nil, nil // identical streams; the caller explains the outer difference
			}
		}
		n.n.Summary = "archive bytes differ, but every member's content and header fields are equal"
		n.line("the difference is in header encoding, padding or the end-of-archive blocks")
		if sa.ra != nil && sb.ra != nil {
			e.byteDiff(ctx, n, *sa.ra, *sb.ra)
		}
		return n.done(), nil
	}
	n.n.Summary = st.summary("member")
	if n.n.Summary == "" {
		n.n.Summary = "member order differs"
	}
	return n.done(), nil
}

// streamsEqual compares two tar streams byte by byte.
func streamsEqual(ctx context.Context, sa, sb tarSource) (bool, error) {
	ra, err := sa.stream()
	if err != nil {
		return false, err
	}
	defer ra.Close()
	rb, err := sb.stream()
	if err != nil {
		return false, err
	}
	defer rb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for ctx.Err() == nil {
		na, ea := io.ReadFull(ra, ba)
		nb, eb := io.ReadFull(rb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		// ReadFull returns these exact values, unwrapped.
		if errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF) {
			return errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF), nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
	return false, ctx.Err()
}

func firstErr(pa string, a error, pb string, b error) error {
	switch {
	case a != nil && b != nil:
		return fmt.Errorf("%s%v; %s%v", pa, a, pb, b)
	case a != nil:
		return fmt.Errorf("%s%w", pa, a)
	case b != nil:
		return fmt.Errorf("%s%w", pb, b)
	}
	return nil
}

// tarMembers converts entries to members.
func (e *engine) tarMembers(list []*tarEntry, src tarSource) []member {
	out := make([]member, len(list))
	for i, t := range list {
		h := t.h
		m := member{name: tarName(h.Name), size: h.Size, sum: t.sum}
		switch h.Typeflag {
		case stdtar.TypeReg, stdtar.TypeGNUSparse, stdtar.TypeCont:
			m.kind = "file"
		case stdtar.TypeDir:
			m.kind, m.size = "dir", 0
		case stdtar.TypeSymlink:
			m.kind = "symlink"
		case stdtar.TypeLink:
			m.kind = "hardlink"
		case stdtar.TypeChar, stdtar.TypeBlock:
			m.kind = "device"
		case stdtar.TypeFifo:
			m.kind = "fifo"
		default:
			m.kind = fmt.Sprintf("other (type %q)", h.Typeflag)
		}
		m.meta = []kv{
			{key: "mode", val: fmt.Sprintf("%04o", h.Mode&0o7777)},
			{key: "owner", val: fmt.Sprintf("%d:%d", h.Uid, h.Gid)},
			{key: "owner names", val: h.Uname + ":" + h.Gname},
			timeKV("mtime", h.ModTime),
		}
		if h.Linkname != "" {
			m.meta = append(m.meta, kv{key: "link target", val: h.Linkname})
		}
		if m.kind == "device" {
			m.meta = append(m.meta, kv{key: "device", val: fmt.Sprintf("%d,%d", h.Devmajor, h.Devminor)})
		}
		if !h.AccessTime.IsZero() {
			m.meta = append(m.meta, timeKV("atime", h.AccessTime))
		}
		if !h.ChangeTime.IsZero() {
			m.meta = append(m.meta, timeKV("ctime", h.ChangeTime))
		}
		m.meta = append(m.meta, kv{key: "header format", val: h.Format.String()})
		var keys []string
		for k := range h.PAXRecords {
			switch k {
			case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.meta = append(m.meta, kv{key: "pax " + k, val: h.PAXRecords[k]})
		}
		if m.kind == "file" {
			t, h := t, h
			if src.ra != nil && h.Offset >= 0 {
				ra := *src.ra
				m.content = func(context.Context) (blob, func(), error) {
					return ra.section(h.Offset, h.Size), func() {}, nil
				}
			} else {
				m.content = func(context.Context) (blob, func(), error) {
					sp := t.takeData()
					if sp == nil {
						return blob{}, nil, errors.New("content not available (second pass failed)")
					}
					return sp.blob(), sp.Close, nil
				}
			}
		}
		out[i] = m
	}
	return out
}

// tarName cleans a member name for paths: no leading "./", no trailing "/".
func tarName(s string) string {
	s = strings.TrimPrefix(s, "./")
	s = strings.TrimSuffix(s, "/")
	if s == "" || s == "." {
		return "."
	}
	return s
}

// diffCompressed compares two compressed streams by their content, and their
// headers.
func (e *engine) diffCompressed(ctx context.Context, path, format string, a, b blob, depth int) (*Node, error) {
	lim := compress.Limits{MaxOutput: e.opts.MaxExpand}
	ra, ia, err := compress.Open(format, a.ra, a.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in A: %w", err)
	}
	defer ra.Close()
	rb, ib, err := compress.Open(format, b.ra, b.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in B: %w", err)
	}
	defer rb.Close()
	// Header fields, shown on whatever node results.
	hdr := e.node(path, format, Metadata)
	var fields []kv
	pair := func(key, va, vb string) {
		if va != vb {
			fields = append(fields, kv{key: key})
			hdr.lineEv(fmt.Sprintf("%s header %s: %s → %s", format, key, orNone(va), orNone(vb)))
		}
	}
	pair("name", ia.Name, ib.Name)
	pair("comment", ia.Comment, ib.Comment)
	if !ia.ModTime.Equal(ib.ModTime) {
		fields = append(fields, kv{key: "mtime"})
		hdr.line("%s header mtime: %s → %s", format, fmtTime(ia.ModTime), fmtTime(ib.ModTime))
		e.lab.time(ia.ModTime, ia.ModTime, hdr.labels)
		e.lab.time(ib.ModTime, ib.ModTime, hdr.labels)
	}
	if ia.OS != ib.OS {
		fields = append(fields, kv{key: "OS"})
		hdr.line("%s header OS: %d → %d", format, ia.OS, ib.OS)
	}
	if !bytes.Equal(ia.Extra, ib.Extra) {
		fields = append(fields, kv{key: "extra"})
		hdr.line("%s header extra field: %x → %x", format, ia.Extra, ib.Extra)
	}
	hdrNode := hdr.done()

	pa, pb := bufio.NewReaderSize(ra, 64<<10), bufio.NewReaderSize(rb, 64<<10)
	ba, _ := pa.Peek(512)
	bb, _ := pb.Peek(512)
	ext := compress.Ext(format)
	var inner *Node
	if tar.IsTar(ba) && tar.IsTar(bb) {
		reopen := func(x blob) tarSource {
			return tarSource{open: func() (io.ReadCloser, error) {
				r, _, err := compress.Open(format, x.ra, x.size, lim)
				return r, err
			}}
		}
		inner, err = e.diffTar(ctx, path, "tar."+ext, reopen(a), reopen(b), depth)
		if err != nil {
			return nil, err
		}
	} else {
		sa, err := e.newSpool(ctx, pa, -1, e.opts.MaxExpand)
		if err != nil {
			return nil, fmt.Errorf("in A: %w", err)
		}
		defer sa.Close()
		sb, err := e.newSpool(ctx, pb, -1, e.opts.MaxExpand)
		if err != nil {
			return nil, fmt.Errorf("in B: %w", err)
		}
		defer sb.Close()
		inner = e.compare(ctx, path, sa.blob(), sb.blob(), depth+1)
		if inner != nil {
			inner.Format += "." + ext
		}
	}
	if inner == nil {
		// Same content: the difference is in the compressed encoding.
		n := e.node(path, format, Changed)
		n.n.Details = hdrNode.Details
		n.n.Labels = hdrNode.Labels
		if len(fields) > 0 && len(fields) == len(hdrNode.Details) {
			n.n.Kind = Metadata
		}
		n.n.Summary = "decompressed content is identical; the compressed bytes differ"
		if len(hdrNode.Details) > 0 {
			n.n.Summary += " in the header"
		} else {
			n.line("compression level, block size or encoder differ")
			e.byteDiff(ctx, n, a, b)
			n.n.Summary = "decompressed content is identical; the compressed encoding differs"
		}
		return n.done(), nil
	}
	if len(hdrNode.Details) > 0 {
		inner.Details = append(hdrNode.Details, inner.Details...)
		inner.Labels = mergeLabels(inner.Labels, hdrNode.Labels)
		inner.Summary += "; " + format + " header differs"
	}
	return inner, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

// diffAr compares two ar archives; an archive holding lib.rmeta is an rlib.
func (e *engine) diffAr(ctx context.Context, path string, a, b blob, depth int) (*Node, error) {
	lim := ar.Limits{MaxMembers: e.opts.MaxMembers}
	la, err := ar.Read(a.ra, a.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in A: %w", err)
	}
	lb, err := ar.Read(b.ra, b.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in B: %w", err)
	}
	format := "ar"
	for _, m := range append(la, lb...) {
		if m.Name == "lib.rmeta" {
			format = "rlib"
		}
	}
	ma, mb := e.arMembers(a, la), e.arMembers(b, lb)
	n := e.node(path, format, Changed)
	return e.finishMembers(ctx, n, path, a, b, ma, mb, depth, "member order differs"), nil
}

// finishMembers compares the paired members of two archives under n and sums
// them up; when no member or header field differs, the archives' bytes are
// compared instead. orderOnly is the summary when only the order differs.
func (e *engine) finishMembers(ctx context.Context, n *nodeBuilder, path string, a, b blob, ma, mb []member, depth int, orderOnly string) *Node {
	st := e.compareMembers(ctx, n, path, ma, mb, pairMembers(ma, mb), true, depth)
	if st.empty() && len(n.n.Details) == 0 {
		n.n.Summary = "archive bytes differ outside member content and header fields"
		e.byteDiff(ctx, n, a, b)
		return n.done()
	}
	n.n.Summary = st.summary("member")
	if n.n.Summary == "" {
		n.n.Summary = orderOnly
	}
	return n.done()
}

func (e *engine) arMembers(arch blob, list []ar.Member) []member {
	out := make([]member, len(list))
	for i, m := range list {
		mm := member{name: m.Name, kind: "file", size: m.Size}
		mm.meta = []kv{
			timeKV("mtime", unixTime(m.ModTime)),
			{key: "owner", val: fmt.Sprintf("%d:%d", m.UID, m.GID)},
			{key: "mode", val: fmt.Sprintf("%04o", m.Mode&0o7777)},
		}
		sec := arch.section(m.Offset, m.Size)
		mm.content = func(context.Context) (blob, func(), error) { return sec, func() {}, nil }
		if m.IsSymbolTable() {
			mm.name = "[symbol table]"
			mm.meta = nil
			m := m
			mm.special = func(ctx context.Context, path string, o *member) *Node {
				ob, _, _ := o.content(ctx)
				eq, err := e.equal(ctx, sec, ob)
				if err == nil && eq {
					return nil
				}
				return e.diffArSymbols(ctx, path, arch, m, ob)
			}
		}
		out[i] = mm
	}
	return out
}

// diffArSymbols compares two archive symbol tables by their symbol names.
func (e *engine) diffArSymbols(ctx context.Context, path string, archA blob, ma ar.Member, tb blob) *Node {
	n := e.node(path, "ar-symbols", Changed)
	sa, errA := ar.Symbols(archA.ra, ma)
	sb, errB := ar.Symbols(tb.ra, ar.Member{Name: ma.Name, Offset: 0, Size: tb.size})
	if errA != nil || errB != nil {
		n.n.Error = firstErr("in A: ", errA, "in B: ", errB).Error()
		e.byteDiff(ctx, n, archA.section(ma.Offset, ma.Size), tb)
		return n.done()
	}
	names := func(l []ar.Symbol) []string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = elf.Demangle(s.Name)
		}
		return out
	}
	r, ad := stringsDiff(n, names(sa), names(sb))
	if r+ad == 0 {
		n.n.Summary = "same symbols; the member offsets they point to differ"
	} else {
		n.n.Summary = fmt.Sprintf("%d symbols removed, %d added", r, ad)
	}
	return n.done()
}

// diffZip compares two zip archives.
func (e *engine) diffZip(ctx context.Context, path string, a, b blob, depth int) (*Node, error) {
	lim := zip.Limits{MaxMembers: e.opts.MaxMembers}
	za, err := zip.Read(a.ra, a.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in A: %w", err)
	}
	zb, err := zip.Read(b.ra, b.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in B: %w", err)
	}
	n := e.node(path, fmtZip, Changed)
	if za.Comment != zb.Comment {
		n.lineEv(fmt.Sprintf("archive comment: %q → %q", za.Comment, zb.Comment))
	}
	ma, mb := e.zipMembers(za), e.zipMembers(zb)
	return e.finishMembers(ctx, n, path, a, b, ma, mb, depth, "archive comment or member order differs"), nil
}

func (e *engine) zipMembers(z *zip.Archive) []member {
	out := make([]member, len(z.Members))
	for i := range z.Members {
		zm := &z.Members[i]
		m := member{name: strings.TrimSuffix(zm.Name, "/"), kind: "file", size: int64(zm.Size)}
		if strings.HasSuffix(zm.Name, "/") || zm.Mode().IsDir() {
			m.kind, m.size = "dir", 0
		}
		m.meta = []kv{
			timeKV("mtime", zm.Modified),
			{key: "mode", val: fmt.Sprintf("%v", zm.Mode())},
			{key: "method", val: fmt.Sprint(zm.Method)},
			{key: "flags", val: fmt.Sprintf("0x%04x", zm.Flags)},
			{key: "creator", val: fmt.Sprintf("0x%04x", zm.CreatorVersion)},
		}
		if zm.Comment != "" {
			m.meta = append(m.meta, kv{key: "comment", val: zm.Comment})
		}
		m.meta = append(m.meta, kv{key: "extra fields", val: fmt.Sprintf("%x", zm.Extra)})
		if m.kind == "file" {
			m.zip = &zipRaw{z, zm}
			m.content = func(ctx context.Context) (blob, func(), error) {
				if zm.Size > uint64(e.opts.MaxExpand) {
					return blob{}, nil, fmt.Errorf("zip member %s: %w", zm.Name, errTooLarge)
				}
				if zm.Method == zip.Store {
					raw, err := z.Raw(zm)
					if err != nil {
						return blob{}, nil, err
					}
					if raw.Size() == int64(zm.Size) {
						return blob{raw, raw.Size()}, func() {}, nil
					}
				}
				r, err := z.Open(zm)
				if err != nil {
					return blob{}, nil, err
				}
				sp, err := e.newSpool(ctx, r, int64(zm.Size), e.opts.MaxExpand)
				if err != nil {
					return blob{}, nil, err
				}
				return sp.blob(), sp.Close, nil
			}
		}
		out[i] = m
	}
	return out
}

// zipRaw locates a zip member's compressed data, so that two members with the
// same compressed bytes are known equal without decompressing them.
type zipRaw struct {
	a *zip.Archive
	m *zip.Member
}

func (e *engine) zipRawEqual(ctx context.Context, x, y *zipRaw) bool {
	if x.m.Method != y.m.Method || x.m.CRC32 != y.m.CRC32 || x.m.Size != y.m.Size || x.m.CompressedSize != y.m.CompressedSize {
		return false
	}
	rx, err := x.a.Raw(x.m)
	if err != nil {
		return false
	}
	ry, err := y.a.Raw(y.m)
	if err != nil {
		return false
	}
	eq, err := e.equal(ctx, blob{rx, rx.Size()}, blob{ry, ry.Size()})
	return err == nil && eq
}
