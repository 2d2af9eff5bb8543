package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/samrack/samrack/api/suite"
)

func fill(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

// allMessages is one filled-in message of every type.
func allMessages() []Message {
	return []Message{
		&Open{
			ReaderSerial: "R-0001",
			KeyShares: []KeyShare{
				{Suite: suite.GM, Public: fill(65, 0x04)},
				{Suite: suite.X25519, Public: fill(32, 0x22)},
			},
			Sealed: fill(60, 0x5E),
		},
		&Accept{SessionID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Suite: suite.GM, Public: fill(65, 0x04)},
		&KeyShareSignature{Alg: suite.SigECDSAP256SHA256, Chain: [][]byte{fill(500, 0x30), fill(3, 0x31)}, Signature: fill(71, 0x30)},
		&FindRequest{},
		&FindResponse{Done: true, SW3: 0x9F, Sealed: fill(17, 1)},
		&FindConfirm{Sealed: fill(20, 2)},
		&SelectRequest{},
		&SelectResponse{Done: false, SW3: 0xE0, Sealed: fill(40, 3)},
		&SelectConfirm{Sealed: fill(18, 4)},
		&ReadRequest{Fingerprint: true},
		&Relay{Sealed: fill(300, 5)},
		&Result{SW3: 0x90, Sealed: fill(2326, 6)},
		&Ping{Nonce: 0x0102030405060708},
		&Pong{Nonce: 0xFFFFFFFFFFFFFFFF},
		&Error{Code: Busy, RetryAfter: 50 * time.Millisecond, Message: "no idle SAM"},
	}
}

// normalise maps empty byte slices to nil so decoded values compare.
func normalise(ms []Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		v := reflect.New(reflect.TypeOf(m).Elem())
		v.Elem().Set(reflect.ValueOf(m).Elem())
		walk(v.Elem())
		out[i] = v.Interface().(Message)
	}
	return out
}

func walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(s, v)
			v.Set(s)
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			walk(v.Field(i))
		}
	}
}

func TestRoundTripEach(t *testing.T) {
	for _, m := range allMessages() {
		t.Run(m.Type().String(), func(t *testing.T) {
			b, err := Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalise(got), normalise([]Message{m})) {
				t.Fatalf("got %#v, want %#v", got[0], m)
			}
			if got[0].Type() != m.Type() {
				t.Fatalf("type %v", got[0].Type())
			}
			// ReadFrame agrees, also one byte at a time.
			for _, r := range []io.Reader{bytes.NewReader(b), iotest.OneByteReader(bytes.NewReader(b))} {
				got, err := ReadFrame(r)
				if err != nil || !reflect.DeepEqual(normalise(got), normalise([]Message{m})) {
					t.Fatalf("ReadFrame: %#v, %v", got, err)
				}
			}
		})
	}
}

func TestZeroValues(t *testing.T) {
	// Minimal messages with empty optional fields.
	for _, m := range []Message{
		&Open{ReaderSerial: "R", KeyShares: []KeyShare{{Suite: 9, Public: []byte{1}}}},
		&FindResponse{}, &SelectResponse{}, &FindConfirm{}, &SelectConfirm{},
		&Relay{}, &Result{}, &Ping{}, &Pong{}, &Error{}, &ReadRequest{},
		&Accept{Public: []byte{4}},
	} {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%v: %v", m.Type(), err)
		}
		got, err := Unmarshal(b)
		if err != nil || !reflect.DeepEqual(normalise(got), normalise([]Message{m})) {
			t.Fatalf("%v: %#v, %v", m.Type(), got, err)
		}
	}
}

func TestMultiMessageFrames(t *testing.T) {
	all := allMessages()
	var buf bytes.Buffer
	// Frames of 1, 2, … messages back to back on one stream.
	for n := 1; n <= len(all); n++ {
		if err := WriteFrame(&buf, all[:n]...); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= len(all); n++ {
		got, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if !reflect.DeepEqual(normalise(got), normalise(all[:n])) {
			t.Fatalf("frame %d: %v", n, got)
		}
	}
	if _, err := ReadFrame(&buf); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	// Exactly MaxMessages is fine, one more is not.
	pings := make([]Message, MaxMessages+1)
	for i := range pings {
		pings[i] = &Ping{Nonce: uint64(i)}
	}
	b, err := Marshal(pings[:MaxMessages]...)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unmarshal(b); err != nil || len(got) != MaxMessages {
		t.Fatalf("16 messages: %d, %v", len(got), err)
	}
	if _, err := Marshal(pings...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Marshal 17: %v", err)
	}
	// A hand-made frame of 17 messages.
	b = append(b, byte(TypePing), 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0)
	fixLen(b)
	if _, err := Unmarshal(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Unmarshal 17: %v", err)
	}
}

// fixLen rewrites the body length of a frame after editing it.
func fixLen(b []byte) {
	n := len(b) - HeaderSize
	b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

func TestWriteFrameOneWrite(t *testing.T) {
	w := &countingWriter{}
	if err := WriteFrame(w, allMessages()...); err != nil {
		t.Fatal(err)
	}
	if w.calls != 1 {
		t.Fatalf("%d Write calls, want 1", w.calls)
	}
	if err := WriteFrame(w); !errors.Is(err, ErrMalformed) || w.calls != 1 {
		t.Fatalf("empty frame: %v (%d calls)", err, w.calls)
	}
	werr := errors.New("broken pipe")
	if err := WriteFrame(errWriter{werr}, &Ping{}); !errors.Is(err, werr) {
		t.Fatalf("write error: %v", err)
	}
}

type countingWriter struct{ calls int }

func (w *countingWriter) Write(p []byte) (int, error) { w.calls++; return len(p), nil }

type errWriter struct{ err error }

func (w errWriter) Write(p []byte) (int, error) { return 0, w.err }

func TestHeaderErrors(t *testing.T) {
	good, _ := Marshal(&Ping{Nonce: 7})
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrMalformed},
		{"short header", good[:7], ErrMalformed},
		{"magic 0", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMagic},
		{"magic 1", edit(func(b []byte) []byte { b[1] = 'X'; return b }), ErrMagic},
		{"TLS record", []byte{0x16, 0x03, 0x01, 0x00, 0x10, 0, 0, 0}, ErrMagic},
		{"version 0", edit(func(b []byte) []byte { b[2] = 0; return b }), ErrVersion},
		{"version 2", edit(func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"flags", edit(func(b []byte) []byte { b[3] = 0x80; return b }), ErrMalformed},
		{"too large", edit(func(b []byte) []byte { b[5] = 1; b[6], b[7] = 0, 1; return b }), ErrTooLarge}, // 64 KiB + 1
		{"huge", edit(func(b []byte) []byte { b[4], b[5], b[6], b[7] = 0xFF, 0xFF, 0xFF, 0xFF; return b }), ErrTooLarge},
		{"body short", good[:len(good)-1], ErrMalformed},
		{"body long", append(bytes.Clone(good), 0), ErrMalformed},
		{"empty body", []byte{'S', 'R', 1, 0, 0, 0, 0, 0}, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Unmarshal(c.frame); !errors.Is(err, c.want) {
				t.Fatalf("Unmarshal: %v, want %v", err, c.want)
			}
			// ReadFrame: same error for the header cases; truncation is EOF.
			_, err := ReadFrame(bytes.NewReader(c.frame))
			switch {
			case c.name == "empty":
				if err != io.EOF {
					t.Fatalf("ReadFrame: %v, want io.EOF", err)
				}
			case c.name == "short header" || c.name == "body short":
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadFrame: %v, want io.ErrUnexpectedEOF", err)
				}
			case c.name == "body long":
				if err != nil {
					t.Fatalf("ReadFrame reads exactly one frame: %v", err)
				}
			default:
				if !errors.Is(err, c.want) {
					t.Fatalf("ReadFrame: %v, want %v", err, c.want)
				}
			}
		})
	}
}

func TestVersionError(t *testing.T) {
	good, _ := Marshal(&Ping{})
	good[2] = 7
	r := bytes.NewReader(good)
	_, err := ReadFrame(r)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Version != 7 || !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v", err)
	}
	if r.Len() != len(good)-HeaderSize {
		t.Fatalf("ReadFrame consumed %d bytes, want only the header", len(good)-r.Len())
	}
	if CodeFor(err) != UnsupportedVersion {
		t.Fatalf("CodeFor = %v", CodeFor(err))
	}
	if !strings.Contains(err.Error(), "7") {
		t.Fatalf("message %q lacks the version", err)
	}
}

// TestNoAllocFromLength: a header claiming a huge body must not allocate it.
func TestNoAllocFromLength(t *testing.T) {
	hdr := []byte{'S', 'R', 1, 0, 0xFF, 0xFF, 0xFF, 0xFF}
	allocs := testing.AllocsPerRun(100, func() {
		ReadFrame(bytes.NewReader(hdr))
	})
	// A couple of small allocations for the error and reader; never 4 GiB.
	if allocs > 10 {
		t.Fatalf("%v allocations", allocs)
	}
	// A message length beyond the body is refused before use.
	b := []byte{'S', 'R', 1, 0, 0, 0, 0, 5, byte(TypeRelay), 0xFF, 0xFF, 0xFF, 0xFF}
	if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%v", err)
	}
}

// frameOf wraps one raw message (type, payload) in a valid frame header.
func frameOf(t Type, payload []byte) []byte {
	b := []byte{'S', 'R', 1, 0, 0, 0, 0, 0, byte(t), 0, 0, 0, 0}
	n := len(payload)
	b[9], b[10], b[11], b[12] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	b = append(b, payload...)
	fixLen(b)
	return b
}

func u16(n int) []byte { return []byte{byte(n >> 8), byte(n)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestPayloadErrors(t *testing.T) {
	ks := cat([]byte{1, byte(suite.GM), 1, 4})
	for _, c := range []struct {
		name    string
		t       Type
		payload []byte
		want    error
	}{
		{"unknown type", 0x03, nil, ErrMalformed},
		{"unknown type 0x7E", 0x7E, nil, ErrMalformed},
		{"find request with payload", TypeFindRequest, []byte{0}, ErrMalformed},
		{"select request with payload", TypeSelectRequest, []byte{0}, ErrMalformed},
		{"ping short", TypePing, make([]byte, 7), ErrMalformed},
		{"ping long", TypePing, make([]byte, 9), ErrMalformed},
		{"bool 2", TypeReadRequest, []byte{2}, ErrMalformed},
		{"read request empty", TypeReadRequest, nil, ErrMalformed},
		{"done 2", TypeFindResponse, cat([]byte{2, 0x9F}, u16(0)), ErrMalformed},
		{"sealed truncated", TypeRelay, cat(u16(10), make([]byte, 9)), ErrMalformed},
		{"sealed trailing", TypeRelay, cat(u16(1), make([]byte, 2)), ErrMalformed},
		{"sealed too large", TypeRelay, cat(u16(MaxSealed+1), make([]byte, MaxSealed+1)), ErrTooLarge},
		{"confirm too large", TypeFindConfirm, cat(u16(MaxSealed + 1)), ErrTooLarge},
		{"result too large", TypeResult, cat([]byte{0x90}, u16(MaxResultSealed+1)), ErrTooLarge},
		{"error message too large", TypeError, cat(u16(301), make([]byte, 4), u16(257), make([]byte, 257)), ErrTooLarge},
		{"error truncated", TypeError, []byte{1, 45, 0}, ErrMalformed},
		{"accept short id", TypeAccept, make([]byte, 15), ErrMalformed},
		{"accept empty public", TypeAccept, cat(make([]byte, 17), []byte{0}), ErrMalformed},
		{"accept public too large", TypeAccept, cat(make([]byte, 17), []byte{134}, make([]byte, 134)), ErrTooLarge},
		{"open empty serial", TypeOpen, cat([]byte{0}, ks, u16(0), []byte{0}), ErrMalformed},
		{"open serial too long", TypeOpen, cat([]byte{33}, make([]byte, 33), ks, u16(0), []byte{0}), ErrTooLarge},
		{"open no key share", TypeOpen, cat([]byte{1, 'R', 0}, u16(0), []byte{0}), ErrMalformed},
		{"open 5 key shares", TypeOpen, cat([]byte{1, 'R', 5}), ErrTooLarge},
		{"open duplicate suites", TypeOpen, cat([]byte{1, 'R', 2, 1, 1, 4, 1, 1, 4}, u16(0), []byte{0}), ErrMalformed},
		{"open public too large", TypeOpen, cat([]byte{1, 'R', 1, 1, 200}, make([]byte, 200)), ErrTooLarge},
		{"open sealed too large", TypeOpen, cat([]byte{1, 'R'}, ks, u16(MaxOpenSealed+1)), ErrTooLarge},
		{"open flags", TypeOpen, cat([]byte{1, 'R'}, ks, u16(0), []byte{1}), ErrMalformed},
		{"open no flags", TypeOpen, cat([]byte{1, 'R'}, ks, u16(0)), ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Unmarshal(frameOf(c.t, c.payload)); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestMarshalBounds(t *testing.T) {
	ks := []KeyShare{{Suite: suite.GM, Public: []byte{4}}}
	for _, c := range []struct {
		name string
		m    Message
		want error
	}{
		{"nil interface", nil, ErrMalformed},
		{"nil pointer", (*Relay)(nil), ErrMalformed},
		{"nil open", (*Open)(nil), ErrMalformed},
		{"foreign type", foreign{}, ErrMalformed},
		{"serial empty", &Open{KeyShares: ks}, ErrMalformed},
		{"serial long", &Open{ReaderSerial: strings.Repeat("x", 33), KeyShares: ks}, ErrTooLarge},
		{"no shares", &Open{ReaderSerial: "R"}, ErrMalformed},
		{"5 shares", &Open{ReaderSerial: "R", KeyShares: make([]KeyShare, 5)}, ErrTooLarge},
		{"dup shares", &Open{ReaderSerial: "R", KeyShares: append(ks, ks[0])}, ErrMalformed},
		{"empty public", &Open{ReaderSerial: "R", KeyShares: []KeyShare{{Suite: 1}}}, ErrMalformed},
		{"public long", &Accept{Public: make([]byte, 134)}, ErrTooLarge},
		{"open sealed", &Open{ReaderSerial: "R", KeyShares: ks, Sealed: make([]byte, MaxOpenSealed+1)}, ErrTooLarge},
		{"open flags", &Open{ReaderSerial: "R", KeyShares: ks, Flags: 1}, ErrMalformed},
		{"relay", &Relay{Sealed: make([]byte, MaxSealed+1)}, ErrTooLarge},
		{"find response", &FindResponse{Sealed: make([]byte, MaxSealed+1)}, ErrTooLarge},
		{"select confirm", &SelectConfirm{Sealed: make([]byte, MaxSealed+1)}, ErrTooLarge},
		{"result", &Result{Sealed: make([]byte, MaxResultSealed+1)}, ErrTooLarge},
		{"error message", &Error{Message: strings.Repeat("x", 257)}, ErrTooLarge},
		{"negative retry", &Error{RetryAfter: -1}, ErrMalformed},
		{"retry overflow", &Error{RetryAfter: MaxRetryAfter + 1}, ErrTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Marshal(c.m); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Field maxima are accepted.
	for _, m := range []Message{
		&Open{ReaderSerial: strings.Repeat("x", 32), KeyShares: []KeyShare{{1, make([]byte, 133)}, {2, []byte{1}}, {3, []byte{1}}, {4, []byte{1}}}, Sealed: make([]byte, MaxOpenSealed)},
		&Relay{Sealed: make([]byte, MaxSealed)},
		&Result{Sealed: make([]byte, MaxResultSealed)},
		&Error{Message: strings.Repeat("x", 256), RetryAfter: MaxRetryAfter},
	} {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%v at its bounds: %v", m.Type(), err)
		}
		if _, err := Unmarshal(b); err != nil {
			t.Fatalf("%v at its bounds: %v", m.Type(), err)
		}
	}
	// The body bound: 8 maximal relays exceed 64 KiB.
	relays := make([]Message, 8)
	for i := range relays {
		relays[i] = &Relay{Sealed: make([]byte, MaxSealed)}
	}
	if _, err := Marshal(relays...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
}

type foreign struct{}

func (foreign) Type() Type { return 0x55 }

func TestTruncationEverywhere(t *testing.T) {
	b, err := Marshal(allMessages()...)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := Unmarshal(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes decoded", n)
		}
		// Same body, header fixed up to the shorter length: still an error
		// (unless the cut falls exactly between messages).
		if n > HeaderSize {
			c := bytes.Clone(b[:n])
			fixLen(c)
			if msgs, err := Unmarshal(c); err == nil {
				re, _ := Marshal(msgs...)
				if !bytes.Equal(re, c) {
					t.Fatalf("cut at %d decoded to something else", n)
				}
			}
		}
	}
}

func TestRetryAfterMilliseconds(t *testing.T) {
	for _, c := range []struct{ in, out time.Duration }{
		{0, 0},
		{time.Microsecond, time.Millisecond}, // rounded up, never to zero
		{50 * time.Millisecond, 50 * time.Millisecond},
		{1500 * time.Microsecond, 2 * time.Millisecond},
		{MaxRetryAfter, MaxRetryAfter},
	} {
		b, err := Marshal(&Error{Code: Busy, RetryAfter: c.in})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := m[0].(*Error).RetryAfter; got != c.out {
			t.Errorf("%v → %v, want %v", c.in, got, c.out)
		}
	}
}

func TestErrorType(t *testing.T) {
	e := &Error{Code: Busy, RetryAfter: 50 * time.Millisecond, Message: "no idle SAM"}
	if got := e.Error(); got != "samrack: 301 busy, retry after 50ms: no idle SAM" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: CardGone}).Error(); got != "samrack: 203 card gone" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: 999, Message: "x"}).Error(); got != "samrack: 999 code 999: x" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: Internal, Message: "a\nfake log line\xff"}).Error(); got != "samrack: 500 internal: a\uFFFDfake log line\uFFFD" {
		t.Errorf("Error() = %q", got)
	}
	var err error = fmt.Errorf("read: %w", e)
	if !errors.Is(err, &Error{Code: Busy}) {
		t.Error("errors.Is same code = false")
	}
	if errors.Is(err, &Error{Code: SAMFault}) {
		t.Error("errors.Is other code = true")
	}
	var got *Error
	if !errors.As(err, &got) || got != e {
		t.Error("errors.As failed")
	}
	if CodeFor(err) != Busy || CodeFor(nil) != 0 || CodeFor(errors.New("x")) != Internal {
		t.Error("CodeFor")
	}
	for err, want := range map[error]Code{
		ErrMagic: Malformed, ErrMalformed: Malformed, ErrTooLarge: TooLarge,
		fmt.Errorf("x: %w", ErrTooLarge): TooLarge,
	} {
		if CodeFor(err) != want {
			t.Errorf("CodeFor(%v) = %v, want %v", err, CodeFor(err), want)
		}
	}
}

func TestCodeCatalogue(t *testing.T) {
	retryable := map[Code]bool{Busy: true, SAMFault: true, ShuttingDown: true}
	codes := []Code{UnknownReader, ReaderBlacklisted, ReaderSuspended, BadCredentials, BadCardSerial,
		CardBlacklisted, SerialMismatch, CardGone, CardAuthFailed, CardReadFailed, PossibleClone,
		Busy, SAMFault, Malformed, TooLarge, UnexpectedMessage, UnsupportedVersion, NoCommonSuite,
		Timeout, SessionAuth, Internal, ShuttingDown}
	if len(codes) != len(codeNames) {
		t.Fatalf("%d codes, %d names", len(codes), len(codeNames))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		s := c.String()
		if strings.HasPrefix(s, "code ") || seen[s] {
			t.Errorf("%d: name %q", c, s)
		}
		seen[s] = true
		if c.Retryable() != retryable[c] {
			t.Errorf("%v.Retryable() = %v", c, c.Retryable())
		}
	}
	if Code(102).String() != "reader blacklisted" || Code(12345).String() != "code 12345" {
		t.Error("String")
	}
	if TypeRelay.String() != "Relay" || Type(0x99).String() != "Type(0x99)" {
		t.Error("Type.String")
	}
}

func TestPreSession(t *testing.T) {
	p := &PreSession{
		CardSerial: [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
		Prefetch: []Exchange{
			{Cmd: []byte{0x05, 0x00, 0x00}, Resp: fill(12, 0x50)},
			{Cmd: fill(9, 0x1D), Resp: []byte{0x08}},
		},
	}
	b, err := MarshalPreSession(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalPreSession(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("%#v, %v", got, err)
	}
	// No prefetch.
	b, _ = MarshalPreSession(&PreSession{CardSerial: p.CardSerial})
	if len(b) != 9 {
		t.Fatalf("%d bytes", len(b))
	}
	if got, err := UnmarshalPreSession(b); err != nil || got.CardSerial != p.CardSerial || got.Prefetch != nil {
		t.Fatalf("%#v, %v", got, err)
	}
	// The largest pre-session fits the reader-key bound.
	max := &PreSession{Prefetch: make([]Exchange, MaxPrefetch)}
	for i := range max.Prefetch {
		max.Prefetch[i] = Exchange{Cmd: make([]byte, 150), Resp: make([]byte, 150)}
	}
	b, err = MarshalPreSession(max)
	if err != nil || len(b) != MaxPreSession || MaxPreSession > suite.MaxReaderPlaintext {
		t.Fatalf("max: %d bytes, %v", len(b), err)
	}
	if _, err := UnmarshalPreSession(b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    *PreSession
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"9 exchanges", &PreSession{Prefetch: make([]Exchange, 9)}, ErrTooLarge},
		{"exchange 301", &PreSession{Prefetch: []Exchange{{Cmd: make([]byte, 200), Resp: make([]byte, 101)}}}, ErrTooLarge},
		{"empty cmd", &PreSession{Prefetch: []Exchange{{Resp: []byte{1}}}}, ErrMalformed},
		{"empty resp", &PreSession{Prefetch: []Exchange{{Cmd: []byte{1}}}}, ErrMalformed},
	} {
		if _, err := MarshalPreSession(c.p); !errors.Is(err, c.want) {
			t.Errorf("Marshal %s: %v, want %v", c.name, err, c.want)
		}
	}
	serial := make([]byte, 8)
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short serial", serial[:7], ErrMalformed},
		{"no count", serial, ErrMalformed},
		{"count 9", cat(serial, []byte{9}), ErrTooLarge},
		{"truncated", cat(serial, []byte{1}, u16(3), []byte{1, 2}), ErrMalformed},
		{"exchange too large", cat(serial, []byte{1}, u16(200), make([]byte, 200), u16(101), make([]byte, 101)), ErrTooLarge},
		{"cmd too large", cat(serial, []byte{1}, u16(301)), ErrTooLarge},
		{"empty resp", cat(serial, []byte{1}, u16(1), []byte{1}, u16(0)), ErrMalformed},
		{"trailing", cat(serial, []byte{0, 0}), ErrMalformed},
		{"oversized", make([]byte, MaxPreSession+1), ErrTooLarge},
	} {
		if _, err := UnmarshalPreSession(c.b); !errors.Is(err, c.want) {
			t.Errorf("Unmarshal %s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestTranscript(t *testing.T) {
	id := [16]byte{0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF}
	got := Transcript("R1", []byte{1, 2, 3}, id, suite.X25519, []byte{9, 8})
	want := cat([]byte{2, 'R', '1', 3, 1, 2, 3}, id[:], []byte{2, 2, 9, 8})
	if !bytes.Equal(got, want) {
		t.Fatalf("Transcript = %x, want %x", got, want)
	}
	// Moving a byte between fields changes the transcript.
	if bytes.Equal(Transcript("R", []byte{'1', 1, 2, 3}, id, 2, []byte{9, 8}), got) {
		t.Fatal("ambiguous transcript")
	}
	// Oversized inputs are cut to the bounds.
	long := Transcript(strings.Repeat("x", 40), make([]byte, 200), id, 1, make([]byte, 200))
	if len(long) != 1+32+1+133+16+1+1+133 {
		t.Fatalf("len %d", len(long))
	}
}
