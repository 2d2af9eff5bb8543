package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/samrack/samrack/api/suite"
)

// Frame constants.
const (
	// Version is the protocol version this package speaks.
	Version = 1
	// HeaderSize is the size of the frame header.
	HeaderSize = 8
	// MaxFrame bounds the body of a frame (64 KiB).
	MaxFrame = 64 << 10
	// MaxMessages bounds the messages of one frame.
	MaxMessages = 16
	// MessageHeaderSize is the type byte and the u32 payload length.
	MessageHeaderSize = 5
	// DefaultPort is the appliance's default TCP port for readers (TLS 1.3).
	DefaultPort = 7467
)

// Magic starts every frame: "SR".
var Magic = [2]byte{0x53, 0x52}

// WriteFrame marshals msgs into one frame and writes it with a single Write
// call (so concurrent writers on a locked conn never interleave frames).
func WriteFrame(w io.Writer, msgs ...Message) error {
	b, err := Marshal(msgs...)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadFrame reads exactly one frame from r and decodes it. It returns io.EOF
// if r ends before the first header byte and an error wrapping
// io.ErrUnexpectedEOF if it ends inside the frame. On ErrMagic, ErrVersion
// (a *VersionError) or ErrTooLarge only the header has been read. It
// allocates one buffer of the body's size (≤ MaxFrame) per frame; the
// messages' byte fields alias it.
func ReadFrame(r io.Reader) ([]Message, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("wire: frame header: %w", err)
	}
	n, err := parseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wire: frame body: %w", err)
	}
	return decodeBody(body)
}

// parseHeader checks a frame header and returns the body length.
func parseHeader(h []byte) (int, error) {
	if h[0] != Magic[0] || h[1] != Magic[1] {
		return 0, fmt.Errorf("%w: % X", ErrMagic, h[:2])
	}
	if h[2] != Version {
		return 0, &VersionError{Version: h[2]}
	}
	if h[3] != 0 {
		return 0, fmt.Errorf("%w: reserved frame flags 0x%02X", ErrMalformed, h[3])
	}
	n := binary.BigEndian.Uint32(h[4:8])
	if n > MaxFrame {
		return 0, fmt.Errorf("%w: frame body of %d bytes > %d", ErrTooLarge, n, MaxFrame)
	}
	return int(n), nil
}

// Unmarshal decodes one whole frame (header and body, nothing after). The
// messages' byte fields alias frame.
func Unmarshal(frame []byte) ([]Message, error) {
	if len(frame) < HeaderSize {
		return nil, fmt.Errorf("%w: frame of %d bytes is shorter than its header", ErrMalformed, len(frame))
	}
	n, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	if body := len(frame) - HeaderSize; body != n {
		return nil, fmt.Errorf("%w: frame body of %d bytes, header says %d", ErrMalformed, body, n)
	}
	return decodeBody(frame[HeaderSize:])
}

func decodeBody(b []byte) ([]Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	msgs := make([]Message, 0, 4)
	for len(b) > 0 {
		if len(msgs) == MaxMessages {
			return nil, fmt.Errorf("%w: more than %d messages in a frame", ErrTooLarge, MaxMessages)
		}
		if len(b) < MessageHeaderSize {
			return nil, fmt.Errorf("%w: message %d: truncated header", ErrMalformed, len(msgs))
		}
		t := Type(b[0])
		n := binary.BigEndian.Uint32(b[1:5])
		b = b[MessageHeaderSize:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: message %d (%v): payload of %d bytes, %d left", ErrMalformed, len(msgs), t, n, len(b))
		}
		m, err := decodeMessage(t, b[:n:n])
		if err != nil {
			return nil, fmt.Errorf("message %d (%v): %w", len(msgs), t, err)
		}
		msgs = append(msgs, m)
		b = b[n:]
	}
	return msgs, nil
}

// Marshal encodes msgs (1..MaxMessages of them) as one frame.
func Marshal(msgs ...Message) ([]byte, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: a frame needs at least one message", ErrMalformed)
	}
	if len(msgs) > MaxMessages {
		return nil, fmt.Errorf("%w: %d messages > %d", ErrTooLarge, len(msgs), MaxMessages)
	}
	size := HeaderSize
	for _, m := range msgs {
		size += MessageHeaderSize + sizeHint(m)
	}
	b := make([]byte, HeaderSize, min(size, HeaderSize+MaxFrame))
	copy(b, Magic[:])
	b[2] = Version
	for i, m := range msgs {
		start := len(b)
		b = append(b, 0, 0, 0, 0, 0)
		var err error
		b, err = appendPayload(b, m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		b[start] = byte(m.Type())
		binary.BigEndian.PutUint32(b[start+1:], uint32(len(b)-start-MessageHeaderSize))
		if len(b)-HeaderSize > MaxFrame {
			return nil, fmt.Errorf("%w: frame body over %d bytes", ErrTooLarge, MaxFrame)
		}
	}
	binary.BigEndian.PutUint32(b[4:8], uint32(len(b)-HeaderSize))
	return b, nil
}

// ---- encoding ----

// sizeHint is about the payload size of m, for preallocation.
func sizeHint(m Message) int {
	switch m := m.(type) {
	case *Open:
		if m != nil {
			return 64 + len(m.ReaderSerial) + len(m.Sealed) + len(m.KeyShares)*(2+65)
		}
	case *Accept:
		if m != nil {
			return 18 + len(m.Public)
		}
	case *KeyShareSignature:
		if m != nil {
			n := 4 + len(m.Signature)
			for _, c := range m.Chain {
				n += 2 + len(c)
			}
			return n
		}
	case *FindResponse:
		if m != nil {
			return 4 + len(m.Sealed)
		}
	case *SelectResponse:
		if m != nil {
			return 4 + len(m.Sealed)
		}
	case *FindConfirm:
		if m != nil {
			return 2 + len(m.Sealed)
		}
	case *SelectConfirm:
		if m != nil {
			return 2 + len(m.Sealed)
		}
	case *Relay:
		if m != nil {
			return 2 + len(m.Sealed)
		}
	case *Result:
		if m != nil {
			return 3 + len(m.Sealed)
		}
	case *Error:
		if m != nil {
			return 8 + len(m.Message)
		}
	}
	return 8
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendBytes8 appends a u8-length-prefixed field of at most max bytes.
func appendBytes8(b []byte, field string, v []byte, min, max int) ([]byte, error) {
	if err := checkLen(field, len(v), min, max); err != nil {
		return nil, err
	}
	return append(append(b, byte(len(v))), v...), nil
}

// appendBytes16 appends a u16-length-prefixed field of at most max bytes.
func appendBytes16(b []byte, field string, v []byte, min, max int) ([]byte, error) {
	if err := checkLen(field, len(v), min, max); err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...), nil
}

func checkLen(field string, n, min, max int) error {
	if n > max {
		return fmt.Errorf("%w: %s of %d bytes > %d", ErrTooLarge, field, n, max)
	}
	if n < min {
		return fmt.Errorf("%w: %s of %d bytes < %d", ErrMalformed, field, n, min)
	}
	return nil
}

func appendPayload(b []byte, m Message) ([]byte, error) {
	var err error
	switch m := m.(type) {
	case *Open:
		if m == nil {
			return nil, errNil(m)
		}
		if b, err = appendBytes8(b, "reader serial", []byte(m.ReaderSerial), 1, MaxReaderSerial); err != nil {
			return nil, err
		}
		if err := checkKeyShares(len(m.KeyShares)); err != nil {
			return nil, err
		}
		b = append(b, byte(len(m.KeyShares)))
		for i, ks := range m.KeyShares {
			for _, prev := range m.KeyShares[:i] {
				if prev.Suite == ks.Suite {
					return nil, fmt.Errorf("%w: two key shares of suite %v", ErrMalformed, ks.Suite)
				}
			}
			b = append(b, byte(ks.Suite))
			if b, err = appendBytes8(b, "public key", ks.Public, 1, MaxPublic); err != nil {
				return nil, err
			}
		}
		if b, err = appendBytes16(b, "sealed pre-session", m.Sealed, 0, MaxOpenSealed); err != nil {
			return nil, err
		}
		if m.Flags != 0 {
			return nil, fmt.Errorf("%w: reserved Open flags 0x%02X", ErrMalformed, m.Flags)
		}
		return append(b, m.Flags), nil
	case *Accept:
		if m == nil {
			return nil, errNil(m)
		}
		b = append(b, m.SessionID[:]...)
		b = append(b, byte(m.Suite))
		return appendBytes8(b, "public key", m.Public, 1, MaxPublic)
	case *KeyShareSignature:
		if m == nil {
			return nil, errNil(m)
		}
		if err := checkChain(len(m.Chain)); err != nil {
			return nil, err
		}
		b = append(b, byte(m.Alg), byte(len(m.Chain)))
		for _, c := range m.Chain {
			if b, err = appendBytes16(b, "certificate", c, 1, MaxCertificate); err != nil {
				return nil, err
			}
		}
		return appendBytes16(b, "signature", m.Signature, 1, MaxSignature)
	case *FindRequest:
		if m == nil {
			return nil, errNil(m)
		}
		return b, nil
	case *SelectRequest:
		if m == nil {
			return nil, errNil(m)
		}
		return b, nil
	case *FindResponse:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(append(appendBool(b, m.Done), m.SW3), "sealed", m.Sealed, 0, MaxSealed)
	case *SelectResponse:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(append(appendBool(b, m.Done), m.SW3), "sealed", m.Sealed, 0, MaxSealed)
	case *FindConfirm:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(b, "sealed", m.Sealed, 0, MaxSealed)
	case *SelectConfirm:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(b, "sealed", m.Sealed, 0, MaxSealed)
	case *ReadRequest:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBool(b, m.Fingerprint), nil
	case *Relay:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(b, "sealed", m.Sealed, 0, MaxSealed)
	case *Result:
		if m == nil {
			return nil, errNil(m)
		}
		return appendBytes16(append(b, m.SW3), "sealed", m.Sealed, 0, MaxResultSealed)
	case *Ping:
		if m == nil {
			return nil, errNil(m)
		}
		return binary.BigEndian.AppendUint64(b, m.Nonce), nil
	case *Pong:
		if m == nil {
			return nil, errNil(m)
		}
		return binary.BigEndian.AppendUint64(b, m.Nonce), nil
	case *Error:
		if m == nil {
			return nil, errNil(m)
		}
		if m.RetryAfter < 0 {
			return nil, fmt.Errorf("%w: negative retry-after %v", ErrMalformed, m.RetryAfter)
		}
		if m.RetryAfter > MaxRetryAfter {
			return nil, fmt.Errorf("%w: retry-after %v > %v", ErrTooLarge, m.RetryAfter, MaxRetryAfter)
		}
		ms := (m.RetryAfter + time.Millisecond - 1) / time.Millisecond // round up: never turn 1µs into 0
		b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
		b = binary.BigEndian.AppendUint32(b, uint32(ms))
		return appendBytes16(b, "error message", []byte(m.Message), 0, MaxErrorMessage)
	case nil:
		return nil, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	return nil, fmt.Errorf("%w: unknown message type %T (0x%02X)", ErrMalformed, m, uint8(m.Type()))
}

func errNil(m Message) error { return fmt.Errorf("%w: nil %T", ErrMalformed, m) }

func checkKeyShares(n int) error {
	if n > MaxKeyShares {
		return fmt.Errorf("%w: %d key shares > %d", ErrTooLarge, n, MaxKeyShares)
	}
	if n < 1 {
		return fmt.Errorf("%w: no key share", ErrMalformed)
	}
	return nil
}

func checkChain(n int) error {
	if n > MaxCertChain {
		return fmt.Errorf("%w: %d certificates > %d", ErrTooLarge, n, MaxCertChain)
	}
	if n < 1 {
		return fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	return nil
}

// ---- decoding ----

// decoder reads a payload front to back; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail(fmt.Errorf("%w: %s truncated", ErrMalformed, what))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) uint8 {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if v := d.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) boolean(what string) bool {
	v := d.u8(what)
	if v > 1 {
		d.fail(fmt.Errorf("%w: %s is %d, want 0 or 1", ErrMalformed, what, v))
	}
	return v == 1
}

// bytesN reads a field whose length n was just decoded, checking n against
// its bounds before touching the data.
func (d *decoder) bytesN(n int, what string, min, max int) []byte {
	if d.err != nil {
		return nil
	}
	if err := checkLen(what, n, min, max); err != nil {
		d.fail(err)
		return nil
	}
	return d.take(n, what)
}

func (d *decoder) bytes8(what string, min, max int) []byte {
	n := d.u8(what + " length")
	return d.bytesN(int(n), what, min, max)
}

func (d *decoder) bytes16(what string, min, max int) []byte {
	n := d.u16(what + " length")
	return d.bytesN(int(n), what, min, max)
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b)))
	}
	return d.err
}

func decodeMessage(t Type, p []byte) (Message, error) {
	d := &decoder{b: p}
	var m Message
	switch t {
	case TypeOpen:
		o := &Open{}
		o.ReaderSerial = string(d.bytes8("reader serial", 1, MaxReaderSerial))
		n := int(d.u8("key share count"))
		if d.err == nil {
			if err := checkKeyShares(n); err != nil {
				d.fail(err)
			}
		}
		if d.err == nil {
			o.KeyShares = make([]KeyShare, n)
			for i := range o.KeyShares {
				o.KeyShares[i].Suite = suite.ID(d.u8("suite"))
				o.KeyShares[i].Public = d.bytes8("public key", 1, MaxPublic)
				for _, prev := range o.KeyShares[:i] {
					if d.err == nil && prev.Suite == o.KeyShares[i].Suite {
						d.fail(fmt.Errorf("%w: two key shares of suite %v", ErrMalformed, prev.Suite))
					}
				}
			}
		}
		o.Sealed = d.bytes16("sealed pre-session", 0, MaxOpenSealed)
		o.Flags = d.u8("flags")
		if d.err == nil && o.Flags != 0 {
			d.fail(fmt.Errorf("%w: reserved Open flags 0x%02X", ErrMalformed, o.Flags))
		}
		m = o
	case TypeAccept:
		a := &Accept{}
		copy(a.SessionID[:], d.take(16, "session ID"))
		a.Suite = suite.ID(d.u8("suite"))
		a.Public = d.bytes8("public key", 1, MaxPublic)
		m = a
	case TypeKeyShareSignature:
		k := &KeyShareSignature{Alg: suite.SigAlg(d.u8("signature algorithm"))}
		n := int(d.u8("certificate count"))
		if d.err == nil {
			if err := checkChain(n); err != nil {
				d.fail(err)
			}
		}
		if d.err == nil {
			k.Chain = make([][]byte, n)
			for i := range k.Chain {
				k.Chain[i] = d.bytes16("certificate", 1, MaxCertificate)
			}
		}
		k.Signature = d.bytes16("signature", 1, MaxSignature)
		m = k
	case TypeFindRequest:
		m = &FindRequest{}
	case TypeSelectRequest:
		m = &SelectRequest{}
	case TypeFindResponse:
		r := &FindResponse{Done: d.boolean("done"), SW3: d.u8("SW3")}
		r.Sealed = d.bytes16("sealed", 0, MaxSealed)
		m = r
	case TypeSelectResponse:
		r := &SelectResponse{Done: d.boolean("done"), SW3: d.u8("SW3")}
		r.Sealed = d.bytes16("sealed", 0, MaxSealed)
		m = r
	case TypeFindConfirm:
		m = &FindConfirm{Sealed: d.bytes16("sealed", 0, MaxSealed)}
	case TypeSelectConfirm:
		m = &SelectConfirm{Sealed: d.bytes16("sealed", 0, MaxSealed)}
	case TypeReadRequest:
		m = &ReadRequest{Fingerprint: d.boolean("fingerprint")}
	case TypeRelay:
		m = &Relay{Sealed: d.bytes16("sealed", 0, MaxSealed)}
	case TypeResult:
		r := &Result{SW3: d.u8("SW3")}
		r.Sealed = d.bytes16("sealed", 0, MaxResultSealed)
		m = r
	case TypePing:
		m = &Ping{Nonce: d.u64("nonce")}
	case TypePong:
		m = &Pong{Nonce: d.u64("nonce")}
	case TypeError:
		e := &Error{Code: Code(d.u16("code"))}
		e.RetryAfter = time.Duration(d.u32("retry-after")) * time.Millisecond
		e.Message = string(d.bytes16("error message", 0, MaxErrorMessage))
		m = e
	default:
		return nil, fmt.Errorf("%w: unknown message type 0x%02X", ErrMalformed, uint8(t))
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return m, nil
}
