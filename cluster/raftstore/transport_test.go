package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/cluster/testca"
)

// acceptOne returns the next connection the layer accepts, or nil if none
// within d.
func acceptOne(sl *TLSStreamLayer, d time.Duration) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := sl.Accept()
		ch <- c
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(d):
		sl.Close() // ends the Accept above
		return <-ch
	}
}

func newLayer(t *testing.T, cfg *tls.Config) *TLSStreamLayer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := NewTLSStreamLayer(ln, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	return sl
}

// TestTLSPeerRefused: a peer with a certificate of another CA, or of our
// CA without the node identity, or with none, fails the handshake and is
// never handed to raft; a node peer is.
func TestTLSPeerRefused(t *testing.T) {
	ca, foreign := testca.New(t, "ours"), testca.New(t, "theirs")
	server := newLayer(t, ca.TLS(t, "n1", NodeURI("n1")))
	addr := server.Addr().String()

	dialWith := func(cfg *tls.Config) error {
		c := cfg.Clone()
		c.InsecureSkipVerify = true // the dialer's view of the server is not what is tested
		c.MinVersion = tls.VersionTLS13
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err != nil {
			return err
		}
		defer conn.Close()
		// In TLS 1.3 the server's verdict on the client certificate comes
		// after the client's handshake returns: read to see it.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	foreignNode := foreign.TLS(t, "n9", NodeURI("n9"))
	notNode := ca.TLS(t, "reader")
	for name, cfg := range map[string]*tls.Config{
		"foreign CA":       foreignNode,
		"no node identity": notNode,
		"no certificate":   {RootCAs: ca.Pool},
	} {
		err := dialWith(cfg)
		if err == nil || errors.Is(err, errTimeout) || isTimeout(err) {
			t.Errorf("%s: %v, want the handshake refused", name, err)
		}
	}
	// Through the stream layer's own Dial as well.
	client := newLayer(t, foreignNode)
	if c, err := client.Dial(netAddr(addr), 5*time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("foreign node through Dial: %v", err)
		}
		c.Close()
	}
	// The layer dialing a server without node identity refuses it too.
	plain := newLayer(t, ca.TLS(t, "web"))
	good := newLayer(t, ca.TLS(t, "n2", NodeURI("n2")))
	if _, err := good.Dial(netAddr(plain.Addr().String()), 5*time.Second); err == nil {
		t.Error("dialed a server without node identity")
	}

	// None of those reached Accept; a real node does.
	done := make(chan error, 1)
	go func() {
		c, err := good.Dial(netAddr(addr), 5*time.Second)
		if err == nil {
			_, err = c.Write([]byte{42})
		}
		done <- err
	}()
	c := acceptOne(server, 10*time.Second)
	if c == nil {
		t.Fatal("a node was not accepted")
	}
	defer c.Close()
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 42 {
		t.Fatalf("first byte from the node: %v %v (a refused peer's bytes came first?)", b, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

var errTimeout = errors.New("timeout")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type netAddr = raftAddr

// TestMalformedPeer: a node certificate holder that sends garbage is
// dropped by raft, and the cluster goes on.
func TestMalformedPeer(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	cfg := c.ca.TLS(t, "n7", NodeURI("n7"))
	sl := newLayer(t, cfg)
	for _, garbage := range [][]byte{{0xff, 0xff, 0xff}, {0, 0x93, 1, 2, 3, 4, 5, 6, 7}, make([]byte, 4096)} {
		conn, err := sl.Dial(netAddr(l.addr), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(garbage)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1<<10)
		for {
			if _, err := conn.Read(buf); err != nil {
				break // raft closed it (or it timed out: checked by the writes below)
			}
		}
		conn.Close()
	}
	addCards(t, l.s, "after garbage", 77)
	c.converged()
	if err := c.leader().s.Apply(context.Background(), &state.Command{Version: 1, Op: state.OpSetConfig, Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
}

type raftAddr = raft.ServerAddress
