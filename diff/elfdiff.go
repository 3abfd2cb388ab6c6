package diff

import (
	"bytes"
	"context"
	"debug/dwarf"
	stdelf "debug/elf"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/reprobox/reprobox/diff/elf"
	"github.com/reprobox/reprobox/diff/rmeta"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// diffELF compares two ELF files: header, sections, symbols, functions, notes
// and DWARF compilation units.
func (e *engine) diffELF(ctx context.Context, path string, a, b blob, depth int) (*Node, error) {
	lim := elf.Limits{MaxSectionSize: e.opts.MaxStructured, MaxDWARF: e.opts.MaxStructured}
	fa, err := elf.Open(a.ra, a.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in A: %w", err)
	}
	fb, err := elf.Open(b.ra, b.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in B: %w", err)
	}
	n := e.node(path, fmtELF, Changed)
	var parts []string
	ha, hb := fa.Header, fb.Header
	for _, f := range [][3]string{
		{"class", ha.Class, hb.Class}, {"data", ha.Data, hb.Data}, {"OS ABI", ha.OSABI, hb.OSABI},
		{"type", ha.Type, hb.Type}, {"machine", ha.Machine, hb.Machine},
		{"entry", fmt.Sprintf("0x%x", ha.Entry), fmt.Sprintf("0x%x", hb.Entry)},
	} {
		if f[1] != f[2] {
			n.line("%s: %s → %s", f[0], f[1], f[2])
			parts = append(parts, f[0]+" differs")
		}
	}
	if ida, idb := fa.BuildID(), fb.BuildID(); ida != idb {
		n.line("build-id: %s → %s", orNone(ida), orNone(idb))
		parts = append(parts, "build-id differs")
	}

	// Pair sections by name, with Rust hashes in function-section names dropped.
	keys := func(f *elf.File) ([]string, map[string]int) {
		seen := map[string]int{}
		ks := make([]string, len(f.Sections))
		idx := map[string]int{}
		for i, s := range f.Sections {
			// Hashes in names (Rust symbols, LLVM's anonymous constants)
			// change with the build; the rest of the name pairs sections.
			base := normName(elf.SectionKey(s.Name))
			k := base
			if c := seen[base]; c > 0 {
				k = fmt.Sprintf("%s#%d", base, c)
			}
			seen[base]++
			ks[i] = k
			idx[k] = i
		}
		return ks, idx
	}
	ka, _ := keys(fa)
	_, ib := keys(fb)
	var (
		g        = group{e: e}
		c        collector
		moved    []string
		secDiff  int
		debugDif bool
		usedB    = make([]bool, len(fb.Sections))
	)
	for i, k := range ka {
		j, ok := ib[k]
		if !ok {
			s := fa.Sections[i]
			if s.Index == 0 {
				continue
			}
			x := e.node(join(path, s.Name), "elf-section", Removed)
			x.n.Summary = fmt.Sprintf("%s, %d bytes", s.Type, s.Size)
			c.add(x.done())
			secDiff++
			continue
		}
		usedB[j] = true
		sa, sb := &fa.Sections[i], &fb.Sections[j]
		same := sa.Type == sb.Type && sa.Size == sb.Size && sa.FileSize == sb.FileSize
		if same && sa.FileSize > 0 {
			eq, err := e.equal(ctx, blob{fa.Raw(sa), int64(sa.FileSize)}, blob{fb.Raw(sb), int64(sb.FileSize)})
			same = err == nil && eq
		}
		if same {
			if sa.Name == sb.Name && sa.Flags == sb.Flags && sa.Link == sb.Link && sa.Info == sb.Info {
				var mv []string
				if sa.Offset != sb.Offset {
					mv = append(mv, fmt.Sprintf("offset 0x%x → 0x%x", sa.Offset, sb.Offset))
				}
				if sa.Addr != sb.Addr {
					mv = append(mv, fmt.Sprintf("address 0x%x → 0x%x", sa.Addr, sb.Addr))
				}
				if len(mv) > 0 {
					moved = append(moved, sa.Name+": "+strings.Join(mv, ", "))
				}
				continue
			}
		}
		secDiff++
		if strings.HasPrefix(sa.Name, ".debug_") || strings.HasPrefix(sa.Name, ".zdebug_") {
			debugDif = true
		}
		g.Go(func() { c.add(e.diffSection(ctx, path, fa, fb, sa, sb, same, depth)) })
	}
	for j, used := range usedB {
		s := fb.Sections[j]
		if used || s.Index == 0 {
			continue
		}
		x := e.node(join(path, s.Name), "elf-section", Added)
		x.n.Summary = fmt.Sprintf("%s, %d bytes", s.Type, s.Size)
		c.add(x.done())
		secDiff++
	}
	if secDiff > 0 {
		parts = append(parts, plural(secDiff, "section")+map[bool]string{true: " differs", false: " differ"}[secDiff == 1])
	}

	// Symbols and functions share the symbol tables.
	symA, errA := fa.Symbols()
	symB, errB := fb.Symbols()
	if errA != nil || errB != nil {
		x := e.node(join(path, "[symbols]"), "symbols", Changed)
		x.n.Error = firstErr("in A: ", errA, "in B: ", errB).Error()
		x.n.Summary = "symbol tables could not be read"
		c.add(x.done())
	} else {
		g.Go(func() {
			if x := e.diffSymbols(path, symA, symB); x != nil {
				c.add(x)
			}
		})
		g.Go(func() {
			if x := e.diffFunctions(ctx, path, fa, fb, symA, symB); x != nil {
				c.add(x)
			}
		})
	}
	if debugDif && (fa.HasDWARF() || fb.HasDWARF()) {
		g.Go(func() {
			if x := e.diffDWARF(ctx, path, fa, fb); x != nil {
				c.add(x)
			}
		})
	}
	g.Wait()
	// In a fixed order: the children arrive in completion order.
	for _, format := range []string{"symbols", "functions"} {
		for _, ch := range c.nodes {
			if ch.Format == format {
				parts = append(parts, ch.Summary)
			}
		}
	}
	if len(moved) > 0 {
		x := e.node(join(path, "[section headers]"), "elf-headers", Metadata)
		x.n.Summary = plural(len(moved), "section") + " with equal content at a different offset or address"
		for _, m := range moved {
			x.line("%s", m)
		}
		c.add(x.done())
	}
	n.n.Children = c.nodes
	if len(parts) == 0 && len(n.n.Children) == 0 {
		n.n.Summary = "bytes outside sections differ"
		e.byteDiff(ctx, n, a, b)
		return n.done(), nil
	}
	if len(parts) == 0 {
		parts = append(parts, "section placement differs")
	}
	n.n.Summary = strings.Join(parts, ", ")
	return n.done(), nil
}

// diffSection explains one differing section. sameBytes says only its header
// fields differ.
func (e *engine) diffSection(ctx context.Context, path string, fa, fb *elf.File, sa, sb *elf.Section, sameBytes bool, depth int) *Node {
	p := join(path, sa.Name)
	n := e.node(p, "elf-section", Changed)
	var fields []string
	if sa.Name != sb.Name {
		n.line("name: %s → %s", sa.Name, sb.Name)
		fields = append(fields, "name")
	}
	if sa.Type != sb.Type {
		n.line("type: %s → %s", sa.Type, sb.Type)
		fields = append(fields, "type")
	}
	if sa.Flags != sb.Flags {
		n.line("flags: %s → %s", sa.Flags, sb.Flags)
		fields = append(fields, "flags")
	}
	if sa.Link != sb.Link || sa.Info != sb.Info {
		n.line("link/info: %d/%d → %d/%d", sa.Link, sa.Info, sb.Link, sb.Info)
		fields = append(fields, "link")
	}
	if sa.Size != sb.Size {
		n.line("size: %d → %d (%+d)", sa.Size, sb.Size, int64(sb.Size)-int64(sa.Size))
	}
	if sameBytes {
		n.n.Kind = Metadata
		n.n.Summary = fieldsDiffer(fields) + "; content identical"
		return n.done()
	}
	if sa.Type == stdelf.SHT_NOBITS || sb.Type == stdelf.SHT_NOBITS {
		n.n.Summary = fmt.Sprintf("size %d → %d (no file data)", sa.Size, sb.Size)
		return n.done()
	}
	da, errA := fa.Data(sa)
	db, errB := fb.Data(sb)
	if errA != nil || errB != nil {
		n.n.Error = firstErr("in A: ", errA, "in B: ", errB).Error()
		e.byteDiff(ctx, n, blob{fa.Raw(sa), int64(sa.FileSize)}, blob{fb.Raw(sb), int64(sb.FileSize)})
		return n.done()
	}
	ba, bb := blob{bytes.NewReader(da), int64(len(da))}, blob{bytes.NewReader(db), int64(len(db))}
	switch {
	case sa.Type == stdelf.SHT_NOTE:
		na, _ := fa.Notes(sa)
		nb, _ := fb.Notes(sb)
		r, ad := stringsDiff(n, noteLines(na), noteLines(nb))
		n.n.Summary = fmt.Sprintf("notes differ (%d removed, %d added)", r, ad)
		if sa.Name == ".note.gnu.build-id" {
			n.n.Format = "build-id"
			n.n.Summary = "build-id differs"
		}
	case rmeta.IsRmeta(da) && rmeta.IsRmeta(db):
		inner, err := e.diffRmeta(ctx, p, ba, bb)
		if err != nil {
			n.n.Error = err.Error()
			e.byteDiff(ctx, n, ba, bb)
			break
		}
		inner.Details = append(n.n.Details, inner.Details...)
		return inner
	case sa.Strings() && sb.Strings():
		r, ad := stringsDiff(n, demangledStrings(splitNUL(da)), demangledStrings(splitNUL(db)))
		if r+ad == 0 {
			n.n.Summary = "same strings in a different layout"
			e.byteDiff(ctx, n, ba, bb)
		} else {
			n.n.Summary = fmt.Sprintf("strings differ: %d removed, %d added", r, ad)
		}
		if sa.Name == ".comment" {
			n.n.Format = "comment"
		}
	case sa.Type == stdelf.SHT_SYMTAB || sa.Type == stdelf.SHT_DYNSYM:
		n.n.Summary = "symbol table entries differ (see [symbols])"
	case sa.Type == stdelf.SHT_RELA || sa.Type == stdelf.SHT_REL:
		// Relocations mostly follow from the sections they patch; the
		// count of differing entries is enough.
		n.n.Summary = relocSummary(da, db, sa.Entsize)
	default:
		// Debugging entries are compared decoded in [dwarf]; their bytes
		// mostly differ in offsets into other sections.
		n.brief = sa.Name == ".debug_info" && fa.HasDWARF() && fb.HasDWARF()
		e.byteDiff(ctx, n, ba, bb)
		if n.brief {
			n.n.Summary += " (entries compared in [dwarf])"
		}
		if sa.Exec() {
			n.n.Summary = "code differs: " + n.n.Summary + " (see [functions])"
		}
	}
	if len(fields) > 0 {
		n.n.Summary += "; " + fieldsDiffer(fields)
	}
	return n.done()
}

func fieldsDiffer(fields []string) string {
	if len(fields) == 1 {
		return fields[0] + " differs"
	}
	return strings.Join(fields, ", ") + " differ"
}

// demangledStrings annotates the mangled Rust and C++ names in a string table
// with their readable form.
func demangledStrings(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s
		name := s
		if j := strings.Index(s, "._"); j >= 0 && strings.HasPrefix(s, ".") {
			name = s[j+1:] // a section name such as .text._ZN...
		}
		if strings.HasPrefix(name, "_ZN") || strings.HasPrefix(name, "_R") {
			if d := elf.Demangle(name); d != name {
				out[i] = s + "  ⟨" + d + "⟩"
			}
		}
	}
	return out
}

func noteLines(notes []elf.Note) []string {
	out := make([]string, len(notes))
	for i, x := range notes {
		if x.Name == "GNU" && x.Type == 3 {
			out[i] = fmt.Sprintf("GNU build-id %x", x.Desc)
			continue
		}
		d := x.Desc
		if len(d) > 64 {
			d = d[:64]
		}
		out[i] = fmt.Sprintf("%s type %d: %x", x.Name, x.Type, d)
	}
	return out
}

// symKey identifies a symbol across builds: its demangled name without Rust's
// hash, with hashes in non-Rust names (LLVM's ".llvm.123", anon.<hash>) masked.
func symKey(s elf.Symbol) string {
	k := normName(s.Demangled)
	if s.Dynamic {
		k = "dyn " + k
	}
	return k
}

// diffSymbols compares symbol tables by name: added, removed, hash changes,
// size and type changes. Addresses are only counted: they move with layout.
func (e *engine) diffSymbols(path string, sa, sb []elf.Symbol) *Node {
	index := func(list []elf.Symbol) (map[string]elf.Symbol, []string) {
		m := map[string]elf.Symbol{}
		var order []string
		seen := map[string]int{}
		for _, s := range list {
			if s.Name == "" {
				continue
			}
			k := symKey(s)
			if c := seen[k]; c > 0 {
				k = fmt.Sprintf("%s#%d", k, c)
			}
			seen[symKey(s)]++
			m[k] = s
			order = append(order, k)
		}
		return m, order
	}
	ma, oa := index(sa)
	mb, ob := index(sb)
	n := e.node(join(path, "[symbols]"), "symbols", Changed)
	var removed, added, renamed, resized, moved []string
	for _, k := range oa {
		a := ma[k]
		b, ok := mb[k]
		if !ok {
			removed = append(removed, a.Demangled+mangledSuffix(a))
			n.evidence(a.Name, a.Demangled)
			continue
		}
		if a.Name != b.Name {
			renamed = append(renamed, fmt.Sprintf("%s: %s → %s", a.Demangled, a.Name, b.Name))
		}
		if a.Size != b.Size || a.Type != b.Type || a.Bind != b.Bind {
			resized = append(resized, fmt.Sprintf("%s: %s %s %d → %s %s %d", a.Demangled, a.Bind, a.Type, a.Size, b.Bind, b.Type, b.Size))
		}
		if a.Value != b.Value {
			moved = append(moved, a.Demangled)
		}
	}
	for _, k := range ob {
		if _, ok := ma[k]; !ok {
			b := mb[k]
			added = append(added, b.Demangled+mangledSuffix(b))
			n.evidence(b.Name, b.Demangled)
		}
	}
	if len(removed)+len(added)+len(renamed)+len(resized) == 0 {
		if len(moved) == 0 {
			return nil
		}
		n.n.Kind = Metadata
		n.n.Summary = plural(len(moved), "symbol") + " at a different address"
		sort.Strings(moved)
		for _, m := range moved {
			n.line("%s", m)
		}
		return n.done()
	}
	for _, grp := range []struct {
		title string
		list  []string
	}{{"removed", removed}, {"added", added}, {"hash or mangling changed", renamed}, {"size, type or binding changed", resized}} {
		if len(grp.list) == 0 {
			continue
		}
		sort.Strings(grp.list)
		n.line("%s (%d):", grp.title, len(grp.list))
		for _, s := range grp.list {
			n.line("  %s", s)
		}
	}
	var parts []string
	if len(removed) > 0 {
		parts = append(parts, fmt.Sprintf("%d removed", len(removed)))
	}
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("%d added", len(added)))
	}
	if len(renamed) > 0 {
		parts = append(parts, fmt.Sprintf("%d with a new hash", len(renamed)))
	}
	if len(resized) > 0 {
		parts = append(parts, fmt.Sprintf("%d resized or retyped", len(resized)))
	}
	if len(moved) > 0 {
		parts = append(parts, fmt.Sprintf("%d moved", len(moved)))
	}
	n.n.Summary = "symbols: " + strings.Join(parts, ", ")
	return n.done()
}

func mangledSuffix(s elf.Symbol) string {
	if s.Demangled != s.Name {
		return " (" + s.Name + ")"
	}
	return ""
}

// diffFunctions lists the functions whose bytes differ, as elf_diff does.
func (e *engine) diffFunctions(ctx context.Context, path string, fa, fb *elf.File, sa, sb []elf.Symbol) *Node {
	type fn struct {
		name string
		sec  *elf.Section
		off  uint64
		size uint64
	}
	collect := func(f *elf.File, syms []elf.Symbol) (map[string]fn, []string) {
		out := map[string]fn{}
		var order []string
		seen := map[string]int{}
		for _, s := range syms {
			if s.Type != stdelf.STT_FUNC || s.Size == 0 || s.Dynamic || s.Section <= 0 || s.Section >= len(f.Sections) {
				continue
			}
			sec := &f.Sections[s.Section]
			if !sec.Exec() || sec.FileSize == 0 || sec.Compressed {
				continue
			}
			off := s.Value
			if f.Header.Type != "ET_REL" {
				off -= sec.Addr
			}
			if off > sec.FileSize || s.Size > sec.FileSize-off {
				continue
			}
			k := symKey(s)
			if c := seen[k]; c > 0 {
				k = fmt.Sprintf("%s#%d", k, c)
			}
			seen[symKey(s)]++
			out[k] = fn{s.Demangled, sec, off, s.Size}
			order = append(order, k)
		}
		return out, order
	}
	ma, oa := collect(fa, sa)
	mb, _ := collect(fb, sb)
	var lines []string
	common := 0
	for _, k := range oa {
		x := ma[k]
		y, ok := mb[k]
		if !ok {
			continue
		}
		common++
		if ctx.Err() != nil {
			return nil
		}
		if x.size != y.size {
			lines = append(lines, fmt.Sprintf("%s: size %d → %d", x.name, x.size, y.size))
			continue
		}
		bx := make([]byte, x.size)
		by := make([]byte, y.size)
		if readFull(fa.Raw(x.sec), bx, int64(x.off)) != nil || readFull(fb.Raw(y.sec), by, int64(y.off)) != nil {
			continue
		}
		if !bytes.Equal(bx, by) {
			nd, first := 0, -1
			for i := range bx {
				if bx[i] != by[i] {
					nd++
					if first < 0 {
						first = i
					}
				}
			}
			lines = append(lines, fmt.Sprintf("%s: %s of %d, first at +0x%x", x.name, bytesDiffer(int64(nd)), x.size, first))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	sort.Strings(lines)
	n := e.node(join(path, "[functions]"), "functions", Changed)
	n.n.Summary = fmt.Sprintf("%d of %d functions differ", len(lines), common)
	for _, l := range lines {
		n.line("%s", l)
	}
	return n.done()
}

// maxDIEs bounds the debugging entries compared per file.
const maxDIEs = 4 << 20

// diffDWARF compares the compilation units, whose names and directories are
// where build paths leak, then every debugging entry with its strings resolved,
// which tells string-offset shifts apart from real changes.
func (e *engine) diffDWARF(ctx context.Context, path string, fa, fb *elf.File) *Node {
	n := e.node(join(path, "[dwarf]"), "dwarf", Changed)
	ua, errA := fa.CompUnits()
	ub, errB := fb.CompUnits()
	if errA != nil || errB != nil {
		n.n.Error = firstErr("in A: ", errA, "in B: ", errB).Error()
		n.n.Summary = "debug information could not be read"
		return n.done()
	}
	lines := func(us []elf.CompUnit) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = fmt.Sprintf("%s  (comp_dir %s; %s)", u.Name, orNone(u.CompDir), u.Producer)
		}
		return out
	}
	var parts []string
	r, ad := stringsDiff(n, lines(ua), lines(ub))
	if r+ad > 0 {
		parts = append(parts, fmt.Sprintf("compilation units: %d removed, %d added (of %d and %d)", r, ad, len(ua), len(ub)))
	}
	differ, total, note := e.diffDIEs(ctx, n, fa, fb)
	if differ > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d entries differ", differ, total))
	} else if total > 0 {
		parts = append(parts, fmt.Sprintf("all %d entries equal once strings are resolved: .debug_info differs only in offsets", total))
	}
	if note != "" {
		n.line("%s", note)
	}
	if r+ad == 0 && differ == 0 && note == "" {
		if len(parts) == 0 {
			return nil
		}
		n.n.Kind = Metadata
	}
	n.n.Summary = strings.Join(parts, "; ")
	return n.done()
}

// diffDIEs compares debugging entries in order and returns how many differ.
func (e *engine) diffDIEs(ctx context.Context, n *nodeBuilder, fa, fb *elf.File) (differ, total int, note string) {
	da, errA := fa.DWARF()
	db, errB := fb.DWARF()
	if errA != nil || errB != nil {
		return 0, 0, ""
	}
	defer func() {
		if v := recover(); v != nil {
			note = fmt.Sprintf("debugging entries could not be compared: debug/dwarf panic: %v", v)
		}
	}()
	ra, rb := da.Reader(), db.Reader()
	const shown = 12
	for total < maxDIEs {
		if total%4096 == 0 && ctx.Err() != nil {
			return differ, total, ""
		}
		ea, errA := ra.Next()
		eb, errB := rb.Next()
		if errA != nil || errB != nil {
			return differ, total, "stopped comparing entries: " + firstErr("in A: ", errA, "in B: ", errB).Error()
		}
		if ea == nil || eb == nil {
			if ea != eb {
				return differ, total, "one side has more debugging entries; comparison stopped"
			}
			return differ, total, ""
		}
		total++
		d := dieDiff(ea, eb)
		if d == "" {
			continue
		}
		differ++
		n.evidence(d)
		if differ <= shown {
			n.line("entry 0x%x %s: %s", ea.Offset, ea.Tag, d)
		}
	}
	return differ, total, fmt.Sprintf("compared the first %d entries only", maxDIEs)
}

// dieDiff describes how two entries differ, or returns "".
func dieDiff(a, b *dwarf.Entry) string {
	if a.Tag != b.Tag || a.Children != b.Children || len(a.Field) != len(b.Field) {
		return fmt.Sprintf("%s → %s", a.Tag, b.Tag)
	}
	var parts []string
	for i := range a.Field {
		fa, fb := a.Field[i], b.Field[i]
		if fa.Attr != fb.Attr || fa.Class != fb.Class {
			parts = append(parts, fmt.Sprintf("%s → %s", fa.Attr, fb.Attr))
			continue
		}
		if !reflect.DeepEqual(fa.Val, fb.Val) {
			parts = append(parts, fmt.Sprintf("%s %v → %v", strings.TrimPrefix(fa.Attr.String(), "Attr"), dieVal(fa.Val), dieVal(fb.Val)))
		}
	}
	return strings.Join(parts, ", ")
}

func dieVal(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// diffRmeta compares Rust crate metadata by its header and strings.
func (e *engine) diffRmeta(ctx context.Context, path string, a, b blob) (*Node, error) {
	lim := rmeta.Limits{MaxSize: e.opts.MaxStructured}
	ma, err := rmeta.Parse(a.ra, a.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in A: %w", err)
	}
	mb, err := rmeta.Parse(b.ra, b.size, lim)
	if err != nil {
		return nil, fmt.Errorf("in B: %w", err)
	}
	n := e.node(path, fmtRmeta, Changed)
	if ma.Version != mb.Version {
		n.line("metadata version: %d → %d", ma.Version, mb.Version)
	}
	if ma.Rustc != mb.Rustc {
		n.lineEv(fmt.Sprintf("rustc: %s → %s", ma.Rustc, mb.Rustc))
	}
	if ma.Root != mb.Root {
		n.line("root position: %d → %d", ma.Root, mb.Root)
	}
	strs := func(m *rmeta.Metadata) []string {
		out := make([]string, len(m.Strings))
		for i, s := range m.Strings {
			out[i] = s.S
		}
		return out
	}
	r, ad := stringsDiff(n, strs(ma), strs(mb))
	if r+ad == 0 {
		n.n.Summary = "encoded metadata differs; its strings are identical"
		e.byteDiff(ctx, n, a, b)
		n.n.Summary = "encoded metadata differs; its strings are identical"
	} else {
		n.n.Summary = fmt.Sprintf("metadata strings differ: %d removed, %d added", r, ad)
	}
	return n.done(), nil
}

// relocSummary counts the relocation entries that differ.
func relocSummary(a, b []byte, entsize uint64) string {
	if entsize == 0 || entsize > 64 {
		return fmt.Sprintf("relocations differ (%d → %d bytes)", len(a), len(b))
	}
	es := int(entsize)
	na, nb := len(a)/es, len(b)/es
	d := 0
	for i := 0; i < min(na, nb); i++ {
		if !bytes.Equal(a[i*es:(i+1)*es], b[i*es:(i+1)*es]) {
			d++
		}
	}
	s := fmt.Sprintf("relocations differ: %d of %d entries", d, min(na, nb))
	if na != nb {
		s += fmt.Sprintf("; %d → %d entries", na, nb)
	}
	return s
}
