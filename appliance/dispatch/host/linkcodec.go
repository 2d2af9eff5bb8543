package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
)

// The host interface on link frames (package cluster/link): a request
// frame, its reply frame (two for a PlaceFirst). A session's calls share
// one stream, from its Place to its end (remote.go); other calls have a
// stream each. Integers are big-endian; str16/bytes16 are a
// u16 length and the bytes, bytes32 a u32 length; durations are
// microseconds (u64), deadlines milliseconds left (u32, 0: none).
//
//	Place    deadline | reader str16 | n u8 × (suite u8 | public bytes16) | presession bytes16 | m u8 × SAMID(16) | sign u8
//	Placed   lease(16) | session id(16) | suite u8 | public bytes16 | slot u32 | SAMID(16)
//	Step     lease(16) | deadline | kind u8 (0 none, 1 requests, 2 answer, 3 fail) | kind 1,2: bytes32 (a wire frame) ; kind 3: code u16 | detail str16
//	Output   n u8 × bytes32 (one wire frame each) | await u8 | within | samtime | end u8 [ code u16 | closes u8 | card str16 | slot u32 | SAMID | hold | attempts u16 ]
//	PlaceFirst  bytes32 (a Place) | bytes32 (a Step, lease zero): the Placed reply, then the Step's Output or Error
//	Release  lease(16) | outcome str16
//	Released (empty)
//	Error    kind u8 | kind-dependent (see errKind)
const (
	frPlace uint8 = iota + 1
	frPlaced
	frStep
	frOutput
	frRelease
	frReleased
	frError
	_ // 8: frCount (announce.go)
	frPlaceFirst
)

// Error kinds of an Error frame.
const (
	errRefusal  uint8 = iota + 1 // code u16 | kind str16 | detail str16
	errBusy                      // retry after
	errGone                      // ErrSessionGone
	errClosed                    // ErrClosed
	errDeadline                  // the host's turn overran the deadline
	errOther                     // detail str16
	errNoLease                   // a lease this peer does not hold (forged, replayed, released)
)

// Bounds of the codec, beside wire's.
const (
	maxKeyShares = 8
	maxPrefer    = 64
	maxMessages  = wire.MaxMessages * 4
	maxDetail    = 1024
)

// ErrBadFrame reports a link frame that does not decode.
var ErrBadFrame = errors.New("host: malformed link frame")

// ErrNoLease reports a Step or Release for a lease the peer does not hold.
var ErrNoLease = errors.New("host: no such lease for this peer")

type enc []byte

func (e *enc) u8(v uint8)   { *e = append(*e, v) }
func (e *enc) u16(v uint16) { *e = binary.BigEndian.AppendUint16(*e, v) }
func (e *enc) u32(v uint32) { *e = binary.BigEndian.AppendUint32(*e, v) }
func (e *enc) u64(v uint64) { *e = binary.BigEndian.AppendUint64(*e, v) }
func (e *enc) b16(v []byte) {
	if len(v) > math.MaxUint16 {
		v = v[:math.MaxUint16]
	}
	e.u16(uint16(len(v)))
	*e = append(*e, v...)
}
func (e *enc) b32(v []byte) { e.u32(uint32(len(v))); *e = append(*e, v...) }
func (e *enc) str(s string) {
	if len(s) > maxDetail {
		s = s[:maxDetail]
	}
	e.b16([]byte(s))
}
func (e *enc) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}
func (e *enc) dur(d time.Duration)  { e.u64(uint64(max(d, 0) / time.Microsecond)) }
func (e *enc) samid(id ga467.SAMID) { *e = append(*e, id.Bytes()...) }

// deadline encodes the time left before d (0: none), at least 1 ms.
func (e *enc) deadline(d time.Time, ok bool) {
	if !ok {
		e.u32(0)
		return
	}
	ms := time.Until(d).Milliseconds()
	e.u32(uint32(min(max(ms, 1), math.MaxUint32)))
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: %s cut short", ErrBadFrame, what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
func (d *dec) u8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}
func (d *dec) u16(what string) uint16 {
	if b := d.take(2, what); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}
func (d *dec) u32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}
func (d *dec) u64(what string) uint64 {
	if b := d.take(8, what); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
func (d *dec) b16(what string, max int) []byte {
	n := int(d.u16(what))
	if d.err == nil && n > max {
		d.err = fmt.Errorf("%w: %s of %d bytes", ErrBadFrame, what, n)
		return nil
	}
	return d.take(n, what)
}
func (d *dec) b32(what string, max int) []byte {
	n := d.u32(what)
	if d.err == nil && n > uint32(max) {
		d.err = fmt.Errorf("%w: %s of %d bytes", ErrBadFrame, what, n)
		return nil
	}
	return d.take(int(n), what)
}
func (d *dec) str(what string) string { return string(d.b16(what, maxDetail)) }
func (d *dec) boolean(what string) bool {
	v := d.u8(what)
	if v > 1 && d.err == nil {
		d.err = fmt.Errorf("%w: %s: bool %d", ErrBadFrame, what, v)
	}
	return v == 1
}
func (d *dec) dur(what string) time.Duration {
	v := d.u64(what)
	if v > math.MaxInt64/uint64(time.Microsecond) {
		if d.err == nil {
			d.err = fmt.Errorf("%w: %s out of range", ErrBadFrame, what)
		}
		return 0
	}
	return time.Duration(v) * time.Microsecond
}
func (d *dec) samid(what string) ga467.SAMID {
	b := d.take(ga467.SAMIDLen, what)
	if b == nil {
		return ga467.SAMID{}
	}
	id, err := ga467.DecodeSAMID(b)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%w: %s: %w", ErrBadFrame, what, err)
	}
	return id
}
func (d *dec) lease() (id [16]byte) {
	copy(id[:], d.take(16, "lease"))
	return id
}
func (d *dec) deadline() time.Duration {
	return time.Duration(d.u32("deadline")) * time.Millisecond
}
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(d.b))
	}
	return d.err
}

// messages decodes one wire frame of messages.
func (d *dec) messages(what string) []wire.Message {
	b := d.b32(what, wire.HeaderSize+wire.MaxFrame)
	if d.err != nil {
		return nil
	}
	msgs, err := wire.Unmarshal(b)
	if err != nil {
		d.err = fmt.Errorf("%w: %s: %w", ErrBadFrame, what, err)
	}
	return msgs
}

func (e *enc) messages(msgs ...wire.Message) error {
	b, err := wire.Marshal(msgs...)
	if err != nil {
		return err
	}
	e.b32(b)
	return nil
}

func encodePlace(p *Placement, deadline time.Time, hasDeadline bool) ([]byte, error) {
	var e enc
	e.deadline(deadline, hasDeadline)
	e.str(p.Reader)
	if len(p.KeyShares) > maxKeyShares || len(p.Prefer) > maxPrefer {
		return nil, fmt.Errorf("host: placement too large")
	}
	e.u8(uint8(len(p.KeyShares)))
	for _, k := range p.KeyShares {
		e.u8(uint8(k.Suite))
		e.b16(k.Public)
	}
	pre, err := wire.MarshalPreSession(&wire.PreSession{CardSerial: p.Declared, Prefetch: p.Prefetch})
	if err != nil {
		return nil, err
	}
	e.b16(pre)
	e.u8(uint8(len(p.Prefer)))
	for _, id := range p.Prefer {
		e.samid(id)
	}
	e.boolean(p.Sign)
	return e, nil
}

func decodePlace(b []byte) (*Placement, time.Duration, error) {
	d := &dec{b: b}
	dl := d.deadline()
	p := &Placement{Reader: d.str("reader")}
	n := int(d.u8("key shares"))
	if n > maxKeyShares && d.err == nil {
		d.err = fmt.Errorf("%w: %d key shares", ErrBadFrame, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		p.KeyShares = append(p.KeyShares, wire.KeyShare{Suite: suite.ID(d.u8("suite")), Public: d.b16("public", suite.MaxPublic)})
	}
	if pre := d.b16("presession", wire.MaxPreSession); d.err == nil {
		ps, err := wire.UnmarshalPreSession(pre)
		if err != nil {
			d.err = fmt.Errorf("%w: %w", ErrBadFrame, err)
		} else {
			p.Declared, p.Prefetch = ps.CardSerial, ps.Prefetch
		}
	}
	n = int(d.u8("prefer"))
	if n > maxPrefer && d.err == nil {
		d.err = fmt.Errorf("%w: %d preferred SAMs", ErrBadFrame, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		p.Prefer = append(p.Prefer, d.samid("prefer"))
	}
	p.Sign = d.boolean("sign")
	if err := d.end(); err != nil {
		return nil, 0, err
	}
	return p, dl, nil
}

// encodePlaceFirst is a Place with the session's first Step (Placement.First).
func encodePlaceFirst(p *Placement, deadline time.Time, hasDeadline bool) ([]byte, error) {
	place, err := encodePlace(p, deadline, hasDeadline)
	if err != nil {
		return nil, err
	}
	step, err := encodeStep([16]byte{}, &Input{Requests: p.First}, time.Now().Add(p.FirstWithin), p.FirstWithin > 0)
	if err != nil {
		return nil, err
	}
	var e enc
	e.b32(place)
	e.b32(step)
	return e, nil
}

// decodePlaceFirst decodes a PlaceFirst: the placement with its First
// requests and FirstWithin, and the Place's deadline.
func decodePlaceFirst(b []byte) (*Placement, time.Duration, error) {
	d := &dec{b: b}
	place := d.b32("place", len(b))
	step := d.b32("first step", len(b))
	if err := d.end(); err != nil {
		return nil, 0, err
	}
	p, dl, err := decodePlace(place)
	if err != nil {
		return nil, 0, err
	}
	lease, in, within, err := decodeStep(step)
	if err != nil {
		return nil, 0, err
	}
	if lease != ([16]byte{}) || len(in.Requests) == 0 {
		return nil, 0, fmt.Errorf("%w: a first step must be requests without a lease", ErrBadFrame)
	}
	p.First, p.FirstWithin = in.Requests, within
	return p, dl, nil
}

func encodePlaced(lease [16]byte, pl *Placed) []byte {
	var e enc
	e = append(e, lease[:]...)
	e = append(e, pl.Accept.SessionID[:]...)
	e.u8(uint8(pl.Accept.Suite))
	e.b16(pl.Accept.Public)
	e.u32(uint32(pl.Slot))
	e.samid(pl.SAMID)
	return e
}

func decodePlaced(b []byte) ([16]byte, *Placed, error) {
	d := &dec{b: b}
	lease := d.lease()
	pl := &Placed{}
	copy(pl.Accept.SessionID[:], d.take(16, "session id"))
	pl.Accept.Suite = suite.ID(d.u8("suite"))
	pl.Accept.Public = d.b16("public", suite.MaxPublic)
	pl.Slot = int(d.u32("slot"))
	pl.SAMID = d.samid("SAM")
	return lease, pl, d.end()
}

func encodeStep(lease [16]byte, in *Input, deadline time.Time, hasDeadline bool) ([]byte, error) {
	var e enc
	e = append(e, lease[:]...)
	e.deadline(deadline, hasDeadline)
	switch {
	case in.Fail != nil:
		e.u8(3)
		e.u16(uint16(in.Fail.Code))
		e.str(in.Fail.Detail)
	case in.Answer != nil:
		e.u8(2)
		if err := e.messages(in.Answer); err != nil {
			return nil, err
		}
	case len(in.Requests) > 0:
		e.u8(1)
		if err := e.messages(in.Requests...); err != nil {
			return nil, err
		}
	default:
		e.u8(0)
	}
	return e, nil
}

func decodeStep(b []byte) ([16]byte, *Input, time.Duration, error) {
	d := &dec{b: b}
	lease := d.lease()
	dl := d.deadline()
	in := &Input{}
	switch k := d.u8("input"); k {
	case 0:
	case 1:
		in.Requests = d.messages("requests")
	case 2:
		if m := d.messages("answer"); len(m) == 1 {
			in.Answer = m[0]
		} else if d.err == nil {
			d.err = fmt.Errorf("%w: %d answers", ErrBadFrame, len(m))
		}
	case 3:
		in.Fail = &Failure{Code: wire.Code(d.u16("code")), Detail: d.str("detail")}
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: input kind %d", ErrBadFrame, k)
		}
	}
	return lease, in, dl, d.end()
}

func encodeOutput(o *Output) ([]byte, error) {
	var e enc
	if len(o.Messages) > maxMessages {
		return nil, fmt.Errorf("host: %d messages in an output", len(o.Messages))
	}
	e.u8(uint8(len(o.Messages)))
	for _, m := range o.Messages {
		if err := e.messages(m); err != nil {
			return nil, err
		}
	}
	e.boolean(o.Await)
	e.dur(o.AnswerWithin)
	e.dur(o.SAMTime)
	e.boolean(o.End != nil)
	if x := o.End; x != nil {
		e.u16(uint16(x.Code))
		e.boolean(x.Closes)
		e.str(x.Card)
		e.u32(uint32(x.Slot))
		e.samid(x.SAMID)
		e.dur(x.Hold)
		e.u16(uint16(x.Attempts))
	}
	return e, nil
}

func decodeOutput(b []byte) (*Output, error) {
	d := &dec{b: b}
	o := &Output{}
	n := int(d.u8("messages"))
	if n > maxMessages && d.err == nil {
		d.err = fmt.Errorf("%w: %d messages", ErrBadFrame, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		m := d.messages("message")
		if len(m) != 1 && d.err == nil {
			d.err = fmt.Errorf("%w: %d messages in one", ErrBadFrame, len(m))
		}
		o.Messages = append(o.Messages, m...)
	}
	o.Await = d.boolean("await")
	o.AnswerWithin = d.dur("within")
	o.SAMTime = d.dur("SAM time")
	if d.boolean("end") {
		o.End = &Outcome{Code: wire.Code(d.u16("code")), Closes: d.boolean("closes"), Card: d.str("card"),
			Slot: int(d.u32("slot")), SAMID: d.samid("SAM"), Hold: d.dur("hold"), Attempts: int(d.u16("attempts"))}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return o, nil
}

func encodeRelease(lease [16]byte, outcome error) []byte {
	var e enc
	e = append(e, lease[:]...)
	if outcome != nil {
		e.str(outcome.Error())
	} else {
		e.str("")
	}
	return e
}

func decodeRelease(b []byte) ([16]byte, error, error) {
	d := &dec{b: b}
	lease := d.lease()
	s := d.str("outcome")
	var outcome error
	if s != "" {
		outcome = errors.New(s)
	}
	return lease, outcome, d.end()
}

func encodeError(err error) []byte {
	var e enc
	var ref *Refusal
	var busy *BusyError
	switch {
	case errors.As(err, &ref):
		e.u8(errRefusal)
		e.u16(uint16(ref.Code))
		e.str(ref.Kind)
		e.str(ref.Detail)
	case errors.As(err, &busy):
		e.u8(errBusy)
		e.dur(busy.RetryAfter)
	case errors.Is(err, ErrSessionGone):
		e.u8(errGone)
	case errors.Is(err, ErrClosed):
		e.u8(errClosed)
	case errors.Is(err, ErrNoLease):
		e.u8(errNoLease)
	case errors.Is(err, context.DeadlineExceeded):
		e.u8(errDeadline)
	default:
		e.u8(errOther)
		e.str(err.Error())
	}
	return e
}

func decodeError(b []byte) error {
	d := &dec{b: b}
	var err error
	switch k := d.u8("error kind"); k {
	case errRefusal:
		err = &Refusal{Code: wire.Code(d.u16("code")), Kind: d.str("kind"), Detail: d.str("detail")}
	case errBusy:
		err = &BusyError{RetryAfter: d.dur("retry after")}
	case errGone:
		err = ErrSessionGone
	case errClosed:
		err = ErrClosed
	case errNoLease:
		err = ErrNoLease
	case errDeadline:
		err = context.DeadlineExceeded
	case errOther:
		err = fmt.Errorf("host: remote: %s", d.str("detail"))
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: error kind %d", ErrBadFrame, k)
		}
	}
	if e := d.end(); e != nil {
		return e
	}
	return err
}
