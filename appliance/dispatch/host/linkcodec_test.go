package host

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
)

// The byte layout of a Step, by hand: the lease, 100 ms left, an Answer
// holding one wire frame (a Relay of 2 bytes).
func TestStepLayout(t *testing.T) {
	var id [16]byte
	id[15] = 7
	relay, _ := wire.Marshal(&wire.Relay{Sealed: []byte{0xAA, 0xBB}})
	want := append(append([]byte{}, id[:]...), 0, 0, 0, 100, 2)
	want = append(want, 0, 0, 0, byte(len(relay)))
	want = append(want, relay...)
	_, in, d, err := decodeStep(want)
	if err != nil || d != 100*time.Millisecond {
		t.Fatalf("decode: %v %v", d, err)
	}
	got, err := encodeStep(id, in, time.Now().Add(100*time.Millisecond+500*time.Microsecond), true)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("encode:\n% x\nwant\n% x (%v)", got, want, err)
	}
}

func TestOutputRoundTrip(t *testing.T) {
	o := &Output{Messages: []wire.Message{&wire.Relay{Sealed: []byte{1}}, &wire.Error{Code: wire.SAMFault, Message: "x"}},
		Await: true, AnswerWithin: 3 * time.Second, SAMTime: 1500 * time.Microsecond,
		End: &Outcome{Code: wire.SAMFault, Closes: true, Card: "h", Slot: 3, SAMID: ga467.SAMID{A: 5, B: 1, Date: 20250101}, Hold: time.Second, Attempts: 2}}
	b, err := encodeOutput(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeOutput(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got.End != *o.End || got.Await != o.Await || got.AnswerWithin != o.AnswerWithin || got.SAMTime != o.SAMTime || len(got.Messages) != 2 {
		t.Fatalf("round trip %+v %+v", got, got.End)
	}
}

// FuzzLinkFrames: no payload a peer sends makes a decoder panic or accept
// more than its bounds; what decodes re-encodes.
func FuzzLinkFrames(f *testing.F) {
	p, _ := encodePlace(&Placement{Reader: "R-1", KeyShares: []wire.KeyShare{{Suite: 1, Public: []byte{1, 2}}},
		Prefetch: []wire.Exchange{{Cmd: []byte{1}, Resp: []byte{0x90, 0}}}, Prefer: []ga467.SAMID{{A: 5}}, Sign: true}, time.Now().Add(time.Second), true)
	f.Add(frPlace, p)
	f.Add(frPlaced, encodePlaced([16]byte{1}, &Placed{Accept: wire.Accept{Public: []byte{1}}, Slot: 2}))
	s, _ := encodeStep([16]byte{2}, &Input{Requests: []wire.Message{&wire.FindRequest{}, &wire.ReadRequest{}}}, time.Time{}, false)
	f.Add(frStep, s)
	s, _ = encodeStep([16]byte{2}, &Input{Fail: &Failure{Code: wire.Timeout, Detail: "d"}}, time.Time{}, false)
	f.Add(frStep, s)
	o, _ := encodeOutput(&Output{Messages: []wire.Message{&wire.Result{SW3: 0x90, Sealed: []byte{1}}}, End: &Outcome{Card: "c"}})
	f.Add(frOutput, o)
	f.Add(frRelease, encodeRelease([16]byte{3}, nil))
	f.Add(frError, encodeError(&Refusal{Code: 405, Kind: "k", Detail: "d"}))
	pf, _ := encodePlaceFirst(&Placement{Reader: "R-1", First: []wire.Message{&wire.FindRequest{}}, FirstWithin: time.Second}, time.Time{}, false)
	f.Add(uint8(6), pf)
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		switch typ % 7 {
		case 0:
			if pl, _, err := decodePlace(b); err == nil {
				if len(pl.KeyShares) > maxKeyShares || len(pl.Prefer) > maxPrefer {
					t.Fatal("bounds")
				}
				if _, err := encodePlace(pl, time.Time{}, false); err != nil {
					t.Fatalf("decoded Place does not encode: %v", err)
				}
			}
		case 1:
			if id, pl, err := decodePlaced(b); err == nil {
				if got := encodePlaced(id, pl); !bytes.Equal(got, b) {
					t.Fatalf("Placed re-encodes differently")
				}
			}
		case 2:
			if _, in, _, err := decodeStep(b); err == nil {
				if _, err := encodeStep([16]byte{}, in, time.Time{}, false); err != nil {
					t.Fatalf("decoded Step does not encode: %v", err)
				}
			}
		case 3:
			if o, err := decodeOutput(b); err == nil {
				if _, err := encodeOutput(o); err != nil {
					t.Fatalf("decoded Output does not encode: %v", err)
				}
			}
		case 4:
			decodeRelease(b)
		case 5:
			if err := decodeError(b); err == nil {
				t.Fatal("an Error frame decoded to no error")
			}
		case 6:
			if pl, _, err := decodePlaceFirst(b); err == nil {
				if len(pl.First) == 0 {
					t.Fatal("a PlaceFirst without requests decoded")
				}
				if _, err := encodePlaceFirst(pl, time.Time{}, false); err != nil {
					t.Fatalf("decoded PlaceFirst does not encode: %v", err)
				}
			}
		}
	})
}

// TestPlaceFirstFrame: a PlaceFirst carries its placement and first
// requests; one whose Step names a lease (the first Step may only run on
// the lease it places) or carries no requests does not decode.
func TestPlaceFirstFrame(t *testing.T) {
	p := &Placement{Reader: "R-1", KeyShares: []wire.KeyShare{{Suite: 1, Public: []byte{1}}},
		First: []wire.Message{&wire.FindRequest{}, &wire.SelectRequest{}}, FirstWithin: 3 * time.Second}
	b, err := encodePlaceFirst(p, time.Now().Add(time.Second), true)
	if err != nil {
		t.Fatal(err)
	}
	got, dl, err := decodePlaceFirst(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reader != "R-1" || len(got.First) != 2 || got.FirstWithin < 2900*time.Millisecond || dl < 900*time.Millisecond {
		t.Fatalf("decoded %+v within %v, deadline %v", got, got.FirstWithin, dl)
	}
	place, _ := encodePlace(p, time.Time{}, false)
	for name, in := range map[string]*Input{"lease": {Requests: p.First}, "no requests": {}} {
		lease := [16]byte{}
		if name == "lease" {
			lease[0] = 1
		}
		step, _ := encodeStep(lease, in, time.Time{}, false)
		var e enc
		e.b32(place)
		e.b32(step)
		if _, _, err := decodePlaceFirst(e); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: decoded (%v)", name, err)
		}
	}
}
