package diff

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// A member is one entry of a container (directory, tar, ar, zip) as the generic
// container comparison sees it.
type member struct {
	name string
	kind string // "file", "dir", "symlink", "hardlink", "device", "fifo", "other"
	size int64
	meta []kv   // fields compared by key, in display order
	sum  []byte // content digest, when known
	// content gives random access to the content; release frees it.
	content func(ctx context.Context) (b blob, release func(), err error)
	// zip locates a zip member's compressed bytes: equal compressed bytes
	// mean equal content.
	zip *zipRaw
	// special replaces the content comparison (archive symbol tables).
	special func(ctx context.Context, path string, o *member) *Node
}

// A kv is a metadata field. t is set for times, so they can be labelled.
type kv struct {
	key, val string
	t        time.Time
}

func timeKV(key string, t time.Time) kv {
	return kv{key: key, val: t.UTC().Format(time.RFC3339Nano), t: t}
}

// pairing says which members of two containers correspond.
type pairing struct {
	pairs          [][2]int // indexes into A and B, in A's order
	removed, added []int
}

// reHash matches the hashes build tools put in names (crate disambiguators,
// codegen-unit hashes, Rust symbol hashes), so that renamed members still pair.
var reHash = regexp.MustCompile(`[0-9a-f]{8,}`)

func normName(s string) string { return reHash.ReplaceAllString(s, "#") }

// pairMembers pairs members by name (the k-th occurrence of a name with the k-th),
// then pairs the rest whose names differ only in hashes, when that is unambiguous.
func pairMembers(as, bs []member) pairing {
	key := func(list []member) []string {
		seen := map[string]int{}
		keys := make([]string, len(list))
		for i, m := range list {
			k := m.name
			if n := seen[m.name]; n > 0 {
				k = fmt.Sprintf("%s\x00%d", m.name, n)
			}
			seen[m.name]++
			keys[i] = k
		}
		return keys
	}
	ka, kb := key(as), key(bs)
	idx := make(map[string]int, len(bs))
	for j, k := range kb {
		idx[k] = j
	}
	var p pairing
	usedB := make([]bool, len(bs))
	var restA []int
	pairOf := make([]int, len(as))
	for i, k := range ka {
		pairOf[i] = -1
		if j, ok := idx[k]; ok {
			pairOf[i] = j
			usedB[j] = true
		} else {
			restA = append(restA, i)
		}
	}
	if len(restA) > 0 {
		// Unique normalized names on both sides pair up.
		na := map[string][]int{}
		for _, i := range restA {
			na[normName(as[i].name)] = append(na[normName(as[i].name)], i)
		}
		nb := map[string][]int{}
		for j := range bs {
			if !usedB[j] {
				nb[normName(bs[j].name)] = append(nb[normName(bs[j].name)], j)
			}
		}
		for n, ia := range na {
			if jb := nb[n]; len(ia) == 1 && len(jb) == 1 && as[ia[0]].kind == bs[jb[0]].kind {
				pairOf[ia[0]] = jb[0]
				usedB[jb[0]] = true
			}
		}
	}
	for i, j := range pairOf {
		if j >= 0 {
			p.pairs = append(p.pairs, [2]int{i, j})
		} else {
			p.removed = append(p.removed, i)
		}
	}
	for j, u := range usedB {
		if !u {
			p.added = append(p.added, j)
		}
	}
	return p
}

// containerStats counts what compareMembers found.
type containerStats struct {
	changed, metadata, added, removed int
}

func (s containerStats) summary(noun string) string {
	var parts []string
	if s.changed > 0 {
		parts = append(parts, plural(s.changed, noun)+" changed")
	}
	if s.metadata > 0 {
		parts = append(parts, fmt.Sprintf("%d with metadata changes only", s.metadata))
	}
	if s.added > 0 {
		parts = append(parts, fmt.Sprintf("%d added", s.added))
	}
	if s.removed > 0 {
		parts = append(parts, fmt.Sprintf("%d removed", s.removed))
	}
	return strings.Join(parts, ", ")
}

func (s containerStats) empty() bool { return s == containerStats{} }

// compareMembers compares paired members in parallel and adds a child node to n
// for each difference. ordered says member order is meaningful (archives).
func (e *engine) compareMembers(ctx context.Context, n *nodeBuilder, path string, as, bs []member, p pairing, ordered bool, depth int) containerStats {
	var (
		g group
		c collector
	)
	g.e = e
	for _, pr := range p.pairs {
		a, b := &as[pr[0]], &bs[pr[1]]
		g.Go(func() { c.add(e.comparePair(ctx, path, a, b, depth)) })
	}
	g.Wait()
	var st containerStats
	for _, ch := range c.nodes {
		if ch.Kind == Metadata {
			st.metadata++
		} else {
			st.changed++
		}
	}
	for _, i := range p.removed {
		c.add(e.loneMember(path, &as[i], Removed))
		st.removed++
	}
	for _, j := range p.added {
		c.add(e.loneMember(path, &bs[j], Added))
		st.added++
	}
	n.n.Children = append(n.n.Children, c.nodes...)
	if ordered && orderDiff(n, as, bs, p) && sameNames(as, bs, p) {
		// The same members, in another order.
		e.mat.label(MatchReorder, n.labels)
	}
	return st
}

// orderDiff notes when paired members appear in a different order, and says
// whether they do.
func orderDiff(n *nodeBuilder, as, bs []member, p pairing) bool {
	inB := make([][2]int, len(p.pairs))
	copy(inB, p.pairs)
	// Sort the pairs by their B index; A indexes must then increase.
	sortPairsByB(inB)
	for k := range inB {
		if inB[k][0] != p.pairs[k][0] {
			n.line("member order differs: position %d holds %s in A, %s in B",
				k, as[p.pairs[k][0]].name, bs[inB[k][1]].name)
			return true
		}
	}
	return false
}

// sameNames says whether every member is paired with one of the same name.
func sameNames(as, bs []member, p pairing) bool {
	if len(p.removed) > 0 || len(p.added) > 0 {
		return false
	}
	for _, pr := range p.pairs {
		if as[pr[0]].name != bs[pr[1]].name {
			return false
		}
	}
	return true
}

func sortPairsByB(ps [][2]int) {
	sort.Slice(ps, func(i, j int) bool { return ps[i][1] < ps[j][1] })
}

// loneMember describes a member present on one side only.
func (e *engine) loneMember(path string, m *member, k Kind) *Node {
	n := e.node(join(path, m.name), m.kind, k)
	n.evidence(m.name)
	switch m.kind {
	case "file":
		n.n.Summary = fmt.Sprintf("%s, %d bytes", m.kind, m.size)
	default:
		n.n.Summary = m.kind
	}
	for _, f := range m.meta {
		n.line("%s: %s", f.key, f.val)
		n.evidence(f.val)
		if !f.t.IsZero() {
			n.e.lab.time(f.t, f.t, n.labels)
		}
	}
	return n.done()
}

// comparePair compares one pair of members: metadata, type and content.
func (e *engine) comparePair(ctx context.Context, path string, a, b *member, depth int) *Node {
	p := join(path, a.name)
	n := e.node(p, a.kind, Metadata)
	var fields []string
	if a.name != b.name {
		n.lineEv(fmt.Sprintf("name: %s → %s", a.name, b.name))
		fields = append(fields, "name")
	}
	if a.kind != b.kind {
		n.line("type: %s → %s", a.kind, b.kind)
		n.n.Kind = Changed
		n.n.Format = a.kind + " → " + b.kind
		fields = append(fields, "type")
	}
	fields = append(fields, metaDiff(n, a.meta, b.meta)...)
	var content *Node
	if a.kind == b.kind && a.content != nil && b.content != nil {
		if a.special != nil && b.special != nil {
			if a.size != b.size || !bytes.Equal(a.sum, b.sum) || a.sum == nil {
				content = a.special(ctx, p, b)
			}
		} else {
			content = e.compareContent(ctx, p, a, b, depth)
		}
	}
	if content == nil {
		if len(fields) == 0 && len(n.n.Details) == 0 {
			return nil
		}
		n.n.Summary = strings.Join(fields, ", ") + " differ"
		if len(fields) == 1 {
			n.n.Summary = fields[0] + " differs"
		}
		return n.done()
	}
	// Metadata lines go first, then the content's own details.
	meta := n.done()
	if len(meta.Details) > 0 {
		content.Details = append(meta.Details, content.Details...)
		if extra := len(content.Details) - e.opts.MaxDetailLines; extra > 0 {
			content.Details = content.Details[:e.opts.MaxDetailLines]
			content.Omitted += extra
		}
		content.Omitted += meta.Omitted
		if len(fields) > 0 {
			content.Summary += "; " + strings.Join(fields, ", ") + " differ"
		}
	}
	content.Labels = mergeLabels(content.Labels, meta.Labels)
	content.Path = p
	return content
}

func mergeLabels(a, b []string) []string {
	set := map[string]bool{}
	for _, l := range append(append([]string(nil), a...), b...) {
		set[l] = true
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// compareContent compares two members' content; nil means equal.
func (e *engine) compareContent(ctx context.Context, path string, a, b *member, depth int) *Node {
	if a.size == b.size {
		if a.sum != nil && b.sum != nil {
			if bytes.Equal(a.sum, b.sum) {
				return nil
			}
		} else if a.zip != nil && b.zip != nil && e.zipRawEqual(ctx, a.zip, b.zip) {
			return nil
		}
	}
	ba, ra, err := a.content(ctx)
	if err != nil {
		return e.errorNode(path, a.kind, "in A: "+err.Error())
	}
	defer ra()
	bb, rb, err := b.content(ctx)
	if err != nil {
		return e.errorNode(path, b.kind, "in B: "+err.Error())
	}
	defer rb()
	return e.compare(ctx, path, ba, bb, depth+1)
}

func (e *engine) errorNode(path, format, msg string) *Node {
	n := e.node(path, format, Changed)
	n.n.Error = msg
	n.n.Summary = "could not be compared"
	return n.done()
}

// metaDiff adds a line for each differing field and returns the keys that differ.
func metaDiff(n *nodeBuilder, a, b []kv) []string {
	var keys []string
	bm := map[string]kv{}
	for _, f := range b {
		bm[f.key] = f
	}
	seen := map[string]bool{}
	for _, fa := range a {
		seen[fa.key] = true
		fb, ok := bm[fa.key]
		if ok && fb.val == fa.val {
			continue
		}
		keys = append(keys, fa.key)
		if !ok {
			n.lineEv(fmt.Sprintf("%s: %s → (none)", fa.key, fa.val))
		} else {
			n.lineEv(fmt.Sprintf("%s: %s → %s", fa.key, fa.val, fb.val))
			if !fb.t.IsZero() {
				n.e.lab.time(fb.t, fb.t, n.labels)
			}
		}
		if !fa.t.IsZero() {
			n.e.lab.time(fa.t, fa.t, n.labels)
		}
	}
	for _, fb := range b {
		if !seen[fb.key] {
			keys = append(keys, fb.key)
			n.lineEv(fmt.Sprintf("%s: (none) → %s", fb.key, fb.val))
			if !fb.t.IsZero() {
				n.e.lab.time(fb.t, fb.t, n.labels)
			}
		}
	}
	return keys
}
