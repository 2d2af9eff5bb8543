package testca

import (
	"crypto/x509"
	"net/url"
	"testing"
)

// TestIssueVerifies: a certificate of the CA verifies against its pool for
// both server and client auth and carries the URI SANs; one of another CA
// does not.
func TestIssueVerifies(t *testing.T) {
	ca, other := New(t, "ours"), New(t, "theirs")
	u := &url.URL{Scheme: "samrack", Opaque: "node:n1"}
	leaf, err := x509.ParseCertificate(ca.Issue(t, "n1", u).Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			t.Fatalf("usage %v: %v", eku, err)
		}
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != u.String() || leaf.Subject.CommonName != "n1" {
		t.Fatalf("certificate for %q %v", leaf.Subject.CommonName, leaf.URIs)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("verified against another CA")
	}
}
