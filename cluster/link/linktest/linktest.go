// Package linktest makes links between test nodes on loopback: a CA of
// its own, node certificates, and meshes of Links that stop at the end of
// the test.
package linktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/raftstore"
)

// CA is an installation CA made for a test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	Pool *x509.CertPool
}

// NewCA makes a CA.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linktest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, Pool: pool}
}

// Node returns a TLS config with a node certificate for id (no node URI
// if id is empty).
func (ca *CA) Node(t testing.TB, id string) *tls.Config {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if id != "" {
		tmpl.URIs = append(tmpl.URIs, raftstore.NodeURI(id))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, RootCAs: ca.Pool}
}

// Members is a settable membership for Config.Member.
type Members struct {
	mu  sync.Mutex
	ids map[string]bool
}

// NewMembers returns a membership of ids.
func NewMembers(ids ...string) *Members {
	m := &Members{ids: map[string]bool{}}
	for _, id := range ids {
		m.ids[id] = true
	}
	return m
}

// Member implements Config.Member.
func (m *Members) Member(id string) bool { m.mu.Lock(); defer m.mu.Unlock(); return m.ids[id] }

// Set adds or removes id.
func (m *Members) Set(id string, in bool) { m.mu.Lock(); m.ids[id] = in; m.mu.Unlock() }

// Node is one node of a mesh.
type Node struct {
	ID   string
	Addr string
	Link *link.Link
}

// Mesh starts one Link per id on loopback, all members, all peers of each
// other; cfg(id) fills in Handle and Down (and anything else) for each.
// The Links close at the end of the test.
func Mesh(t testing.TB, ca *CA, members *Members, cfg func(id string) link.Config, ids ...string) map[string]*Node {
	t.Helper()
	nodes := map[string]*Node{}
	addrs := map[string]string{}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := cfg(id)
		c.ID, c.TLS = id, ca.Node(t, id)
		if c.Member == nil {
			c.Member = members.Member
		}
		if c.MinBackoff == 0 {
			c.MinBackoff = 10 * time.Millisecond
			c.MaxBackoff = 200 * time.Millisecond
		}
		l, err := link.New(c)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); l.Serve(ln) }()
		t.Cleanup(func() { l.Close(); <-done })
		nodes[id] = &Node{ID: id, Addr: ln.Addr().String(), Link: l}
		addrs[id] = ln.Addr().String()
	}
	for _, n := range nodes {
		n.Link.SetPeers(addrs)
	}
	return nodes
}
