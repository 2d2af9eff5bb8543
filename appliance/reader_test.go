package appliance

import (
	"encoding/hex"
	"testing"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/sim"
)

// Design, exceptions: "unknown or blacklisted reader; bad credentials →
// reject before any SAM work". Each case: the code the SDK gets, whether
// the appliance closes the connection after it (PROTOCOL §9), the audit
// event, the counter, and no lease.
func TestReaderRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(r *rig, b *credentials.Bundle) *credentials.Bundle // returns the bundle the reader uses
		code   wire.Code
		kind   string
		closes bool
	}{
		{"unknown reader", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			// A certificate from the appliance's own CA, for a serial the
			// registry does not hold.
			cert, key, err := r.a.pki.IssueReader("GHOST-1")
			if err != nil {
				t.Fatal(err)
			}
			g := *b
			g.ReaderSerial, g.CertPEM, g.KeyPEM = "GHOST-1", string(cert), string(key)
			return &g
		}, wire.UnknownReader, audit.KindReaderRejected, true},
		{"blacklisted reader", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			r.apply(state.Command{Op: state.OpAddReaderBlacklist, Serial: b.ReaderSerial, Reason: "stolen terminal"})
			return b
		}, wire.ReaderBlacklisted, "reader.blacklisted", true},
		{"reader status blacklisted", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			r.apply(state.Command{Op: state.OpSetReaderStatus, Serial: b.ReaderSerial, Status: state.ReaderBlacklisted})
			return b
		}, wire.ReaderBlacklisted, "reader.blacklisted", true},
		{"suspended reader", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			r.apply(state.Command{Op: state.OpSetReaderStatus, Serial: b.ReaderSerial, Status: state.ReaderSuspended})
			return b
		}, wire.ReaderSuspended, audit.KindReaderRejected, true},
		{"wrong reader key", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			w := *b
			w.KeyHex = hex.EncodeToString([]byte("not the real key"))
			return &w
		}, wire.BadCardSerial, "reader.bad_serial", false},
		{"wrong reader cipher", func(r *rig, b *credentials.Bundle) *credentials.Bundle {
			w := *b
			w.Cipher = credentials.CipherAES // registered with SM4
			return &w
		}, wire.BadCardSerial, "reader.bad_serial", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{})
			b := tc.setup(r, r.addReader("R-0001", credentials.CipherSM4))
			card := newCard(1, sim.CardOptions{})

			// The SDK's view.
			c := r.dial(b)
			_, err := r.read(c, card, client.ReadOptions{})
			wantCode(t, err, tc.code)

			// The wire's view: the Error, then the connection closed (or
			// still serving, for a bad card serial).
			rc := r.rawDial(b)
			rc.open(card, rawOpen{})
			rc.wantError(tc.code)
			if tc.closes {
				rc.wantClosed()
			} else {
				rc.send(&wire.Ping{Nonce: 7})
				if msgs, err := rc.recv(); err != nil || len(msgs) != 1 || msgs[0].(*wire.Pong).Nonce != 7 {
					t.Fatalf("connection not usable after %v: %v %v", tc.code, msgs, err)
				}
			}

			for _, e := range r.wantEvents(tc.kind, 2) {
				if e.Reader != b.ReaderSerial || e.Code != int(tc.code) || e.Slot != audit.NoSlot {
					t.Errorf("audit %+v, want reader %s code %d and no slot", e, b.ReaderSerial, tc.code)
				}
			}
			r.wantStats(0, map[wire.Code]uint64{tc.code: 2})
			if n := r.leases(); n != 0 {
				t.Errorf("%d SAM leases for a rejected reader, want none", n)
			}
			if tc.code == wire.BadCardSerial {
				// Counted per reader.
				if rd, _ := r.a.Store().Reader(b.ReaderSerial); rd.FailedAuth != 2 {
					t.Errorf("reader's failed authentications %d, want 2", rd.FailedAuth)
				}
			}
			r.checkPool()
		})
	}
}

// A reader whose certificate says one serial and whose Open declares
// another is rejected with 104 and the connection closed; the failure
// counts against the certificate's reader.
func TestReaderSerialNotCertificate(t *testing.T) {
	r := startRig(t, rigOptions{})
	a := r.addReader("R-A", credentials.CipherSM4)
	r.addReader("R-B", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})

	rc := r.rawDial(a)
	rc.open(card, rawOpen{serial: "R-B"})
	rc.wantError(wire.BadCredentials)
	rc.wantClosed()

	r.wantEvent(audit.KindReaderRejected, "R-B", wire.BadCredentials)
	r.wantStats(0, map[wire.Code]uint64{wire.BadCredentials: 1})
	if rd, _ := r.a.Store().Reader("R-A"); rd.FailedAuth != 1 {
		t.Errorf("R-A failed authentications %d, want 1", rd.FailedAuth)
	}
	if rd, _ := r.a.Store().Reader("R-B"); rd.FailedAuth != 0 {
		t.Errorf("R-B failed authentications %d, want 0 (it did nothing)", rd.FailedAuth)
	}
	if n := r.leases(); n != 0 {
		t.Errorf("%d SAM leases, want none", n)
	}
	// The real R-A still reads.
	r.mustRead(r.dial(a), card, nil, client.ReadOptions{})
}

// "Repeated failures suspend the reader": with the threshold at 5, five
// Opens sealed under a wrong key get 105, the fifth suspends the reader
// (one reader.suspended event), and from then on it gets 103 — even with
// the right key.
func TestReaderSuspendedAfterRepeatedFailures(t *testing.T) {
	r := startRig(t, rigOptions{threshold: 5})
	b := r.addReader("R-0001", credentials.CipherSM4)
	wrong := *b
	wrong.KeyHex = hex.EncodeToString([]byte("0123456789abcdef"))
	c := r.dial(&wrong)
	card := newCard(1, sim.CardOptions{})
	for i := range 5 {
		_, err := r.read(c, card, client.ReadOptions{})
		wantCode(t, err, wire.BadCardSerial)
		if n := len(r.events(audit.KindReaderSuspended)); (i < 4 && n != 0) || (i == 4 && n != 1) {
			t.Fatalf("after %d failures: %d reader.suspended events", i+1, n)
		}
	}
	e := r.wantEvent(audit.KindReaderSuspended, "R-0001", 0)
	if e.Slot != audit.NoSlot {
		t.Errorf("reader.suspended with slot %d", e.Slot)
	}
	if rd, _ := r.a.Store().Reader("R-0001"); rd.Status != state.ReaderSuspended || rd.FailedAuth != 5 {
		t.Errorf("reader %v with %d failures, want suspended with 5", rd.Status, rd.FailedAuth)
	}
	_, err := r.read(r.dial(b), card, client.ReadOptions{})
	wantCode(t, err, wire.ReaderSuspended)
	r.wantStats(0, map[wire.Code]uint64{wire.BadCardSerial: 5, wire.ReaderSuspended: 1})
	if n := r.leases(); n != 0 {
		t.Errorf("%d SAM leases, want none", n)
	}
	// An operator lifts the suspension: the reader reads again.
	r.apply(state.Command{Op: state.OpSetReaderStatus, Serial: "R-0001", Status: state.ReaderActive})
	r.mustRead(r.dial(b), card, nil, client.ReadOptions{})
}

// AuthFailureThreshold counts failed authentications in a row: a reader
// that authenticates between failures is not suspended by them.
func TestReaderFailuresInARow(t *testing.T) {
	r := startRig(t, rigOptions{threshold: 3})
	b := r.addReader("R-0001", credentials.CipherSM4)
	wrong := *b
	wrong.KeyHex = hex.EncodeToString([]byte("0123456789abcdef"))
	bad, good := r.dial(&wrong), r.dial(b)
	card := newCard(1, sim.CardOptions{})
	for range 3 {
		for range 2 {
			_, err := r.read(bad, card, client.ReadOptions{})
			wantCode(t, err, wire.BadCardSerial)
		}
		r.mustRead(good, card, nil, client.ReadOptions{})
	}
	r.wantEvents(audit.KindReaderSuspended, 0)
	if rd, _ := r.a.Store().Reader("R-0001"); rd.Status != state.ReaderActive || rd.FailedAuth != 0 {
		t.Errorf("reader %v with %d failures in a row, want active with 0", rd.Status, rd.FailedAuth)
	}
}

// An Open with no key share of a suite the appliance speaks gets 405; the
// connection stays usable.
func TestNoCommonSuite(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-0001", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	rc := r.rawDial(b)
	rc.open(card, rawOpen{suites: []suite.ID{0x7E}})
	rc.wantError(wire.NoCommonSuite)
	s := rc.open(card, rawOpen{})
	if turn := s.finish(card, s.untilScript()); turn.result == nil {
		t.Fatalf("read after 405 failed: %v", turn.err)
	}
	r.wantEvent(audit.KindReaderRejected, "R-0001", wire.NoCommonSuite)
	r.wantStats(1, map[wire.Code]uint64{wire.NoCommonSuite: 1})
	r.checkPool()
}
