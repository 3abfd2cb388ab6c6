package diff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// SchemaVersion names the JSON schema WriteJSON writes.
const SchemaVersion = "reprobox.diff/v1"

// WriteText writes the tree as indented text, at most maxLines lines (0 means
// Options.MaxTextLines). When lines are left out it ends with
// "... N more differences not shown".
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
	total := r.Count()
	used, shown := 0, 0
	full := false
	emit := func(s string) bool {
		if used >= maxLines {
			full = true
			return false
		}
		used++
		bw.WriteString(s)
		bw.WriteByte('\n')
		return true
	}
	r.Walk(func(n *Node, depth int) bool {
		if full || used >= maxLines-1 {
			full = true
			return false
		}
		ind := strings.Repeat("  ", depth)
		head := fmt.Sprintf("%s%s  [%s] %s: %s", ind, n.Path, n.Format, n.Kind, n.Summary)
		if len(n.Labels) > 0 {
			head += "  {" + strings.Join(n.Labels, ", ") + "}"
		}
		emit(head)
		shown++
		if n.Error != "" && !emit(ind+"  ! "+n.Error) {
			return false
		}
		for i, d := range n.Details {
			// Keep a line for the next node's header and the tail line.
			if used >= maxLines-1 {
				emit(fmt.Sprintf("%s  │ … %d more lines", ind, len(n.Details)-i+n.Omitted))
				return !full
			}
			emit(ind + "  │ " + d)
		}
		if n.Omitted > 0 {
			emit(fmt.Sprintf("%s  │ … %d more lines", ind, n.Omitted))
		}
		return true
	})
	if shown < total {
		fmt.Fprintf(bw, "... %d more differences not shown\n", total-shown)
	}
	return bw.Flush()
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
