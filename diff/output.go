package diff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SchemaVersion names the JSON schema WriteJSON writes.
const SchemaVersion = "reprobox.diff/v1"

// WriteText writes the tree as indented text, at most maxLines lines (0 means
// Options.MaxTextLines). When lines are left out it ends with
// "... N more differences not shown".
//
// When the tree does not fit, the most telling differences are kept first:
// nodes whose own lines hold a perturbed value (labelled strings, text), then
// structured evidence (DWARF units and their directories, symbols, functions,
// metadata strings, text), the strings around differing bytes that hold a
// perturbed value, other nodes, and hex dumps of bytes last. Each node kept
// brings its ancestors' headers; what is kept is written in tree order.
func (r *Report) WriteText(w io.Writer, maxLines int) error {
	if maxLines <= 0 {
		maxLines = r.maxText
	}
	if maxLines <= 0 {
		maxLines = 400
	}
	bw := bufio.NewWriter(w)
	if r.Root == nil {
		fmt.Fprintf(bw, "%s and %s are identical\n", r.A, r.B)
		return bw.Flush()
	}
	items := planText(r, maxLines)
	shown := 0
	for _, it := range items {
		if !it.shown {
			continue
		}
		shown++
		n := it.n
		ind := strings.Repeat("  ", it.depth)
		head := fmt.Sprintf("%s%s  [%s] %s: %s", ind, n.Path, n.Format, n.Kind, n.Summary)
		if len(n.Labels) > 0 {
			head += "  {" + strings.Join(n.Labels, ", ") + "}"
		}
		bw.WriteString(head + "\n")
		if n.Error != "" {
			bw.WriteString(ind + "  ! " + n.Error + "\n")
		}
		for _, i := range it.lines {
			bw.WriteString(ind + "  │ " + n.Details[i] + "\n")
		}
		if more := it.hidden(); more > 0 {
			fmt.Fprintf(bw, "%s  │ … %d more lines\n", ind, more)
		}
	}
	if shown < len(items) {
		fmt.Fprintf(bw, "... %d more differences not shown\n", len(items)-shown)
	}
	return bw.Flush()
}

// A textItem is one node of a report and what WriteText shows of it.
type textItem struct {
	n      *Node
	depth  int
	parent int // index of the parent item, -1 for the root
	rank   int // lower is shown first
	shown  bool
	lines  []int // indices of the detail lines shown, sorted
}

// hidden counts the detail lines not shown, told in a "… N more lines" line.
func (it *textItem) hidden() int { return len(it.n.Details) - len(it.lines) + it.n.Omitted }

// cost is the lines the item's details take.
func (it *textItem) cost() int {
	if it.hidden() > 0 {
		return len(it.lines) + 1
	}
	return len(it.lines)
}

// Text ranks: the order in which WriteText spends its line budget.
const (
	rankLabelled   = iota // a perturbed value in the node's own lines, not a hex dump
	rankStructured        // DWARF, symbols, functions, rmeta strings, text
	rankHexLabel          // the strings around differing bytes that hold a perturbed value
	rankOther             // metadata, containers, summaries
	rankHex               // other hex dumps
	numRanks
)

// isHex reports whether a node's details are a dump of differing bytes.
func isHex(n *Node) bool {
	for _, d := range n.Details {
		if strings.HasPrefix(d, "@ 0x") {
			return true
		}
	}
	return false
}

// textRank says how telling a node's own lines are.
func textRank(n *Node) int {
	hex := isHex(n)
	switch {
	case hex && len(n.Labels) > 0:
		return rankHexLabel
	case hex:
		return rankHex
	case len(n.Labels) > 0:
		return rankLabelled
	}
	switch n.Format {
	case "dwarf", "symbols", "functions", fmtRmeta, fmtText, "ar-symbols":
		return rankStructured
	}
	return rankOther
}

// preferred lists a node's detail lines in the order they are worth showing:
// for a hex dump, the strings around the differing bytes first.
func preferred(n *Node, stringsOnly bool) []int {
	var out []int
	if isHex(n) {
		for i, d := range n.Details {
			if strings.HasPrefix(d, "  A strings:") || strings.HasPrefix(d, "  B strings:") {
				out = append(out, i)
			}
		}
		if stringsOnly {
			return out
		}
	}
	for i := range n.Details {
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// planText chooses what WriteText shows within maxLines. Rank by rank, the
// nodes of a rank get their headers (and their ancestors'), then a share of
// the lines left; what remains at the end goes to nodes in rank order. A
// labelled hex dump first shows only the strings around its bytes.
func planText(r *Report, maxLines int) []textItem {
	var items []textItem
	var stack []int
	r.Walk(func(n *Node, depth int) bool {
		stack = stack[:depth]
		parent := -1
		if depth > 0 {
			parent = stack[depth-1]
		}
		stack = append(stack, len(items))
		items = append(items, textItem{n: n, depth: depth, parent: parent, rank: textRank(n)})
		return true
	})
	budget := maxLines
	if len(items) > 1 {
		budget-- // the "... more differences" line, when nodes are left out
	}
	// A node's header, its error and, while lines are hidden, the "… N more
	// lines" line.
	headerCost := func(i int) int {
		c := 1 + items[i].cost()
		if items[i].n.Error != "" {
			c++
		}
		return c
	}
	include := func(i int) bool {
		cost := 0
		for j := i; j >= 0 && !items[j].shown; j = items[j].parent {
			cost += headerCost(j)
		}
		if cost > budget {
			return false
		}
		budget -= cost
		for j := i; j >= 0 && !items[j].shown; j = items[j].parent {
			items[j].shown = true
		}
		return true
	}
	// grant shows up to quota more of want's lines of item i, within budget.
	grant := func(i int, want []int, quota int) {
		it := &items[i]
		for _, idx := range want {
			if quota <= 0 {
				return
			}
			if slices.Contains(it.lines, idx) {
				continue
			}
			before := it.cost()
			it.lines = append(it.lines, idx)
			slices.Sort(it.lines)
			if d := it.cost() - before; d > budget {
				it.lines = slices.DeleteFunc(it.lines, func(x int) bool { return x == idx })
				return
			} else {
				budget -= d
			}
			quota--
		}
	}
	var byRank [numRanks][]int
	for i := range items {
		byRank[items[i].rank] = append(byRank[items[i].rank], i)
	}
	for rank, idx := range byRank {
		var in []int
		for _, i := range idx {
			if include(i) {
				in = append(in, i)
			}
		}
		if len(in) == 0 {
			continue
		}
		quota := budget / len(in)
		if rank != rankLabelled {
			quota = min(quota, budget/2) // leave room for what follows
		}
		quota = max(quota, 3)
		for _, i := range in {
			grant(i, preferred(items[i].n, rank == rankHexLabel), quota)
		}
	}
	for _, idx := range byRank {
		for _, i := range idx {
			if items[i].shown {
				grant(i, preferred(items[i].n, false), len(items[i].n.Details))
			}
		}
	}
	return items
}

// jsonReport is the document WriteJSON writes, schema reprobox.diff/v1:
//
//	a, b         the names compared
//	differences  the number of nodes in the tree
//	equal        true when the inputs are identical (root is then null)
//	factors      the sorted union of the nodes' labels
//	root         the tree of Nodes (see Node for its fields)
//	schema       "reprobox.diff/v1"
//
// Fields are in key order.
type jsonReport struct {
	A           string   `json:"a"`
	B           string   `json:"b"`
	Differences int      `json:"differences"`
	Equal       bool     `json:"equal"`
	Factors     []string `json:"factors"`
	Root        *Node    `json:"root"`
	Schema      string   `json:"schema"`
}

// WriteJSON writes the report as indented JSON. Keys are in sorted order,
// children sorted by path, labels sorted; nothing depends on the clock.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonReport{
		A: r.A, B: r.B, Differences: r.Count(), Equal: r.Equal(),
		Factors: r.Factors(), Root: r.Root, Schema: SchemaVersion,
	})
}
