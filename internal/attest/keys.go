// Package attest signs and checks what reprobox verify found: in-toto
// Statements v1 carrying a SLSA provenance v1 predicate for the rebuild and a
// SLSA verification summary v1 for the published artifacts, each in a DSSE
// envelope signed with ed25519.
//
// The statement and predicate types are the in-toto attestation project's Go
// types (github.com/in-toto/attestation/go), validated with their Validate
// methods; envelopes are made and checked by go-securesystemslib's dsse
// package. This package only adds the key files, a deterministic JSON
// encoding, and the counting of independent rebuilders.
package attest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// ErrKey marks a key file that cannot be used: the caller's to fix.
var ErrKey = errors.New("bad key")

// GenerateKey writes a new ed25519 key pair: prefix+".key" (PKCS#8 PEM, mode
// 0600) and prefix+".pub" (PKIX PEM). Neither file may exist already.
func GenerateKey(prefix string) (privPath, pubPath string, keyID string, err error) {
	privPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", "", fmt.Errorf("%w: %s exists; refusing to overwrite a key (choose another --out or remove it)", ErrKey, p)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("attest: generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", "", fmt.Errorf("attest: encode key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", "", fmt.Errorf("attest: encode key: %w", err)
	}
	if err := writeExcl(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeExcl(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return "", "", "", err
	}
	return privPath, pubPath, KeyID(pub), nil
}

func writeExcl(p string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	if err := f.Chmod(mode); err != nil { // whatever the umask
		f.Close()
		os.Remove(p)
		return fmt.Errorf("attest: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("attest: write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("attest: write %s: %w", p, err)
	}
	return nil
}

// KeyID names a public key: the lowercase hex SHA-256 of its PKIX DER
// encoding, as `openssl pkey -pubin -outform DER | sha256sum` prints it.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519 key always encodes
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// LoadPrivateKey reads an ed25519 private key from a PKCS#8 PEM file.
func LoadPrivateKey(p string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s is not a PEM \"PRIVATE KEY\" (make one with reprobox key generate)", ErrKey, p)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, p, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T, not an ed25519 key", ErrKey, p, k)
	}
	return priv, nil
}

// LoadPublicKeys reads every PEM "PUBLIC KEY" block of a file (a list of
// trusted keys is the concatenation of .pub files). The same key twice is
// kept once. Any other content is an error.
func LoadPublicKeys(p string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, p, err)
	}
	return keys, nil
}

// ParsePublicKeys parses concatenated PEM ed25519 public keys.
func ParsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	seen := map[string]bool{}
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM %q block where only \"PUBLIC KEY\" blocks belong (is this a private key?)", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T public key; only ed25519 keys are trusted", k)
		}
		if id := KeyID(pub); !seen[id] {
			seen[id] = true
			keys = append(keys, pub)
		}
	}
	if len(trimSpace(rest)) > 0 {
		return nil, errors.New("text that is not a PEM public key")
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key")
	}
	slices.SortFunc(keys, func(a, b ed25519.PublicKey) int {
		return cmpString(KeyID(a), KeyID(b))
	})
	return keys, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// signerVerifier is a dsse.SignerVerifier for one ed25519 key.
type signerVerifier struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

var _ dsse.SignerVerifier = (*signerVerifier)(nil)

func newSigner(priv ed25519.PrivateKey) *signerVerifier {
	pub := priv.Public().(ed25519.PublicKey)
	return &signerVerifier{priv: priv, pub: pub, id: KeyID(pub)}
}

func newVerifier(pub ed25519.PublicKey) *signerVerifier {
	return &signerVerifier{pub: pub, id: KeyID(pub)}
}

func (s *signerVerifier) Sign(_ context.Context, data []byte) ([]byte, error) {
	if s.priv == nil {
		return nil, errors.New("attest: no private key")
	}
	return ed25519.Sign(s.priv, data), nil
}

func (s *signerVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(s.pub, data, sig) {
		return errors.New("ed25519 signature does not verify")
	}
	return nil
}

func (s *signerVerifier) KeyID() (string, error) { return s.id, nil }

func (s *signerVerifier) Public() crypto.PublicKey { return s.pub }
