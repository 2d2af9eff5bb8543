package host_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/dispatch/host/hosttest"
	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/link/linktest"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

// forwarded is a Local on node "sam", served over a real link (mutual
// TLS on loopback) to node "fe".
type forwarded struct {
	local  *host.Local
	server *host.Server
	nodes  map[string]*linktest.Node
	remote *host.Remote
}

func newForwarded(t *testing.T, cfg host.Config) *forwarded {
	f := &forwarded{local: host.New(cfg)}
	f.server, f.nodes = serveOverLink(t, f.local)
	f.remote = host.NewRemote(f.nodes["fe"].Link, "sam")
	return f
}

// serveOverLink serves local to front ends over a real link mesh: node
// "sam" runs the Server, the front ends (default "fe") only call. The
// Server and the host close with the test.
func serveOverLink(tb testing.TB, local *host.Local, frontEnds ...string) (*host.Server, map[string]*linktest.Node) {
	tb.Helper()
	tb.Cleanup(local.Close)
	server := host.NewServer(local)
	tb.Cleanup(server.Close)
	if len(frontEnds) == 0 {
		frontEnds = []string{"fe"}
	}
	ids := append(frontEnds, "sam")
	nodes := linktest.Mesh(tb, linktest.NewCA(tb), linktest.NewMembers(ids...), func(id string) link.Config {
		if id == "sam" {
			return link.Config{Handle: server.Handle, Down: server.Down}
		}
		return link.Config{Handle: func(link.Conn, net.Conn) {}}
	}, ids...)
	return server, nodes
}

// TestRemote runs the session host contract over a forwarded host.
func TestRemote(t *testing.T) {
	hosttest.Conformance(t, func(t *testing.T, cfg host.Config) host.Host { return newForwarded(t, cfg).remote })
}

func shares() []wire.KeyShare {
	e, _ := suite.Generate(suite.X25519, rand.Reader)
	return []wire.KeyShare{{Suite: suite.X25519, Public: e.Public()}}
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawCall sends one raw frame to the "sam" node from node "from"'s link.
func rawCall(t *testing.T, l *link.Link, typ uint8, p []byte) (uint8, []byte) {
	t.Helper()
	st, _, err := l.Open(ctx10(t), "sam")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := link.WriteFrame(st, typ, p); err != nil {
		t.Fatal(err)
	}
	rt, b, err := link.ReadFrame(st, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rt, b
}

// TestLeaseSafety: a Step or Release on a forged lease ID, a replayed one
// (after its Release) or one another peer placed is refused and touches
// nothing; malformed and oversized frames get an error reply, and the
// link goes on serving.
func TestLeaseSafety(t *testing.T) {
	leaktest.Check(t)
	pool := hosttest.NewPool()
	server, nodes := serveOverLink(t, host.New(host.Config{Pool: pool, HashCard: func([8]byte) string { return "" }}), "fe", "fe2")
	r1 := host.NewRemote(nodes["fe"].Link, "sam")
	s, _, err := r1.Place(ctx10(t), &host.Placement{KeyShares: shares()})
	if err != nil {
		t.Fatal(err)
	}
	if server.Leases() != 1 {
		t.Fatalf("%d leases", server.Leases())
	}
	// fe2 guesses: it cannot know the ID; a forged one is refused.
	var forged [16]byte
	rand.Read(forged[:])
	step := append(forged[:], 0, 0, 0, 100, 0)
	if rt, b := rawCall(t, nodes["fe2"].Link, 3, step); rt != 7 || !bytes.Equal(b, []byte{7}) {
		t.Fatalf("forged lease: reply %d % x", rt, b)
	}
	// Malformed, unknown and oversized frames.
	for name, p := range map[string][]byte{"short step": {1, 2}, "bad kind": append(forged[:], 0, 0, 0, 1, 9)} {
		if rt, _ := rawCall(t, nodes["fe2"].Link, 3, p); rt != 7 {
			t.Errorf("%s: reply %d", name, rt)
		}
	}
	if rt, _ := rawCall(t, nodes["fe2"].Link, 99, nil); rt != 7 {
		t.Errorf("unknown frame type: reply %d", rt)
	}

	st, _, err := nodes["fe2"].Link.Open(ctx10(t), "sam")
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte{1, 3, 0x7f, 0xff, 0xff, 0xff}) // 2 GiB announced
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := st.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("oversized frame answered: %d %v", n, err)
	}
	st.Close()
	if server.Leases() != 1 {
		t.Fatalf("bad input touched the leases: %d", server.Leases())
	}
	// The real session still works; after its Release the ID is dead.
	if _, err := s.Step(ctx10(t), &host.Input{}); err != nil {
		t.Fatalf("Step: %v", err)
	}
	s.Release(ctx10(t), nil)
	if server.Leases() != 0 {
		t.Fatalf("%d leases after Release", server.Leases())
	}
}

// TestLinkDown: when the front end's link goes, the SAM side releases
// every lease it carried, at once (not at the idle timeout).
func TestLinkDown(t *testing.T) {
	leaktest.Check(t)
	released := make(chan error, 1)
	pool := &notePool{Pool: hosttest.NewPool(), released: released}
	server, nodes := serveOverLink(t, host.New(host.Config{Pool: pool, HashCard: func([8]byte) string { return "" }, IdleTimeout: time.Hour}))
	r := host.NewRemote(nodes["fe"].Link, "sam")
	if _, _, err := r.Place(ctx10(t), &host.Placement{KeyShares: shares()}); err != nil {
		t.Fatal(err)
	}
	nodes["fe"].Link.Close()
	select {
	case err := <-released:
		if err == nil {
			t.Fatal("released as a clean session")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lease of a lost link was never released")
	}
	if server.Leases() != 0 {
		t.Fatalf("%d leases left", server.Leases())
	}
}

// notePool reports each lease's release.
type notePool struct {
	host.Pool
	released chan error
}

func (p *notePool) Lease(ctx context.Context, prefer []ga467.SAMID) (host.Lease, error) {
	l, err := p.Pool.Lease(ctx, prefer)
	if err != nil {
		return nil, err
	}
	return &noteLease{Lease: l, released: p.released}, nil
}

type noteLease struct {
	host.Lease
	released chan error
}

func (l *noteLease) Release(outcome error) { l.Lease.Release(outcome); l.released <- outcome }

// TestPlaceFirst: over a link, the requests of the Open's frame run with
// the Place (one exchange between the appliances instead of two) and the
// session goes on with Steps; a Local host leaves them to the front end.
func TestPlaceFirst(t *testing.T) {
	f := newForwarded(t, host.Config{Pool: hosttest.NewPool(), HashCard: func([8]byte) string { return "" }})
	first := []wire.Message{&wire.FindRequest{}, &wire.SelectRequest{}, &wire.ReadRequest{}}
	s, placed, err := f.remote.Place(ctx10(t), &host.Placement{KeyShares: shares(), First: first, FirstWithin: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if placed.FirstErr != nil || placed.First == nil || !placed.First.Await {
		t.Fatalf("Placed.First %+v, FirstErr %v: want the find's card exchange", placed.First, placed.FirstErr)
	}
	s.Release(ctx10(t), nil)
	if f.server.Leases() != 0 {
		t.Fatalf("%d leases after Release", f.server.Leases())
	}
	ls, lp, err := f.local.Place(ctx10(t), &host.Placement{KeyShares: shares(), First: first, FirstWithin: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Release(ctx10(t), nil)
	if lp.First != nil || lp.FirstErr != nil {
		t.Fatalf("a Local host ran the first Step: %+v %v", lp.First, lp.FirstErr)
	}
}

// placeFrame is the payload of a Place frame (layout in linkcodec.go) for
// one key share, built by hand as a peer would send it.
func placeFrame(t *testing.T, k wire.KeyShare) []byte {
	t.Helper()
	pre, err := wire.MarshalPreSession(&wire.PreSession{})
	if err != nil {
		t.Fatal(err)
	}
	b := binary.BigEndian.AppendUint32(nil, 10_000) // deadline: 10 s left
	b = append(b, 0, 3, 'R', '-', '1')              // reader str16
	b = append(b, 1, uint8(k.Suite))                // one key share
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Public)))
	b = append(b, k.Public...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pre)))
	b = append(b, pre...)
	return append(b, 0, 0) // no preferred SAMs, unsigned
}

// TestAbandonedSessionStream: a front end that closes its session's
// stream without a Release (it gave up on a Place answered late, or a call
// failed) has the lease released at once, long before the host's idle
// timeout (an hour here).
func TestAbandonedSessionStream(t *testing.T) {
	leaktest.Check(t)
	server, nodes := serveOverLink(t, host.New(host.Config{Pool: hosttest.NewPool(), HashCard: func([8]byte) string { return "" }, IdleTimeout: time.Hour}))
	if rt, b := rawCall(t, nodes["fe"].Link, 1, placeFrame(t, shares()[0])); rt != 2 { // Place → Placed; the stream closes
		t.Fatalf("Place: reply %d % x", rt, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for server.Leases() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d leases 5 s after their stream closed", server.Leases())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
