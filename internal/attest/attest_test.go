package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	provenance "github.com/in-toto/attestation/go/predicates/provenance/v1"
	vsa "github.com/in-toto/attestation/go/predicates/vsa/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	digA = "dc6f05a172f68d7c67d307b45b152e15bd460e40a1f2ec9be66d6c686794949a"
	digB = "13dd524055e6ebff2e68a12df378127aaf17d08ab2fb2fe89dbff23f897e9501"
)

func newKey(t testing.TB, dir, name string) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	privPath, pubPath, _, err := GenerateKey(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := LoadPublicKeys(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pubs[0]
}

func rebuild() Rebuild {
	return Rebuild{
		External: map[string]any{"command": []string{"cargo", "build"}, "image": "reprobox/rust@sha256:" + digB},
		Internal: map[string]any{"environment": []string{"TZ=UTC"}},
		Dependencies: []Dependency{
			{Name: "reprobox/rust@sha256:" + digB, URI: "oci:reprobox/rust@sha256:" + digB, Digest: map[string]string{"sha256": digB}},
			{Name: "source", Digest: map[string]string{"dirHash": digA}, Annotations: map[string]string{"git_head": "abc"}},
		},
		Artifacts: []Subject{{Name: "hello", SHA256: digA}},
	}
}

func bundle(t testing.TB, priv ed25519.PrivateKey, result string, subjects ...Subject) []byte {
	t.Helper()
	data, err := Bundle(context.Background(), priv, "b.intoto.jsonl", rebuild(), []Summary{{ResourceURI: "SHA256SUMS", Result: result, Subjects: subjects}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGenerateKey(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, id, err := GenerateKey(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(privPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", st.Mode(), err)
	}
	for p, typ := range map[string]string{privPath: "PRIVATE KEY", pubPath: "PUBLIC KEY"} {
		data, _ := os.ReadFile(p)
		if b, _ := pem.Decode(data); b == nil || b.Type != typ {
			t.Errorf("%s is not PEM %q", p, typ)
		}
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil || KeyID(priv.Public().(ed25519.PublicKey)) != id {
		t.Fatalf("key id: %v", err)
	}
	before, _ := os.ReadFile(privPath)
	if _, _, _, err := GenerateKey(filepath.Join(dir, "k")); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	if after, _ := os.ReadFile(privPath); !bytes.Equal(before, after) {
		t.Fatal("the private key was overwritten")
	}
	// A private key is not a trusted key, nor the other way round.
	if _, err := LoadPublicKeys(privPath); err == nil {
		t.Error("a private key file was read as public keys")
	}
	if _, err := LoadPrivateKey(pubPath); err == nil {
		t.Error("a public key file was read as a private key")
	}
}

// TestStatementsValidate checks the statements against the in-toto and SLSA
// schemas as their Go types define them: the payload decodes strictly (an
// unknown or misspelt field is an error) into intoto.Statement, the
// predicates into provenance.Provenance and vsa.VerificationSummary, and each
// Validate method passes.
func TestStatementsValidate(t *testing.T) {
	priv, _ := newKey(t, t.TempDir(), "k")
	r := rebuild()
	r.Started, r.Finished = time.Unix(1700000000, 0), time.Unix(1700000060, 0)
	data, err := Bundle(context.Background(), priv, "b.intoto.jsonl", r, []Summary{
		{ResourceURI: "SHA256SUMS", Result: Passed, Subjects: []Subject{{Name: "hello", SHA256: digA}}, Time: time.Unix(1700000100, 0)},
		{ResourceURI: "SHA256SUMS", Result: Failed, Subjects: []Subject{{Name: "other", SHA256: digB}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	raws := ReadEnvelopes("b", data)
	if len(raws) != 3 {
		t.Fatalf("%d envelopes", len(raws))
	}
	for i, raw := range raws {
		if raw.Err != nil || raw.Envelope.PayloadType != PayloadType {
			t.Fatalf("envelope %d: %v", i, raw.Err)
		}
		payload, err := raw.Envelope.DecodeB64Payload()
		if err != nil {
			t.Fatal(err)
		}
		var st intoto.Statement
		if err := protojson.Unmarshal(payload, &st); err != nil {
			t.Fatalf("statement %d does not decode strictly: %v", i, err)
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("statement %d: %v", i, err)
		}
		if st.GetType() != "https://in-toto.io/Statement/v1" {
			t.Errorf("_type %q", st.GetType())
		}
		pred, _ := protojson.Marshal(st.GetPredicate())
		switch i {
		case 0:
			var p provenance.Provenance
			if err := protojson.Unmarshal(pred, &p); err != nil {
				t.Fatalf("provenance does not decode strictly: %v", err)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if st.GetPredicateType() != "https://slsa.dev/provenance/v1" || p.GetRunDetails().GetBuilder().GetId() != DefaultBuilderID ||
				len(p.GetBuildDefinition().GetResolvedDependencies()) != 2 || p.GetRunDetails().GetMetadata().GetStartedOn().GetSeconds() != 1700000000 {
				t.Errorf("provenance: %v", &p)
			}
		default:
			var s vsa.VerificationSummary
			if err := protojson.Unmarshal(pred, &s); err != nil {
				t.Fatalf("summary does not decode strictly: %v", err)
			}
			if err := ValidateSummary(&s); err != nil {
				t.Fatal(err)
			}
			want := map[int]string{1: Passed, 2: Failed}[i]
			if st.GetPredicateType() != "https://slsa.dev/verification_summary/v1" || s.GetVerificationResult() != want ||
				len(s.GetInputAttestations()) != 1 || s.GetInputAttestations()[0].GetUri() != "b.intoto.jsonl#1" {
				t.Errorf("summary %d: %v", i, &s)
			}
		}
	}
	// Predicates that miss required fields are refused before signing.
	if _, err := SummaryStatement(Summary{Result: Passed, Subjects: []Subject{{Name: "x", SHA256: digA}}}); err == nil {
		t.Error("summary without resourceUri accepted")
	}
	if _, err := SummaryStatement(Summary{ResourceURI: "x", Result: "MAYBE", Subjects: []Subject{{Name: "x", SHA256: digA}}}); err == nil {
		t.Error("summary with result MAYBE accepted")
	}
	if _, err := ProvenanceStatement(Rebuild{Artifacts: []Subject{{Name: "x", SHA256: "zz"}}, External: map[string]any{"a": 1}}); err == nil {
		t.Error("statement with a bad digest accepted")
	}
}

func TestDeterministic(t *testing.T) {
	priv, _ := newKey(t, t.TempDir(), "k")
	a := bundle(t, priv, Passed, Subject{Name: "hello", SHA256: digA}, Subject{Name: "b", SHA256: digB})
	b := bundle(t, priv, Passed, Subject{Name: "b", SHA256: digB}, Subject{Name: "hello", SHA256: digA})
	if !bytes.Equal(a, b) {
		t.Fatalf("two bundles of the same facts differ:\n%s\n%s", a, b)
	}
	// Sorted keys at every level of the envelope and the payload.
	line, _, _ := bytes.Cut(a, []byte("\n"))
	if !bytes.HasPrefix(line, []byte(`{"payload":`)) {
		t.Errorf("envelope keys not sorted: %.40s", line)
	}
}

func check(t *testing.T, c *Checker, name string, data []byte) []Finding {
	t.Helper()
	var out []Finding
	for _, raw := range ReadEnvelopes(name, data) {
		out = append(out, c.Check(context.Background(), raw))
	}
	return out
}

func TestCheckSignatures(t *testing.T) {
	dir := t.TempDir()
	priv1, pub1 := newKey(t, dir, "one")
	priv2, pub2 := newKey(t, dir, "two")
	privX, _ := newKey(t, dir, "stranger")
	c := NewChecker([]ed25519.PublicKey{pub1, pub2})
	good := bundle(t, priv1, Passed, Subject{Name: "hello", SHA256: digA})

	t.Run("valid", func(t *testing.T) {
		fs := check(t, c, "good", good)
		if len(fs) != 2 {
			t.Fatalf("%d findings", len(fs))
		}
		for _, f := range fs {
			if f.Refused != "" || len(f.KeyIDs) != 1 || f.KeyIDs[0] != KeyID(pub1) {
				t.Fatalf("%+v", f)
			}
		}
		if fs[1].PredicateType != SummaryType || fs[1].Result != Passed || fs[1].Subjects[0].SHA256 != digA {
			t.Fatalf("%+v", fs[1])
		}
	})

	t.Run("tampered payload", func(t *testing.T) {
		// An attacker swaps the summary's subject digest for the digest of
		// their own artifact and keeps the signature.
		lines := bytes.Split(bytes.TrimSpace(good), []byte("\n"))
		var env map[string]any
		json.Unmarshal(lines[1], &env)
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		evil := bytes.ReplaceAll(payload, []byte(digA), []byte(digB))
		if bytes.Equal(evil, payload) {
			t.Fatal("the digest is not in the payload")
		}
		env["payload"] = base64.StdEncoding.EncodeToString(evil)
		forged, _ := json.Marshal(env)
		fs := check(t, c, "evil", forged)
		if len(fs) != 1 || !strings.Contains(fs[0].Refused, "does not verify") || !strings.Contains(fs[0].Refused, "altered") {
			t.Fatalf("tampered payload not refused: %+v", fs)
		}
		if got := Count([]Subject{{Name: "hello", SHA256: digB}}, fs, 1); got[0].OK || len(got[0].Passed) != 0 {
			t.Fatalf("tampered attestation counted: %+v", got)
		}
	})

	t.Run("tampered payload type", func(t *testing.T) {
		var env map[string]any
		json.Unmarshal(bytes.Split(good, []byte("\n"))[1], &env)
		env["payloadType"] = "application/json"
		data, _ := json.Marshal(env)
		if fs := check(t, c, "pt", data); !strings.Contains(fs[0].Refused, "payloadType") {
			t.Fatalf("%+v", fs)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		fs := check(t, c, "stranger", bundle(t, privX, Passed, Subject{Name: "hello", SHA256: digA}))
		for _, f := range fs {
			if !strings.Contains(f.Refused, "untrusted key") {
				t.Fatalf("%+v", f)
			}
		}
	})

	t.Run("stranger claims a trusted key id", func(t *testing.T) {
		// Signed with the stranger's key but labelled with a trusted keyid.
		var env map[string]any
		json.Unmarshal(bytes.Split(bundle(t, privX, Passed, Subject{Name: "hello", SHA256: digA}), []byte("\n"))[1], &env)
		env["signatures"].([]any)[0].(map[string]any)["keyid"] = KeyID(pub1)
		data, _ := json.Marshal(env)
		if fs := check(t, c, "claim", data); !strings.Contains(fs[0].Refused, "does not verify") {
			t.Fatalf("%+v", fs)
		}
		// And with no keyid at all.
		env["signatures"].([]any)[0].(map[string]any)["keyid"] = ""
		data, _ = json.Marshal(env)
		if fs := check(t, c, "nokeyid", data); !strings.Contains(fs[0].Refused, "no signature verifies") {
			t.Fatalf("%+v", fs)
		}
	})

	t.Run("unsigned and garbage", func(t *testing.T) {
		var env map[string]any
		json.Unmarshal(bytes.Split(good, []byte("\n"))[0], &env)
		env["signatures"] = []any{}
		data, _ := json.Marshal(env)
		if fs := check(t, c, "unsigned", data); !strings.Contains(fs[0].Refused, "unsigned") {
			t.Fatalf("%+v", fs)
		}
		fs := check(t, c, "garbage", []byte("{\"payloadType\": 1}\nnot json\n"))
		if len(fs) != 2 || !strings.Contains(fs[0].Refused, "not a DSSE envelope") || fs[1].Where != "garbage:2" {
			t.Fatalf("%+v", fs)
		}
	})

	t.Run("signed non-statement", func(t *testing.T) {
		// A trusted key signed something that is not an in-toto statement.
		signer, _ := newSignerEnvelope(priv1, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`))
		if fs := check(t, c, "bad", signer); !strings.Contains(fs[0].Refused, "invalid in-toto statement") {
			t.Fatalf("%+v", fs)
		}
	})

	t.Run("duplicate builder and threshold", func(t *testing.T) {
		var all []Finding
		// Key one signs twice, in two files: it counts once.
		all = append(all, check(t, c, "one-a", good)...)
		all = append(all, check(t, c, "one-b", bundle(t, priv1, Passed, Subject{Name: "hello", SHA256: digA}))...)
		pubd := []Subject{{Name: "hello", SHA256: digA}}
		got := Count(pubd, all, 2)
		if len(got[0].Passed) != 1 || got[0].OK {
			t.Fatalf("same key twice counted as two builders: %+v", got)
		}
		if !Count(pubd, all, 1)[0].OK {
			t.Fatal("threshold 1 not met by one builder")
		}
		// Key two's FAILED summary does not count either.
		failed := check(t, c, "two-failed", bundle(t, priv2, Failed, Subject{Name: "hello", SHA256: digA}))
		got = Count(pubd, append(all, failed...), 2)
		if got[0].OK || len(got[0].Failed) != 1 {
			t.Fatalf("%+v", got)
		}
		// Key two's PASSED summary makes two distinct builders.
		passed := check(t, c, "two", bundle(t, priv2, Passed, Subject{Name: "hello", SHA256: digA}))
		got = Count(pubd, append(all, passed...), 2)
		if !got[0].OK || len(got[0].Passed) != 2 {
			t.Fatalf("%+v", got)
		}
		// A PASSED summary for another digest says nothing about this one.
		other := check(t, c, "two-other", bundle(t, priv2, Passed, Subject{Name: "hello", SHA256: digB}))
		if Count(pubd, append(all, other...), 2)[0].OK {
			t.Fatal("a summary of another digest counted")
		}
	})
}

// newSignerEnvelope signs an arbitrary payload as an in-toto statement.
func newSignerEnvelope(priv ed25519.PrivateKey, payload []byte) ([]byte, error) {
	s, err := dsse.NewEnvelopeSigner(newSigner(priv))
	if err != nil {
		return nil, err
	}
	env, err := s.SignPayload(context.Background(), PayloadType, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	priv1, pub1 := newKey(t, dir, "one")
	att := filepath.Join(dir, "att")
	os.Mkdir(att, 0o755)
	os.WriteFile(filepath.Join(att, "a.intoto.jsonl"), bundle(t, priv1, Passed, Subject{Name: "hello", SHA256: digA}), 0o644)
	// An indented single envelope is read too; other files are ignored.
	line := bytes.Split(bundle(t, priv1, Passed, Subject{Name: "hello", SHA256: digA}), []byte("\n"))[1]
	var v any
	json.Unmarshal(line, &v)
	indented, _ := json.MarshalIndent(v, "", "  ")
	os.WriteFile(filepath.Join(att, "b.json"), indented, 0o644)
	os.WriteFile(filepath.Join(att, "README"), []byte("not an attestation"), 0o644)
	fs, err := NewChecker([]ed25519.PublicKey{pub1}).CheckDir(context.Background(), att)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 {
		t.Fatalf("%d findings: %+v", len(fs), fs)
	}
	for _, f := range fs {
		if f.Refused != "" {
			t.Fatalf("%+v", f)
		}
	}
}
