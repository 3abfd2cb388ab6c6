package diff

import (
	"context"
	"fmt"
	"strings"
)

const (
	shownRanges   = 6   // byte ranges shown in detail
	scannedRanges = 256 // byte ranges whose surrounding strings are scanned for labels
	hexBytes      = 16  // bytes of hex shown per side and range
	minString     = 6   // shortest printable run counted as a string
)

// byteDiff adds to n the byte ranges where a and b differ, in hex with the
// printable strings around them, and when the content has shifted, the strings
// that differ.
func (e *engine) byteDiff(ctx context.Context, n *nodeBuilder, a, b blob) {
	type rng struct{ start, end int64 }
	var (
		ranges    []rng
		count     int
		diffBytes int64
		cur       = rng{-1, -1}
	)
	flush := func() {
		if cur.start < 0 {
			return
		}
		count++
		diffBytes += cur.end - cur.start
		if len(ranges) < scannedRanges {
			ranges = append(ranges, cur)
		}
		cur = rng{-1, -1}
	}
	common := min(a.size, b.size)
	const chunk = 1 << 20
	ba, bb := make([]byte, min(chunk, common)), make([]byte, min(chunk, common))
	for off := int64(0); off < common; off += chunk {
		if ctx.Err() != nil {
			return
		}
		l := min(chunk, common-off)
		if readFull(a.ra, ba[:l], off) != nil || readFull(b.ra, bb[:l], off) != nil {
			n.line("(read error at offset %d)", off)
			break
		}
		for i := int64(0); i < l; i++ {
			if ba[i] == bb[i] {
				continue
			}
			p := off + i
			if cur.start >= 0 && p-cur.end <= 8 {
				cur.end = p + 1
				continue
			}
			flush()
			cur = rng{p, p + 1}
		}
	}
	flush()
	if a.size != b.size && !hasLinePrefix(n.n.Details, "size: ") {
		n.line("size: %d → %d (%+d bytes)", a.size, b.size, b.size-a.size)
	}
	if n.n.Summary == "" {
		switch {
		case count == 0:
			n.n.Summary = fmt.Sprintf("size %d → %d; %d common bytes identical", a.size, b.size, common)
		case a.size != b.size:
			n.n.Summary = fmt.Sprintf("size %d → %d; %s in %s of the common %d, first at 0x%x",
				a.size, b.size, bytesDiffer(diffBytes), plural(count, "range"), common, ranges[0].start)
		default:
			n.n.Summary = fmt.Sprintf("%s in %s, first at 0x%x", bytesDiffer(diffBytes), plural(count, "range"), ranges[0].start)
		}
	}
	if n.brief {
		return
	}
	for i, r := range ranges {
		sa, sb := printableAround(a, r.start, r.end), printableAround(b, r.start, r.end)
		n.evidence(sa, sb)
		if len(e.mat) > 0 {
			e.mat.pair(sa, sb, n.labels)
			e.mat.words(alignedWords(a, r.start, r.end), alignedWords(b, r.start, r.end), n.labels)
		}
		if i >= shownRanges {
			continue
		}
		n.line("@ 0x%x: %s", r.start, plural(int(r.end-r.start), "byte"))
		n.line("  A: %s", hexLine(a, r.start, r.end))
		n.line("  B: %s", hexLine(b, r.start, r.end))
		if sa != "" || sb != "" {
			n.line("  A strings: %s", quoteOrNone(sa))
			n.line("  B strings: %s", quoteOrNone(sb))
		}
	}
	if count > shownRanges {
		n.line("… %d more differing ranges", count-shownRanges)
	}
	// When content shifted, aligned ranges explain little; the strings do.
	// Not taken from the memory budget, so that the output does not depend on
	// it; bounded by the size limit instead.
	lim := min(e.opts.MaxStructured, 64<<20)
	if (a.size != b.size || count > shownRanges) && a.size <= lim && b.size <= lim {
		xa, erra := blobStrings(a)
		xb, errb := blobStrings(b)
		if erra == nil && errb == nil {
			sub := e.node("", "", Changed)
			sub.labels = n.labels
			r, ad := stringsDiff(sub, xa, xb)
			if r+ad > 0 {
				n.line("strings that differ (%d removed, %d added):", r, ad)
				for _, l := range sub.n.Details {
					n.line("  %s", l)
				}
				if sub.n.Omitted > 0 {
					n.line("  … %d more strings", sub.n.Omitted)
				}
			}
		}
	}
}

func bytesDiffer(n int64) string {
	if n == 1 {
		return "1 byte differs"
	}
	return fmt.Sprintf("%d bytes differ", n)
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func isPrint(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\t' }

// hexLine renders up to hexBytes bytes of [start, end) as hex and ASCII.
func hexLine(b blob, start, end int64) string {
	if start >= b.size {
		return "(past end)"
	}
	end = min(end, b.size, start+hexBytes)
	buf := make([]byte, end-start)
	if readFull(b.ra, buf, start) != nil {
		return "(unreadable)"
	}
	var h, s strings.Builder
	for i, c := range buf {
		if i > 0 {
			h.WriteByte(' ')
		}
		fmt.Fprintf(&h, "%02x", c)
		if isPrint(c) && c != '\t' {
			s.WriteByte(c)
		} else {
			s.WriteByte('.')
		}
	}
	return h.String() + "  |" + s.String() + "|"
}

func hasLinePrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// printableAround returns the printable runs of at least four bytes that touch
// [start, end), each cut to the 60 bytes either side of the range, joined with
// " … ".
func printableAround(b blob, start, end int64) string {
	if start >= b.size {
		return ""
	}
	const window = 60
	ws := max(start-window, 0)
	we := min(end+window, b.size)
	buf := make([]byte, we-ws)
	if readFull(b.ra, buf, ws) != nil {
		return ""
	}
	var parts []string
	for i := 0; i < len(buf); {
		if !isPrint(buf[i]) {
			i++
			continue
		}
		j := i
		for j < len(buf) && isPrint(buf[j]) {
			j++
		}
		rs, re := ws+int64(i), ws+int64(j)
		if j-i >= 4 && re >= start-1 && rs <= end {
			p := string(buf[i:j])
			if i == 0 && ws > 0 {
				p = "…" + p
			}
			if j == len(buf) && we < b.size {
				p += "…"
			}
			parts = append(parts, p)
		}
		i = j
	}
	return strings.Join(parts, " … ")
}

// blobStrings extracts the printable runs of at least minString bytes.
func blobStrings(b blob) ([]string, error) {
	data, err := b.readAll()
	if err != nil {
		return nil, err
	}
	return extractStrings(data, minString), nil
}

func extractStrings(data []byte, minLen int) []string {
	var out []string
	for i := 0; i < len(data); {
		if !isPrint(data[i]) {
			i++
			continue
		}
		j := i
		for j < len(data) && isPrint(data[j]) {
			j++
		}
		if j-i >= minLen {
			out = append(out, string(data[i:j]))
		}
		i = j
	}
	return out
}

// splitNUL splits a string table into its strings.
func splitNUL(data []byte) []string {
	var out []string
	for _, s := range strings.Split(string(data), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// alignedWords reads the 8-byte words that hold [start, end), up to 64 bytes.
func alignedWords(b blob, start, end int64) []byte {
	ws, we := start&^7, (end+7)&^7
	if we > b.size || we-ws > 64 {
		return nil
	}
	buf := make([]byte, we-ws)
	if readFull(b.ra, buf, ws) != nil {
		return nil
	}
	return buf
}
