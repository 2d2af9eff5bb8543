// Package linktest makes links between test nodes on loopback: a CA of
// its own, node certificates, and meshes of Links that stop at the end of
// the test.
package linktest

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/testca"
)

// CA is an installation CA made for a test.
type CA struct{ *testca.CA }

// NewCA makes a CA.
func NewCA(t testing.TB) *CA { return &CA{testca.New(t, "linktest CA")} }

// Node returns a TLS config with a node certificate for id (no node URI
// if id is empty).
func (ca *CA) Node(t testing.TB, id string) *tls.Config {
	t.Helper()
	if id == "" {
		return ca.TLS(t, id)
	}
	return ca.TLS(t, id, raftstore.NodeURI(id))
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
