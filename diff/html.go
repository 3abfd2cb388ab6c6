package diff

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: a collapsible tree
// of differences built from <details> elements, which works without JavaScript,
// with the perturbed values that were found highlighted. A few lines of script add
// expand/collapse-all and a filter.
func (r *Report) WriteHTML(w io.Writer) error {
	counts := map[Kind]int{}
	r.Walk(func(n *Node, _ int) bool { counts[n.Kind]++; return true })
	total := r.Count()
	data := htmlPage{
		A: r.A, B: r.B, Equal: r.Equal(), Total: total, Factors: r.Factors(),
		Changed: counts[Changed], Added: counts[Added], Removed: counts[Removed], Metadata: counts[Metadata],
		OpenAll: total <= 60,
	}
	if r.Root != nil {
		ids := 0
		data.Root = r.htmlNode(r.Root, "", 0, total <= 60, &ids)
		byFactor := map[string]*htmlFinding{}
		var walk func(h *htmlNode)
		walk = func(h *htmlNode) {
			for _, l := range h.Labels {
				f := byFactor[l]
				if f == nil {
					f = &htmlFinding{Factor: l}
					byFactor[l] = f
					data.Findings = append(data.Findings, f)
				}
				if len(f.Places) < 8 {
					f.Places = append(f.Places, htmlPlace{ID: h.ID, Path: h.Path, Summary: h.Summary})
				} else {
					f.More++
				}
			}
			for _, c := range h.Children {
				walk(c)
			}
		}
		walk(data.Root)
		sort.Slice(data.Findings, func(i, j int) bool { return data.Findings[i].Factor < data.Findings[j].Factor })
	}
	return pageTmpl.Execute(w, data)
}

type htmlPage struct {
	A, B                                     string
	Equal                                    bool
	Total, Changed, Added, Removed, Metadata int
	Factors                                  []string
	Root                                     *htmlNode
	OpenAll                                  bool
	Findings                                 []*htmlFinding
}

// An htmlFinding lists where one factor's perturbed values were found.
type htmlFinding struct {
	Factor string
	Places []htmlPlace
	More   int
}

type htmlPlace struct {
	ID            string
	Path, Summary string
}

type htmlNode struct {
	*Node
	ID       string
	Name     string
	Open     bool
	Lines    []htmlLine
	Children []*htmlNode
	Count    int  // nodes beneath
	labelled bool // a descendant has labels
}

type htmlLine struct {
	Class string
	HTML  template.HTML
}

func (r *Report) htmlNode(n *Node, parent string, depth int, openAll bool, ids *int) *htmlNode {
	*ids++
	h := &htmlNode{Node: n, ID: fmt.Sprintf("n%d", *ids), Name: n.Path, Open: depth < 2 || openAll || len(n.Labels) > 0}
	// Below the root, show the part of the path below the parent's.
	if rest, ok := strings.CutPrefix(n.Path, parent+"/"); ok && parent != "" && rest != "" {
		h.Name = rest
	}
	for _, d := range n.Details {
		h.Lines = append(h.Lines, htmlLine{Class: lineClass(d), HTML: r.highlight(d)})
	}
	for _, c := range n.Children {
		hc := r.htmlNode(c, n.Path, depth+1, openAll, ids)
		h.Count += 1 + hc.Count
		// Keep labelled differences visible: open their ancestors.
		if hc.Open && len(hc.Labels) > 0 || hc.labelled {
			h.Open, h.labelled = true, true
		}
		h.Children = append(h.Children, hc)
	}
	return h
}

func lineClass(s string) string {
	t := strings.TrimLeft(s, " ")
	switch {
	case strings.HasPrefix(s, "@@"), strings.HasPrefix(t, "@ 0x"):
		return "hunk"
	case strings.HasPrefix(t, "-") && !strings.HasPrefix(t, "->"):
		return "del"
	case strings.HasPrefix(t, "+"):
		return "add"
	case strings.HasPrefix(t, "A:"), strings.HasPrefix(t, "A strings:"):
		return "del"
	case strings.HasPrefix(t, "B:"), strings.HasPrefix(t, "B strings:"):
		return "add"
	case strings.Contains(s, " → "):
		return "meta"
	}
	return ""
}

// highlight escapes a detail line and marks the labelled values in it.
func (r *Report) highlight(s string) template.HTML {
	type mark struct {
		start, end int
		factor     string
	}
	var marks []mark
	for _, lv := range r.marks {
		for off := 0; ; {
			i := strings.Index(s[off:], lv.value)
			if i < 0 {
				break
			}
			marks = append(marks, mark{off + i, off + i + len(lv.value), lv.factor})
			off += i + len(lv.value)
		}
	}
	if len(marks) == 0 {
		return template.HTML(template.HTMLEscapeString(s))
	}
	sort.Slice(marks, func(i, j int) bool { return marks[i].start < marks[j].start })
	var b strings.Builder
	pos := 0
	for _, m := range marks {
		if m.start < pos {
			continue
		}
		b.WriteString(template.HTMLEscapeString(s[pos:m.start]))
		b.WriteString(`<mark title="` + template.HTMLEscapeString(m.factor) + `">`)
		b.WriteString(template.HTMLEscapeString(s[m.start:m.end]))
		b.WriteString(`</mark>`)
		pos = m.end
	}
	b.WriteString(template.HTMLEscapeString(s[pos:]))
	return template.HTML(b.String())
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reprobox diff: {{.A}}{{if ne .A .B}} vs {{.B}}{{end}}</title>
<style>
:root{--bg:#f7f7f5;--fg:#1d2021;--muted:#6b6f73;--card:#fff;--line:#e3e3df;
--chg:#b45309;--chg-bg:#fff4e0;--add:#15803d;--add-bg:#e8f7ec;--del:#b91c1c;--del-bg:#fdecec;--meta:#1d4ed8;--meta-bg:#e8efff;
--mark:#fde047;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
@media (prefers-color-scheme:dark){:root{--bg:#16181a;--fg:#e6e6e3;--muted:#9aa0a6;--card:#1f2225;--line:#33373b;
--chg:#f59e0b;--chg-bg:#3a2a10;--add:#4ade80;--add-bg:#12301d;--del:#f87171;--del-bg:#3a1616;--meta:#93b4ff;--meta-bg:#1b2745;--mark:#a16207}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{padding:18px 28px 14px;background:var(--card);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
h1{margin:0 0 6px;font-size:19px;font-weight:650;letter-spacing:-.01em}
h1 .brand{color:var(--muted);font-weight:500}
.files{font-family:var(--mono);font-size:12.5px;color:var(--muted);display:grid;grid-template-columns:auto 1fr;gap:2px 8px;margin-bottom:10px}
.files b{color:var(--fg);font-weight:600}
.stats{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.chip{border-radius:999px;padding:2px 10px;font-size:12.5px;font-weight:600;border:1px solid transparent}
.verdict{font-size:13px;padding:3px 12px}
.verdict.same{background:var(--add-bg);color:var(--add)}
.verdict.differ{background:var(--del-bg);color:var(--del)}
.k-changed{background:var(--chg-bg);color:var(--chg)}
.k-added{background:var(--add-bg);color:var(--add)}
.k-removed{background:var(--del-bg);color:var(--del)}
.k-metadata{background:var(--meta-bg);color:var(--meta)}
.factor{background:var(--mark);color:#1d2021;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:650}
.sep{color:var(--muted);margin:0 4px}
.tools{display:none;gap:8px;margin-top:10px;align-items:center}
.js .tools{display:flex}
.tools button,.tools input{font:inherit;font-size:12.5px;padding:4px 10px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
.tools button{cursor:pointer}
.tools input{width:280px}
main{padding:16px 28px 40px;max-width:1500px}
details,.leaf{border-left:2px solid var(--line);margin:3px 0 3px 0;padding-left:10px}
details>summary{list-style:none;cursor:pointer;padding:3px 6px;border-radius:6px;display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
details>summary::-webkit-details-marker{display:none}
details>summary::before{content:"▸";color:var(--muted);width:10px;display:inline-block;transition:transform .1s}
details[open]>summary::before{transform:rotate(90deg)}
.leaf>.row{padding:3px 6px 3px 24px;display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
summary:hover,.leaf>.row:hover{background:var(--line)}
.kind{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;border-radius:4px;padding:0 6px}
.path{font-family:var(--mono);font-size:13px;font-weight:600;word-break:break-all}
.fmt{font-family:var(--mono);font-size:11.5px;color:var(--muted);border:1px solid var(--line);border-radius:4px;padding:0 5px}
.sum{color:var(--fg)}
.count{color:var(--muted);font-size:12px}
.body{margin:2px 0 6px 18px}
.err{background:var(--del-bg);color:var(--del);border-radius:6px;padding:6px 10px;margin:4px 0;font-family:var(--mono);font-size:12.5px;white-space:pre-wrap;word-break:break-all}
pre{margin:4px 0 8px;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:6px 0;overflow-x:auto;font:12.5px/1.5 var(--mono)}
pre span{display:block;padding:0 12px;white-space:pre}
pre .del{background:var(--del-bg);color:var(--del)}
pre .add{background:var(--add-bg);color:var(--add)}
pre .hunk{color:var(--meta);font-weight:600}
pre .meta{color:var(--fg)}
pre .omit{color:var(--muted);font-style:italic}
mark{background:var(--mark);color:inherit;border-radius:3px;padding:0 1px}
.hidden{display:none}
.identical{font-size:16px;padding:30px 0;color:var(--add)}
.findings{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;margin:0 0 14px}
.findings h2{font-size:13px;margin:0 0 6px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.findings ul{margin:0;padding:0;list-style:none}
.findings li{margin:3px 0;display:flex;gap:8px;align-items:baseline;min-width:0}
.findings a{font-family:var(--mono);font-size:12.5px;color:var(--meta);text-decoration:none;word-break:break-all}
.findings a:hover{text-decoration:underline}
.findings .sum{color:var(--muted);font-size:12.5px;flex:1 1 0;min-width:120px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.findings a{flex:0 1 auto}
details,.leaf{scroll-margin-top:190px}
:target>summary,:target>.row{outline:2px solid var(--mark);outline-offset:1px}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
</style>
</head>
<body>
<script>document.documentElement.className="js"</script>
<header>
<h1><span class="brand">reprobox</span> diff</h1>
<div class="files"><span>A</span><b>{{.A}}</b><span>B</span><b>{{.B}}</b></div>
<div class="stats">
{{if .Equal}}<span class="chip verdict same">identical</span>{{else}}<span class="chip verdict differ">{{.Total}} difference{{if ne .Total 1}}s{{end}}</span>
{{if .Changed}}<span class="chip k-changed">{{.Changed}} changed</span>{{end}}
{{if .Added}}<span class="chip k-added">{{.Added}} added</span>{{end}}
{{if .Removed}}<span class="chip k-removed">{{.Removed}} removed</span>{{end}}
{{if .Metadata}}<span class="chip k-metadata">{{.Metadata}} metadata</span>{{end}}
{{if .Factors}}<span class="sep">·</span><span class="count">caused by</span>{{range .Factors}} <span class="factor">{{.}}</span>{{end}}{{end}}
{{end}}
</div>
<div class="tools"><button type="button" onclick="setAll(true)">Expand all</button><button type="button" onclick="setAll(false)">Collapse all</button><input type="search" placeholder="Filter by path, format or text…" oninput="filter(this.value)"></div>
</header>
<main>
{{if .Equal}}<p class="identical">The two inputs are byte-for-byte identical.</p>{{else}}
{{if .Findings}}<section class="findings"><h2>Perturbed values found in differing bytes</h2><ul>
{{range .Findings}}{{$f := .Factor}}{{range .Places}}<li><span class="factor">{{$f}}</span><a href="#{{.ID}}">{{.Path}}</a><span class="sum">{{.Summary}}</span></li>{{end}}{{if .More}}<li><span class="factor">{{$f}}</span><span class="sum">and {{.More}} more places</span></li>{{end}}{{end}}
</ul></section>{{end}}
{{template "node" .Root}}{{end}}
</main>
<footer>Generated by reprobox diff · schema reprobox.diff/v1 · labels mark perturbed build inputs found in the differing bytes.</footer>
<script>
function setAll(o){document.querySelectorAll("details").forEach(function(d){d.open=o})}
function filter(q){q=q.toLowerCase();var ns=document.querySelectorAll("main details, main .leaf");
ns.forEach(function(n){n.classList.remove("hidden")});if(!q)return;
for(var i=ns.length-1;i>=0;i--){var n=ns[i];var self=n.querySelector(":scope>summary,:scope>.row");var own=(self?self.textContent:"")+" "+Array.from(n.querySelectorAll(":scope>.body>pre")).map(function(p){return p.textContent}).join(" ");
var kid=n.querySelector(":scope>.body>details:not(.hidden),:scope>.body>.leaf:not(.hidden)");
if(own.toLowerCase().indexOf(q)<0&&!kid){n.classList.add("hidden")}else if(n.tagName==="DETAILS"&&kid){n.open=true}}}
</script>
</body>
</html>
{{define "row"}}<span class="kind k-{{.Kind}}">{{.Kind}}</span><span class="path">{{.Name}}</span>{{if .Format}}<span class="fmt">{{.Format}}</span>{{end}}<span class="sum">{{.Summary}}</span>{{range .Labels}}<span class="factor">{{.}}</span>{{end}}{{if .Count}}<span class="count">{{.Count}} inside</span>{{end}}{{end}}
{{define "node"}}{{if or .Children .Lines .Error}}<details id="{{.ID}}"{{if .Open}} open{{end}}><summary>{{template "row" .}}</summary><div class="body">
{{if .Error}}<div class="err">{{.Error}}</div>{{end}}
{{if .Lines}}<pre>{{range .Lines}}<span class="{{.Class}}">{{.HTML}}</span>{{end}}{{if .Omitted}}<span class="omit">… {{.Omitted}} more lines</span>{{end}}</pre>{{end}}
{{range .Children}}{{template "node" .}}{{end}}
</div></details>{{else}}<div class="leaf" id="{{.ID}}"><div class="row">{{template "row" .}}</div></div>{{end}}{{end}}
`))
