package diff

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// maxEditDistance bounds the Myers search; beyond it the differing middle of two
// sequences is shown as one replaced block. Memory is about 4·D² bytes.
const maxEditDistance = 1500

// An edit is one step of an edit script: '=' keeps a[A] (== b[B]), '-' deletes
// a[A], '+' inserts b[B].
type edit struct {
	op   byte
	a, b int
}

// diffSeq returns an edit script from a to b, minimal when the edit distance is
// at most maxEditDistance.
func diffSeq(a, b []string) []edit {
	ids := map[string]int32{}
	id := func(s string) int32 {
		v, ok := ids[s]
		if !ok {
			v = int32(len(ids))
			ids[s] = v
		}
		return v
	}
	ia, ib := make([]int32, len(a)), make([]int32, len(b))
	for i, s := range a {
		ia[i] = id(s)
	}
	for i, s := range b {
		ib[i] = id(s)
	}
	return diffIDs(ia, ib)
}

func diffIDs(a, b []int32) []edit {
	var out []edit
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		out = append(out, edit{'=', p, p})
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	mid, ok := myers(a[p:len(a)-s], b[p:len(b)-s])
	if !ok {
		mid = mid[:0]
		for i := p; i < len(a)-s; i++ {
			mid = append(mid, edit{'-', i - p, -1})
		}
		for j := p; j < len(b)-s; j++ {
			mid = append(mid, edit{'+', -1, j - p})
		}
	}
	for _, e := range mid {
		if e.a >= 0 {
			e.a += p
		}
		if e.b >= 0 {
			e.b += p
		}
		out = append(out, e)
	}
	for i := s; i > 0; i-- {
		out = append(out, edit{'=', len(a) - i, len(b) - i})
	}
	return out
}

// myers is the O(ND) greedy algorithm with a trace for backtracking.
func myers(a, b []int32) ([]edit, bool) {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil, true
	}
	maxD := min(n+m, maxEditDistance)
	off := maxD + 1
	v := make([]int32, 2*maxD+3)
	var trace [][]int32
	for d := 0; d <= maxD; d++ {
		trace = append(trace, append([]int32(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1])
			} else {
				x = int(v[off+k-1]) + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				return backtrack(trace, n, m), true
			}
		}
	}
	return nil, false
}

func backtrack(trace [][]int32, n, m int) []edit {
	var out []edit
	x, y := n, m
	for d := len(trace) - 1; d >= 0; d-- {
		w := trace[d]
		get := func(k int) int { return int(w[k+d+1]) }
		k := x - y
		var pk int
		if k == -d || (k != d && get(k-1) < get(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := get(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
			out = append(out, edit{'=', x, y})
		}
		if d > 0 {
			if x == px {
				y--
				out = append(out, edit{'+', -1, y})
			} else {
				x--
				out = append(out, edit{'-', x, -1})
			}
		}
		x, y = px, py
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// unified writes an edit script as unified-diff hunks with ctx lines of context,
// calling emit for each line and evid for each changed line.
func unified(edits []edit, a, b []string, ctx int, emit, evid func(string)) (removed, added int) {
	var changed []int
	for i, e := range edits {
		if e.op != '=' {
			changed = append(changed, i)
			if e.op == '-' {
				removed++
				evid(a[e.a])
			} else {
				added++
				evid(b[e.b])
			}
		}
	}
	for i := 0; i < len(changed); {
		start := max(changed[i]-ctx, 0)
		j := i
		for j+1 < len(changed) && changed[j+1]-changed[j] <= 2*ctx+1 {
			j++
		}
		end := min(changed[j]+ctx+1, len(edits))
		// Hunk header positions are 1-based; an empty side starts at the line
		// before.
		as, bs, ac, bc := -1, -1, 0, 0
		for _, e := range edits[start:end] {
			if e.op != '+' {
				if as < 0 {
					as = e.a
				}
				ac++
			}
			if e.op != '-' {
				if bs < 0 {
					bs = e.b
				}
				bc++
			}
		}
		if as < 0 {
			as = lineBefore(edits, start, true)
		}
		if bs < 0 {
			bs = lineBefore(edits, start, false)
		}
		emit(fmt.Sprintf("@@ -%s +%s @@", hunkRange(as, ac), hunkRange(bs, bc)))
		for _, e := range edits[start:end] {
			switch e.op {
			case '=':
				emit(" " + a[e.a])
			case '-':
				emit("-" + a[e.a])
			case '+':
				emit("+" + b[e.b])
			}
		}
		i = j + 1
	}
	return removed, added
}

// lineBefore returns the 0-based index in A (or B) of the last line before edits[i].
func lineBefore(edits []edit, i int, inA bool) int {
	for j := i - 1; j >= 0; j-- {
		if inA && edits[j].a >= 0 {
			return edits[j].a
		}
		if !inA && edits[j].b >= 0 {
			return edits[j].b
		}
	}
	return -1
}

func hunkRange(start, count int) string {
	if count == 1 {
		return fmt.Sprint(start + 1)
	}
	if count == 0 {
		return fmt.Sprintf("%d,0", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

// splitLines splits text into lines without their terminators.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// diffText compares two text files line by line.
func (e *engine) diffText(ctx context.Context, path string, a, b blob) (*Node, error) {
	if a.size > e.opts.MaxStructured || b.size > e.opts.MaxStructured {
		n := e.node(path, fmtText, Changed)
		n.line("too large for a line diff (limit %d bytes); bytes compared instead", e.opts.MaxStructured)
		e.byteDiff(ctx, n, a, b)
		return n.done(), nil
	}
	da, err := a.readAll()
	if err != nil {
		return nil, fmt.Errorf("reading A: %w", err)
	}
	db, err := b.readAll()
	if err != nil {
		return nil, fmt.Errorf("reading B: %w", err)
	}
	n := e.node(path, fmtText, Changed)
	la, lb := splitLines(da), splitLines(db)
	if bytes.HasSuffix(da, []byte("\n")) != bytes.HasSuffix(db, []byte("\n")) && len(da) > 0 && len(db) > 0 {
		n.line("newline at end of file: %v → %v", bytes.HasSuffix(da, []byte("\n")), bytes.HasSuffix(db, []byte("\n")))
	}
	if bytes.Contains(da, []byte("\r\n")) != bytes.Contains(db, []byte("\r\n")) {
		n.line("line endings differ (CRLF in %s)", map[bool]string{true: "A", false: "B"}[bytes.Contains(da, []byte("\r\n"))])
	}
	edits := diffSeq(la, lb)
	e.mat.pairLines(edits, la, lb, n.labels)
	removed, added := unified(edits, la, lb, 3, func(s string) { n.line("%s", s) }, func(s string) { n.evidence(s) })
	switch {
	case removed == 0 && added == 0:
		n.n.Summary = "line terminators differ"
	default:
		n.n.Summary = fmt.Sprintf("%s removed, %s added", plural(removed, "line"), plural(added, "line"))
	}
	return n.done(), nil
}

// stringsDiff adds the changed strings between two lists to a node, as "-" and
// "+" lines in order, scanning them for labels, and returns the counts.
func stringsDiff(n *nodeBuilder, a, b []string) (removed, added int) {
	edits := diffSeq(a, b)
	n.e.mat.pairLines(edits, a, b, n.labels)
	for _, e := range edits {
		switch e.op {
		case '-':
			removed++
			n.evidence(a[e.a])
			n.line("-%s", a[e.a])
		case '+':
			added++
			n.evidence(b[e.b])
			n.line("+%s", b[e.b])
		}
	}
	return removed, added
}
