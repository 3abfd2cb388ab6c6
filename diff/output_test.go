package diff

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestWriteTextEvidenceFirst is the ripgrep case: six hex dumps of
// .debug_line sort before the DWARF unit whose comp_dir shows the build path,
// and used to fill the 40-line budget. The labelled DWARF line, then the
// symbols, must be shown; the hex dumps get what is left.
func TestWriteTextEvidenceFirst(t *testing.T) {
	hex := func(path string) *Node {
		n := &Node{Path: path, Format: "elf-section", Kind: Changed, Summary: "12 bytes differ", Labels: []string{"build_path"}}
		for i := 0; i < 3; i++ {
			n.Details = append(n.Details, fmt.Sprintf("@ 0x%x: 4 bytes", i*64),
				"  A: 2f 62 75 69 6c 64 2f 73 72 63  /build/src", "  B: 2f 62 75 69 6c 64 2d 76 61 72  /build-var")
		}
		return n
	}
	root := &Node{Path: "rg", Format: "elf", Kind: Changed, Summary: "8 sections differ"}
	for i := 0; i < 6; i++ {
		root.Children = append(root.Children, hex(fmt.Sprintf("rg/.debug_line.%d", i)))
	}
	root.Children = append(root.Children,
		&Node{Path: "rg/[dwarf]", Format: "dwarf", Kind: Changed, Summary: "1 unit differs", Labels: []string{"build_path"},
			Details: []string{`unit src/main.rs: comp_dir "/build/src" → "/build-variant/a/src"`}},
		&Node{Path: "rg/[symbols]", Format: "symbols", Kind: Changed, Summary: "2 symbols differ",
			Details: []string{"- _ZN4core3fmt5write17h1", "+ _ZN4core3fmt5write17h2"}},
	)
	rep := &Report{A: "a", B: "b", Root: root}
	var b bytes.Buffer
	if err := rep.WriteText(&b, 40); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) > 41 {
		t.Errorf("%d lines, bound 40 (+1)", len(lines))
	}
	for _, want := range []string{`comp_dir "/build/src"`, "_ZN4core3fmt5write17h2", "rg/[dwarf]", "rg/[symbols]"} {
		if !strings.Contains(out, want) {
			t.Errorf("evidence lacks %q:\n%s", want, out)
		}
	}
	// Tree order is kept: the DWARF node is written after the hex dumps
	// shown, under its parent.
	if strings.Index(out, "rg/[dwarf]") < strings.Index(out, "rg/.debug_line.0") {
		t.Errorf("tree order lost:\n%s", out)
	}
	// With a budget too small for everything, the hex dumps are what is cut.
	b.Reset()
	if err := rep.WriteText(&b, 8); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "comp_dir") || !strings.Contains(out, "_ZN4core3fmt5write17h2") {
		t.Errorf("8 lines: labelled and structured evidence not first:\n%s", out)
	}
}

// TestWriteTextBigNodeShares: a structured node with hundreds of lines (the
// functions of a relinked binary) must not crowd out the labelled strings
// around the differing bytes of .rodata.
func TestWriteTextBigNodeShares(t *testing.T) {
	fns := &Node{Path: "tool/[functions]", Format: "functions", Kind: Changed, Summary: "187 of 541 functions differ"}
	for i := 0; i < 187; i++ {
		fns.Details = append(fns.Details, fmt.Sprintf("fn%d: 1 byte differs", i))
	}
	ro := &Node{Path: "tool/.rodata", Format: "elf-section", Kind: Changed, Summary: "bytes differ", Labels: []string{"build_path"},
		Details: []string{"@ 0x10: 40 bytes", "  A: 2f 62 75 69", "  B: 2f 62 75 69", `  A strings: "/build/src/pathdep/data"`,
			`  B strings: "/build/reprobox-variant/src/pathdep/data"`}}
	rep := &Report{A: "a", B: "b", Root: &Node{Path: "tool", Format: "elf", Kind: Changed, Summary: "x", Children: []*Node{ro, fns}}}
	var b bytes.Buffer
	if err := rep.WriteText(&b, 20); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n := strings.Count(out, "\n"); n > 21 {
		t.Errorf("%d lines, bound 20 (+1)", n)
	}
	for _, want := range []string{"B strings: \"/build/reprobox-variant", "fn0: 1 byte differs", "more lines"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}
