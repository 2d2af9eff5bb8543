package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// seedFrames adds valid frames of every message type and a few broken ones.
func seedFrames(f *testing.F) {
	for _, m := range allMessages() {
		b, _ := Marshal(m)
		f.Add(b)
	}
	b, _ := Marshal(allMessages()...)
	f.Add(b)
	for _, fr := range typicalRead() {
		b, _ := Marshal(fr...)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("SR"))
	f.Add([]byte{'S', 'R', 2, 0, 0, 0, 0, 0})
	f.Add([]byte{'S', 'R', 1, 0, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add(frameOf(TypeOpen, []byte{1, 'R', 5}))
}

// FuzzUnmarshal: never panics, every error is one of the codec's, and
// whatever decodes re-marshals to the same bytes (the encoding is canonical).
func FuzzUnmarshal(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) &&
				!errors.Is(err, ErrMagic) && !errors.Is(err, ErrVersion) {
				t.Fatalf("foreign error %v", err)
			}
			return
		}
		if len(msgs) == 0 || len(msgs) > MaxMessages {
			t.Fatalf("%d messages", len(msgs))
		}
		re, err := Marshal(msgs...)
		if err != nil {
			t.Fatalf("decoded but does not re-marshal: %v", err)
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("re-marshal differs:\n in %x\nout %x", data, re)
		}
	})
}

// FuzzReadFrame: a stream of arbitrary bytes yields frames that agree with
// Unmarshal, or an error; never a panic or a hang.
func FuzzReadFrame(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for i := 0; i < 64; i++ {
			before := r.Len()
			msgs, err := ReadFrame(r)
			if err != nil {
				if err == io.EOF && before != 0 {
					t.Fatalf("io.EOF with %d bytes left", before)
				}
				return
			}
			consumed := data[len(data)-before : len(data)-r.Len()]
			again, err := Unmarshal(consumed)
			if err != nil || len(again) != len(msgs) {
				t.Fatalf("ReadFrame and Unmarshal disagree: %v", err)
			}
		}
	})
}

// FuzzUnmarshalPreSession: never panics; what decodes re-marshals exactly.
func FuzzUnmarshalPreSession(f *testing.F) {
	b, _ := MarshalPreSession(exPreSession())
	f.Add(b)
	f.Add(make([]byte, 9))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 2, 0, 1, 0xAA, 0, 1, 0xBB, 0, 2, 1, 2, 0, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := UnmarshalPreSession(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("foreign error %v", err)
			}
			return
		}
		re, err := MarshalPreSession(p)
		if err != nil || !bytes.Equal(re, data) {
			t.Fatalf("re-marshal: %x, %v (in %x)", re, err, data)
		}
	})
}
