package idcard_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim"
)

// scripted is an RF whose card answers from a table; a missing entry is a
// card that does not answer.
type scripted struct {
	answers map[string][]byte
	sent    [][]byte
}

func (s *scripted) Transceive(_ context.Context, cmd []byte) ([]byte, error) {
	s.sent = append(s.sent, cmd)
	if r, ok := s.answers[string(cmd)]; ok {
		return r, nil
	}
	return nil, idcard.ErrNoCard
}

func TestRunStops(t *testing.T) {
	a, b, c := []byte{0x00, 0xA1}, []byte{0x00, 0xA2}, []byte{0x00, 0xA3}
	tests := []struct {
		name    string
		answers map[string][]byte
		cmds    [][]byte
		want    int // replies
		sent    int
		wantErr bool
	}{
		{"all ok", map[string][]byte{string(a): {1, 0x90, 0}, string(b): {0x90, 0}, string(c): {0x90, 0}}, [][]byte{a, b, c}, 3, 3, false},
		{"status stops, reply kept", map[string][]byte{string(a): {0x90, 0}, string(b): {0x69, 0x82}, string(c): {0x90, 0}}, [][]byte{a, b, c}, 2, 2, false},
		{"short reply stops", map[string][]byte{string(a): {0x90}, string(b): {0x90, 0}}, [][]byte{a, b}, 1, 1, false},
		{"no answer stops with error", map[string][]byte{string(a): {0x90, 0}}, [][]byte{a, b, c}, 1, 2, true},
		{"type B frames carry no status", map[string][]byte{string(idcard.ReqB): {0x50, 1, 2}, string(a): {0x90, 0}}, [][]byte{idcard.ReqB, a}, 2, 2, false},
		{"empty script", nil, nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := &scripted{answers: tt.answers}
			replies, err := idcard.Run(context.Background(), rf, tt.cmds)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, idcard.ErrNoCard) {
				t.Errorf("err = %v, want ErrNoCard", err)
			}
			if len(replies) != tt.want || len(rf.sent) != tt.sent {
				t.Errorf("%d replies, %d sent; want %d, %d", len(replies), len(rf.sent), tt.want, tt.sent)
			}
		})
	}
}

func TestRunContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rf := &scripted{}
	if _, err := idcard.Run(ctx, rf, [][]byte{idcard.ReqB}); !errors.Is(err, context.Canceled) || len(rf.sent) != 0 {
		t.Fatalf("err = %v, sent %d", err, len(rf.sent))
	}
}

func TestPrefetch(t *testing.T) {
	card := sim.NewCard(7, sim.CardOptions{Timing: &sim.RFTiming{}})
	ex, serial, err := idcard.Prefetch(context.Background(), card)
	if err != nil {
		t.Fatal(err)
	}
	if serial != card.Serial() {
		t.Errorf("serial %X, want %X", serial, card.Serial())
	}
	if len(ex) != 4 {
		t.Fatalf("%d exchanges", len(ex))
	}
	atqb, err := idcard.ParseATQB(ex[0].Resp)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{idcard.ReqB, idcard.Attrib(atqb.PUPI), idcard.GetUID, idcard.GetChallenge}
	for i, e := range ex {
		if !bytes.Equal(e.Cmd, want[i]) {
			t.Errorf("exchange %d: cmd % X, want % X", i, e.Cmd, want[i])
		}
	}
	p := idcard.NewPrefetched(ex)
	if r, ok := p.Take(idcard.GetUID); !ok || !bytes.Equal(r, ex[2].Resp) {
		t.Error("Take(GET UID) failed")
	}
	if _, ok := p.Take(idcard.GetUID); ok {
		t.Error("an exchange was used twice")
	}
	if p.Remaining() != 3 {
		t.Errorf("Remaining = %d", p.Remaining())
	}

	card.Remove()
	if _, _, err := idcard.Prefetch(context.Background(), card); !errors.Is(err, idcard.ErrNoCard) {
		t.Errorf("Prefetch without card: %v", err)
	}
}

func TestPrefetchBadCard(t *testing.T) {
	rf := &scripted{answers: map[string][]byte{string(idcard.ReqB): {0x50, 1, 2, 3}}}
	if _, _, err := idcard.Prefetch(context.Background(), rf); !errors.Is(err, idcard.ErrBadReply) {
		t.Errorf("short ATQB: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	var serial [8]byte
	copy(serial[:], "12345678")
	k := idcard.CardKey(idcard.DevMasterKey, serial)
	rc, rs := [8]byte{1, 2, 3}, [8]byte{4, 5, 6}
	sk := idcard.NewSessionKey(k, rc, rs)
	plain := bytes.Repeat([]byte("text"), 64)
	sealed := sk.Seal(idcard.FileText, 0, plain)
	if len(sealed) != len(plain)+idcard.MACLen || bytes.Contains(sealed, []byte("texttext")) {
		t.Fatalf("sealed block looks wrong: %d bytes", len(sealed))
	}
	got, err := sk.Open(idcard.FileText, 0, sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open: %v", err)
	}
	for name, f := range map[string]func() error{
		"flipped ciphertext": func() error {
			b := bytes.Clone(sealed)
			b[3] ^= 1
			_, err := sk.Open(idcard.FileText, 0, b)
			return err
		},
		"other block": func() error { _, err := sk.Open(idcard.FileText, 1, sealed); return err },
		"other file":  func() error { _, err := sk.Open(idcard.FilePhoto, 0, sealed); return err },
		"other session": func() error {
			sk2 := idcard.NewSessionKey(k, rc, [8]byte{9})
			_, err := sk2.Open(idcard.FileText, 0, sealed)
			return err
		},
	} {
		if err := f(); !errors.Is(err, idcard.ErrMAC) {
			t.Errorf("%s: err = %v, want ErrMAC", name, err)
		}
	}
	if _, err := sk.Open(idcard.FileText, 0, []byte{1}); !errors.Is(err, idcard.ErrBadReply) {
		t.Errorf("short: %v", err)
	}

	// The proofs differ by direction and bind the serial.
	ps, pc := idcard.SAMProof(k, rc, rs, serial), idcard.CardProof(k, rc, rs, serial)
	if ps == pc {
		t.Error("SAM and card proofs are equal")
	}
	serial[0] ^= 1
	if idcard.SAMProof(k, rc, rs, serial) == ps {
		t.Error("SAM proof does not bind the serial")
	}
	if idcard.CardKey(idcard.DevMasterKey, serial) == k {
		t.Error("card keys of two serials are equal")
	}
}

func TestFrames(t *testing.T) {
	pupi := [4]byte{1, 2, 3, 4}
	at := idcard.Attrib(pupi)
	if !bytes.Equal(at, []byte{0x1D, 1, 2, 3, 4, 0x00, 0x08, 0x01, 0x00}) {
		t.Errorf("ATTRIB % X", at)
	}
	if p, ok := idcard.ParseAttrib(at); !ok || p != pupi {
		t.Error("ParseAttrib")
	}
	if !idcard.IsTypeB(at) || !idcard.IsTypeB(idcard.ReqB) || idcard.IsTypeB(idcard.GetUID) {
		t.Error("IsTypeB")
	}
	a := idcard.ATQB{PUPI: pupi, AppData: idcard.AppData, Proto: idcard.ProtoInfo}
	if b, err := idcard.ParseATQB(a.Bytes()); err != nil || b != a {
		t.Errorf("ATQB round trip: %v", err)
	}
	var n, max int
	for _, ref := range idcard.ReadScript(true) {
		cmd := idcard.ReadBlock(ref.File, ref.Block)
		if len(cmd) != 5 {
			t.Errorf("READ % X", cmd)
		}
		n += idcard.BlockPlainLen(ref.File, ref.Block)
		max = idcard.BlockPlainLen(ref.File, ref.Block) + idcard.MACLen + 2
	}
	if n != 256+1024+1024 || max > 266 || idcard.MaxReply != 266 {
		t.Errorf("read script covers %d bytes, max reply %d", n, max)
	}
	if len(idcard.ReadScript(false)) != 5 {
		t.Error("text+photo script is not 5 blocks")
	}
}

func FuzzParseATQB(f *testing.F) {
	f.Add([]byte{0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0x81, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := idcard.ParseATQB(b)
		if err == nil && !bytes.Equal(a.Bytes(), b) {
			t.Fatalf("round trip % X → % X", b, a.Bytes())
		}
	})
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte("some sealed block with a mac tail"), byte(1), 0)
	f.Fuzz(func(t *testing.T, b []byte, file byte, block int) {
		var sk idcard.SessionKey
		if p, err := sk.Open(file, block, b); err == nil && len(p) != len(b)-idcard.MACLen {
			t.Fatal("wrong plaintext length")
		}
	})
}
