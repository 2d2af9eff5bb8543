package pcsc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebfe/scard"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc/apdu"
	"github.com/samrack/samrack/drivers/sam"
)

var _ sam.Transport = (*Transport)(nil)

// Options configure a Transport. The zero value is the default.
type Options struct {
	// Shared connects in SCARD_SHARE_SHARED mode. The default is exclusive:
	// a SAM holds one card session, so one host owns it.
	Shared bool
	// CloseWait bounds how long Close waits for a PC/SC call in flight;
	// default 5 s.
	CloseWait time.Duration
}

// Transport is a sam.Transport to the SAM-V module in one PC/SC reader. It
// connects lazily (or at Connect), owns one goroutine with its own
// scard.Context for every PC/SC call, and recovers by itself from a card
// removed and reinserted, a card reset and a pcscd restart. Its methods are
// safe for concurrent use; commands run one at a time.
type Transport struct {
	reader string
	opts   Options

	reqs      chan *request // to the worker
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the worker has returned
	closeOnce sync.Once

	// Owned by the worker goroutine (run) alone:
	sc        *scard.Context
	card      *scard.Card
	needReset bool // reset the card before the next command
}

// request is one call to the worker.
type request struct {
	connect  bool   // only make sure of a connection
	capdu    []byte // the command APDU
	deadline time.Time

	state atomic.Int32  // reqPending → reqDone (worker) or reqAbandoned (caller)
	done  chan struct{} // closed by the worker after setting resp, err
	resp  []byte
	err   error
}

const (
	reqPending int32 = iota
	reqDone
	reqAbandoned
)

// New returns a Transport to the module in reader. It does no I/O; the
// first Transact (or Connect) connects. Close stops it.
func New(reader string, opts Options) *Transport {
	if opts.CloseWait <= 0 {
		opts.CloseWait = 5 * time.Second
	}
	t := &Transport{
		reader: reader,
		opts:   opts,
		reqs:   make(chan *request),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go t.run()
	return t
}

// Reader is the PC/SC reader name of t.
func (t *Transport) Reader() string { return t.reader }

// Connect makes sure t holds a connection to the card, connecting now if
// needed; Transact does the same by itself. It fails with sam.ErrGone when
// the reader holds no card.
func (t *Transport) Connect(ctx context.Context) error {
	_, err := t.call(ctx, &request{connect: true})
	if err != nil {
		return fmt.Errorf("pcsc %q: connect: %w", t.reader, err)
	}
	return nil
}

// Transact implements sam.Transport: it sends cmd as a GA 467 command APDU
// and decodes the response (see the package doc). When ctx ends first it
// returns an error wrapping sam.ErrTimeout (or ctx's error if it was
// canceled) and the card is reset before the next command.
func (t *Transport) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	capdu, err := apdu.AppendCommand(nil, cmd)
	if err != nil {
		return ga467.Reply{}, fmt.Errorf("%w: pcsc %q: %v: %w", sam.ErrProtocol, t.reader, cmd, err)
	}
	resp, err := t.call(ctx, &request{capdu: capdu})
	if err != nil {
		return ga467.Reply{}, fmt.Errorf("pcsc %q: %v: %w", t.reader, cmd, err)
	}
	r, err := apdu.ParseReply(resp)
	var se *apdu.StatusError
	switch {
	case errors.As(err, &se):
		return ga467.Reply{}, fmt.Errorf("%w: pcsc %q: %v: %w", sam.ErrTransport, t.reader, cmd, err)
	case err != nil:
		return ga467.Reply{}, fmt.Errorf("%w: pcsc %q: %v: %w", sam.ErrProtocol, t.reader, cmd, err)
	}
	return r, nil
}

// Close implements sam.Transport: it disconnects (leaving the card as it is),
// releases the PC/SC context and stops the worker. If a PC/SC call is stuck
// in pcscd, Close gives up after Options.CloseWait with an error wrapping
// sam.ErrTimeout; the worker then ends as soon as pcscd lets go.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { close(t.quit) })
	wait := time.NewTimer(t.opts.CloseWait)
	defer wait.Stop()
	select {
	case <-t.done:
		return nil
	case <-wait.C:
		return fmt.Errorf("%w: pcsc %q: close: a PC/SC call is still in pcscd", sam.ErrTimeout, t.reader)
	}
}

// call hands req to the worker and waits for it or for ctx.
func (t *Transport) call(ctx context.Context, req *request) ([]byte, error) {
	req.done = make(chan struct{})
	req.deadline, _ = ctx.Deadline()
	select {
	case <-t.quit:
		return nil, sam.ErrClosed
	case <-ctx.Done():
		return nil, ctxError(ctx, "the reader is still busy with an abandoned command")
	case t.reqs <- req:
	}
	select {
	case <-req.done:
		return req.resp, req.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqPending, reqAbandoned) {
			return nil, ctxError(ctx, "no response")
		}
		<-req.done // finished just now
		return req.resp, req.err
	}
}

func ctxError(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s before the deadline: %w", sam.ErrTimeout, what, ctx.Err())
	}
	return fmt.Errorf("%s: %w", what, ctx.Err())
}

// run is the worker: it owns the PC/SC context and card handle and makes
// every PC/SC call of t. Close stops it.
func (t *Transport) run() {
	defer close(t.done)
	defer t.dropContext()
	for {
		select {
		case <-t.quit:
			return
		case req := <-t.reqs:
			resp, err := t.serve(req)
			req.resp, req.err = resp, err
			// If the caller gave up, the late reply has just been
			// consumed here: unlike a serial line, nothing stale is left
			// on the channel, so no card reset is needed. (A PC/SC reset
			// racing a module that is coming back makes pcscd mark the
			// reader empty for good; see dropCard.) The SAM's own state
			// is the GA 467 layer's business: the rack resets it with
			// 10 FF.
			req.state.CompareAndSwap(reqPending, reqDone)
			close(req.done)
		}
	}
}

// serve runs one request on the worker.
func (t *Transport) serve(req *request) ([]byte, error) {
	if err := t.ensure(); err != nil {
		return nil, err
	}
	if req.connect {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		resp, err := t.card.Transmit(req.capdu)
		if err == nil && len(resp) >= 2 {
			return resp, nil
		}
		if err == nil {
			// pcscd's answer when the card went away mid-command. The
			// handle is dropped, not reset: the card may be back already,
			// and a reset in the moment it is not marks the reader empty
			// for good (see dropCard); a re-inserted card is fresh.
			t.dropCard()
			return nil, t.goneOr(req.deadline, fmt.Errorf("%w: response of %d bytes", sam.ErrTransport, len(resp)))
		}
		var code scard.Error
		if errors.As(err, &code) && attempt == 0 && (code == scard.ErrRemovedCard || code == scard.ErrResetCard) {
			// The command did not reach the card. If a card is back in
			// the reader (reinserted, or reset by someone), reconnect and
			// send it once more; if not, Reconnect says so.
			disp := scard.LeaveCard
			if code == scard.ErrRemovedCard || t.needReset {
				disp = scard.ResetCard
			}
			if rerr := t.card.Reconnect(t.share(), scard.ProtocolAny, disp); rerr != nil {
				return nil, t.fail(rerr)
			}
			t.needReset = false
			continue
		}
		if errors.As(err, &code) && code == scard.ErrNotTransacted {
			t.dropCard() // as above
			return nil, t.goneOr(req.deadline, fmt.Errorf("%w: %w", sam.ErrTransport, err))
		}
		return nil, t.fail(err)
	}
}

func (t *Transport) share() scard.ShareMode {
	if t.opts.Shared {
		return scard.ShareShared
	}
	return scard.ShareExclusive
}

// ensure establishes the context and connects the card as needed, and
// resets the card if an abandoned command left it in an unknown state.
func (t *Transport) ensure() error {
	if t.sc == nil {
		sc, err := scard.EstablishContext()
		if err != nil {
			return t.fail(err)
		}
		t.sc = sc
	}
	if t.card == nil {
		card, err := t.sc.Connect(t.reader, t.share(), scard.ProtocolAny)
		if err != nil {
			return t.fail(err)
		}
		t.card = card
	}
	if t.needReset {
		if err := t.card.Reconnect(t.share(), scard.ProtocolAny, scard.ResetCard); err != nil {
			return t.fail(err)
		}
		t.needReset = false
	}
	return nil
}

// fail maps a PC/SC error onto sam's errors and drops whatever it made
// useless: the card handle, or the whole context after a pcscd restart.
func (t *Transport) fail(err error) error {
	var code scard.Error
	if !errors.As(err, &code) {
		return fmt.Errorf("%w: %w", sam.ErrTransport, err)
	}
	switch code {
	case scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle:
		t.dropContext()
		return fmt.Errorf("%w: pcscd: %w", sam.ErrTransport, err)
	case scard.ErrNoSmartcard, scard.ErrRemovedCard, scard.ErrUnknownReader,
		scard.ErrReaderUnavailable, scard.ErrNoReadersAvailable:
		t.dropCard()
		return fmt.Errorf("%w: %w", sam.ErrGone, err)
	case scard.ErrTimeout:
		t.needReset = true
		return fmt.Errorf("%w: %w", sam.ErrTimeout, err)
	}
	t.needReset = true
	return fmt.Errorf("%w: %w", sam.ErrTransport, err)
}

// goneOr asks pcscd, until shortly before deadline and for at most a
// second, whether the card is still in the reader: it returns an error
// wrapping sam.ErrGone if not, and err if it is or nobody can tell.
func (t *Transport) goneOr(deadline time.Time, err error) error {
	wait := time.Second
	if !deadline.IsZero() {
		wait = min(wait, time.Until(deadline)-20*time.Millisecond)
	}
	if t.sc == nil || wait <= 0 {
		return err
	}
	rs := []scard.ReaderState{{Reader: t.reader, CurrentState: scard.StateUnaware}}
	if e := t.sc.GetStatusChange(rs, 0); e != nil {
		return err
	}
	if rs[0].EventState&scard.StatePresent == 0 {
		t.dropCard()
		return fmt.Errorf("%w: card left the reader: %w", sam.ErrGone, err)
	}
	rs[0].CurrentState = rs[0].EventState &^ scard.StateChanged
	if e := t.sc.GetStatusChange(rs, wait); e != nil {
		return err // still there (SCARD_E_TIMEOUT), or pcscd cannot tell
	}
	if rs[0].EventState&scard.StatePresent == 0 {
		t.dropCard()
		return fmt.Errorf("%w: card left the reader: %w", sam.ErrGone, err)
	}
	return err
}

// dropCard forgets the card handle, disconnecting it and leaving the card
// as it is. Not SCARD_RESET_CARD: pcscd checks the card is there before a
// reset and, if it is not, marks the reader empty behind the back of its
// event thread; a module pulled and re-inserted between two polls of that
// thread (hot swap, a hung vpcd card ejected and re-inserted) then stays
// "no card" for good. Whoever connects next resets the module through
// GA 467 as needed (the rack's recovery does).
func (t *Transport) dropCard() {
	if t.card != nil {
		t.card.Disconnect(scard.LeaveCard)
		t.card = nil
	}
	t.needReset = false
}

// dropContext drops the card handle and releases the context.
func (t *Transport) dropContext() {
	t.dropCard()
	if t.sc != nil {
		t.sc.Release()
		t.sc = nil
	}
}
