package attest

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
)

// FuzzReadEnvelopes: any bytes read as envelopes and checked against a
// trusted key never panic, and nothing but a correctly signed, valid
// statement is accepted.
func FuzzReadEnvelopes(f *testing.F) {
	dir := f.TempDir()
	privPath, pubPath, _, err := GenerateKey(filepath.Join(dir, "k"))
	if err != nil {
		f.Fatal(err)
	}
	priv, _ := LoadPrivateKey(privPath)
	pubs, _ := LoadPublicKeys(pubPath)
	data, err := Bundle(context.Background(), priv, "b", rebuild(), []Summary{{ResourceURI: "x", Result: Passed, Subjects: []Subject{{Name: "hello", SHA256: digA}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AAAA"}]}`))
	f.Add([]byte("{}\n\n[1,2]\n"))
	c := NewChecker([]ed25519.PublicKey{pubs[0]})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, raw := range ReadEnvelopes("f", data) {
			fd := c.Check(context.Background(), raw)
			if fd.Refused == "" && (len(fd.KeyIDs) != 1 || fd.PredicateType == "") {
				t.Fatalf("accepted without a key or a predicate: %+v", fd)
			}
		}
	})
}
