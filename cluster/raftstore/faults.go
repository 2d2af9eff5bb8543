package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// FaultLayer wraps a raft stream layer so that links to chosen peers can be
// cut and healed while the node runs: a network partition without touching
// the network. It is for tests and chaos drills, not for production: an
// appliance never builds one.
//
// Peers are named by node ID, read from the node certificate of each TLS
// connection (NodeURI), in both directions: a cut peer's dials are
// accepted at the TLS level and closed at once, dials to it are closed
// right after the handshake, and live connections to or from it are
// closed when the cut is made. Raft sees the same as with a pulled cable:
// broken connections and failing redials. Connections that carry no node
// identity (not TLS) are passed through untouched.
type FaultLayer struct {
	raft.StreamLayer

	mu    sync.Mutex
	cut   map[string]bool
	conns map[*faultConn]struct{}
}

var _ raft.StreamLayer = (*FaultLayer)(nil)

// ErrLinkCut is the error of a dial to a peer whose link is cut.
var ErrLinkCut = errors.New("raftstore: link cut by fault injection")

// NewFaultLayer wraps inner; no link is cut.
func NewFaultLayer(inner raft.StreamLayer) *FaultLayer {
	return &FaultLayer{StreamLayer: inner, cut: map[string]bool{}, conns: map[*faultConn]struct{}{}}
}

// NewFaultTLSTransport is NewTLSTransport with a FaultLayer between raft
// and the TLS stream layer.
func NewFaultTLSTransport(ln net.Listener, cfg *tls.Config, advertise net.Addr, logger hclog.Logger) (*raft.NetworkTransport, *FaultLayer, error) {
	sl, err := NewTLSStreamLayer(ln, cfg, advertise)
	if err != nil {
		return nil, nil, err
	}
	fl := NewFaultLayer(sl)
	return raft.NewNetworkTransportWithConfig(transportConfig(fl, logger)), fl, nil
}

// Cut cuts the links to and from the peers and closes their live
// connections.
func (f *FaultLayer) Cut(ids ...string) {
	f.mu.Lock()
	var doomed []*faultConn
	for _, id := range ids {
		f.cut[id] = true
	}
	for c := range f.conns {
		if f.cut[c.peer] {
			doomed = append(doomed, c)
		}
	}
	f.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Heal restores the links to the peers; with none, every link.
func (f *FaultLayer) Heal(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(ids) == 0 {
		clear(f.cut)
	}
	for _, id := range ids {
		delete(f.cut, id)
	}
}

// CutPeers lists the peers whose links are cut.
func (f *FaultLayer) CutPeers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.cut {
		out = append(out, id)
	}
	return out
}

// Accept implements net.Listener, dropping connections from cut peers.
func (f *FaultLayer) Accept() (net.Conn, error) {
	for {
		c, err := f.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		if fc, ok := f.track(c); ok {
			return fc, nil
		}
	}
}

// Dial implements raft.StreamLayer; a dial to a cut peer fails with
// ErrLinkCut.
func (f *FaultLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := f.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	fc, ok := f.track(c)
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", address, ErrLinkCut)
	}
	return fc, nil
}

// track wraps c, or closes it if its peer is cut.
func (f *FaultLayer) track(c net.Conn) (net.Conn, bool) {
	peer := ""
	if tc, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			peer, _ = NodeID(cs.PeerCertificates[0])
		}
	}
	if peer == "" {
		return c, true
	}
	f.mu.Lock()
	if f.cut[peer] {
		f.mu.Unlock()
		c.Close()
		return nil, false
	}
	fc := &faultConn{Conn: c, peer: peer, f: f}
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc, true
}

type faultConn struct {
	net.Conn
	peer string
	f    *FaultLayer
}

func (c *faultConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}
