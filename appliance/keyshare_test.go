package appliance

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/sim"
)

// TestSignedKeyShare: the SDK asks for signed key shares, the session host
// signs with the appliance's node certificate, and the SDK verifies it
// against the bundle's CA before it opens any record.
func TestSignedKeyShare(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-SIG", credentials.CipherSM4)
	for _, batch := range []bool{true, false} {
		c := r.dial(b, client.WithBatching(batch))
		res := r.mustRead(c, newCard(1, sim.CardOptions{}), nil, client.ReadOptions{})
		if res.Host != r.a.NodeID() {
			t.Errorf("batch=%v: key share signed by %q, want the appliance's node certificate %q", batch, res.Host, r.a.NodeID())
		}
		if batch && res.RoundTrips != 2 {
			t.Errorf("a signed read took %d round trips, want 2", res.RoundTrips)
		}
	}
}

// TestVersion1ReaderUnchanged: a reader built from PROTOCOL.md before the
// signed key share (no ALPN) reads cards as before, and every frame it
// gets holds only the message types of version 1 as it knew them (a
// frozen copy of that list: its decoder rejects any other type).
func TestVersion1ReaderUnchanged(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-OLD", credentials.CipherAES)
	rc := r.rawDial(b)
	if p := rc.tc.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("a reader that offers no ALPN negotiated %q", p)
	}
	tap := &bytes.Buffer{}
	rc.br = bufio.NewReader(io.TeeReader(rc.tc, tap))
	card := newCard(3, sim.CardOptions{})
	for _, o := range []rawOpen{{}, {unbatch: true}} {
		s := rc.open(card, o)
		turn := s.next()
		if !turn.accept {
			t.Fatalf("no Accept: %+v", turn)
		}
		for turn.result == nil && turn.err == nil {
			if turn.script != nil {
				s.answer(card, turn)
			} else {
				rc.send(nextRequest(turn))
			}
			turn = s.next()
		}
		if turn.err != nil || turn.result == nil {
			t.Fatalf("%+v: read failed: %v", o, turn.err)
		}
	}
	if err := version1Types(tap.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// nextRequest is the request an unbatched reader sends after a turn that
// finished a phase.
func nextRequest(turn rawTurn) wire.Message {
	last := turn.msgs[len(turn.msgs)-1]
	switch last.(type) {
	case *wire.Accept:
		return &wire.FindRequest{}
	case *wire.FindResponse:
		return &wire.SelectRequest{}
	}
	return &wire.ReadRequest{}
}

// version1Types walks a stream of frames from the appliance as a
// version-1 reader's decoder does and fails on a type it did not know.
// Frozen: do not add types here.
func version1Types(stream []byte) error {
	known := map[byte]bool{0x02: true, 0x11: true, 0x21: true, 0x31: true, 0x32: true, 0x41: true, 0x7F: true}
	for len(stream) > 0 {
		if len(stream) < 8 || stream[0] != 'S' || stream[1] != 'R' || stream[2] != 1 || stream[3] != 0 {
			return fmt.Errorf("bad frame header % x", stream[:min(8, len(stream))])
		}
		n := int(binary.BigEndian.Uint32(stream[4:8]))
		body := stream[8 : 8+n]
		stream = stream[8+n:]
		for len(body) > 0 {
			if !known[body[0]] {
				return fmt.Errorf("message type 0x%02x, unknown to a version-1 reader", body[0])
			}
			body = body[5+int(binary.BigEndian.Uint32(body[1:5])):]
		}
	}
	return nil
}

// TestTamperingFrontEnd: an appliance in the middle — it holds a valid
// certificate of the installation CA, terminates the reader's TLS and
// relays its frames to the appliance with the SAM — tries to take part in
// the key exchange. The SDK refuses every attempt before it opens a record,
// and the SAM is released.
func TestTamperingFrontEnd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []client.Option
		noALPN   bool // the front end does not offer signed key shares to the reader
		toApp    func(*testing.T, []wire.Message) []wire.Message
		toReader func(*testing.T, []wire.Message) []wire.Message
		want     error
	}{
		{name: "honest relay"},
		{name: "key share swapped", toReader: func(t *testing.T, ms []wire.Message) []wire.Message {
			for _, m := range ms {
				if a, ok := m.(*wire.Accept); ok {
					e, err := suite.Generate(a.Suite, rand.Reader) // the front end's own key
					if err != nil {
						t.Error(err)
					}
					a.Public = e.Public()
				}
			}
			return ms
		}, want: client.ErrKeyShareSignature},
		{name: "signature stripped", toReader: dropSignature, want: client.ErrKeyShareSignature},
		{name: "signature of another session", toReader: func() func(*testing.T, []wire.Message) []wire.Message {
			var first *wire.KeyShareSignature
			return func(t *testing.T, ms []wire.Message) []wire.Message {
				for i, m := range ms {
					if s, ok := m.(*wire.KeyShareSignature); ok {
						if first == nil {
							first = s
						} else {
							ms[i] = first // replayed from the first read
						}
					}
				}
				return ms
			}
		}(), want: client.ErrKeyShareSignature},
		{name: "suite downgrade", opts: []client.Option{client.WithSuites(suite.GM, suite.X25519)},
			toApp: func(t *testing.T, ms []wire.Message) []wire.Message {
				if o, ok := ms[0].(*wire.Open); ok && len(o.KeyShares) > 1 {
					o.KeyShares = o.KeyShares[1:] // only X25519 reaches the host
				}
				return ms
			}, want: client.ErrKeyShareSignature},
		{name: "signed key shares not offered", noALPN: true, toReader: dropSignature, want: client.ErrUnsignedKeyShares},
		{name: "unsigned allowed", noALPN: true, toReader: dropSignature, opts: []client.Option{client.WithUnsignedKeyShares(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{})
			b := r.addReader("R-MITM", credentials.CipherSM4)
			// While armed, the frames the reader sends are counted: a read
			// the tamperer spoils must send its Open frame and nothing
			// more — no card answer sealed under keys it could not verify.
			var armed, sent atomic.Int64
			toApp := func(t *testing.T, ms []wire.Message) []wire.Message {
				if armed.Load() == 1 {
					sent.Add(1)
				}
				if tc.toApp != nil {
					return tc.toApp(t, ms)
				}
				return ms
			}
			m := startMITM(t, r, b, tc.noALPN, toApp, tc.toReader)
			bb := *b
			bb.Server, bb.Servers = m.addr(), []string{m.addr()} // the reader reaches the appliance only through the tamperer
			c := r.dial(&bb, tc.opts...)
			card := newCard(7, sim.CardOptions{})
			for i := range 2 { // the replay case needs a first read to replay
				if tc.want != nil && (tc.name != "signature of another session" || i == 1) {
					armed.Store(1)
				}
				res, err := r.read(c, card, client.ReadOptions{})
				armed.Store(0)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("read %d: %v", i, err)
					}
					if res.Identity == nil {
						t.Fatalf("read %d: no identity", i)
					}
					continue
				}
				if tc.name == "signature of another session" && i == 0 {
					if err != nil {
						t.Fatalf("first read: %v", err)
					}
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("read %d: %v, want %v", i, err, tc.want)
				}
				if n := sent.Load(); n != 1 {
					t.Fatalf("the spoiled read sent %d frames, want only its Open", n)
				}
				c.Close()
				break
			}
			r.checkPool() // the refused session's SAM came back
		})
	}
}

func dropSignature(_ *testing.T, ms []wire.Message) []wire.Message {
	out := ms[:0]
	for _, m := range ms {
		if _, ok := m.(*wire.KeyShareSignature); !ok {
			out = append(out, m)
		}
	}
	return out
}

// mitm is a tampering front end for one reader at a time.
type mitm struct {
	ln    net.Listener
	mu    sync.Mutex // mu guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

func (m *mitm) addr() string { return m.ln.Addr().String() }

// startMITM listens with the appliance's own server certificate (any
// appliance of the installation has one) and relays each reader
// connection to the appliance over a connection with the reader's
// certificate, offering signed key shares upstream. It is stopped when the
// test ends.
func startMITM(t *testing.T, r *rig, b *credentials.Bundle, noALPN bool, toApp, toReader func(*testing.T, []wire.Message) []wire.Message) *mitm {
	t.Helper()
	scfg := r.a.pki.ServerTLS()
	scfg.ClientAuth = tls.RequireAnyClientCert
	if !noALPN {
		scfg.NextProtos = []string{wire.ALPNSignedKeyShare}
	}
	ucfg, err := b.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ucfg.NextProtos = []string{wire.ALPNSignedKeyShare}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		m.mu.Lock()
		for _, c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			rc, err := ln.Accept()
			if err != nil {
				return
			}
			uc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", r.a.ReaderAddr(), ucfg)
			if err != nil {
				t.Errorf("mitm: dial the appliance: %v", err)
				rc.Close()
				return
			}
			m.mu.Lock()
			m.conns = append(m.conns, rc, uc)
			m.mu.Unlock()
			m.wg.Add(2)
			go m.relay(t, rc, uc, toApp)
			go m.relay(t, uc, rc, toReader)
		}
	}()
	return m
}

// relay copies frames from src to dst, editing each with edit.
func (m *mitm) relay(t *testing.T, src, dst net.Conn, edit func(*testing.T, []wire.Message) []wire.Message) {
	defer m.wg.Done()
	defer dst.Close()
	br := bufio.NewReader(src)
	for {
		msgs, err := wire.ReadFrame(br)
		if err != nil {
			return
		}
		if edit != nil {
			msgs = edit(t, msgs)
		}
		dst.SetWriteDeadline(time.Now().Add(waitLimit))
		if err := wire.WriteFrame(dst, msgs...); err != nil {
			return
		}
	}
}

// TestReaderOtherALPN: a reader whose TLS stack offers some other
// application protocol still connects (without ALPN) and is served.
func TestReaderOtherALPN(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-ALPN", credentials.CipherAES)
	cfg, err := b.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", r.a.ReaderAddr(), cfg)
	if err != nil {
		t.Fatalf("handshake with another ALPN protocol: %v", err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("negotiated %q", p)
	}
	rc := &rawConn{t: t, b: b, tc: tc, br: bufio.NewReader(tc)}
	card := newCard(4, sim.CardOptions{})
	s := rc.open(card, rawOpen{})
	if turn := s.finish(card, s.next()); turn.result == nil {
		t.Fatalf("read failed: %v", turn.err)
	}
}
