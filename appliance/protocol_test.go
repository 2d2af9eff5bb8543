package appliance

import (
	"encoding/binary"
	"testing"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/sim"
)

// header is a frame header: magic, version, flags, body length.
func header(version, flags byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{'S', 'R', version, flags}, n)
}

// "Malformed or oversized frame → close the connection, count it; never
// crash", and messages out of order. Each case: the code the reader gets,
// the connection closed after it, a frame.malformed audit event, the
// counter, every SAM back, and the appliance still serving other readers.
func TestProtocolErrors(t *testing.T) {
	pings := func(n int) []byte {
		var body []byte
		for i := range n {
			body = append(body, byte(wire.TypePing), 0, 0, 0, 8)
			body = binary.BigEndian.AppendUint64(body, uint64(i))
		}
		return append(header(1, 0, uint32(len(body))), body...)
	}
	for _, tc := range []struct {
		name string
		do   func(r *rig, rc *rawConn, card *sim.Card)
		code wire.Code
		// inRead: the error ends a read in progress (read.failed too).
		inRead bool
	}{
		{"garbage", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		}, wire.Malformed, false},
		{"reserved frame flags", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(header(1, 0x80, 0))
		}, wire.Malformed, false},
		{"empty frame", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(header(1, 0, 0))
		}, wire.Malformed, false},
		{"truncated message", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(append(header(1, 0, 5), byte(wire.TypePing), 0, 0, 0, 8))
		}, wire.Malformed, false},
		{"unknown message type", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(append(header(1, 0, 5), 0x55, 0, 0, 0, 0))
		}, wire.Malformed, false},
		{"oversized frame", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(header(1, 0, wire.MaxFrame+1))
		}, wire.TooLarge, false},
		{"huge frame", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(header(1, 0, 0xFFFFFFFF))
		}, wire.TooLarge, false},
		{"too many messages", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(pings(wire.MaxMessages + 1))
		}, wire.TooLarge, false},
		{"unsupported version", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.sendRaw(header(2, 0, 13))
		}, wire.UnsupportedVersion, false},
		{"ReadRequest before Open", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.send(&wire.ReadRequest{})
		}, wire.UnexpectedMessage, false},
		{"Relay unsolicited", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.send(&wire.Relay{Sealed: []byte{1, 2, 3}})
		}, wire.UnexpectedMessage, false},
		{"FindConfirm unsolicited", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.send(&wire.FindConfirm{})
		}, wire.UnexpectedMessage, false},
		{"Result from a reader", func(r *rig, rc *rawConn, _ *sim.Card) {
			rc.send(&wire.Result{SW3: 0x90})
		}, wire.UnexpectedMessage, false},
		{"Open inside a session", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{unbatch: true}).next()
			rc.open(card, rawOpen{unbatch: true})
		}, wire.UnexpectedMessage, false},
		{"SelectRequest before FindRequest", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{unbatch: true}).next()
			rc.send(&wire.SelectRequest{})
		}, wire.UnexpectedMessage, false},
		{"garbage instead of the card's answer", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{}).untilScript()
			rc.sendRaw([]byte("garbage!garbage!"))
		}, wire.Malformed, true},
		{"oversized answer", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{}).untilScript()
			rc.sendRaw(header(1, 0, wire.MaxFrame+1))
		}, wire.TooLarge, true},
		{"wrong message for the card's answer", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{}).untilScript()
			rc.send(&wire.FindConfirm{Sealed: []byte{1}})
		}, wire.UnexpectedMessage, true},
		{"unsupported version for the card's answer", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{}).untilScript()
			rc.sendRaw(header(2, 0, 13))
		}, wire.UnsupportedVersion, true},
		{"two messages for the card's answer", func(r *rig, rc *rawConn, card *sim.Card) {
			rc.open(card, rawOpen{}).untilScript()
			rc.send(&wire.Relay{Sealed: []byte{1}}, &wire.Relay{Sealed: []byte{2}})
		}, wire.UnexpectedMessage, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{})
			b := r.addReader("R-BAD", credentials.CipherSM4)
			card := newCard(1, sim.CardOptions{})
			rc := r.rawDial(b)
			tc.do(r, rc, card)
			we := rc.wantError(tc.code)
			rc.wantClosed()
			if tc.code == wire.UnsupportedVersion {
				// PROTOCOL.md §11: exactly "versions: " and the list.
				if v, ok := wire.ParseVersions(we.Message); we.Message != "versions: 1" || !ok || len(v) != 1 || v[0] != 1 {
					t.Errorf("404 message %q, want \"versions: 1\"", we.Message)
				}
			}
			e := r.wantEvent(audit.KindFrameMalformed, "", tc.code)
			if e.Reader != "R-BAD" {
				t.Errorf("frame.malformed of reader %q, want the certificate's", e.Reader)
			}
			if tc.inRead {
				r.wantEvent("read.failed", "R-BAD", tc.code)
			}
			r.wantEvents(audit.KindReadOK, 0)
			r.wantStats(0, map[wire.Code]uint64{tc.code: 1})
			r.checkPool()
			// Other readers are served as ever.
			r.mustRead(r.dial(r.addReader("R-GOOD", credentials.CipherSM4)), card, nil, client.ReadOptions{})
		})
	}
}

// A card answer whose session record fails to authenticate (tampered on
// the way) ends the read with 407 and closes the connection; no data.
func TestSessionRecordTampered(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-0001", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	rc := r.rawDial(b)
	s := rc.open(card, rawOpen{})
	turn := s.untilScript()
	sealed := s.keys.Seal([]byte{0})
	sealed[0] ^= 1
	rc.send(turn.answer(sealed))
	rc.wantError(wire.SessionAuth)
	rc.wantClosed()
	r.wantEvent("read.failed", "R-0001", wire.SessionAuth)
	r.wantEvents(audit.KindReadOK, 0)
	r.wantStats(0, map[wire.Code]uint64{wire.SessionAuth: 1})
	r.checkPool()
}
