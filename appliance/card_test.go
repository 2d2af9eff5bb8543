package appliance

import (
	"strings"
	"testing"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/sim"
)

// A card whose declared serial is on the blacklist never reaches a SAM:
// 201, a card.blacklisted alert, no lease at all; the connection stays up
// for the next card.
func TestCardBlacklistedDeclared(t *testing.T) {
	r := startRig(t, rigOptions{})
	c := r.dial(r.addReader("R-0001", credentials.CipherSM4))
	card := newCard(1, sim.CardOptions{})
	r.blacklistCard(card.Serial())

	_, err := r.read(c, card, client.ReadOptions{})
	wantCode(t, err, wire.CardBlacklisted)
	e := r.wantEvent(audit.KindCardBlacklisted, "R-0001", wire.CardBlacklisted)
	if e.Card != r.cardHash(card.Serial()) || e.Slot != audit.NoSlot || !strings.Contains(e.Detail, "declared") {
		t.Errorf("card.blacklisted %+v, want the card's hash, no slot, declared serial", e)
	}
	if n := r.leases(); n != 0 {
		t.Errorf("%d SAM leases for a blacklisted card, want none", n)
	}
	r.wantStats(0, map[wire.Code]uint64{wire.CardBlacklisted: 1})

	// Same connection, another card: served.
	r.mustRead(c, newCard(2, sim.CardOptions{}), nil, client.ReadOptions{})
	r.wantStats(1, map[wire.Code]uint64{wire.CardBlacklisted: 1})
	r.checkPool()
}

// A reader that lies about the card serial: it declares a clean serial
// while the card in its field (the serial the SAM authenticates) is
// blacklisted. The appliance checks the SAM-authenticated serial before
// it sends anything: 201 with no data, the card.blacklisted alert and the
// tampering alert; the SAM is reset and back in the pool. (The liar leaves
// GET UID out of its prefetch: with it, the Open is refused at once, see
// TestCardSerialMismatchPrefetched.)
func TestCardBlacklistedAuthenticated(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-LIAR", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	r.blacklistCard(card.Serial())
	clean := newCard(2, sim.CardOptions{}).Serial()

	s := r.rawDial(b).open(card, rawOpen{declared: &clean, noUID: true})
	turn := s.finish(card, s.untilScript())
	if turn.result != nil || turn.err == nil || turn.err.Code != wire.CardBlacklisted {
		t.Fatalf("liar's read ended with result=%v err=%v, want Error 201 and no data", turn.result != nil, turn.err)
	}
	e := r.wantEvent(audit.KindCardBlacklisted, "R-LIAR", wire.CardBlacklisted)
	if e.Card != r.cardHash(card.Serial()) || !strings.Contains(e.Detail, "SAM-authenticated") {
		t.Errorf("card.blacklisted %+v, want the real card's hash, SAM-authenticated serial", e)
	}
	r.wantEvent(audit.KindReaderTamper, "R-LIAR", wire.SerialMismatch)
	r.wantEvents(audit.KindReadOK, 0)
	r.wantStats(0, map[wire.Code]uint64{wire.CardBlacklisted: 1})
	r.checkPool()
}

// Declared serial ≠ SAM-authenticated serial, neither blacklisted: 202, no
// data, a reader.tamper alert naming the reader. The liar leaves GET UID
// out of its prefetch, so only the SAM-authenticated check can catch it.
func TestCardSerialMismatch(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-LIAR", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	other := newCard(2, sim.CardOptions{}).Serial()

	rc := r.rawDial(b)
	s := rc.open(card, rawOpen{declared: &other, noUID: true})
	turn := s.finish(card, s.untilScript())
	if turn.result != nil || turn.err == nil || turn.err.Code != wire.SerialMismatch {
		t.Fatalf("liar's read ended with result=%v err=%v, want Error 202 and no data", turn.result != nil, turn.err)
	}
	e := r.wantEvent(audit.KindReaderTamper, "R-LIAR", wire.SerialMismatch)
	if e.Card != r.cardHash(card.Serial()) || !strings.Contains(e.Detail, "declared") {
		t.Errorf("reader.tamper %+v, want the authenticated card's hash", e)
	}
	r.wantEvent(audit.KindReadRejected, "R-LIAR", wire.SerialMismatch)
	r.wantEvents(audit.KindCardBlacklisted, 0)
	r.wantEvents(audit.KindReadOK, 0)
	r.wantStats(0, map[wire.Code]uint64{wire.SerialMismatch: 1})
	r.checkPool()

	// The same connection reads honestly afterwards.
	s = rc.open(card, rawOpen{})
	if turn := s.finish(card, s.untilScript()); turn.result == nil {
		t.Fatalf("honest read after 202: %v", turn.err)
	}
}

// The prefetched GET UID already differs from the declared serial: the
// Open is refused at once with 202 (201 if the card in the field is
// blacklisted), no SAM is leased, and the tampering alert names the card
// the GET UID reply named.
func TestCardSerialMismatchPrefetched(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-LIAR", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	other := newCard(2, sim.CardOptions{}).Serial()
	black := newCard(3, sim.CardOptions{})
	r.blacklistCard(black.Serial())

	rc := r.rawDial(b)
	leases := r.leases()
	for _, tc := range []struct {
		card *sim.Card
		code wire.Code
	}{{card, wire.SerialMismatch}, {black, wire.CardBlacklisted}} {
		s := rc.open(tc.card, rawOpen{declared: &other})
		turn := s.next()
		if turn.accept || turn.result != nil || turn.err == nil || turn.err.Code != tc.code || len(turn.msgs) != 1 {
			t.Fatalf("Open with a lying prefetch: %d messages, accept=%v err=%v, want only Error %d", len(turn.msgs), turn.accept, turn.err, tc.code)
		}
	}
	for i, e := range r.wantEvents(audit.KindReaderTamper, 2) {
		want := []*sim.Card{card, black}[i]
		if e.Reader != "R-LIAR" || e.Code != int(wire.SerialMismatch) || e.Card != r.cardHash(want.Serial()) ||
			e.Declared != r.cardHash(other) || !strings.Contains(e.Detail, "prefetched GET UID") {
			t.Errorf("reader.tamper %+v", e)
		}
	}
	if n := r.leases() - leases; n != 0 {
		t.Errorf("%d SAM leases for refused Opens, want none", n)
	}
	r.wantEvent(audit.KindCardBlacklisted, "R-LIAR", wire.CardBlacklisted)
	r.wantEvents(audit.KindReadOK, 0)
	r.wantStats(0, map[wire.Code]uint64{wire.SerialMismatch: 1, wire.CardBlacklisted: 1})

	// The same connection reads honestly afterwards.
	s := rc.open(card, rawOpen{})
	if turn := s.finish(card, s.untilScript()); turn.result == nil {
		t.Fatalf("honest read after 202: %v", turn.err)
	}
	r.checkPool()
}

// The same card read by two readers within the clone window raises a
// card.clone alert naming both; the read is still served.
func TestCardPossibleClone(t *testing.T) {
	r := startRig(t, rigOptions{})
	a := r.dial(r.addReader("R-NORTH", credentials.CipherSM4))
	b := r.dial(r.addReader("R-SOUTH", credentials.CipherAES))
	card := newCard(1, sim.CardOptions{})

	r.mustRead(a, card, nil, client.ReadOptions{})
	r.mustRead(a, card, nil, client.ReadOptions{}) // same reader again: fine
	r.wantEvents(audit.KindPossibleClone, 0)
	r.mustRead(b, card, nil, client.ReadOptions{})
	e := r.wantEvent(audit.KindPossibleClone, "R-SOUTH", wire.PossibleClone)
	if e.Card != r.cardHash(card.Serial()) || !strings.Contains(e.Detail, "R-NORTH") {
		t.Errorf("card.clone %+v, want the card's hash and the other reader", e)
	}
	// Other cards at the other reader are no clones.
	r.mustRead(b, newCard(2, sim.CardOptions{}), nil, client.ReadOptions{})
	r.wantEvents(audit.KindPossibleClone, 1)
	r.wantStats(4, nil)
	r.checkPool()
}
