package wire

import (
	"testing"

	"github.com/samrack/samrack/api/suite"
)

// typicalRead is the four frames of a warm two-round-trip read (text, photo
// and fingerprint), with realistic sizes of the sealed fields.
func typicalRead() [][]Message {
	return [][]Message{
		{ // reader → appliance
			&Open{ReaderSerial: "R-000123", KeyShares: []KeyShare{
				{Suite: suite.GM, Public: fill(65, 4)}, {Suite: suite.X25519, Public: fill(32, 7)},
			}, Sealed: fill(120, 1)},
			&FindRequest{}, &SelectRequest{}, &ReadRequest{Fingerprint: true},
		},
		{ // appliance → reader
			&Accept{Suite: suite.GM, Public: fill(65, 4)},
			&FindResponse{Done: true, SW3: 0x9F, Sealed: fill(17, 2)},
			&SelectResponse{Done: true, SW3: 0x90, Sealed: fill(25, 3)},
			&Relay{Sealed: fill(140, 4)}, // the card script
		},
		{ // reader → appliance: the card's replies
			&Relay{Sealed: fill(2400, 5)},
		},
		{ // appliance → reader
			&Result{SW3: 0x90, Sealed: fill(2326, 6)},
		},
	}
}

func BenchmarkMarshalRead(b *testing.B) {
	read := typicalRead()
	n := 0
	for _, f := range read {
		bs, _ := Marshal(f...)
		n += len(bs)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range read {
			if _, err := Marshal(f...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkUnmarshalRead(b *testing.B) {
	var frames [][]byte
	n := 0
	for _, f := range typicalRead() {
		bs, _ := Marshal(f...)
		frames = append(frames, bs)
		n += len(bs)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range frames {
			if _, err := Unmarshal(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}
