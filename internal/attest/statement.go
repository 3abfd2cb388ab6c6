package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	provenance "github.com/in-toto/attestation/go/predicates/provenance/v1"
	vsa "github.com/in-toto/attestation/go/predicates/vsa/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Type URIs.
const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// ProvenanceType is the SLSA provenance v1 predicate type.
	ProvenanceType = "https://slsa.dev/provenance/v1"
	// SummaryType is the SLSA verification summary v1 predicate type.
	SummaryType = "https://slsa.dev/verification_summary/v1"
	// BuildType names what reprobox's provenance describes: one build of a
	// project in a pinned OCI image with every environmental input normalized.
	BuildType = "https://github.com/reprobox/reprobox/buildtypes/hermetic-rebuild/v1"
	// DefaultBuilderID is the builder id when none is given.
	DefaultBuilderID = "https://github.com/reprobox/reprobox/verify/v1"
	// PolicyURI names the policy a summary applies: every published artifact
	// is bit-identical to the rebuild's artifact of the same file name.
	PolicyURI = "https://github.com/reprobox/reprobox/blob/main/README.md#verify-a-release"
	// LevelReproduced is the verified level of a PASSED summary. SLSA reserves
	// the SLSA_ prefix; custom levels are allowed.
	LevelReproduced = "REPROBOX_BIT_FOR_BIT_REBUILD"
)

// Results of a verification summary.
const (
	Passed = "PASSED"
	Failed = "FAILED"
)

// A Subject is a named artifact and its SHA-256.
type Subject struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// A Dependency is a resolved input of the rebuild: the image, the source, a
// toolchain.
type Dependency struct {
	Name   string
	URI    string
	Digest map[string]string
	// Annotations are extra facts about the dependency (a version, a date).
	Annotations map[string]string
}

// A Rebuild is what the provenance states about one verify rebuild.
type Rebuild struct {
	BuilderID string
	// External are the parameters the user controls: command, artifacts,
	// image reference, source date, CPUs, extra environment.
	External map[string]any
	// Internal is the normalized environment reprobox chose.
	Internal map[string]any
	// Dependencies are resolved inputs, the image and the source first.
	Dependencies []Dependency
	// Artifacts are the rebuilt files (the provenance's subjects).
	Artifacts []Subject
	// Started and Finished are omitted when zero.
	Started, Finished time.Time
}

// A Summary is what the verification summary states about the published
// artifacts.
type Summary struct {
	VerifierID  string
	ResourceURI string
	// Result is Passed or Failed; it applies to every subject.
	Result   string
	Subjects []Subject
	// Time is omitted when zero.
	Time time.Time
	// Input is the provenance the verdict rests on (a URI and its envelope's
	// SHA-256), when there is one.
	InputURI, InputSHA256 string
}

func subjects(list []Subject) []*intoto.ResourceDescriptor {
	out := make([]*intoto.ResourceDescriptor, 0, len(list))
	for _, s := range list {
		out = append(out, &intoto.ResourceDescriptor{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}})
	}
	slices.SortFunc(out, func(a, b *intoto.ResourceDescriptor) int {
		return strings.Compare(a.Name+"\x00"+a.Digest["sha256"], b.Name+"\x00"+b.Digest["sha256"])
	})
	return out
}

// ProvenanceStatement builds the in-toto statement of a rebuild's provenance
// and validates it.
func ProvenanceStatement(r Rebuild) (*intoto.Statement, error) {
	if r.BuilderID == "" {
		r.BuilderID = DefaultBuilderID
	}
	ext, err := structpb.NewStruct(jsonable(r.External))
	if err != nil {
		return nil, fmt.Errorf("attest: external parameters: %w", err)
	}
	internal, err := structpb.NewStruct(jsonable(r.Internal))
	if err != nil {
		return nil, fmt.Errorf("attest: internal parameters: %w", err)
	}
	var deps []*intoto.ResourceDescriptor
	for _, d := range r.Dependencies {
		rd := &intoto.ResourceDescriptor{Name: d.Name, Uri: d.URI, Digest: d.Digest}
		if len(d.Annotations) > 0 {
			m := map[string]any{}
			for k, v := range d.Annotations {
				m[k] = v
			}
			if rd.Annotations, err = structpb.NewStruct(m); err != nil {
				return nil, fmt.Errorf("attest: dependency %s: %w", d.Name, err)
			}
		}
		deps = append(deps, rd)
	}
	pred := &provenance.Provenance{
		BuildDefinition: &provenance.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			InternalParameters:   internal,
			ResolvedDependencies: deps,
		},
		RunDetails: &provenance.RunDetails{Builder: &provenance.Builder{Id: r.BuilderID}},
	}
	if !r.Started.IsZero() || !r.Finished.IsZero() {
		md := &provenance.BuildMetadata{}
		if !r.Started.IsZero() {
			md.StartedOn = timestamppb.New(r.Started.UTC())
		}
		if !r.Finished.IsZero() {
			md.FinishedOn = timestamppb.New(r.Finished.UTC())
		}
		pred.RunDetails.Metadata = md
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("attest: provenance: %w", err)
	}
	return statement(r.Artifacts, ProvenanceType, pred)
}

// SummaryStatement builds the in-toto statement of a verification summary and
// validates it.
func SummaryStatement(s Summary) (*intoto.Statement, error) {
	if s.Result != Passed && s.Result != Failed {
		return nil, fmt.Errorf("attest: summary result %q is neither %s nor %s", s.Result, Passed, Failed)
	}
	if s.VerifierID == "" {
		s.VerifierID = DefaultBuilderID
	}
	level := LevelReproduced
	if s.Result == Failed {
		level = Failed
	}
	pred := &vsa.VerificationSummary{
		Verifier:           &vsa.VerificationSummary_Verifier{Id: s.VerifierID},
		ResourceUri:        s.ResourceURI,
		Policy:             &vsa.VerificationSummary_Policy{Uri: PolicyURI},
		VerificationResult: s.Result,
		VerifiedLevels:     []string{level},
	}
	if !s.Time.IsZero() {
		pred.TimeVerified = timestamppb.New(s.Time.UTC())
	}
	if s.InputURI != "" {
		pred.InputAttestations = []*vsa.VerificationSummary_InputAttestation{{Uri: s.InputURI, Digest: map[string]string{"sha256": s.InputSHA256}}}
	}
	if err := ValidateSummary(pred); err != nil {
		return nil, err
	}
	return statement(s.Subjects, SummaryType, pred)
}

// ValidateSummary checks the fields the SLSA verification summary v1 spec
// requires (the Go type has no Validate method of its own).
func ValidateSummary(p *vsa.VerificationSummary) error {
	switch {
	case p.GetVerifier().GetId() == "":
		return fmt.Errorf("attest: verification summary: verifier.id required")
	case p.GetResourceUri() == "":
		return fmt.Errorf("attest: verification summary: resourceUri required")
	case p.GetPolicy().GetUri() == "" && len(p.GetPolicy().GetDigest()) == 0:
		return fmt.Errorf("attest: verification summary: policy required")
	case p.GetVerificationResult() != Passed && p.GetVerificationResult() != Failed:
		return fmt.Errorf("attest: verification summary: verificationResult %q is neither PASSED nor FAILED", p.GetVerificationResult())
	case len(p.GetVerifiedLevels()) == 0:
		return fmt.Errorf("attest: verification summary: verifiedLevels required")
	}
	if t := p.GetTimeVerified(); t != nil {
		if err := t.CheckValid(); err != nil {
			return fmt.Errorf("attest: verification summary: timeVerified: %w", err)
		}
	}
	for _, in := range p.GetInputAttestations() {
		rd := &intoto.ResourceDescriptor{Uri: in.GetUri(), Digest: in.GetDigest()}
		if err := rd.Validate(); err != nil {
			return fmt.Errorf("attest: verification summary: inputAttestations: %w", err)
		}
	}
	return nil
}

func statement(subj []Subject, predicateType string, pred proto.Message) (*intoto.Statement, error) {
	data, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	s := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       subjects(subj),
		PredicateType: predicateType,
		Predicate:     st,
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("attest: statement: %w", err)
	}
	return s, nil
}

// jsonable turns v into the generic JSON values structpb accepts.
func jsonable(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// MarshalStatement is the statement's JSON, deterministic: protojson's names,
// every object's keys sorted, no insignificant space.
func MarshalStatement(s *intoto.Statement) ([]byte, error) {
	data, err := protojson.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return canonical(data)
}

// canonical re-encodes JSON with sorted keys and no spaces (protojson
// randomizes its spacing on purpose).
func canonical(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Sign wraps a statement in a DSSE envelope signed by priv and returns the
// envelope as one line of JSON (no newline). ed25519 signatures are
// deterministic, so the same statement and key give the same bytes.
func Sign(ctx context.Context, priv ed25519.PrivateKey, s *intoto.Statement) ([]byte, error) {
	payload, err := MarshalStatement(s)
	if err != nil {
		return nil, err
	}
	signer, err := dsse.NewEnvelopeSigner(newSigner(priv))
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	env, err := signer.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("attest: sign: %w", err)
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return canonical(data)
}

// Bundle signs the provenance of a rebuild and its verification summaries and
// returns them as a JSON Lines bundle (one DSSE envelope per line: the
// provenance first, then the summaries). Each summary names the provenance
// envelope as its input attestation: name#1 with the SHA-256 of that line.
func Bundle(ctx context.Context, priv ed25519.PrivateKey, name string, r Rebuild, summaries []Summary) ([]byte, error) {
	prov, err := ProvenanceStatement(r)
	if err != nil {
		return nil, err
	}
	line, err := Sign(ctx, priv, prov)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(line)
	out.WriteByte('\n')
	sum := sha256.Sum256(line)
	for _, s := range summaries {
		s.InputURI, s.InputSHA256 = name+"#1", hex.EncodeToString(sum[:])
		st, err := SummaryStatement(s)
		if err != nil {
			return nil, err
		}
		l, err := Sign(ctx, priv, st)
		if err != nil {
			return nil, err
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}
