package ga467

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

// seedFrames adds every published byte-exact example, and a few damaged
// frames, to the corpus of f.
func seedFrames(f *testing.F) {
	for _, e := range commandExamples {
		f.Add(wire(e.hex))
	}
	for _, e := range replyExamples {
		f.Add(wire(e.hex))
	}
	f.Add(wire("00 04 00 00 90 95"))     // bad checksum
	f.Add(wire("FF FF 00 00 90 94"))     // LEN too long
	f.Add(wire("00 04 00 00 90"))        // truncated
	f.Add(unhex("AA AA 96 69 00 03 20")) // no preamble
}

func FuzzParseReply(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		got, err := r.Frame()
		if err != nil {
			t.Fatalf("parsed reply does not re-frame: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-framed % X, parsed % X", got, b)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		got, err := c.Frame()
		if err != nil {
			t.Fatalf("parsed command does not re-frame: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-framed % X, parsed % X", got, b)
		}
	})
}

// memStream is a Stream reading from a fixed byte slice in small chunks.
type memStream struct{ io.Reader }

func (memStream) Write(b []byte) (int, error)      { return len(b), nil }
func (memStream) SetReadDeadline(time.Time) error  { return nil }
func (memStream) SetWriteDeadline(time.Time) error { return nil }

func FuzzConnReadFrame(f *testing.F) {
	seedFrames(f)
	var all []byte
	for _, e := range replyExamples {
		all = append(all, 0x13, 0xAA) // noise between frames
		all = append(all, wire(e.hex)...)
	}
	f.Add(all)
	f.Add(append(wire("00 02"), wire("00 04 00 00 90 94")...))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := NewConn(memStream{iotest.HalfReader(bytes.NewReader(in))})
		consumed := 0
		for i := 0; ; i++ {
			if i > len(in) {
				t.Fatal("more frames than input bytes")
			}
			frame, err := c.ReadFrame()
			if errors.Is(err, ErrChecksum) {
				consumed += len(frame)
				if _, perr := ParseCommand(frame); !errors.Is(perr, ErrChecksum) {
					t.Fatalf("frame with bad checksum parses as %v", perr)
				}
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("ReadFrame: %v", err)
				}
				break
			}
			consumed += len(frame)
			if _, err := ParseCommand(frame); err != nil {
				t.Fatalf("frame % X does not parse as a command: %v", frame, err)
			}
			if len(frame) > headerLen+3 {
				if _, err := ParseReply(frame); err != nil {
					t.Fatalf("frame % X does not parse as a reply: %v", frame, err)
				}
			}
		}
		if total := consumed + int(c.Discarded()); total > len(in) {
			t.Fatalf("consumed %d + discarded %d > %d input bytes", consumed, c.Discarded(), len(in))
		}
	})
}

func FuzzDecodeCardFrames(f *testing.F) {
	f.Add([]byte{0})
	f.Add(unhex("02 0100 AB 0000"))
	f.Add(unhex("01 0500 0084000008"))
	f.Add(unhex("01 0300 AABB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := DecodeCardFrames(b)
		if err != nil {
			return
		}
		got, err := EncodeCardFrames(frames)
		if err != nil {
			t.Fatalf("decoded frames do not encode: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-encoded % X, decoded % X", got, b)
		}
	})
}

// reserved marks the bytes of a text block no field of layout t covers.
func reserved(t CardType) [TextLen]bool {
	var r [TextLen]bool
	for i := range r {
		r[i] = true
	}
	for _, f := range layouts[t] {
		for _, s := range f.spans {
			for i := s.off; i < s.off+s.n; i++ {
				r[i] = false
			}
		}
	}
	return r
}

func FuzzDecodeText(f *testing.F) {
	for _, id := range []Identity{residentID, permitID, foreign2017ID, foreign2023ID} {
		b, err := EncodeText(&id)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeText(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes, and to the same bytes except the
		// reserved ones, which encode as spaces (and the type mark).
		again, err := EncodeText(id)
		if err != nil {
			t.Fatalf("decoded identity (%s) does not encode: %v", id.Redacted(), err)
		}
		res := reserved(id.Type)
		for i := range b {
			switch {
			case !res[i] && again[i] != b[i]:
				t.Fatalf("byte %d: re-encoded %02X, decoded %02X", i, again[i], b[i])
			case res[i] && i == typeOffset && id.Type != Resident && again[i] != byte(id.Type):
				t.Fatalf("type mark %02X, want %02X", again[i], byte(id.Type))
			case res[i] && i != typeOffset && again[i] != [2]byte{' ', 0}[i%2]:
				t.Fatalf("reserved byte %d re-encoded as %02X", i, again[i])
			}
		}
		id2, err := DecodeText(again)
		if err != nil {
			t.Fatalf("re-encoded text does not decode: %v", err)
		}
		if !reflect.DeepEqual(id, id2) {
			t.Fatalf("decode(encode(decode(b))) differs from decode(b)")
		}
	})
}
