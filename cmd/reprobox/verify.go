package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/attest"
	"github.com/reprobox/reprobox/internal/jsonout"
	"github.com/reprobox/reprobox/internal/published"
	"github.com/reprobox/reprobox/runner"
)

func init() { subcommands = append(subcommands, newVerifyCmd) }

type verifyFlags struct {
	project      projectFlags
	published    string
	repeats      int
	jsonOut      string
	evidence     int
	sign         string
	attestation  string
	builderID    string
	resourceURI  string
	timestamps   bool
	attestations string
	trustedKeys  string
	threshold    int
	only         []string
	reports      reportFlags
}

func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [DIR] --published WHERE [flags] [-- COMMAND ARGS...]",
		Short: "Rebuild a release and compare it with what was published; sign or count attestations",
		Long: `verify rebuilds the project in its pinned image with every environmental
input normalized (as build does) and compares each artifact, by base file
name, with what was published. WHERE is one of:

  a directory           every regular file in it, recursively (dot files,
                        SHA256SUMS*, *.sha256, *.asc, *.sig, *.intoto.jsonl
                        and channel-rust-*.toml are skipped)
  a SHA256SUMS file     lines as sha256sum writes them ("HEX  NAME", "HEX *NAME",
                        backslash-escaped names, or "SHA256 (NAME) = HEX"),
                        with or without the files beside it
  channel-rust-*.toml   a Rust channel manifest (any *.toml): every available
                        [pkg.NAME.target.TRIPLE] url/hash and xz_url/xz_hash,
                        named by the URL's base name; tarballs beside it are used

Per artifact it prints MATCH, MISMATCH (with the structural diff of the
published file against the rebuilt one when the published bytes are at hand,
and the factors whose normalized values appear in the differing bytes),
MISSING (published but not built, or built but not published), INVALID (the
published file beside the manifest is not what the manifest says: named as
such, not as a rebuild mismatch), or NONDETERMINISTIC (--repeats builds
disagree; for a cargo build, with the first cargo unit where they diverge). Two published or two built artifacts with one base name are an
error (exit 2). --only GLOB (repeatable) restricts both sides to matching base
names: a channel manifest lists every component, a rebuild may make a few.
Published files are only read.

--out (default reprobox-verify) gets the rebuilt artifacts, SHA256SUMS,
record.json, build.log and verify.json. --html FILE writes the report as a
self-contained HTML page, --junit FILE as JUnit XML (a test case per artifact,
failing unless it is a MATCH).

--sign KEY writes a JSON Lines bundle of DSSE envelopes (payload type
application/vnd.in-toto+json, ed25519, signed with KEY from reprobox key
generate) to --attestation (default OUT/verify.intoto.jsonl):
line 1, an in-toto Statement v1 with a SLSA provenance v1 predicate for the
rebuild (subjects: the rebuilt artifacts); then one with a SLSA verification
summary v1 (https://slsa.dev/verification_summary/v1), PASSED, whose subjects
are the published artifacts that matched, and, when any did not, one FAILED
whose subjects are the other published artifacts. The output is deterministic:
times are left out unless --timestamps.

--attestations DIR --trusted-keys FILE [--threshold N] does not build: it
checks every envelope in DIR's *.jsonl and *.json files against the trusted
public keys (PEM, several concatenated), names each refused one and why
(not an envelope, untrusted key, a signature that does not verify, an invalid
statement), and says for each artifact of --published how many distinct
trusted keys signed a PASSED summary naming its digest. A key counts once.
It passes when every artifact has N or more.

Exit status: 0 every artifact matches (or reaches the threshold), 1 anything
else or the build failed, 2 usage, config or published-input error, 3 reprobox
or the sandbox failed, 130 interrupted.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.published == "" {
				return usageErrorf("verify needs --published WHERE (a directory, a SHA256SUMS file or a channel-rust-*.toml)")
			}
			if f.attestations != "" {
				return runVerifyAttestations(cmd.Context(), cmd, &f, args)
			}
			return runVerify(cmd.Context(), cmd, &f, args)
		},
	}
	f.project.register(cmd, "reprobox-verify")
	fl := cmd.Flags()
	fl.StringVar(&f.published, "published", "", "what was published: a directory, a SHA256SUMS file or a Rust channel manifest (channel-rust-*.toml)")
	fl.IntVar(&f.repeats, "repeats", 0, "extra builds that must produce the same artifacts")
	fl.StringVar(&f.jsonOut, "json", "", "also write the report as JSON to this file")
	fl.IntVar(&f.evidence, "evidence-lines", 40, "lines of structural diff shown per mismatching artifact")
	fl.StringVar(&f.sign, "sign", "", "sign the result with this ed25519 private key (PEM PKCS#8, from reprobox key generate)")
	fl.StringVar(&f.attestation, "attestation", "", "where --sign writes the attestation bundle (default OUT/verify.intoto.jsonl)")
	fl.StringVar(&f.builderID, "builder-id", attest.DefaultBuilderID, "builder id of the provenance and verifier id of the summaries")
	fl.StringVar(&f.resourceURI, "resource-uri", "", "resourceUri of the verification summaries (default: the base name of --published)")
	fl.BoolVar(&f.timestamps, "timestamps", false, "put the build's start and end and the verification time in the attestations")
	fl.StringVar(&f.attestations, "attestations", "", "check the attestations in this directory instead of building")
	fl.StringVar(&f.trustedKeys, "trusted-keys", "", "PEM public keys whose attestations count (with --attestations)")
	fl.StringArrayVar(&f.only, "only", nil, "compare only artifacts whose base name matches this glob (repeatable), published and built alike; the others are ignored, not MISSING")
	f.reports.register(cmd)
	fl.IntVar(&f.threshold, "threshold", 1, "distinct trusted builders that must have reproduced each artifact (with --attestations)")
	addBackendFlags(cmd)
	return cmd
}

func loadPublished(where string) (*published.Set, error) {
	set, err := published.Load(where)
	if errors.Is(err, published.ErrInvalid) {
		return nil, usageErrorf("--published: %v", err)
	}
	return set, err
}

func runVerify(ctx context.Context, cmd *cobra.Command, f *verifyFlags, args []string) error {
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	for _, name := range []string{"trusted-keys", "threshold"} {
		if cmd.Flags().Changed(name) {
			return usageErrorf("--%s only applies with --attestations DIR", name)
		}
	}
	if f.repeats < 0 {
		return usageErrorf("--repeats must not be negative")
	}
	dir, cfg, fromFlag, err := f.project.load(cmd, args)
	if err != nil {
		return err
	}
	if err := outsidePublished(f.project.out, f.published); err != nil {
		return err
	}
	var key ed25519.PrivateKey
	if f.sign != "" {
		if key, err = attest.LoadPrivateKey(f.sign); err != nil {
			return usageErrorf("--sign: %v", err)
		}
	}
	pub, err := loadPublished(f.published)
	if err != nil {
		return err
	}
	r, err := newRunner(cmd)
	if err != nil {
		return err
	}
	r.Progress = stderr
	plan, err := r.NewPlan(ctx, dir, cfg, fromFlag, f.project.out)
	if err != nil {
		return err
	}
	defer plan.Close()
	fmt.Fprintf(stderr, "reprobox: verifying %s against %s (%s, %d artifact(s)) in %s, %d build(s)\n",
		plan.Project, pub.Where, pub.Form, len(pub.Entries), plan.Image.Reference(), f.repeats+1)
	rep, err := r.Verify(ctx, plan, pub, runner.VerifyOptions{
		Repeats: f.repeats, Stream: stderr, Progress: stderr, ProgressEvery: progressEvery(f.project.progress),
		EvidenceLines: f.evidence, Only: f.only,
	})
	if err != nil {
		return err
	}
	defer rep.Close()
	if o := rep.Outcome(); o != nil {
		if err := runner.WriteOut(ctx, plan, o, f.project.out); err != nil {
			return err
		}
	}
	if rep.BuildFailure != "" {
		fmt.Fprintf(stderr, "reprobox: the rebuild failed: %s\n", rep.BuildFailure)
		tail(stderr, filepath.Join(f.project.out, "build.log"), 20)
		if err := f.reports.writeVerify(dir, rep); err != nil {
			return err
		}
		return &exitError{exitUnreproducible}
	}
	var js bytes.Buffer
	if err := jsonout.Write(&js, rep); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.project.out, "verify.json"), js.Bytes(), 0o644); err != nil {
		return err
	}
	if f.jsonOut != "" {
		if err := atomicfile.WriteFile(f.jsonOut, js.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := f.reports.writeVerify(dir, rep); err != nil {
		return err
	}
	printVerify(stdout, rep)
	if key != nil {
		path := f.attestation
		if path == "" {
			path = filepath.Join(f.project.out, "verify.intoto.jsonl")
		}
		if err := writeAttestation(ctx, key, path, f, pub, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "reprobox: signed attestations (provenance and verification summary, key %s) in %s\n",
			attest.KeyID(key.Public().(ed25519.PublicKey))[:16], path)
	}
	fmt.Fprintf(stderr, "reprobox: rebuilt artifacts, record.json, build.log and verify.json in %s\n", f.project.out)
	if !rep.Verified {
		return &exitError{exitUnreproducible}
	}
	return nil
}

// outsidePublished refuses an output directory that is, holds or lies in the
// published input: verify never writes published files.
func outsidePublished(out, where string) error {
	ao, err1 := filepath.Abs(out)
	aw, err2 := filepath.Abs(where)
	if err1 != nil || err2 != nil {
		return nil
	}
	if st, err := os.Stat(aw); err == nil && !st.IsDir() {
		aw = filepath.Dir(aw)
	}
	within := func(a, b string) bool {
		rel, err := filepath.Rel(b, a)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	}
	if within(ao, aw) || within(aw, ao) {
		return usageErrorf("--out %s overlaps the published files in %s; verify never writes there: choose another --out", out, where)
	}
	return nil
}

func writeAttestation(ctx context.Context, key ed25519.PrivateKey, path string, f *verifyFlags, pub *published.Set, rep *runner.VerifyReport) error {
	rb := rep.Rebuild
	rb.BuilderID = f.builderID
	var now time.Time
	if f.timestamps {
		now = time.Now()
	} else {
		rb.Started, rb.Finished = time.Time{}, time.Time{}
	}
	uri := f.resourceURI
	if uri == "" {
		uri = filepath.Base(pub.Where)
	}
	var sums []attest.Summary
	if s := rep.Subjects(true); len(s) > 0 {
		sums = append(sums, attest.Summary{VerifierID: f.builderID, ResourceURI: uri, Result: attest.Passed, Subjects: s, Time: now})
	}
	if s := rep.Subjects(false); len(s) > 0 {
		sums = append(sums, attest.Summary{VerifierID: f.builderID, ResourceURI: uri, Result: attest.Failed, Subjects: s, Time: now})
	}
	data, err := attest.Bundle(ctx, key, filepath.Base(path), rb, sums)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// printVerify writes one line per artifact, the diffs, and the verdict.
func printVerify(w io.Writer, rep *runner.VerifyReport) {
	counts := map[string]int{}
	for _, a := range rep.Artifacts {
		counts[a.Status]++
		fmt.Fprintf(w, "%-9s %s\n", a.Status, a.Name)
		switch a.Status {
		case runner.VerifyMatch:
			fmt.Fprintf(w, "  sha256 %s\n", a.RebuiltSHA256)
		case runner.VerifyMismatch:
			fmt.Fprintf(w, "  published %s (%s)\n  rebuilt   %s (%s)\n", a.PublishedSHA256, a.Origin, a.RebuiltSHA256, a.Built)
		default:
			if a.Built != "" {
				fmt.Fprintf(w, "  built %s sha256 %s\n", a.Built, a.RebuiltSHA256)
			}
			if a.Origin != "" {
				fmt.Fprintf(w, "  published %s sha256 %s\n", a.Origin, a.PublishedSHA256)
			}
		}
		if a.Detail != "" {
			fmt.Fprintf(w, "  %s\n", a.Detail)
		}
		if len(a.DiffFactors) > 0 {
			fmt.Fprintf(w, "  the rebuild's normalized %s found in the differing bytes\n", strings.Join(a.DiffFactors, ", "))
		}
		if l := a.Localization; l != nil {
			fmt.Fprintf(w, "  where two local builds diverge: %s\n", l.Summary)
			for _, line := range strings.Split(strings.TrimRight(l.Evidence, "\n"), "\n") {
				if line != "" {
					fmt.Fprintln(w, "  | "+line)
				}
			}
		} else if a.LocalizationError != "" {
			fmt.Fprintf(w, "  %s\n", a.LocalizationError)
		}
		if a.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(a.Diff, "\n"), "\n") {
				fmt.Fprintln(w, "  | "+l)
			}
		}
	}
	var parts []string
	for _, s := range []string{runner.VerifyMatch, runner.VerifyMismatch, runner.VerifyMissing, runner.VerifyInvalid, runner.VerifyNondeterministic} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if rep.Verified {
		fmt.Fprintf(w, "VERIFIED: every published artifact matches the rebuild (%s; %d build(s))\n", strings.Join(parts, ", "), rep.Builds)
	} else {
		fmt.Fprintf(w, "NOT VERIFIED: %s (%d build(s))\n", strings.Join(parts, ", "), rep.Builds)
	}
}

// runVerifyAttestations checks signed summaries instead of building.
func runVerifyAttestations(ctx context.Context, cmd *cobra.Command, f *verifyFlags, args []string) error {
	if len(args) > 0 {
		return usageErrorf("--attestations does not build: no project directory or command")
	}
	for _, name := range []string{"sign", "attestation", "repeats", "image", "artifact", "html", "junit"} {
		if cmd.Flags().Changed(name) {
			return usageErrorf("--%s does not apply with --attestations (which checks attestations and does not build)", name)
		}
	}
	if f.trustedKeys == "" {
		return usageErrorf("--attestations needs --trusted-keys FILE (PEM public keys of the rebuilders to trust)")
	}
	keys, err := attest.LoadPublicKeys(f.trustedKeys)
	if err != nil {
		return usageErrorf("--trusted-keys: %v", err)
	}
	if f.threshold < 1 || f.threshold > len(keys) {
		return usageErrorf("--threshold %d: must be between 1 and the %d distinct trusted key(s)", f.threshold, len(keys))
	}
	pub, err := loadPublished(f.published)
	if err != nil {
		return err
	}
	if len(f.only) > 0 {
		var kept []published.Entry
		for _, e := range pub.Entries {
			for _, g := range f.only {
				if ok, err := path.Match(g, e.Name); err != nil {
					return usageErrorf("--only %q: %v", g, err)
				} else if ok {
					kept = append(kept, e)
					break
				}
			}
		}
		pub.Entries = kept
	}
	checker := attest.NewChecker(keys)
	findings, err := checker.CheckDir(ctx, f.attestations)
	if err != nil {
		if errors.Is(err, attest.ErrKey) {
			return usageErrorf("--attestations: %v", err)
		}
		return err
	}
	w := cmd.OutOrStdout()
	accepted := 0
	for _, fd := range findings {
		if fd.Refused != "" {
			fmt.Fprintf(w, "REFUSED   %s: %s\n", fd.Where, fd.Refused)
			continue
		}
		accepted++
	}
	fmt.Fprintf(w, "attestations: %d read, %d accepted, %d refused; %d trusted key(s), threshold %d\n",
		len(findings), accepted, len(findings)-accepted, len(keys), f.threshold)
	var subj []attest.Subject
	for _, e := range pub.Entries {
		subj = append(subj, attest.Subject{Name: e.Name, SHA256: e.SHA256})
	}
	ok := true
	for i, t := range attest.Count(subj, findings, f.threshold) {
		e := pub.Entries[i]
		status := "OK"
		switch {
		case e.Corrupt():
			status, ok = "INVALID", false
		case !t.OK:
			status, ok = "SHORT", false
		}
		fmt.Fprintf(w, "%-9s %s  %d of %d builder(s) reproduced sha256 %s\n", status, t.Name, len(t.Passed), f.threshold, t.SHA256)
		for _, k := range t.Passed {
			fmt.Fprintf(w, "  reproduced by key %s\n", k)
		}
		for _, k := range t.Failed {
			fmt.Fprintf(w, "  NOT reproduced by key %s (FAILED summary)\n", k)
		}
		if e.Corrupt() {
			fmt.Fprintf(w, "  published file %s does not match its manifest (%s says sha256 %s, the file is %s)\n", e.File, e.Origin, e.SHA256, e.FileSHA256)
		}
	}
	if ok {
		fmt.Fprintf(w, "VERIFIED: every published artifact reproduced by at least %d distinct trusted builder(s)\n", f.threshold)
		return nil
	}
	fmt.Fprintf(w, "NOT VERIFIED: some published artifact has fewer than %d distinct trusted builder(s)\n", f.threshold)
	return &exitError{exitUnreproducible}
}
