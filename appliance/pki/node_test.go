package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samrack/samrack/cluster/raftstore"
)

func TestIssueNode(t *testing.T) {
	p, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, csr, err := NewNodeKey("node-b")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := p.IssueNode("node-b", csr)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := raftstore.NodeID(cert); !ok || id != "node-b" {
		t.Fatalf("node ID %q %v", id, ok)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatal(err)
	}
	// A request for another node, garbage and a bad ID are refused.
	if _, err := p.IssueNode("node-c", csr); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("other node: %v", err)
	}
	if _, err := p.IssueNode("node-b", []byte("not a csr")); !errors.Is(err, ErrBadCSR) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := p.IssueNode("a b", csr); err == nil {
		t.Fatal("bad node ID accepted")
	}
	// Node(id) issues once and keeps it; another ID reissues.
	c1, err := p.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := p.Node("n1")
	if c1.Leaf.SerialNumber.Cmp(c2.Leaf.SerialNumber) != 0 {
		t.Fatal("node certificate reissued without reason")
	}
	c3, _ := p.Node("n2")
	if id, _ := raftstore.NodeID(c3.Leaf); id != "n2" {
		t.Fatalf("reissued for %q", id)
	}
	fi, _ := os.Stat(filepath.Join(p.dir, nodeKeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode %v", fi.Mode().Perm())
	}
}

func TestShareInstallPinned(t *testing.T) {
	p, _ := LoadOrCreate(t.TempDir(), nil)
	other, _ := LoadOrCreate(t.TempDir(), nil)
	s, err := p.Share()
	if err != nil {
		t.Fatal(err)
	}
	if err := Install(t.TempDir(), s, other.CAHash()); err == nil {
		t.Fatal("installed a CA that is not the pinned one")
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := Install(dir, s, p.CAHash()); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir, s, p.CAHash()); err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Fatalf("second install: %v", err)
	}
	q, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.CAHash() != p.CAHash() {
		t.Fatal("joined node has another CA")
	}
	a1, _, _, _ := p.Admin()
	a2, _, _, _ := q.Admin()
	if a1.SerialNumber.Cmp(a2.SerialNumber) != 0 {
		t.Fatal("the bootstrap admin identity differs between nodes")
	}
	// The pinned check of a server chain.
	chain := p.ServerChain().Certificate
	if _, err := VerifyPinned(chain, p.CAHash()); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyPinned(chain, other.CAHash()); err == nil || !strings.Contains(err.Error(), "not the one the token names") {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := VerifyPinned(chain[:1], p.CAHash()); err == nil {
		t.Fatal("chain without CA accepted")
	}
	// A server of another CA that sends p's CA certificate is refused.
	forged := [][]byte{other.Server().Certificate[0], p.CA().Raw}
	if _, err := VerifyPinned(forged, p.CAHash()); err == nil {
		t.Fatal("foreign leaf accepted")
	}
}
