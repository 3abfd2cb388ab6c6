package attest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	vsa "github.com/in-toto/attestation/go/predicates/vsa/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// A RawEnvelope is one envelope as read from a file, or the reason it could
// not be read.
type RawEnvelope struct {
	// Where is FILE:LINE.
	Where    string
	Envelope *dsse.Envelope
	// Err is why the line is not a DSSE envelope.
	Err error
}

// maxEnvelope bounds one envelope line.
const maxEnvelope = 16 << 20

// ReadEnvelopes reads DSSE envelopes from data: JSON Lines (one envelope per
// line, the .intoto.jsonl convention) or a single JSON object spanning several
// lines. Blank lines are skipped. A line that is not an envelope is returned
// with its error, not dropped, so the caller can say why it was refused.
func ReadEnvelopes(name string, data []byte) []RawEnvelope {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil
	}
	// One JSON value, possibly indented over several lines.
	if json.Valid(trimmed) {
		env, err := parseEnvelope(trimmed)
		return []RawEnvelope{{Where: name + ":1", Envelope: env, Err: err}}
	}
	var out []RawEnvelope
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxEnvelope)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		env, err := parseEnvelope(line)
		out = append(out, RawEnvelope{Where: fmt.Sprintf("%s:%d", name, n), Envelope: env, Err: err})
	}
	if err := sc.Err(); err != nil {
		out = append(out, RawEnvelope{Where: fmt.Sprintf("%s:%d", name, n+1), Err: fmt.Errorf("unreadable: %w", err)})
	}
	return out
}

func parseEnvelope(data []byte) (*dsse.Envelope, error) {
	var env dsse.Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a DSSE envelope: more than one JSON value")
	}
	if env.PayloadType == "" || env.Payload == "" {
		return nil, errors.New("not a DSSE envelope: payloadType or payload missing")
	}
	return &env, nil
}

// A Finding is the result of checking one envelope.
type Finding struct {
	Where string
	// Refused is why the envelope does not count ("" when it does).
	Refused string
	// KeyIDs are the trusted keys whose signatures verify, sorted.
	KeyIDs        []string
	PredicateType string
	// Result is a summary's verificationResult.
	Result     string
	VerifierID string
	Subjects   []Subject
}

// A Checker checks envelopes against a set of trusted keys.
type Checker struct {
	keys map[string]ed25519.PublicKey
}

// NewChecker trusts keys (distinct keys; KeyID names each).
func NewChecker(keys []ed25519.PublicKey) *Checker {
	c := &Checker{keys: map[string]ed25519.PublicKey{}}
	for _, k := range keys {
		c.keys[KeyID(k)] = k
	}
	return c
}

// Trusted is the number of distinct trusted keys.
func (c *Checker) Trusted() int { return len(c.keys) }

// Check verifies one envelope's signatures with go-securesystemslib's DSSE
// verifier, then decodes and validates its in-toto statement. A refused
// envelope says why: not an envelope, not an in-toto statement, unsigned,
// signed only by untrusted keys, a signature that does not verify (the
// payload was altered or the signature forged), an invalid statement or
// predicate.
func (c *Checker) Check(ctx context.Context, raw RawEnvelope) Finding {
	f := Finding{Where: raw.Where}
	refuse := func(format string, args ...any) Finding {
		f.Refused = fmt.Sprintf(format, args...)
		f.KeyIDs = nil
		return f
	}
	if raw.Err != nil {
		return refuse("%v", raw.Err)
	}
	env := raw.Envelope
	if env.PayloadType != PayloadType {
		return refuse("payloadType %q is not an in-toto statement (%s)", env.PayloadType, PayloadType)
	}
	if len(env.Signatures) == 0 {
		return refuse("unsigned envelope")
	}
	var verifiers []dsse.Verifier
	ids := make([]string, 0, len(c.keys))
	for id := range c.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		verifiers = append(verifiers, newVerifier(c.keys[id]))
	}
	if len(verifiers) == 0 {
		return refuse("no trusted keys")
	}
	ev, err := dsse.NewEnvelopeVerifier(verifiers...)
	if err != nil {
		return refuse("%v", err)
	}
	accepted, payload, err := ev.VerifyAndDecode(ctx, env)
	if err != nil || len(accepted) == 0 {
		var trustedIDs, untrusted []string
		for _, s := range env.Signatures {
			switch {
			case s.KeyID == "":
			case c.keys[s.KeyID] != nil:
				trustedIDs = append(trustedIDs, s.KeyID)
			default:
				untrusted = append(untrusted, s.KeyID)
			}
		}
		switch {
		case len(trustedIDs) > 0:
			return refuse("the signature of trusted key %s does not verify: the payload was altered or the signature forged", short(trustedIDs[0]))
		case len(untrusted) > 0:
			return refuse("signed only by untrusted key(s) %s", strings.Join(shortAll(untrusted), ", "))
		case err != nil && strings.Contains(err.Error(), "base64"):
			return refuse("payload or signature is not base64: %v", err)
		default:
			return refuse("no signature verifies with any trusted key (forged, altered, or signed by an untrusted key)")
		}
	}
	for _, a := range accepted {
		f.KeyIDs = append(f.KeyIDs, a.KeyID)
	}
	slices.Sort(f.KeyIDs)
	f.KeyIDs = slices.Compact(f.KeyIDs)
	var st intoto.Statement
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &st); err != nil {
		return refuse("the payload is not an in-toto statement: %v", err)
	}
	if st.GetType() != intoto.StatementTypeUri {
		return refuse("statement _type %q is not %s", st.GetType(), intoto.StatementTypeUri)
	}
	if err := st.Validate(); err != nil {
		return refuse("invalid in-toto statement: %v", err)
	}
	f.PredicateType = st.GetPredicateType()
	for _, s := range st.GetSubject() {
		if d := s.GetDigest()["sha256"]; d != "" {
			f.Subjects = append(f.Subjects, Subject{Name: s.GetName(), SHA256: strings.ToLower(d)})
		}
	}
	if f.PredicateType == SummaryType {
		data, err := protojson.Marshal(st.GetPredicate())
		if err != nil {
			return refuse("verification summary: %v", err)
		}
		var p vsa.VerificationSummary
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &p); err != nil {
			return refuse("not a verification summary: %v", err)
		}
		if err := ValidateSummary(&p); err != nil {
			return refuse("%v", err)
		}
		f.Result, f.VerifierID = p.GetVerificationResult(), p.GetVerifier().GetId()
	}
	return f
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

func shortAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	return out
}

// CheckDir reads every *.intoto.jsonl, *.jsonl and *.json file of dir (not
// recursively) and checks every envelope in them, in file and line order.
func (c *Checker) CheckDir(ctx context.Context, dir string) ([]Finding, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: attestations directory: %w", ErrKey, err)
	}
	var out []Finding
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".json")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
		for _, raw := range ReadEnvelopes(name, data) {
			out = append(out, c.Check(ctx, raw))
		}
	}
	return out, nil
}

// A Tally is, for one published artifact, the distinct trusted keys whose
// PASSED summaries name its digest, and those whose FAILED summaries do.
type Tally struct {
	Name   string   `json:"name"`
	SHA256 string   `json:"sha256"`
	Passed []string `json:"passed_keys"`
	Failed []string `json:"failed_keys"`
	OK     bool     `json:"ok"`
}

// Count tallies, for each published subject, the distinct trusted keys that
// reproduced it: a verified PASSED summary with a subject whose SHA-256 equals
// the published one. A key counts once however many attestations it signed.
// An artifact is OK when at least threshold keys reproduced it.
func Count(published []Subject, findings []Finding, threshold int) []Tally {
	var out []Tally
	for _, p := range published {
		t := Tally{Name: p.Name, SHA256: p.SHA256, Passed: []string{}, Failed: []string{}}
		for _, f := range findings {
			if f.Refused != "" || f.PredicateType != SummaryType {
				continue
			}
			if !slices.ContainsFunc(f.Subjects, func(s Subject) bool { return s.SHA256 == p.SHA256 }) {
				continue
			}
			switch f.Result {
			case Passed:
				t.Passed = append(t.Passed, f.KeyIDs...)
			case Failed:
				t.Failed = append(t.Failed, f.KeyIDs...)
			}
		}
		slices.Sort(t.Passed)
		t.Passed = slices.Compact(t.Passed)
		slices.Sort(t.Failed)
		t.Failed = slices.Compact(t.Failed)
		t.OK = len(t.Passed) >= threshold
		out = append(out, t)
	}
	return out
}
