package buildkit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
	"github.com/reprobox/reprobox/sandbox/buildkit"
	"github.com/reprobox/reprobox/sandbox/buildkit/bktest"
)

// TestTLS runs a job on a buildkitd listening on loopback TCP with mutual
// TLS, as a remote worker is reached: the client's CA, certificate, key and
// server name as buildctl takes them. Without the client certificate, or
// with the wrong server name, the connection is refused.
func TestTLS(t *testing.T) {
	if reason := bktest.Missing(); reason != "" {
		testenv.Skip(t, "%s", reason)
	}
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil, "")
	newCert(t, dir, "server", ca, caKey, "buildkitd.test")
	newCert(t, dir, "client", ca, caKey, "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	d, err := bktest.NewTCP(addr, []string{
		"--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "server.pem"),
		"--tlskey", filepath.Join(dir, "server-key.pem"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	open := func(tls buildkit.TLS) (*buildkit.Backend, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return buildkit.New(ctx, buildkit.Config{Address: addr, TLS: tls, StateDir: stateDir()})
	}
	good := buildkit.TLS{
		CACert: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"),
		Key: filepath.Join(dir, "client-key.pem"), ServerName: "buildkitd.test",
	}
	b, err := open(good)
	if err != nil {
		t.Fatalf("with the client certificate: %v\n%s", err, d.Log(20))
	}
	defer b.Close()
	res, out, errs := run(t, b, shellJob(t, "echo over-tls", nil))
	if !res.Success() || out != "over-tls" {
		t.Errorf("exit %d, output %q %q", res.ExitCode, out, errs)
	}
	noCert := good
	noCert.Cert, noCert.Key = "", ""
	if b, err := open(noCert); err == nil {
		b.Close()
		t.Error("the daemon answered a client without a certificate")
	}
	wrongName := good
	wrongName.ServerName = "other.test"
	if b, err := open(wrongName); err == nil {
		b.Close()
		t.Error("the client accepted a certificate for another name")
	}
}

// newCert writes name.pem and name-key.pem in dir: a CA when parent is nil,
// else a certificate it signs, for dnsName (a server) or a client.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, dnsName string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "reprobox test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	switch {
	case parent == nil:
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	case dnsName != "":
		tmpl.DNSNames = []string{dnsName}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kder)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(fmt.Errorf("parse %s: %w", name, err))
	}
	return cert, key
}
