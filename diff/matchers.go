package diff

import (
	"encoding/binary"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A MatchKind is a shape of difference that names a factor by how the two
// sides differ rather than by a value found in one of them.
type MatchKind string

// The kinds of Matcher.
const (
	// MatchReorder: the two sides hold the same lines, strings, archive
	// members or entries of a line, in another order.
	MatchReorder MatchKind = "reorder"
	// MatchAddress: at the same place, both sides hold a different
	// user-space address: a hex number in text (0x-prefixed, or 12 bare
	// digits), or an 8-byte little-endian word in binary data (at an offset
	// that is a multiple of 8), in the ranges where PIE executables, the
	// heap, shared libraries and the stack are mapped (userAddress).
	MatchAddress MatchKind = "address"
	// MatchDecimalComma: one side writes a number with a decimal comma
	// (3,14, 1 234,5) where the other writes it with a decimal point (3.14,
	// 1234.5), and nothing else differs.
	MatchDecimalComma MatchKind = "decimal-comma"
	// MatchCollation: the same lines or entries, in byte order on one side
	// and in another order, not its reverse, on the other: a sort that
	// follows a locale's collation. Such a reordering is not MatchReorder:
	// a program that sorts does not depend on the order it read.
	MatchCollation MatchKind = "collation"
)

// MatchKinds are the kinds a Matcher can ask for.
var MatchKinds = []MatchKind{MatchAddress, MatchCollation, MatchDecimalComma, MatchReorder}

// A Matcher labels with Factor a difference whose two sides have the shape of
// Kind.
type Matcher struct {
	Factor string
	Kind   MatchKind
}

// matchers holds the factors each kind names.
type matchers map[MatchKind][]string

func newMatchers(ms []Matcher) matchers {
	out := matchers{}
	for _, m := range ms {
		if m.Factor != "" && slices.Contains(MatchKinds, m.Kind) && !slices.Contains(out[m.Kind], m.Factor) {
			out[m.Kind] = append(out[m.Kind], m.Factor)
		}
	}
	return out
}

func (m matchers) label(k MatchKind, set map[string]bool) {
	for _, f := range m[k] {
		set[f] = true
	}
}

// pairLines matches the changed lines of an edit script: the whole of the
// removed and added lines as a multiset (a reordering), and, within each run
// of changes, the k-th removed line with the k-th added one (an address, a
// decimal comma, reordered entries of one line).
func (m matchers) pairLines(edits []edit, a, b []string, set map[string]bool) {
	if len(m) == 0 {
		return
	}
	var rem, add []string
	var blockRem, blockAdd []string
	flush := func() {
		for k := 0; k < min(len(blockRem), len(blockAdd)); k++ {
			m.pair(blockRem[k], blockAdd[k], set)
		}
		blockRem, blockAdd = blockRem[:0], blockAdd[:0]
	}
	for _, e := range edits {
		switch e.op {
		case '-':
			rem = append(rem, a[e.a])
			blockRem = append(blockRem, a[e.a])
		case '+':
			add = append(add, b[e.b])
			blockAdd = append(blockAdd, b[e.b])
		default:
			flush()
		}
	}
	flush()
	// The changed lines are the same multiset (perhaps even in the same
	// order, when the unchanged ones moved around them): the whole lists
	// are reordered, and their order says how.
	if len(rem) > 0 && sameCounts(rem, add) {
		m.reordered(a, b, set)
	}
}

// pair matches one changed line or string of A with its counterpart in B.
func (m matchers) pair(x, y string, set map[string]bool) {
	if x == y || len(m) == 0 {
		return
	}
	if len(m[MatchAddress]) > 0 && addressesDiffer(x, y) {
		m.label(MatchAddress, set)
	}
	if len(m[MatchDecimalComma]) > 0 && decimalCommaDiffers(x, y) {
		m.label(MatchDecimalComma, set)
	}
	if len(m[MatchReorder])+len(m[MatchCollation]) > 0 {
		if ex, ey, ok := entriesReordered(x, y); ok {
			// The whole lines' entries, when they are the same
			// multiset, give a collation its context: the sorted
			// list around the two entries that moved.
			if fx, fy := strings.FieldsFunc(x, entrySep), strings.FieldsFunc(y, entrySep); len(fx) == len(fy) && sameMultiset(fx, fy) {
				ex, ey = fx, fy
			}
			m.reordered(ex, ey, set)
		}
	}
}

// reordered labels two lists that hold the same strings in another order: as
// sorted by a collation when one is in byte order and the other is not, nor
// in reverse byte order; as reordered otherwise.
func (m matchers) reordered(a, b []string, set map[string]bool) {
	if !sameMultiset(a, b) {
		return
	}
	if collated(a, b) || collated(b, a) {
		m.label(MatchCollation, set)
		return
	}
	m.label(MatchReorder, set)
}

// collated says whether a is in byte order and b in another order that is
// not its reverse. Only the run of a in byte order around the places where a
// and b differ counts (a sorted list inside a line or a file), and the
// reverse is that of the span that differs; a span of two is always its own
// reverse, so two words swapped count only when b's run is sorted without
// regard to case ("Alpha alpha Beta beta" for "Alpha Beta alpha beta").
func collated(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	lo, hi := 0, len(a)-1
	for lo < len(a) && a[lo] == b[lo] {
		lo++
	}
	for hi >= 0 && a[hi] == b[hi] {
		hi--
	}
	if lo >= hi {
		return false
	}
	span := b[lo : hi+1]
	for lo > 0 && sortKey(a[lo-1]) <= sortKey(a[lo]) {
		lo--
	}
	for hi < len(a)-1 && sortKey(a[hi]) <= sortKey(a[hi+1]) {
		hi++
	}
	wa, wb := a[lo:hi+1], b[lo:hi+1]
	byKey := func(x, y string) int { return strings.Compare(sortKey(x), sortKey(y)) }
	if !slices.IsSortedFunc(wa, byKey) || slices.IsSortedFunc(wb, byKey) {
		return false
	}
	folded := func(x, y string) int {
		return strings.Compare(strings.ToLower(sortKey(x)), strings.ToLower(sortKey(y)))
	}
	if slices.IsSortedFunc(wb, folded) {
		return true
	}
	for i := 1; i < len(span); i++ {
		if sortKey(span[i-1]) < sortKey(span[i]) {
			return true // not in reverse byte order
		}
	}
	return false
}

// sortKey is an entry without the quotes and brackets a list is printed in.
func sortKey(s string) string {
	return strings.Trim(s, "\"'`()[]{}<>")
}

// words matches the 8-byte words of a differing byte range of two blobs.
func (m matchers) words(a, b []byte, set map[string]bool) {
	if len(m[MatchAddress]) > 0 && wordsAreAddresses(a, b) {
		m.label(MatchAddress, set)
	}
}

// sameMultiset says whether two non-empty lists hold the same strings, each as
// often, in a different order.
func sameMultiset(a, b []string) bool {
	return len(a) > 0 && !slices.Equal(a, b) && sameCounts(a, b)
}

// sameCounts says whether two lists hold the same strings, each as often.
func sameCounts(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
		if count[s] < 0 {
			return false
		}
	}
	return true
}

// entrySep splits a line into entries: words, or comma- or
// semicolon-separated items.
func entrySep(r rune) bool {
	return r == ' ' || r == '\t' || r == ',' || r == ';'
}

// entriesReordered says whether two lines hold the same entries (at least two
// distinct ones), each as often, in another order, with the same separators,
// between a common beginning and end. The beginning and end may be glued to
// the first and last entries (string literals laid end to end in a binary's
// read-only data), so each place where they can end is tried: from the common
// prefix back to the separator before it, and likewise for the suffix.
func entriesReordered(x, y string) (ex, ey []string, ok bool) {
	const maxLen, maxTries = 16 << 10, 32
	if x == y || len(x) > maxLen || len(y) > maxLen || !sameLetters(x, y) {
		return nil, nil, false
	}
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		p++
	}
	s := 0
	for s < len(x)-p && s < len(y)-p && x[len(x)-1-s] == y[len(y)-1-s] {
		s++
	}
	for i, ti := p, 0; i >= 0 && ti < maxTries; i, ti = i-1, ti+1 {
		for j, tj := s, 0; j >= 0 && tj < maxTries; j, tj = j-1, tj+1 {
			if i <= len(x)-j && i <= len(y)-j {
				if ex, ey, ok := entriesPermuted(x[i:len(x)-j], y[i:len(y)-j]); ok {
					return ex, ey, true
				}
			}
			if j > 0 && entrySep(rune(x[len(x)-j])) {
				break // an entry does not hold a separator
			}
		}
		if i > 0 && entrySep(rune(x[i-1])) {
			break
		}
	}
	return nil, nil, false
}

// sameLetters says whether x and y hold the same bytes, each as often, but for
// separators: a cheap test that most lines that are not reordered fail.
func sameLetters(x, y string) bool {
	var n [256]int
	for i := 0; i < len(x); i++ {
		n[x[i]]++
	}
	for i := 0; i < len(y); i++ {
		n[y[i]]--
	}
	for c, k := range n {
		if k != 0 && !entrySep(rune(c)) {
			return false
		}
	}
	return true
}

// entriesPermuted says whether x and y split into the same entries in another
// order, with the same separators.
func entriesPermuted(x, y string) (ex, ey []string, ok bool) {
	ex, ey = strings.FieldsFunc(x, entrySep), strings.FieldsFunc(y, entrySep)
	if len(ex) < 2 || !sameMultiset(ex, ey) {
		return nil, nil, false
	}
	// The separators in order: "a, b c" and "b c, a" are not a reordering
	// of entries but an edit.
	seps := func(s string) string {
		return strings.Map(func(r rune) rune {
			if entrySep(r) {
				return r
			}
			return -1
		}, s)
	}
	if squeeze(seps(x)) != squeeze(seps(y)) {
		return nil, nil, false
	}
	return ex, ey, true
}

// squeeze drops repeated separators, which FieldsFunc ignores too.
func squeeze(s string) string {
	var b strings.Builder
	var last rune = -1
	for _, r := range s {
		if r != last {
			b.WriteRune(r)
		}
		last = r
	}
	return b.String()
}

// reHexAddr is a hex number as %p, {:p} and repr print an address, or as
// {:x} and %lx print one: 12 hex digits, not after another hex digit, in the
// ranges that randomization moves (see bareAddress).
var reHexAddr = regexp.MustCompile(`\b0[xX][0-9a-fA-F]{9,16}\b|[0-9a-f]{12}`)

// userAddress says whether v is an address in the user-space ranges that
// randomization moves on 64-bit Linux: from 4 GiB (PIE executables at
// 0x55…, shared libraries and the stack at 0x7f…) to the top of a 48-bit
// address space.
//
// Its top byte must be where the kernel puts randomized mappings: 0x55 and
// 0x56 (PIE executables and the heap), 0x7f (libraries and the stack) on
// x86-64, 0xaa and 0xff on arm64. Two 32-bit fields side by side (a line
// and a column, a length and a count) make words in [2^32, 2^48) too, but
// seldom with such a top byte.
func userAddress(v uint64) bool {
	if v < 1<<32 || v >= 1<<48 {
		return false
	}
	switch v >> 40 {
	case 0x55, 0x56, 0x7f, 0xaa, 0xff:
		return true
	}
	return false
}

// parseAddress reads the address reHexAddr matched at loc in s: a 0x-prefixed
// one or 12 bare hex digits not after another hex digit, in the user-space
// ranges randomization moves (userAddress).
func parseAddress(s string, loc []int) (uint64, bool) {
	m := s[loc[0]:loc[1]]
	if prefixed(m) {
		v, err := strconv.ParseUint(m[2:], 16, 64)
		return v, err == nil && userAddress(v)
	}
	hex := func(i int) bool {
		return i >= 0 && i < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[i]) >= 0
	}
	// Only the left side is bounded: literals laid end to end may glue a
	// hex letter on the right, and the rest of the line must be equal.
	if len(m) != 12 || hex(loc[0]-1) {
		return 0, false
	}
	v, err := strconv.ParseUint(m, 16, 64)
	return v, err == nil && userAddress(v)
}

func prefixed(m string) bool { return len(m) > 2 && m[0] == '0' && (m[1] == 'x' || m[1] == 'X') }

// addressesDiffer says whether x and y are the same text but for user-space
// addresses at the same places, at least one of which differs.
func addressesDiffer(x, y string) bool {
	return sameBetween(reHexAddr, x, y, func(mx, my []int) (moved, ok bool) {
		sx, sy := x[mx[0]:mx[1]], y[my[0]:my[1]]
		vx, okx := parseAddress(x, mx)
		vy, oky := parseAddress(y, my)
		if !okx || !oky || prefixed(sx) != prefixed(sy) {
			return false, sx == sy
		}
		return vx != vy, true
	})
}

// sameBetween says whether x and y are the same text but for re's matches at
// the same places, each pair of which pair accepts (ok), at least one of them
// differing in the way it looks for (moved).
func sameBetween(re *regexp.Regexp, x, y string, pair func(mx, my []int) (moved, ok bool)) bool {
	ix, iy := re.FindAllStringIndex(x, 64), re.FindAllStringIndex(y, 64)
	if len(ix) == 0 || len(ix) != len(iy) {
		return false
	}
	moved := false
	px, py := 0, 0
	for k := range ix {
		if x[px:ix[k][0]] != y[py:iy[k][0]] {
			return false
		}
		m, ok := pair(ix[k], iy[k])
		if !ok {
			return false
		}
		moved = moved || m
		px, py = ix[k][1], iy[k][1]
	}
	return moved && x[px:] == y[py:]
}

// wordsAreAddresses says whether the differing bytes of a and b (the same
// range of two blobs, starting at a multiple of 8) all lie in 8-byte words that
// hold a user-space address on both sides.
func wordsAreAddresses(a, b []byte) bool {
	m := min(len(a), len(b))
	n := m - m%8
	if n == 0 {
		return false
	}
	moved := false
	for off := 0; off < n; off += 8 {
		wa, wb := a[off:off+8], b[off:off+8]
		if string(wa) == string(wb) {
			continue
		}
		va, vb := binary.LittleEndian.Uint64(wa), binary.LittleEndian.Uint64(wb)
		if !userAddress(va) || !userAddress(vb) {
			return false
		}
		moved = true
	}
	// Differing bytes past the last whole word are not explained.
	return moved && string(a[n:m]) == string(b[n:m])
}

// reDecimal is a number with a decimal point or comma, and digit groups
// separated by spaces, no-break spaces or narrow no-break spaces
// (fr_FR's thousands separator).
var reDecimal = regexp.MustCompile(`\d{1,3}(?:[ \x{a0}\x{202f}]\d{3})+(?:[.,]\d+)?|\d+[.,]\d+`)

// decimalCommaDiffers says whether x and y are the same text but for numbers
// at the same places, at least one of which is written with a decimal comma on
// one side and a decimal point on the other.
func decimalCommaDiffers(x, y string) bool {
	// norm is a number with its group separators dropped and its decimal
	// separator as a point, and which separator it had.
	norm := func(num string) (string, byte) {
		i := strings.LastIndexAny(num, ".,")
		if i < 0 {
			return num, 0
		}
		return strings.NewReplacer(" ", "", "\u00a0", "", "\u202f", "").Replace(num[:i]) + "." + num[i+1:], num[i]
	}
	return sameBetween(reDecimal, x, y, func(mx, my []int) (moved, ok bool) {
		sx, sy := x[mx[0]:mx[1]], y[my[0]:my[1]]
		if sx == sy {
			return false, true
		}
		nx, cx := norm(sx)
		ny, cy := norm(sy)
		if nx != ny || cx == cy || cx == 0 || cy == 0 {
			return false, false
		}
		return true, true
	})
}
