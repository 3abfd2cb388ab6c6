package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/internal/attest"
	"github.com/reprobox/reprobox/internal/published"
	"github.com/reprobox/reprobox/internal/safefs"
)

// Verdicts of verify, per artifact.
const (
	VerifyMatch            = "MATCH"
	VerifyMismatch         = "MISMATCH"
	VerifyMissing          = "MISSING"
	VerifyInvalid          = "INVALID"
	VerifyNondeterministic = "NONDETERMINISTIC"
)

// VerifyOptions configure a verify.
type VerifyOptions struct {
	// Repeats is how many builds after the first must produce the same
	// artifacts.
	Repeats int
	// Stream receives the first build's output; nil discards it.
	Stream io.Writer
	// Progress receives one line per build and, every ProgressEvery, the
	// elapsed time and current step; nil discards them.
	Progress      io.Writer
	ProgressEvery time.Duration
	// EvidenceLines bounds the structural diff per mismatching artifact.
	EvidenceLines int
	// TempDir is where the diff spools large content ("" means os.TempDir).
	TempDir string
	// Only, when not empty, restricts the comparison to artifacts whose base
	// name matches one of these globs (path.Match), on both sides: the others
	// are neither compared nor MISSING. A release lists more than one rebuild
	// makes (rustc's channel manifest lists every component).
	Only []string
}

// A VerifyReport is the result of a verify, written as verify.json.
type VerifyReport struct {
	Artifacts []VerifyArtifact `json:"artifacts"`
	// BuildFailure says why a build failed; nothing is compared then.
	BuildFailure string `json:"build_failure,omitempty"`
	Builds       int    `json:"builds"`
	Image        string `json:"image"`
	ImageDigest  string `json:"image_digest"`
	// Published is the form and location of the published input.
	Published     string            `json:"published"`
	PublishedForm string            `json:"published_form"`
	SourceDigest  map[string]string `json:"source_digest"`
	// Verified is true when every artifact is a MATCH.
	Verified bool `json:"verified"`

	// Rebuild is what a signed provenance of this verify states.
	Rebuild attest.Rebuild `json:"-"`
	// first is the first build, kept until Close for WriteOut.
	first *Outcome
}

// A VerifyArtifact is the verdict on one artifact, by base file name.
type VerifyArtifact struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Detail says why, for anything but a MATCH.
	Detail string `json:"detail,omitempty"`
	// Built is the artifact's path in the build directory.
	Built           string `json:"built,omitempty"`
	Origin          string `json:"origin,omitempty"`
	PublishedFile   string `json:"published_file,omitempty"`
	PublishedSHA256 string `json:"published_sha256,omitempty"`
	RebuiltSHA256   string `json:"rebuilt_sha256,omitempty"`
	// Diff is the structural diff of the published file against the rebuilt
	// one, bounded, when the published bytes are at hand.
	Diff string `json:"diff,omitempty"`
	// DiffFactors are the factors whose normalized values (the rebuild's
	// build path, home, host name, time) appear in the differing bytes: the
	// publisher's environment differed there.
	DiffFactors []string `json:"diff_factors"`
	// Localization is where two local builds that disagree on a
	// nondeterministic artifact first diverge (the published side has no
	// intermediates); LocalizationError says why there is none.
	Localization      *Localization `json:"localization,omitempty"`
	LocalizationError string        `json:"localization_error,omitempty"`
}

// Outcome is the first build, for WriteOut; nil when the build failed before
// it ran.
func (v *VerifyReport) Outcome() *Outcome { return v.first }

// Close removes the first build's work directory.
func (v *VerifyReport) Close() error {
	if v.first == nil {
		return nil
	}
	err := v.first.Remove()
	v.first = nil
	return err
}

// Subjects are the published artifacts with the given status, for a
// verification summary.
func (v *VerifyReport) Subjects(pass bool) []attest.Subject {
	var out []attest.Subject
	for _, a := range v.Artifacts {
		if a.PublishedSHA256 == "" || (a.Status == VerifyMatch) != pass {
			continue
		}
		out = append(out, attest.Subject{Name: a.Name, SHA256: a.PublishedSHA256})
	}
	return out
}

// Verify builds the plan 1+Repeats times in its normalized environment and
// compares the artifacts, by base file name, with what pub says was
// published. The published files are only read. Two built artifacts with the
// same base name are a config error: narrow the artifact globs. The caller
// closes the report.
func (r *Runner) Verify(ctx context.Context, p *Plan, pub *published.Set, opts VerifyOptions) (_ *VerifyReport, err error) {
	if opts.Repeats < 0 {
		return nil, fmt.Errorf("%w: repeats must not be negative", ErrConfig)
	}
	if opts.EvidenceLines == 0 {
		opts.EvidenceLines = 40
	}
	for _, g := range opts.Only {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("%w: --only %q: %v", ErrConfig, g, err)
		}
	}
	selected := func(name string) bool {
		if len(opts.Only) == 0 {
			return true
		}
		for _, g := range opts.Only {
			if ok, _ := path.Match(g, name); ok {
				return true
			}
		}
		return false
	}
	rep := &VerifyReport{
		Image: p.Image.Reference().String(), ImageDigest: p.Image.Digest.String(),
		Published: pub.Where, PublishedForm: pub.Form, Artifacts: []VerifyArtifact{},
	}
	defer func() {
		if err != nil {
			rep.Close()
		}
	}()
	src, err := sourceDigest(ctx, p)
	if err != nil {
		return nil, err
	}
	rep.SourceDigest = src.Digest
	// Artifacts that differ between the builds are nondeterministic: no
	// verdict on them against the published bytes means anything.
	differs := map[string]bool{}
	locs := map[string]*Localization{}
	locErrs := map[string]string{}
	started := r.now()
	for i := 0; i <= opts.Repeats; i++ {
		label := fmt.Sprintf("reprobox: verify build %d of %d", i+1, opts.Repeats+1)
		stream := io.Writer(nil)
		if i == 0 {
			stream = opts.Stream
		}
		steps := &stepWriter{}
		stop := func() {}
		if opts.Progress != nil && opts.ProgressEvery >= 0 {
			every := opts.ProgressEvery
			if every == 0 {
				every = 30 * time.Second
			}
			stop = watch(opts.Progress, every, r.now, label, steps)
		}
		w := io.Writer(steps)
		if stream != nil {
			w = io.MultiWriter(stream, steps)
		}
		var keep keepFunc
		if opts.Repeats > 0 {
			keep = keepForRepeat
		}
		o, err := r.build(ctx, p, p.Base, w, keep)
		stop()
		if err != nil {
			return nil, err
		}
		rep.Builds++
		if i == 0 {
			rep.first = o
		}
		if opts.Progress != nil {
			verdict := "ok"
			if !o.OK() {
				verdict = "failed: " + o.Failure()
			}
			fmt.Fprintf(opts.Progress, "%s: %s in %.1fs\n", label, verdict, o.Duration.Seconds())
		}
		if !o.OK() {
			rep.BuildFailure = fmt.Sprintf("build %d: %s", i+1, o.Failure())
			if i > 0 {
				o.Remove()
			}
			return rep, nil
		}
		if i == 0 {
			continue
		}
		// A repeat is compared with the first build and removed at once:
		// a rustc build directory holds gigabytes.
		fresh := map[string]string{} // newly differing artifact → its hash in o
		for _, a := range rep.first.Artifacts {
			j := slices.IndexFunc(o.Artifacts, func(b Artifact) bool { return b.Path == a.Path })
			if j < 0 || o.Artifacts[j].SHA256 != a.SHA256 {
				if !differs[a.Path] && j >= 0 {
					fresh[a.Path] = o.Artifacts[j].SHA256
				}
				differs[a.Path] = true
			}
		}
		// Two local builds that differ: localize between them while the
		// repeat's tree is still there.
		if err := localizeRepeat(ctx, p, rep.first, o, fresh, locs, locErrs); err != nil {
			o.Remove()
			return nil, err
		}
		if err := o.Remove(); err != nil {
			return nil, err
		}
	}
	finished := r.now()
	built := map[string]Artifact{}
	for _, a := range rep.first.Artifacts {
		name := path.Base(a.Path)
		if !selected(name) {
			continue
		}
		if prev, ok := built[name]; ok {
			return nil, fmt.Errorf("%w: two built artifacts share the base name %s (%s and %s); verify matches by base name: narrow the artifact globs", ErrConfig, name, prev.Path, a.Path)
		}
		built[name] = a
	}
	names := map[string]bool{}
	for n := range built {
		names[n] = true
	}
	for _, e := range pub.Entries {
		if selected(e.Name) {
			names[e.Name] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	rep.Verified = true
	for _, name := range sorted {
		a, isBuilt := built[name]
		e, isPub := pub.Lookup(name)
		va := VerifyArtifact{Name: name, DiffFactors: []string{}}
		if isBuilt {
			va.Built, va.RebuiltSHA256 = a.Path, a.SHA256
		}
		if isPub {
			va.Origin, va.PublishedFile, va.PublishedSHA256 = e.Origin, e.File, e.SHA256
		}
		switch {
		case !isBuilt:
			va.Status, va.Detail = VerifyMissing, "published but not built (no artifact glob matched a file of this name)"
		case !isPub:
			va.Status, va.Detail = VerifyMissing, "built but not published"
		case e.Corrupt():
			va.Status = VerifyInvalid
			va.Detail = fmt.Sprintf("published file %s does not match its manifest (%s says sha256 %s, the file is %s); the rebuild %s the manifest's digest",
				e.File, e.Origin, e.SHA256, e.FileSHA256, map[bool]string{true: "matches", false: "does not match"}[a.SHA256 == e.SHA256])
		case differs[a.Path]:
			va.Status, va.Detail = VerifyNondeterministic, fmt.Sprintf("the %d builds in the same environment disagree: the artifact is nondeterministic (reprobox check tells more)", rep.Builds)
			va.Localization, va.LocalizationError = locs[a.Path], locErrs[a.Path]
		case a.SHA256 == e.SHA256:
			va.Status = VerifyMatch
		default:
			va.Status = VerifyMismatch
			if e.File == "" {
				va.Detail = "the published bytes are not at hand (put the file beside the manifest for a structural diff)"
				break
			}
			va.Diff, va.DiffFactors, err = verifyDiff(ctx, p, e.File, a.File, opts)
			if err != nil {
				return nil, err
			}
			// The published side has no intermediates, and the local builds
			// agree on this artifact: nothing to localize between.
			va.LocalizationError = fmt.Sprintf("not localized: the published side has no intermediates, and localizing needs two local builds that differ (the %d local builds agree)", rep.Builds)
			if rep.Builds < 2 {
				va.LocalizationError = "not localized: the published side has no intermediates, and localizing needs two local builds that differ (there is one; --repeats adds more)"
			}
		}
		if va.Status != VerifyMatch {
			rep.Verified = false
		}
		rep.Artifacts = append(rep.Artifacts, va)
	}
	rep.Rebuild = rebuildOf(p, rep, src, started, finished)
	return rep, nil
}

// keepForRepeat keeps a verify build's intermediates in its own directory
// (Dir/intermediates): two builds are compared after both trees are gone.
func keepForRepeat(ctx context.Context, o *Outcome) {
	o.inter, o.interErr = scanIntermediates(ctx, o.treeDir(), newKeeper(filepath.Join(o.Dir, "intermediates")))
}

// localizeRepeat localizes each artifact in fresh (its hash in o) between the
// first build and the repeat o, from the intermediates both kept.
func localizeRepeat(ctx context.Context, p *Plan, first, o *Outcome, fresh map[string]string, locs map[string]*Localization, locErrs map[string]string) error {
	if len(fresh) == 0 {
		return nil
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err
		}
		if !errors.Is(err, ErrNoIntermediates) {
			for path := range fresh {
				locErrs[path] = err.Error()
			}
		}
		return nil
	}
	a, b := first.inter, o.inter
	for _, err := range []error{first.interErr, o.interErr} {
		if err != nil {
			return fail(err)
		}
	}
	if a == nil || b == nil {
		return fail(fmt.Errorf("runner: %w kept", ErrNoIntermediates))
	}
	for _, path := range slices.Sorted(maps.Keys(fresh)) {
		j := slices.IndexFunc(first.Artifacts, func(x Artifact) bool { return x.Path == path })
		l, err := LocalizeIntermediates(ctx, a, b, LocalizeOptions{
			ArtifactA: first.Artifacts[j].SHA256, ArtifactB: fresh[path],
			Labels: Labels(p.Base, p.Base), TimeRanges: TimeRanges(p.Base, p.Base),
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			locErrs[path] = err.Error()
			continue
		}
		if l == nil {
			locErrs[path] = "not localized: the two local builds' cargo units are all the same"
			continue
		}
		locs[path] = l
	}
	return nil
}

// verifyDiff diffs the published file against the rebuilt one, labelling the
// rebuild's normalized values found in the differing bytes.
func verifyDiff(ctx context.Context, p *Plan, publishedFile, rebuilt string, opts VerifyOptions) (string, []string, error) {
	b := p.Base
	labels := []diff.Label{
		{Factor: "build_path", Values: []string{b.BuildPath}},
		{Factor: "home", Values: []string{b.Home}},
		{Factor: "domainname", Values: []string{b.Domainname}},
		{Factor: "user", Values: []string{b.User}},
	}
	sde := time.Unix(b.SourceDateEpoch, 0)
	times := []diff.TimeRange{{Factor: "time", From: sde.Add(-time.Hour), To: sde.Add(48 * time.Hour)}}
	rep, err := diff.Files(ctx, publishedFile, rebuilt, diff.Options{Labels: labels, TimeRanges: times, TempDir: opts.TempDir})
	if err != nil {
		return "", nil, fmt.Errorf("runner: diff %s: %w", publishedFile, err)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, opts.EvidenceLines); err != nil {
		return "", nil, err
	}
	f := rep.Factors()
	if f == nil {
		f = []string{}
	}
	return buf.String(), f, nil
}

// source is the digest of a project's source as the build sees it.
type source struct {
	Digest      map[string]string
	Annotations map[string]string
}

// sourceDigest is the in-toto dirHash of the project's files as copied into
// the build (the config's excludes and the output directory left out):
// sha256 over the sorted "SHA256  PATH" lines of every regular file, as
// `find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum`
// prints it. Symbolic links are not covered. A git HEAD is recorded beside it.
func sourceDigest(ctx context.Context, p *Plan) (source, error) {
	excl := p.Config.excludes(p.outRel)
	var lines []string
	err := filepath.WalkDir(p.Project, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(p.Project, fp)
		if rel == "." {
			return nil
		}
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		if slices.Contains(excl, top) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		sum, err := fileSHA256(fp)
		if err != nil {
			return err
		}
		lines = append(lines, sum+"  "+filepath.ToSlash(rel)+"\n")
		return nil
	})
	if err != nil {
		return source{}, fmt.Errorf("runner: hash the source: %w", err)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	s := source{Digest: map[string]string{"dirHash": hex.EncodeToString(h.Sum(nil))}, Annotations: map[string]string{}}
	if head, ok := gitHead(ctx, p.Project); ok {
		s.Annotations["git_head"] = head
	}
	return s, nil
}

func gitHead(ctx context.Context, project string) (string, bool) {
	cmd := exec.CommandContext(ctx, "git", "-C", project, "rev-parse", "HEAD")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(out)), true
}

// rebuildOf is what the provenance of a verify states.
func rebuildOf(p *Plan, rep *VerifyReport, src source, started, finished time.Time) attest.Rebuild {
	s := rep.first.Settings
	env := p.Config.Env
	if env == nil {
		env = map[string]string{}
	}
	external := map[string]any{
		"artifacts":         p.Config.Artifacts,
		"command":           p.Config.Command,
		"cpus":              s.CPUs,
		"env":               env,
		"image":             rep.Image,
		"source_date_epoch": s.SourceDateEpoch,
	}
	internal := map[string]any{
		"environment": s.Environ(),
		"settings":    s,
	}
	imgHex := strings.TrimPrefix(rep.ImageDigest, "sha256:")
	deps := []attest.Dependency{
		{Name: rep.Image, URI: "oci:" + rep.Image, Digest: map[string]string{"sha256": imgHex}},
		{Name: "source", Digest: src.Digest, Annotations: src.Annotations},
	}
	deps = append(deps, stage0Deps(p.Project)...)
	var subj []attest.Subject
	for _, a := range rep.first.Artifacts {
		subj = append(subj, attest.Subject{Name: path.Base(a.Path), SHA256: a.SHA256})
	}
	return attest.Rebuild{
		External: external, Internal: internal, Dependencies: deps, Artifacts: subj,
		Started: started, Finished: finished,
	}
}

// stage0Deps records a rustc source tree's stage0 (the previous release's
// binaries that build this one, src/stage0) by digest: the file itself, and
// the rustc, rust-std and cargo tarballs it pins for the build host, which
// bootstrap checks against these digests before it unpacks them.
func stage0Deps(project string) []attest.Dependency {
	for _, name := range []string{"src/stage0", "src/stage0.json"} {
		data, err := os.ReadFile(filepath.Join(project, filepath.FromSlash(name)))
		if err != nil {
			continue
		}
		st, err := published.ParseStage0(data)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		deps := []attest.Dependency{{
			Name: "stage0", URI: "file:" + name, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])},
			Annotations: map[string]string{"compiler_date": st.CompilerDate, "compiler_version": st.CompilerVersion},
		}}
		for _, t := range st.Tarballs {
			// What bootstrap unpacks on the (x86_64 Linux) build host: the
			// xz tarballs of rustc, rust-std and cargo for that triple.
			base := path.Base(t.Path)
			if !strings.HasSuffix(base, "-x86_64-unknown-linux-gnu.tar.xz") ||
				!(strings.HasPrefix(base, "rustc-") || strings.HasPrefix(base, "rust-std-") || strings.HasPrefix(base, "cargo-")) {
				continue
			}
			deps = append(deps, attest.Dependency{Name: "stage0:" + path.Base(t.Path), URI: strings.TrimSuffix(st.DistServer, "/") + "/" + t.Path, Digest: map[string]string{"sha256": t.SHA256}})
		}
		return deps
	}
	return nil
}

// fileSHA256 is the hex SHA-256 of the regular file at path, opened without
// following a link.
func fileSHA256(path string) (string, error) {
	f, _, err := safefs.OpenFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
