package wire

import (
	"encoding/binary"
	"fmt"
)

// Pre-session bounds.
const (
	// MaxPrefetch bounds PreSession.Prefetch.
	MaxPrefetch = 8
	// MaxExchange bounds one prefetched exchange: len(Cmd)+len(Resp).
	MaxExchange = 300
	// MaxPreSession is the largest encoded PreSession; it fits the
	// plaintext bound of suite.SealWithReaderKey.
	MaxPreSession = 8 + 1 + MaxPrefetch*(2+2+MaxExchange)
)

// PreSession is the plaintext of Open.Sealed: what the reader learnt from
// the card before it opened the session. The SAM side answers the SAM's own
// card commands from Prefetch (each exchange at most once, only if the
// command is byte-for-byte identical) instead of a round trip to the reader.
//
//	CardSerial (8) | count u8 (0..8) | count × ( cmd length u16 BE | cmd | resp length u16 BE | resp )
type PreSession struct {
	CardSerial [8]byte    // the card serial from select (the card's unique ID)
	Prefetch   []Exchange // in the order the reader ran them
}

// Exchange is one card command the reader ran and the card's reply to it
// (status word included). Cmd and Resp are non-empty and together at most
// MaxExchange bytes.
type Exchange struct {
	Cmd, Resp []byte
}

// MarshalPreSession encodes p (to be sealed with suite.SealWithReaderKey).
func MarshalPreSession(p *PreSession) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil pre-session", ErrMalformed)
	}
	if len(p.Prefetch) > MaxPrefetch {
		return nil, fmt.Errorf("%w: %d prefetched exchanges > %d", ErrTooLarge, len(p.Prefetch), MaxPrefetch)
	}
	n := 9
	for i, x := range p.Prefetch {
		if err := checkExchange(i, len(x.Cmd), len(x.Resp)); err != nil {
			return nil, err
		}
		n += 4 + len(x.Cmd) + len(x.Resp)
	}
	b := make([]byte, 0, n)
	b = append(b, p.CardSerial[:]...)
	b = append(b, byte(len(p.Prefetch)))
	for _, x := range p.Prefetch {
		b = binary.BigEndian.AppendUint16(b, uint16(len(x.Cmd)))
		b = append(b, x.Cmd...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(x.Resp)))
		b = append(b, x.Resp...)
	}
	return b, nil
}

func checkExchange(i, cmd, resp int) error {
	if cmd > MaxExchange || resp > MaxExchange || cmd+resp > MaxExchange {
		return fmt.Errorf("%w: prefetched exchange %d of %d+%d bytes > %d", ErrTooLarge, i, cmd, resp, MaxExchange)
	}
	if cmd == 0 || resp == 0 {
		return fmt.Errorf("%w: prefetched exchange %d has an empty command or reply", ErrMalformed, i)
	}
	return nil
}

// UnmarshalPreSession decodes what MarshalPreSession encoded (after
// suite.OpenWithReaderKey). The exchanges alias b.
func UnmarshalPreSession(b []byte) (*PreSession, error) {
	if len(b) > MaxPreSession {
		return nil, fmt.Errorf("%w: pre-session of %d bytes > %d", ErrTooLarge, len(b), MaxPreSession)
	}
	d := &decoder{b: b}
	p := &PreSession{}
	copy(p.CardSerial[:], d.take(8, "card serial"))
	count := int(d.u8("prefetch count"))
	if d.err == nil && count > MaxPrefetch {
		return nil, fmt.Errorf("%w: %d prefetched exchanges > %d", ErrTooLarge, count, MaxPrefetch)
	}
	if d.err == nil && count > 0 {
		p.Prefetch = make([]Exchange, count)
	}
	for i := 0; i < count && d.err == nil; i++ {
		cmd := d.bytes16("prefetch command", 1, MaxExchange)
		resp := d.bytes16("prefetch reply", 1, MaxExchange)
		if d.err == nil {
			if err := checkExchange(i, len(cmd), len(resp)); err != nil {
				d.fail(err)
			}
		}
		p.Prefetch[i] = Exchange{Cmd: cmd, Resp: resp}
	}
	if err := d.end(); err != nil {
		return nil, fmt.Errorf("pre-session: %w", err)
	}
	return p, nil
}
