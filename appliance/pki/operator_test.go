package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Operator certificates come from the same CA but are not reader
// certificates: the reader port refuses them, and they carry no role.
func TestIssueOperator(t *testing.T) {
	p, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := p.IssueOperator("alice")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf.Subject.CommonName != "alice" || !slices.Equal(leaf.Subject.OrganizationalUnit, []string{OperatorOU}) ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("subject %v, usages %v", leaf.Subject, leaf.ExtKeyUsage)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	ccfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: p.Pool(), ServerName: ServerName}
	cs, serr, cerr := handshake(t, p.ServerTLS(), ccfg)
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: %v %v", serr, cerr)
	}
	if _, err := ReaderSerialFromConn(cs); !errors.Is(err, ErrNotReader) {
		t.Fatalf("an operator certificate passed as a reader: %v", err)
	}
	if _, _, err := p.IssueOperator(""); err == nil {
		t.Fatal("empty name issued")
	}
}

// Every key file, the CA's first, is 0600 in a 0700 directory; the
// bootstrap admin certificate is the one Admin returns.
func TestKeyFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{caKeyFile, serverKeyFile, adminKeyFile, caFile, serverFile, adminFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	cert, certPEM, keyPEM, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || !pair.Leaf.Equal(cert) || cert.Subject.CommonName != AdminCN {
		t.Fatalf("admin pair: %v", err)
	}
}
