package appliance

import (
	"fmt"
	"testing"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sim"
)

// The happy path, end to end: a reader with the SDK reads a card through
// the appliance over TLS, in 2 round trips when batched, and gets exactly
// the card's data; the audit log and the counters say so; the SAM is back.
func TestReadBatched(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-0001", credentials.CipherSM4)
	c := r.dial(b)
	card := newCard(1, sim.CardOptions{})

	res := r.mustRead(c, card, nil, client.ReadOptions{})
	if res.RoundTrips != 2 {
		t.Errorf("%d round trips, want 2", res.RoundTrips)
	}
	if res.Suite != suite.GM {
		t.Errorf("suite %v, want GM (the SDK's first choice)", res.Suite)
	}
	e := r.wantEvent(audit.KindReadOK, "R-0001", 0)
	if e.Card != r.cardHash(card.Serial()) {
		t.Errorf("read.ok names card %q, want the keyed hash of its serial", e.Card)
	}
	if e.Slot < 0 || e.SAMID == "" {
		t.Errorf("read.ok without its SAM: slot %d SAM %q", e.Slot, e.SAMID)
	}
	r.wantStats(1, nil)
	if st := r.a.Dispatcher().Stats(); st.Connections != 1 || st.Active != 1 {
		t.Errorf("dispatcher: %d connections, %d active; want 1, 1", st.Connections, st.Active)
	}
	if st := r.a.Rack().Stats(); st.Busy != 0 || st.Idle != 2 {
		t.Errorf("rack right after the result: %+v, want both SAMs idle", st)
	}
	r.checkPool()
}

// One message per frame is the same protocol with batch size 1: more round
// trips, same data.
func TestReadUnbatched(t *testing.T) {
	r := startRig(t, rigOptions{})
	c := r.dial(r.addReader("R-0001", credentials.CipherAES), client.WithBatching(false))
	card := newCard(2, sim.CardOptions{})
	res := r.mustRead(c, card, nil, client.ReadOptions{})
	if res.RoundTrips <= 2 {
		t.Errorf("%d round trips unbatched, want more than batched", res.RoundTrips)
	}
	// And a second one on the same connection.
	r.mustRead(c, newCard(3, sim.CardOptions{}), nil, client.ReadOptions{})
	r.wantEvents(audit.KindReadOK, 2)
	r.wantStats(2, nil)
	r.checkPool()
}

// Both suites, both reader-key ciphers, batched and not.
func TestReadSuites(t *testing.T) {
	r := startRig(t, rigOptions{})
	n := 0
	for _, s := range []suite.ID{suite.GM, suite.X25519} {
		for _, cipher := range []string{credentials.CipherSM4, credentials.CipherAES} {
			for _, batch := range []bool{true, false} {
				t.Run(fmt.Sprintf("%v/%s/batch=%v", s, cipher, batch), func(t *testing.T) {
					n++
					b := r.addReader(fmt.Sprintf("R-%d", n), cipher)
					c := r.dial(b, client.WithSuites(s), client.WithBatching(batch))
					card := newCard(int64(10+n), sim.CardOptions{})
					res := r.mustRead(c, card, nil, client.ReadOptions{})
					if res.Suite != s {
						t.Errorf("suite %v, want %v", res.Suite, s)
					}
					if batch && res.RoundTrips != 2 {
						t.Errorf("%d round trips, want 2", res.RoundTrips)
					}
				})
			}
		}
	}
	r.wantStats(uint64(n), nil)
	r.checkPool()
}

// Fingerprints come when asked for and present, and only then; every card
// type decodes to the card's identity.
func TestReadFingerprintAndCardTypes(t *testing.T) {
	r := startRig(t, rigOptions{})
	c := r.dial(r.addReader("R-0001", credentials.CipherSM4))
	reads := 0
	for _, tc := range []struct {
		name  string
		opts  sim.CardOptions
		ask   bool
		wantF bool
	}{
		{"fingerprint", sim.CardOptions{Fingerprint: true}, true, true},
		{"fingerprint not asked", sim.CardOptions{Fingerprint: true}, false, false},
		{"asked, card has none", sim.CardOptions{}, true, false},
		{"resident", sim.CardOptions{Type: ga467.Resident}, false, false},
		{"HK/Macao/Taiwan permit", sim.CardOptions{Type: ga467.HKMacaoTaiwan, Fingerprint: true}, true, true},
		{"foreign permanent 2017", sim.CardOptions{Type: ga467.ForeignPerm}, false, false},
		{"foreign permanent 2023", sim.CardOptions{Type: ga467.ForeignPerm2023, Fingerprint: true}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads++
			card := newCard(int64(100+reads), tc.opts)
			res, err := r.read(c, card, client.ReadOptions{Fingerprint: tc.ask})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res, card, client.ReadOptions{Fingerprint: tc.wantF})
			if tc.wantF && len(res.Fingerprint) != 1024 {
				t.Errorf("fingerprint of %d bytes, want 1024", len(res.Fingerprint))
			}
			if want := tc.opts.Type; want != 0 && res.Identity.Type != want {
				t.Errorf("card type %v, want %v", res.Identity.Type, want)
			}
		})
	}
	r.wantStats(uint64(reads), nil)
	r.checkPool()
}

// A warm connection reads card after card, 2 round trips each, on one TLS
// connection; the same card read again by the same reader is no clone.
func TestReadWarmConnection(t *testing.T) {
	r := startRig(t, rigOptions{})
	c := r.dial(r.addReader("R-0001", credentials.CipherSM4))
	cards := []*sim.Card{newCard(1, sim.CardOptions{}), newCard(2, sim.CardOptions{}), newCard(3, sim.CardOptions{}), newCard(4, sim.CardOptions{})}
	for i := range 2 * len(cards) {
		res := r.mustRead(c, cards[i%len(cards)], nil, client.ReadOptions{})
		if res.RoundTrips != 2 {
			t.Errorf("read %d: %d round trips, want 2", i, res.RoundTrips)
		}
	}
	if st := r.a.Dispatcher().Stats(); st.Connections != 1 {
		t.Errorf("%d connections, want 1", st.Connections)
	}
	r.wantEvents(audit.KindReadOK, 2*len(cards))
	r.wantEvents(audit.KindPossibleClone, 0)
	r.wantStats(uint64(2*len(cards)), nil)
	r.checkPool()
}
