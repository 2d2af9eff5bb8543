package samtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// Named errors of the fakes.
var (
	// ErrUnexpected: a fake got a call its script does not allow.
	ErrUnexpected = errors.New("samtest: unexpected call")
	// ErrUnmet: a script ended with expectations not met.
	ErrUnmet = errors.New("samtest: unmet expectations")
	// ErrMismatch: a command differs from the recording being played back.
	ErrMismatch = errors.New("samtest: command differs from the recording")
)

// Exchange is one step of a Transport's script: the command it expects and
// what it does with it.
type Exchange struct {
	Cmd   ga467.Command
	Reply ga467.Reply // returned when Err is nil and Hang is false
	Err   error       // returned instead of a reply
	// Hang makes Transact block until its context is done, like a module
	// that stopped answering; it then returns an error wrapping
	// sam.ErrTimeout and the context's error.
	Hang bool
}

// Transport is a scripted fake sam.Transport: each Transact must carry the
// next command of the script, and gets the scripted reply, error or hang.
// A command the script does not expect gets an error wrapping
// ErrUnexpected, and is reported by Verify.
//
// A Transport is safe for concurrent use; the script is consumed in the
// order Transact calls take it.
type Transport struct {
	mu     sync.Mutex // mu guards everything below
	script []Exchange
	next   int
	sent   []ga467.Command
	errs   []error // unexpected commands
	closed int
}

var _ sam.Transport = (*Transport)(nil)

// NewTransport returns a Transport with the given script.
func NewTransport(script ...Exchange) *Transport {
	return &Transport{script: script}
}

// Expect adds a step answering cmd with r, and returns t.
func (t *Transport) Expect(cmd ga467.Command, r ga467.Reply) *Transport {
	return t.add(Exchange{Cmd: cmd, Reply: r})
}

// ExpectErr adds a step answering cmd with err, and returns t.
func (t *Transport) ExpectErr(cmd ga467.Command, err error) *Transport {
	return t.add(Exchange{Cmd: cmd, Err: err})
}

// ExpectHang adds a step that takes cmd and never answers, and returns t.
func (t *Transport) ExpectHang(cmd ga467.Command) *Transport {
	return t.add(Exchange{Cmd: cmd, Hang: true})
}

func (t *Transport) add(e Exchange) *Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.script = append(t.script, e)
	return t
}

// Transact implements sam.Transport. The returned reply's Data is a copy.
func (t *Transport) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	e, err := t.take(cmd)
	if err != nil {
		return ga467.Reply{}, err
	}
	if e.Hang {
		<-ctx.Done()
		return ga467.Reply{}, fmt.Errorf("%w: samtest: %v hung: %w", sam.ErrTimeout, cmd, ctx.Err())
	}
	if err := ctx.Err(); err != nil {
		return ga467.Reply{}, err
	}
	if e.Err != nil {
		return ga467.Reply{}, e.Err
	}
	r := e.Reply
	r.Data = bytes.Clone(r.Data)
	return r, nil
}

// take consumes the next step of the script if cmd is what it expects.
func (t *Transport) take(cmd ga467.Command) (Exchange, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = append(t.sent, cloneCommand(cmd))
	var err error
	switch {
	case t.closed > 0:
		return Exchange{}, fmt.Errorf("samtest: %v: %w", cmd, sam.ErrClosed)
	case t.next == len(t.script):
		err = fmt.Errorf("%w: %v after the end of the script (%d steps)", ErrUnexpected, cmd, len(t.script))
	case !sameCommand(t.script[t.next].Cmd, cmd):
		err = fmt.Errorf("%w: step %d: got %s, want %s", ErrUnexpected, t.next, commandText(cmd), commandText(t.script[t.next].Cmd))
	default:
		t.next++
		return t.script[t.next-1], nil
	}
	t.errs = append(t.errs, err)
	return Exchange{}, err
}

// Close implements sam.Transport. Transact after Close fails with an error
// wrapping sam.ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed++
	return nil
}

// Closed reports how many times Close was called.
func (t *Transport) Closed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Sent returns every command Transact was called with, in order.
func (t *Transport) Sent() []ga467.Command {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]ga467.Command(nil), t.sent...)
}

// Verify returns nil if every step of the script was taken and no
// unexpected command came; otherwise an error wrapping ErrUnmet or
// ErrUnexpected that lists what went wrong.
func (t *Transport) Verify() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := append([]error(nil), t.errs...)
	if left := t.script[t.next:]; len(left) > 0 {
		var b bytes.Buffer
		for i, e := range left {
			fmt.Fprintf(&b, "\n\tstep %d: %s", t.next+i, commandText(e.Cmd))
		}
		errs = append(errs, fmt.Errorf("%w: %d steps not taken:%s", ErrUnmet, len(left), b.String()))
	}
	return errors.Join(errs...)
}

func sameCommand(a, b ga467.Command) bool {
	return a.Cmd == b.Cmd && a.Para == b.Para && bytes.Equal(a.Data, b.Data)
}

func cloneCommand(c ga467.Command) ga467.Command {
	c.Data = bytes.Clone(c.Data)
	return c
}

// commandText is a command for a failure report: its code and up to 16
// bytes of data in hex.
func commandText(c ga467.Command) string {
	const show = 16
	if len(c.Data) <= show {
		return fmt.Sprintf("%02X %02X [% X]", c.Cmd, c.Para, c.Data)
	}
	return fmt.Sprintf("%02X %02X [% X … %d bytes]", c.Cmd, c.Para, c.Data[:show], len(c.Data))
}
