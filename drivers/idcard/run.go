package idcard

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Run runs a script of card commands in order and returns the card's
// replies. It stops at the first command the card does not answer, returning
// the replies so far and the error (which wraps ErrNoCard when the card is
// gone), and after the first APDU whose status word is not 90 00, returning
// the replies including that one and a nil error. ISO 14443-3 frames (IsTypeB)
// carry no status word and never stop the script. This is what a reader does
// with each card exchange a SAM asks for.
func Run(ctx context.Context, rf RF, cmds [][]byte) ([][]byte, error) {
	replies := make([][]byte, 0, len(cmds))
	for i, cmd := range cmds {
		if err := ctx.Err(); err != nil {
			return replies, err
		}
		resp, err := rf.Transceive(ctx, cmd)
		if err != nil {
			return replies, fmt.Errorf("card frame %d of %d: %w", i+1, len(cmds), err)
		}
		replies = append(replies, resp)
		if !IsTypeB(cmd) && SW(resp) != SWOK {
			break
		}
	}
	return replies, nil
}

// Prefetch is what a reader does by itself before it opens a session: REQB,
// ATTRIB built from the ATQB's PUPI, GET UID and GET CHALLENGE. It returns
// those four exchanges, in order, and the card serial. They are exactly the
// first frames a SAM's find, select and read ask for (see the package doc),
// so the appliance can answer them without a round trip (Prefetched).
func Prefetch(ctx context.Context, rf RF) (ex []Exchange, serial [SerialLen]byte, err error) {
	do := func(cmd []byte) ([]byte, error) {
		resp, err := rf.Transceive(ctx, cmd)
		if err != nil {
			return nil, err
		}
		ex = append(ex, Exchange{Cmd: cmd, Resp: resp})
		return resp, nil
	}
	resp, err := do(ReqB)
	if err != nil {
		return nil, serial, fmt.Errorf("idcard: REQB: %w", err)
	}
	atqb, err := ParseATQB(resp)
	if err != nil {
		return nil, serial, fmt.Errorf("idcard: REQB: %w", err)
	}
	if resp, err = do(Attrib(atqb.PUPI)); err != nil {
		return nil, serial, fmt.Errorf("idcard: ATTRIB: %w", err)
	}
	if !AttribOK(resp) {
		return nil, serial, fmt.Errorf("idcard: ATTRIB: %w: answer of %d bytes", ErrBadReply, len(resp))
	}
	if resp, err = do(GetUID); err != nil {
		return nil, serial, fmt.Errorf("idcard: GET UID: %w", err)
	}
	if serial, err = ParseSerial(resp); err != nil {
		return nil, serial, fmt.Errorf("idcard: %w", err)
	}
	if resp, err = do(GetChallenge); err != nil {
		return nil, serial, fmt.Errorf("idcard: GET CHALLENGE: %w", err)
	}
	if _, err = ParseChallenge(resp); err != nil {
		return nil, serial, fmt.Errorf("idcard: %w", err)
	}
	return ex, serial, nil
}

// Prefetched answers card commands from exchanges a reader made in advance
// (Prefetch): a command is answered from the first unused exchange whose
// command has exactly the same bytes, and each exchange is used at most once.
// It is safe for concurrent use.
type Prefetched struct {
	mu   sync.Mutex // mu guards used
	ex   []Exchange
	used []bool
}

// NewPrefetched returns a Prefetched holding ex.
func NewPrefetched(ex []Exchange) *Prefetched {
	return &Prefetched{ex: ex, used: make([]bool, len(ex))}
}

// Take returns the recorded reply to cmd and marks its exchange used.
func (p *Prefetched) Take(cmd []byte) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.ex {
		if !p.used[i] && bytes.Equal(e.Cmd, cmd) {
			p.used[i] = true
			return e.Resp, true
		}
	}
	return nil, false
}

// Remaining is the number of unused exchanges.
func (p *Prefetched) Remaining() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, u := range p.used {
		if !u {
			n++
		}
	}
	return n
}
