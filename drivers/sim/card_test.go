package sim_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim"
)

// tx sends one frame and returns the reply, or nil if the card is silent.
func tx(t *testing.T, c *sim.Card, cmd []byte) []byte {
	t.Helper()
	r, err := c.Transceive(context.Background(), cmd)
	if err != nil {
		if !errors.Is(err, idcard.ErrNoCard) {
			t.Fatalf("Transceive: %v", err)
		}
		return nil
	}
	return r
}

func wantSW(t *testing.T, what string, r []byte, sw uint16) {
	t.Helper()
	if r == nil || idcard.SW(r) != sw {
		t.Errorf("%s: reply % X, want SW %04X", what, r, sw)
	}
}

func activate(t *testing.T, c *sim.Card) {
	t.Helper()
	atqb, err := idcard.ParseATQB(tx(t, c, idcard.ReqB))
	if err != nil {
		t.Fatal(err)
	}
	if !idcard.AttribOK(tx(t, c, idcard.Attrib(atqb.PUPI))) {
		t.Fatal("ATTRIB refused")
	}
}

// auth runs GET CHALLENGE and MUTUAL AUTH with key k, returning the
// session key and the card's reply.
func auth(t *testing.T, c *sim.Card, k [16]byte) (idcard.SessionKey, []byte) {
	t.Helper()
	rc, err := idcard.ParseChallenge(tx(t, c, idcard.GetChallenge))
	if err != nil {
		t.Fatal(err)
	}
	rs := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	r := tx(t, c, idcard.MutualAuth(rs, idcard.SAMProof(k, rc, rs, c.Serial())))
	return idcard.NewSessionKey(k, rc, rs), r
}

func TestCardStateMachine(t *testing.T) {
	c := sim.NewCard(3, sim.CardOptions{Timing: instantRF})
	k := idcard.CardKey(idcard.DevMasterKey, c.Serial())

	if r := tx(t, c, idcard.GetUID); r != nil {
		t.Errorf("IDLE card answered GET UID: % X", r)
	}
	atqb, err := idcard.ParseATQB(tx(t, c, idcard.ReqB))
	if err != nil {
		t.Fatal(err)
	}
	if r := tx(t, c, idcard.GetUID); r != nil {
		t.Errorf("READY card answered GET UID: % X", r)
	}
	wrong := atqb.PUPI
	wrong[0] ^= 1
	if r := tx(t, c, idcard.Attrib(wrong)); r != nil {
		t.Errorf("card answered ATTRIB with another PUPI")
	}
	if !idcard.AttribOK(tx(t, c, idcard.Attrib(atqb.PUPI))) {
		t.Fatal("ATTRIB refused")
	}
	if s, err := idcard.ParseSerial(tx(t, c, idcard.GetUID)); err != nil || s != c.Serial() {
		t.Errorf("GET UID: %X %v", s, err)
	}
	wantSW(t, "READ before auth", tx(t, c, idcard.ReadBlock(idcard.FileText, 0)), idcard.SWNotAuth)
	wantSW(t, "AUTH without challenge", tx(t, c, idcard.MutualAuth([8]byte{}, [16]byte{})), idcard.SWNoChallenge)

	// Wrong key: 63 00 and still no reads; the challenge is consumed.
	_, r := auth(t, c, [16]byte{1})
	wantSW(t, "AUTH with a wrong key", r, idcard.SWAuthFailed)
	wantSW(t, "READ after failed auth", tx(t, c, idcard.ReadBlock(idcard.FileText, 0)), idcard.SWNotAuth)
	wantSW(t, "AUTH replayed", tx(t, c, idcard.MutualAuth([8]byte{}, [16]byte{})), idcard.SWNoChallenge)

	sk, r := auth(t, c, k)
	wantSW(t, "AUTH", r, idcard.SWOK)
	r = tx(t, c, idcard.ReadBlock(idcard.FileText, 0))
	wantSW(t, "READ text", r, idcard.SWOK)
	if len(r) != idcard.MaxReply {
		t.Errorf("block reply of %d bytes", len(r))
	}
	if plain, err := sk.Open(idcard.FileText, 0, idcard.Body(r)); err != nil || !bytes.Equal(plain, c.Text()) {
		t.Errorf("text block: %v", err)
	}
	wantSW(t, "READ missing fingerprint", tx(t, c, idcard.ReadBlock(idcard.FileFingerprint, 0)), idcard.SWFileNotFound)
	wantSW(t, "READ unknown file", tx(t, c, []byte{0x80, 0xB0, 0x09, 0, 0}), idcard.SWFileNotFound)
	wantSW(t, "READ beyond the end", tx(t, c, []byte{0x80, 0xB0, 0x02, 4, 0}), idcard.SWWrongP1P2)
	wantSW(t, "READ wrong LE", tx(t, c, []byte{0x80, 0xB0, 0x02, 0, 0x10}), idcard.SWWrongLe)
	wantSW(t, "unknown INS", tx(t, c, []byte{0x00, 0xA4, 0, 0}), idcard.SWINSNotSupport)
	wantSW(t, "unknown CLA", tx(t, c, []byte{0x90, 0x36, 0, 0, 8}), idcard.SWCLANotSupport)
	wantSW(t, "short APDU", tx(t, c, []byte{0x00, 0x36}), idcard.SWWrongLength)
	wantSW(t, "GET UID wrong Le", tx(t, c, []byte{0x00, 0x36, 0, 0, 4}), idcard.SWWrongLength)

	// A new challenge cancels the authentication.
	tx(t, c, idcard.GetChallenge)
	wantSW(t, "READ after new challenge", tx(t, c, idcard.ReadBlock(idcard.FileText, 0)), idcard.SWNotAuth)

	// Leaving the field loses everything.
	c.Remove()
	if _, err := c.Transceive(context.Background(), idcard.ReqB); !errors.Is(err, idcard.ErrNoCard) {
		t.Errorf("removed card: %v", err)
	}
	c.Insert()
	if r := tx(t, c, idcard.GetUID); r != nil {
		t.Error("reinserted card is not IDLE")
	}
	activate(t, c)
	wantSW(t, "READ after reinsertion", tx(t, c, idcard.ReadBlock(idcard.FileText, 0)), idcard.SWNotAuth)
}

func TestCardRemovedDuringExchange(t *testing.T) {
	checkLeaks(t)
	// Real air time, so the exchange is in flight when the card leaves.
	c := sim.NewCard(3, sim.CardOptions{Timing: &sim.RFTiming{Turnaround: 1 << 40}})
	done := make(chan error)
	go func() {
		_, err := c.Transceive(context.Background(), idcard.ReqB)
		done <- err
	}()
	for c.Present() { // Remove may run before Transceive starts: both fail
		c.Remove()
	}
	if err := <-done; !errors.Is(err, idcard.ErrNoCard) {
		t.Errorf("exchange in flight: %v", err)
	}
}

func TestCardFile(t *testing.T) {
	for _, ct := range cardTypes {
		c := sim.NewCard(int64(ct), sim.CardOptions{Type: ct, Fingerprint: ct == ga467.Resident, Timing: instantRF})
		path := filepath.Join(t.TempDir(), "card.json")
		if err := sim.SaveCard(path, c); err != nil {
			t.Fatal(err)
		}
		d, err := sim.LoadCard(path, sim.CardOptions{Timing: instantRF})
		if err != nil {
			t.Fatal(err)
		}
		if d.Serial() != c.Serial() || d.Identity() != c.Identity() || !bytes.Equal(d.Text(), c.Text()) ||
			!bytes.Equal(d.Photo(), c.Photo()) || !bytes.Equal(d.Fingerprint(), c.Fingerprint()) {
			t.Errorf("%v: loaded card differs", ct)
		}
		// The loaded card authenticates with the dev key.
		activate(t, d)
		_, r := auth(t, d, idcard.CardKey(idcard.DevMasterKey, d.Serial()))
		wantSW(t, "AUTH of a loaded card", r, idcard.SWOK)
	}
	if _, err := sim.LoadCard(filepath.Join(t.TempDir(), "none.json"), sim.CardOptions{}); err == nil {
		t.Error("loaded a missing file")
	}
}

func FuzzCardTransceive(f *testing.F) {
	f.Add([]byte{0x05, 0, 0}, []byte{0x00, 0x84, 0, 0, 8}, []byte{0x80, 0xB0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		card := sim.NewCard(1, sim.CardOptions{Timing: instantRF, Fingerprint: true})
		activate(t, card)
		for _, cmd := range [][]byte{a, b, c} {
			r, err := card.Transceive(context.Background(), cmd)
			if err == nil && len(r) > idcard.MaxReply {
				t.Fatalf("reply of %d bytes", len(r))
			}
		}
	})
}
