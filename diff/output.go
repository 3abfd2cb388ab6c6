package diff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// SchemaVersion names the JSON schema WriteJSON writes.
const SchemaVersion = "reprobox.diff/v1"

// WriteText writes the tree as indented text, at most maxLines lines (0 means
// Options.MaxTextLines). When lines are left out it ends with
// "... N more differences not shown".
//
// When the tree does not fit, the most telling differences are kept first:
// nodes whose own bytes hold a perturbed value (labelled strings, text),
// then structured evidence (DWARF units and their directories, symbols,
// functions, metadata strings, text), then other nodes, and hex dumps of
// bytes last. Each node kept brings its ancestors' headers; what is kept is
// written in tree order.
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
		for _, d := range n.Details[:it.details] {
			bw.WriteString(ind + "  │ " + d + "\n")
		}
		if more := len(n.Details) - it.details + n.Omitted; it.moreLine && more > 0 {
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
	n        *Node
	depth    int
	parent   int // index of the parent item, -1 for the root
	rank     int // lower is shown first
	shown    bool
	details  int  // detail lines shown
	moreLine bool // "… N more lines" is written
}

// Text ranks: the order in which WriteText spends its line budget.
const (
	rankLabelled   = iota // a perturbed value in the node's own bytes, not a hex dump
	rankStructured        // DWARF, symbols, functions, rmeta strings, text
	rankOther             // metadata, containers, summaries
	rankHexLabel          // a hex dump of bytes that hold a perturbed value
	rankHex               // other hex dumps
)

// textRank says how telling a node's own lines are.
func textRank(n *Node) int {
	hex := false
	for _, d := range n.Details {
		if strings.HasPrefix(d, "@ 0x") {
			hex = true
			break
		}
	}
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

// planText chooses what WriteText shows within maxLines: nodes by rank, each
// with its ancestors' headers and as many of its detail lines as fit.
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
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return items[order[i]].rank < items[order[j]].rank })
	budget := maxLines
	if len(items) > 1 {
		budget-- // the "... more differences" line, when nodes are left out
	}
	headerCost := func(i int) int {
		if items[i].n.Error != "" {
			return 2
		}
		return 1
	}
	for _, i := range order {
		if items[i].shown {
			continue
		}
		// The node's header and those of its hidden ancestors.
		cost := 0
		for j := i; j >= 0 && !items[j].shown; j = items[j].parent {
			cost += headerCost(j)
		}
		if cost > budget {
			continue
		}
		budget -= cost
		for j := i; j >= 0 && !items[j].shown; j = items[j].parent {
			items[j].shown = true
		}
		it := &items[i]
		want := len(it.n.Details)
		if it.n.Omitted > 0 {
			want++
		}
		if want <= budget {
			it.details, it.moreLine = len(it.n.Details), it.n.Omitted > 0
			budget -= want
			continue
		}
		if budget > 0 {
			it.details, it.moreLine = budget-1, true
			budget = 0
		}
	}
	// Ancestors shown only for their children still show their own lines
	// when the budget allows, in rank order.
	for _, i := range order {
		it := &items[i]
		if !it.shown || it.details > 0 || it.moreLine || len(it.n.Details) == 0 || budget <= 0 {
			continue
		}
		want := len(it.n.Details)
		if it.n.Omitted > 0 {
			want++
		}
		if want <= budget {
			it.details, it.moreLine = len(it.n.Details), it.n.Omitted > 0
			budget -= want
		} else {
			it.details, it.moreLine = budget-1, true
			budget = 0
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
