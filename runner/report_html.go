package runner

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/policies"
)

// The HTML reports of check, verify and experiment: one self-contained page
// each (inline style, nothing loaded from elsewhere), in the look
// of `reprobox diff --html`. html/template escapes everything that came from
// a build.

const reportCSS = `:root{--bg:#f7f7f5;--fg:#1d2021;--muted:#6b6f73;--card:#fff;--line:#e3e3df;
--ok:#15803d;--ok-bg:#e8f7ec;--bad:#b91c1c;--bad-bg:#fdecec;--warn:#b45309;--warn-bg:#fff4e0;--meta:#1d4ed8;--meta-bg:#e8efff;
--mark:#fde047;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{padding:18px 28px 14px;background:var(--card);border-bottom:1px solid var(--line)}
h1{margin:0 0 6px;font-size:19px;font-weight:650}
h1 .brand{color:var(--muted);font-weight:500}
h2{font-size:13px;margin:22px 0 8px;color:var(--muted);font-weight:650;text-transform:uppercase;letter-spacing:.04em}
.meta{font-family:var(--mono);font-size:12.5px;color:var(--muted);display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0 10px}
.meta b{color:var(--fg);font-weight:600;word-break:break-all}
.chip{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12.5px;font-weight:650}
.ok{background:var(--ok-bg);color:var(--ok)}.bad{background:var(--bad-bg);color:var(--bad)}.warn{background:var(--warn-bg);color:var(--warn)}
.factor{background:var(--mark);color:#1d2021;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:650}
main{padding:8px 28px 40px;max-width:1500px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;margin:10px 0}
.card h3{margin:0 0 6px;font:600 14px/1.4 var(--mono);display:flex;gap:8px;align-items:center;flex-wrap:wrap}
table{border-collapse:collapse;font-size:12.5px;background:var(--card)}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:650}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.heat{text-align:center;font:600 12px var(--mono);min-width:74px;white-space:nowrap}
td.mono,th.mono{white-space:nowrap}
.mono{font-family:var(--mono)}
pre{margin:4px 0 8px;background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:6px 0;overflow-x:auto;font:12px/1.5 var(--mono)}
pre span{display:block;padding:0 12px;white-space:pre}
pre .del{background:var(--bad-bg);color:var(--bad)}pre .add{background:var(--ok-bg);color:var(--ok)}pre .hunk{color:var(--meta);font-weight:600}
.muted{color:var(--muted)}
.legend{display:flex;gap:6px;align-items:center;font-size:12px;color:var(--muted);margin:6px 0}
.legend span.sw{display:inline-block;width:26px;height:12px;border:1px solid var(--line)}
iframe{width:100%;height:640px;border:1px solid var(--line);border-radius:8px;background:#fff}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}`

// heatColor is the background of a share: green at 0, through amber, to red
// at 1; grey when nothing was built.
func heatColor(share float64, builds int) template.CSS {
	if builds == 0 {
		return "background:#e5e7eb;color:#6b7280"
	}
	hue := 130 * (1 - share)
	light := 88 - 30*share
	fg := "#1d2021"
	if share > 0.6 {
		fg = "#fff"
	}
	return template.CSS(fmt.Sprintf("background:hsl(%.0f,70%%,%.0f%%);color:%s", hue, light, fg))
}

// evidenceLines classes the lines of a text diff for colour.
func evidenceLines(s string) []htmlLine {
	var out []htmlLine
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		t := strings.TrimLeft(l, " |")
		c := ""
		switch {
		case strings.HasPrefix(t, "@@"), strings.HasPrefix(t, "@ 0x"):
			c = "hunk"
		case strings.HasPrefix(t, "-") && !strings.HasPrefix(t, "->"), strings.HasPrefix(t, "A:"):
			c = "del"
		case strings.HasPrefix(t, "+"), strings.HasPrefix(t, "B:"):
			c = "add"
		}
		out = append(out, htmlLine{Class: c, Text: l})
	}
	return out
}

type htmlLine struct{ Class, Text string }

var reportFuncs = template.FuncMap{
	"heat":     heatColor,
	"lines":    evidenceLines,
	"pct":      func(x float64) string { return fmt.Sprintf("%.0f%%", x*100) },
	"join":     strings.Join,
	"css":      func() template.CSS { return template.CSS(reportCSS) },
	"short":    func(s string) string { return shortHash(s) },
	"split":    strings.Split,
	"factorOf": func(rep *CheckReport, name string) Values { return rep.Factors[name] },
}

func shortHash(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 16 {
		return s[:16] + "…"
	}
	if s == "" {
		return "(none)"
	}
	return s
}

// ---- check ----

type checkPage struct {
	Project string
	Rep     *CheckReport
	// Trees are the diff pages of the artifacts, by path.
	Trees map[string]string
}

// WriteCheckHTML writes a check's report as one self-contained page: the
// verdict, each artifact with its culprits and their control and variant
// values, the evidence, where the builds first diverge, and the sets of
// factors built with the artifacts that differed in each. trees, when not
// nil, holds per artifact path the page of CheckEvidenceTrees, embedded as
// the evidence tree.
func WriteCheckHTML(w io.Writer, project string, rep *CheckReport, trees map[string]string) error {
	return checkTmpl.Execute(w, checkPage{Project: project, Rep: rep, Trees: trees})
}

// CheckEvidenceTrees diffs, for each artifact with culprits, the control's
// copy against its first culprit's build as kept in out (control/ and
// variants/CULPRIT/), with the culprit's perturbed values as labels, and
// returns the diff --html page of each by artifact path. An artifact whose
// copies are not kept is left out.
func CheckEvidenceTrees(ctx context.Context, p *Plan, rep *CheckReport, out string) (map[string]string, error) {
	trees := map[string]string{}
	for _, a := range rep.Artifacts {
		if len(a.Culprits) == 0 {
			continue
		}
		c := a.Culprits[0]
		ca := filepath.Join(out, "control", filepath.FromSlash(a.Path))
		cb := filepath.Join(out, "variants", c, filepath.FromSlash(a.Path))
		if _, err := os.Stat(ca); err != nil {
			continue
		}
		if _, err := os.Stat(cb); err != nil {
			continue
		}
		vs := policies.Perturb(p.Base, strings.Split(c, "+"), rep.Seed)
		d, err := diff.Files(ctx, ca, cb, diff.Options{Labels: Labels(p.Base, vs), TimeRanges: TimeRanges(p.Base, vs), Matchers: Matchers(p.Base, vs)})
		if err != nil {
			return nil, fmt.Errorf("runner: diff %s: %w", a.Path, err)
		}
		d.A, d.B = "control/"+a.Path, "variants/"+c+"/"+a.Path
		var buf bytes.Buffer
		if err := d.WriteHTML(&buf); err != nil {
			return nil, err
		}
		trees[a.Path] = buf.String()
	}
	return trees, nil
}

var checkTmpl = template.Must(template.New("check").Funcs(reportFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>reprobox check: {{.Project}}</title><style>{{css}}</style></head><body>
{{$r := .Rep}}
<header><h1><span class="brand">reprobox</span> check</h1>
<div class="meta"><span>project</span><b>{{.Project}}</b><span>image</span><b>{{$r.Image}}</b><span>seed</span><b>{{$r.Seed}}</b><span>builds</span><b>{{$r.Builds}} (repeats {{$r.Repeats}})</b></div>
{{if $r.Undecided}}<span class="chip warn">UNDECIDED</span> --max-builds {{$r.MaxBuilds}} reached before every artifact had a verdict
{{else if $r.Reproducible}}<span class="chip ok">REPRODUCIBLE</span> every artifact is bit-identical under every perturbation
{{else if $r.Culprits}}<span class="chip bad">NOT REPRODUCIBLE</span> culprits {{range $r.Culprits}}<span class="factor">{{.}}</span> {{end}}
{{else}}<span class="chip warn">NOT REPRODUCIBLE</span> nondeterministic output{{end}}
</header><main>
<h2>Artifacts</h2>
{{range $r.Artifacts}}<section class="card"><h3>{{.Path}}
{{if .Reproducible}}<span class="chip ok">reproducible</span>{{else if .Undecided}}<span class="chip warn">undecided</span>{{range .Hypothesis}} <span class="factor">{{.}}?</span>{{end}}{{else if .Nondeterministic}}<span class="chip warn">nondeterministic</span>{{else}}<span class="chip bad">not reproducible</span>{{range .Culprits}} <span class="factor">{{.}}</span>{{end}}{{end}}</h3>
<div class="meta"><span>control</span><b>{{.ControlSHA256}}</b><span>variant</span><b>{{.VariantSHA256}}</b>
{{if .EvidenceFactors}}<span>found in bytes</span><b>{{join .EvidenceFactors ", "}}</b>{{end}}
{{if .HintFactors}}<span>hinted by reordering</span><b>{{join .HintFactors ", "}}</b>{{end}}</div>
{{if .Nondeterministic}}<p>It differs between builds in identical environments: no factor is blamed.</p>{{end}}
{{if .Mechanism}}<p>{{.Mechanism}}</p>{{end}}
{{if .Culprits}}<table><tr><th>culprit</th><th>factor</th><th>control value</th><th>variant value</th><th>build</th></tr>
{{range $c := .Culprits}}{{range $f := split $c "+"}}{{$v := factorOf $r $f}}<tr><td class="mono">{{$c}}</td><td><span class="factor">{{$f}}</span></td><td class="mono">{{$v.Control}}</td><td class="mono">{{$v.Variant}}</td><td>{{index $r.BuildFailures $c}}</td></tr>{{end}}{{end}}
</table>{{end}}
{{with .Localization}}<p><b>Where the builds first diverge:</b> {{.Summary}}</p>{{end}}
{{if .LocalizationError}}<p class="muted">{{.LocalizationError}}</p>{{end}}
{{with index $.Trees .Path}}<details open><summary>evidence tree (structural diff of the control against the first culprit's build, perturbed values marked)</summary><iframe title="evidence tree" srcdoc="{{.}}"></iframe></details>{{end}}
{{if .Evidence}}<details{{if not (index $.Trees .Path)}} open{{end}}><summary>evidence (text)</summary><pre>{{range lines .Evidence}}<span class="{{.Class}}">{{.Text}}</span>{{end}}</pre></details>{{end}}
</section>{{end}}
{{if $r.Trials}}<h2>Builds that led there</h2>
<table><tr><th>factors perturbed</th><th>builds</th><th>artifacts that differed from the control</th></tr>
{{range $r.Trials}}<tr><td>{{if .Set}}{{range .Set}}<span class="factor">{{.}}</span> {{end}}{{else}}<i>none (control)</i>{{end}}</td><td class="num">{{.Builds}}</td>
<td class="mono">{{if .Failed}}<span class="chip bad">build failed</span> {{.Failed}}{{else if .Differing}}{{join .Differing ", "}}{{else}}<span class="muted">none</span>{{end}}</td></tr>{{end}}
</table>{{end}}
{{if $r.Workers}}<h2>Workers</h2>
{{range $r.WorkerFindings}}<p><span class="chip bad">worker does not reproduce</span> <b class="mono">{{.Worker}}</b>: {{.Artifact}} ({{if .Set}}vary {{join .Set ","}}{{else}}the control{{end}}) gave <span class="mono">{{join .Got ", "}}</span> where {{len .AgreedBy}} build(s) on {{join .Others ", "}} agree on <span class="mono">{{.Agreed}}</span></p>{{end}}
<table><tr><th>build</th><th>factors perturbed</th><th>worker</th><th>result</th></tr>
{{range $r.PerBuild}}<tr><td class="num">{{.N}}</td><td>{{if .Set}}{{range .Set}}<span class="factor">{{.}}</span> {{end}}{{else}}<i>none (control)</i>{{end}}</td><td class="mono">{{.Worker}}</td><td>{{if .Failed}}<span class="chip bad">build failed</span> {{.Failed}}{{else}}<span class="muted">ok</span>{{end}}</td></tr>{{end}}
</table>{{end}}
{{if $r.Factors}}<h2>Factors</h2><table><tr><th>factor</th><th>control</th><th>variant</th></tr>
{{range $k, $v := $r.Factors}}<tr><td><span class="factor">{{$k}}</span></td><td class="mono">{{$v.Control}}</td><td class="mono">{{$v.Variant}}</td></tr>{{end}}</table>{{end}}
</main><footer>Generated by reprobox check · the same seed replays the check.</footer></body></html>
`))

// ---- verify ----

type verifyPage struct {
	Project string
	Rep     *VerifyReport
}

// WriteVerifyHTML writes a verify report as one self-contained page: the
// verdict and each artifact with its status, digests, the factors found in
// the differing bytes and the diff.
func WriteVerifyHTML(w io.Writer, project string, rep *VerifyReport) error {
	return verifyTmpl.Execute(w, verifyPage{Project: project, Rep: rep})
}

var verifyTmpl = template.Must(template.New("verify").Funcs(reportFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>reprobox verify: {{.Project}}</title><style>{{css}}</style></head><body>
{{$r := .Rep}}
<header><h1><span class="brand">reprobox</span> verify</h1>
<div class="meta"><span>project</span><b>{{.Project}}</b><span>published</span><b>{{$r.Published}} ({{$r.PublishedForm}})</b><span>image</span><b>{{$r.Image}} {{$r.ImageDigest}}</b><span>builds</span><b>{{$r.Builds}}</b></div>
{{if $r.Verified}}<span class="chip ok">VERIFIED</span> every published artifact matches the rebuild{{else}}<span class="chip bad">NOT VERIFIED</span>{{if $r.BuildFailure}} the rebuild failed: {{$r.BuildFailure}}{{end}}{{end}}
</header><main><h2>Artifacts</h2>
{{range $r.Artifacts}}<section class="card"><h3>{{.Name}} {{if eq .Status "MATCH"}}<span class="chip ok">MATCH</span>{{else}}<span class="chip bad">{{.Status}}</span>{{end}}{{range .DiffFactors}} <span class="factor">{{.}}</span>{{end}}</h3>
<div class="meta"><span>published</span><b>{{.PublishedSHA256}} {{.Origin}}</b><span>rebuilt</span><b>{{.RebuiltSHA256}} {{.Built}}</b></div>
{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{if .DiffFactors}}<p>The rebuild's normalized {{join .DiffFactors ", "}} found in the differing bytes: the publisher's environment differed there.</p>{{end}}
{{with .Localization}}<p><b>Where two local builds diverge:</b> {{.Summary}}</p>{{end}}
{{if .Diff}}<details open><summary>evidence (structural diff, published → rebuilt)</summary><pre>{{range lines .Diff}}<span class="{{.Class}}">{{.Text}}</span>{{end}}</pre></details>{{end}}
</section>{{end}}
</main><footer>Generated by reprobox verify.</footer></body></html>
`))

// ---- experiment ----

type experimentPage struct {
	Res       *ExperimentResults
	Factors   []ExperimentFactor
	Cell      *CellSummary
	DiffHTML  string
	DiffError string
	Diffs     []CellSummary
	Nondet    []CellSummary
	// AnyMarginal is set when a heat map cell aggregates other cells.
	AnyMarginal bool
}

// WriteExperimentHTML writes an experiment's results as one self-contained
// page: the heat map of artifacts against factor levels (colour: the share of
// builds differing from the baseline), the nondeterminism rates, the
// baselines across images, and for one cell (cellID, default the first that
// differs) the structural diff of its output against the baseline's, as the
// page of reprobox diff --html embedded in the report. blobs is where the
// experiment kept the artifacts (BlobsDir).
func WriteExperimentHTML(ctx context.Context, w io.Writer, e *Experiment, res *ExperimentResults, blobs, cellID string) error {
	page := experimentPage{Res: res, Factors: res.Factors}
	for _, s := range res.Cells {
		if s.Differing > 0 && !s.Baseline {
			page.Diffs = append(page.Diffs, s)
		}
		if s.Nondeterministic {
			page.Nondet = append(page.Nondet, s)
		}
	}
	for _, hr := range res.HeatMap {
		for _, hc := range hr.Levels {
			page.AnyMarginal = page.AnyMarginal || hc.Marginal
		}
	}
	for i, s := range res.Cells {
		if cellID != "" && s.Cell == cellID || cellID == "" && !s.Baseline && s.Differing > 0 {
			page.Cell = &res.Cells[i]
			break
		}
	}
	if c := page.Cell; c != nil {
		other := ""
		for _, o := range c.Outputs {
			if o != c.BaselineSHA256 && o != "" {
				other = o
				break
			}
		}
		switch {
		case c.BaselineSHA256 == "":
			page.DiffError = "the baseline build did not make this artifact"
		case other == "":
			page.DiffError = "no build of this cell made an output that differs from the baseline's"
		default:
			a, b := filepath.Join(blobs, c.BaselineSHA256), filepath.Join(blobs, other)
			opts := diff.Options{}
			if e != nil {
				base := policies.Normalized(policies.DefaultSourceDateEpoch)
				var bl Cell
				for _, x := range e.Cells() {
					if x.Baseline && x.Project == c.Project && x.Image == c.Image {
						bl = x
					}
				}
				var cell Cell
				for _, x := range e.Cells() {
					if x.ID == c.Cell {
						cell = x
					}
				}
				if bl.ID != "" && cell.ID != "" {
					opts.Labels = Labels(e.Settings(base, bl), e.Settings(base, cell))
				}
			}
			if _, err := os.Stat(a); err != nil {
				page.DiffError = "the baseline's artifact is not kept in " + blobs
			} else if _, err := os.Stat(b); err != nil {
				page.DiffError = "the cell's artifact is not kept in " + blobs
			} else {
				rep, err := diff.Files(ctx, a, b, opts)
				if err != nil {
					return fmt.Errorf("runner: diff cell %s: %w", c.Cell, err)
				}
				rep.A, rep.B = "baseline "+shortHash(c.BaselineSHA256), c.Label+" "+shortHash(other)
				var buf bytes.Buffer
				if err := rep.WriteHTML(&buf); err != nil {
					return err
				}
				page.DiffHTML = buf.String()
			}
		}
	}
	return experimentTmpl.Execute(w, page)
}

var experimentTmpl = template.Must(template.New("experiment").Funcs(reportFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>reprobox experiment: {{.Res.File}}</title><style>{{css}}</style></head><body>
{{$r := .Res}}
<header><h1><span class="brand">reprobox</span> experiment</h1>
<div class="meta"><span>file</span><b>{{$r.File}}</b><span>design</span><b>{{$r.Design}}{{if $r.Samples}} ({{$r.Samples}} samples){{end}}, {{$r.Repeats}} build(s) per cell, seed {{$r.Seed}}</b>
{{range $img, $d := $r.Images}}<span>image</span><b>{{$img}} {{$d}}</b>{{end}}</div>
{{if .Diffs}}<span class="chip bad">{{len .Diffs}} cell/artifact pair(s) differ from the baseline</span>{{else}}<span class="chip ok">every cell equals its baseline</span>{{end}}
{{if .Nondet}} <span class="chip warn">{{len .Nondet}} nondeterministic</span>{{end}}
</header><main>
<h2>Heat map: share of builds differing from the baseline</h2>
<div class="legend">0% <span class="sw" style="{{heat 0.0 1}}"></span><span class="sw" style="{{heat 0.25 1}}"></span><span class="sw" style="{{heat 0.5 1}}"></span><span class="sw" style="{{heat 0.75 1}}"></span><span class="sw" style="{{heat 1.0 1}}"></span> 100% · differing/builds of the cell that varies this factor alone (the first level: the baseline cell){{if .AnyMarginal}}; * every cell at this level, where the design has no such cell{{end}}</div>
<table><tr><th rowspan="2">project</th><th rowspan="2">artifact</th><th rowspan="2">image</th>{{range .Factors}}<th colspan="{{len .Levels}}"><span class="factor">{{.Name}}</span></th>{{end}}<th rowspan="2">nondeterministic cells</th></tr>
<tr>{{range .Factors}}{{range $i, $l := .Levels}}<th class="mono">{{$l}}{{if eq $i 0}} <span class="muted">(base)</span>{{end}}</th>{{end}}{{end}}</tr>
{{range $r.HeatMap}}<tr><td class="mono">{{.Project}}</td><td class="mono">{{.Artifact}}</td><td class="mono">{{.Image}}</td>
{{range .Levels}}<td class="heat" style="{{heat .Share .Builds}}" title="{{.Factor}}={{.Level}}: {{.Differing}} of {{.Builds}} differ, 95% CI {{pct .CILow}}–{{pct .CIHigh}}{{if .Marginal}} (every cell at this level: other factors vary too){{end}}">{{.Differing}}/{{.Builds}}{{if .Marginal}}*{{end}}</td>{{end}}
<td class="num">{{.NondeterministicCells}}/{{.RepeatedCells}} ({{pct .NondeterminismRate}})</td></tr>{{end}}
</table>
{{if $r.ImageComparisons}}<h2>Baselines across images</h2><table><tr><th>project</th><th>artifact</th>{{range $img, $d := $r.Images}}<th class="mono">{{$img}}</th>{{end}}<th></th></tr>
{{range $r.ImageComparisons}}{{$o := .Outputs}}<tr><td class="mono">{{.Project}}</td><td class="mono">{{.Artifact}}</td>{{range $img, $d := $r.Images}}<td class="mono">{{short (index $o $img)}}</td>{{end}}<td>{{if .Same}}<span class="chip ok">same</span>{{else}}<span class="chip bad">differ</span>{{end}}</td></tr>{{end}}</table>{{end}}
<h2>Structural diff of one cell against its baseline</h2>
{{with .Cell}}<p>Cell <b class="mono">{{.Cell}}</b> ({{.Project}}, {{.Image}}, {{.Label}}), artifact <b class="mono">{{.Artifact}}</b>: {{.Differing}} of {{.Builds}} build(s) differ from the baseline (--html-cell ID chooses another).</p>{{else}}<p class="muted">No cell differs from its baseline.</p>{{end}}
{{if .DiffError}}<p class="muted">{{.DiffError}}</p>{{end}}
{{if .DiffHTML}}<iframe title="structural diff" srcdoc="{{.DiffHTML}}"></iframe>{{end}}
<h2>Cells</h2>
<table><tr><th>cell</th><th>project</th><th>image</th><th>levels</th><th>artifact</th><th>builds</th><th>distinct</th><th>differing</th><th>share (95% CI)</th><th></th></tr>
{{range $r.Cells}}<tr><td class="mono">{{.Cell}}</td><td class="mono">{{.Project}}</td><td class="mono">{{.Image}}</td><td class="mono">{{.Label}}</td><td class="mono">{{.Artifact}}</td><td class="num">{{.Builds}}</td><td class="num">{{.Distinct}}</td><td class="num">{{.Differing}}</td>
<td class="heat" style="{{heat .Share .Builds}}">{{pct .Share}} ({{pct .CILow}}–{{pct .CIHigh}})</td><td>{{if .Nondeterministic}}<span class="chip warn">nondeterministic</span>{{end}}</td></tr>{{end}}
</table>
</main><footer>Generated by reprobox experiment · the same file and seed give the same cells in the same order.</footer></body></html>
`))
