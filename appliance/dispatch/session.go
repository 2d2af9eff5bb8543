package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
)

// session is the front end's side of one card read on a connection: the
// session host holds the SAM and the session keys, the front end the
// reader's connection.
type session struct {
	hs      host.Session
	reader  Reader
	hash    string    // keyed hash of the declared serial, for audit
	next    int       // the next request the reader may send: 0 find, 1 select, 2 read, 3 none
	started time.Time // Open received
	// sigPending: the host's first Output, which starts with the
	// KeyShareSignature, is still to come.
	sigPending bool
	// first, firstErr: the first Step's outcome when the host ran it with
	// the Place (host.Placed.First), for the front end's first step.
	first    *host.Output
	firstErr error
}

// open runs the checks of an Open and, if they pass, places the session on
// a session host and answers Accept (and, on a connection that asked for
// it, the KeyShareSignature). first are the phase requests that follow
// the Open in its frame: they go with the Placement, so that a host on
// another appliance runs them at once. It returns false if the session was
// refused (an Error is queued).
func (c *conn) open(ctx context.Context, m *wire.Open, first []wire.Message) bool {
	cfg := &c.s.cfg
	reject := func(code wire.Code, kind, detail string, retry time.Duration) bool {
		c.s.audit(audit.Event{Kind: kind, Reader: m.ReaderSerial, Code: int(code), Detail: detail})
		c.sendError(code, retry, detail)
		return false
	}
	if m.ReaderSerial != c.reader {
		if _, known := cfg.Directory.Reader(c.reader); c.reader != "" && known {
			cfg.Directory.AuthFailed(ctx, c.reader)
		}
		return reject(wire.BadCredentials, audit.KindReaderRejected, "reader serial does not match the client certificate", 0)
	}
	r, ok := cfg.Directory.Reader(m.ReaderSerial)
	if cu, replica := cfg.Directory.(CatchUpper); !ok && replica {
		cctx, cancel := context.WithTimeout(ctx, catchUpWait)
		if cu.CatchUp(cctx) == nil {
			r, ok = cfg.Directory.Reader(m.ReaderSerial)
		}
		cancel()
	}
	switch {
	case !ok:
		return reject(wire.UnknownReader, audit.KindReaderRejected, "unknown reader", 0)
	case r.Status == ReaderBlacklisted || cfg.Directory.ReaderBlacklisted(r.Serial):
		return reject(wire.ReaderBlacklisted, "reader.blacklisted", "reader is blacklisted", 0)
	case r.Status == ReaderSuspended:
		return reject(wire.ReaderSuspended, audit.KindReaderRejected, "reader is suspended", 0)
	}
	plain, err := suite.OpenWithReaderKey(r.Cipher, r.Key, r.Serial, m.Sealed)
	var pre *wire.PreSession
	if err == nil {
		pre, err = wire.UnmarshalPreSession(plain)
	}
	if err != nil {
		cfg.Directory.AuthFailed(ctx, r.Serial)
		return reject(wire.BadCardSerial, "reader.bad_serial", "card serial does not decrypt under the reader key", 0)
	}
	if as, ok := cfg.Directory.(AuthSucceeder); ok {
		as.AuthSucceeded(ctx, r.Serial)
	}
	s := &session{reader: r, hash: cfg.HashCard(pre.CardSerial), started: cfg.Now()}
	if cfg.Directory.CardBlacklisted(pre.CardSerial) {
		c.s.audit(audit.Event{Kind: audit.KindCardBlacklisted, Reader: r.Serial, Card: s.hash, Code: int(wire.CardBlacklisted), Detail: "declared serial"})
		c.sendError(wire.CardBlacklisted, 0, "card is blacklisted")
		return false
	}
	if uid, ok := prefetchedSerial(pre.Prefetch); ok && uid != pre.CardSerial {
		// The card's own answer to GET UID, as the reader prefetched it,
		// already contradicts the declared serial: refuse now rather than
		// hold a SAM for a whole read that the host would refuse. Not
		// authenticated (the reader could forge it), so it only ever
		// refuses; the host's check of the SAM-authenticated serial stays
		// the guard.
		return c.refuseUID(s, uid)
	}
	// Placement: the terminal→SAM table's SAMs first, else any idle one,
	// waiting at most QueueWait.
	p := &host.Placement{Reader: r.Serial, KeyShares: m.KeyShares, Declared: pre.CardSerial, Prefetch: pre.Prefetch,
		Prefer: cfg.Directory.PreferredSAMs(r.Serial), Sign: c.signed, First: first, FirstWithin: cfg.HostTimeout}
	pctx, cancel := context.WithTimeout(ctx, cfg.QueueWait)
	hs, placed, err := c.s.host.Place(pctx, p)
	cancel()
	if err != nil {
		var ref *host.Refusal
		var busy *BusyError
		switch {
		case errors.As(err, &ref):
			return reject(ref.Code, ref.Kind, ref.Detail, 0)
		case errors.As(err, &busy):
			return reject(wire.Busy, audit.KindBusy, "no idle SAM", busy.RetryAfter)
		case ctx.Err() != nil: // the appliance is stopping
			return reject(wire.ShuttingDown, audit.KindBusy, "appliance shutting down", time.Second)
		}
		return reject(wire.SAMFault, audit.KindBusy, err.Error(), time.Second)
	}
	s.hs, s.sigPending = hs, c.signed
	s.first, s.firstErr = placed.First, placed.FirstErr
	c.sess = s
	c.sw.leased, c.sw.wait, c.sw.sam = time.Now(), 0, 0
	c.out = append(c.out, &placed.Accept)
	return true
}

// prefetchedSerial is the card serial in the reply to the first prefetched
// GET UID, if there is one and it is well formed.
func prefetchedSerial(ex []wire.Exchange) (sam.Serial, bool) {
	for _, e := range ex {
		if bytes.Equal(e.Cmd, idcard.GetUID) {
			uid, err := idcard.ParseSerial(e.Resp)
			return uid, err == nil
		}
	}
	return sam.Serial{}, false
}

// refuseUID refuses an Open whose prefetched GET UID differs from the
// declared serial, in the order the host's delivery uses: a blacklisted
// card is told 201, any other 202; both raise the tampering alert. No SAM
// was leased.
func (c *conn) refuseUID(s *session, uid sam.Serial) bool {
	r := s.reader
	card := c.s.cfg.HashCard(uid)
	c.s.audit(audit.Event{Kind: audit.KindReaderTamper, Reader: r.Serial, Card: card, Declared: s.hash,
		Code: int(wire.SerialMismatch), Detail: "declared card serial differs from the prefetched GET UID"})
	code, msg := wire.SerialMismatch, "card serial mismatch"
	if c.s.cfg.Directory.CardBlacklisted(uid) {
		c.s.audit(audit.Event{Kind: audit.KindCardBlacklisted, Reader: r.Serial, Card: card, Code: int(wire.CardBlacklisted), Detail: "prefetched GET UID"})
		code, msg = wire.CardBlacklisted, "card is blacklisted"
	}
	c.s.audit(audit.Event{Kind: audit.KindReadRejected, Reader: r.Serial, Card: card, Code: int(code), Detail: msg + " (prefetched GET UID)"})
	c.sendError(code, 0, msg)
	return false
}

// requestIndex is the position of a phase request in a session's order, or
// -1 for any other message.
func requestIndex(m wire.Message) int {
	switch m.(type) {
	case *wire.FindRequest:
		return 0
	case *wire.SelectRequest:
		return 1
	case *wire.ReadRequest:
		return 2
	}
	return -1
}

// requests handles the phase requests at the start of msgs: those in order
// go to the session host in one Step, an out-of-order one is a protocol
// error. It returns how many messages it consumed; ok is false if the
// session ended with an error (queued), fatal if the connection must close.
func (c *conn) requests(ctx context.Context, msgs []wire.Message) (n int, ok, fatal bool) {
	s := c.sess
	for n < len(msgs) && requestIndex(msgs[n]) == s.next {
		s.next++
		n++
	}
	if n == 0 {
		return 0, false, c.protocolError(wire.UnexpectedMessage, fmt.Sprintf("%T out of order", msgs[0]))
	}
	ok, fatal = c.phases(ctx, msgs[:n])
	return n, ok, fatal
}

// phases runs requests on the session host, relaying card exchanges
// between it and the reader, until the host has answered every request or
// the session ended.
func (c *conn) phases(ctx context.Context, requests []wire.Message) (ok, fatal bool) {
	in := &host.Input{Requests: requests}
	for {
		out, err := c.step(ctx, in)
		if err != nil {
			return false, c.hostFailed(ctx, err)
		}
		for _, m := range out.Messages {
			if e, isErr := m.(*wire.Error); isErr {
				c.countError(e.Code)
			}
		}
		c.out = append(c.out, out.Messages...)
		if out.End != nil {
			return c.ended(out.End)
		}
		if !out.Await || len(out.Messages) == 0 {
			return true, false
		}
		in = c.readerTurn(out.Messages[len(out.Messages)-1], out.AnswerWithin)
	}
}

// step is one Step of the session host, bounded by HostTimeout; the time
// the host spent in SAM operations is not the appliance's overhead.
func (c *conn) step(ctx context.Context, in *host.Input) (*host.Output, error) {
	var out *host.Output
	var err error
	if s := c.sess; s.first != nil || s.firstErr != nil {
		// The host ran this first Step with the Place: the same requests
		// (the session's first Step is always the Open frame's requests
		// when it has any).
		out, err = s.first, s.firstErr
		s.first, s.firstErr = nil, nil
	} else {
		ctx, cancel := context.WithTimeout(ctx, c.s.cfg.HostTimeout)
		defer cancel()
		out, err = c.sess.hs.Step(ctx, in)
	}
	if err == nil {
		c.sw.samTime(out.SAMTime)
		c.sess.sigPending = false
	}
	return out, err
}

// collect gets the KeyShareSignature of a session whose Accept goes out in
// a frame without phase requests: it must travel in the Accept's frame.
func (c *conn) collect(ctx context.Context) {
	out, err := c.step(ctx, &host.Input{})
	if err != nil {
		c.hostFailed(ctx, err)
		return
	}
	c.out = append(c.out, out.Messages...)
	if out.End != nil {
		c.sess = nil
	}
}

// hostFailed ends a session whose host did not answer a Step. It returns
// true when the connection must close.
func (c *conn) hostFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		c.finish(wire.ShuttingDown, "read.failed", "appliance shutting down", time.Second)
		return true
	}
	if errors.Is(err, host.ErrLink) {
		// The appliance running the SAM failed or cannot be reached: the
		// reader restarts the read at once (PROTOCOL.md §2.1), placed on
		// another SAM (the lost appliance's counts are gone with its link).
		c.finish(wire.SAMFault, audit.KindSAMFault, "session host lost: "+err.Error(), 0)
		return false
	}
	c.finish(wire.SAMFault, audit.KindSAMFault, "session host: "+err.Error(), time.Second)
	return false
}

// ended takes the outcome of a session the host ended.
func (c *conn) ended(o *host.Outcome) (ok, fatal bool) {
	c.sess = nil
	if o.Code != 0 {
		return false, o.Closes
	}
	c.s.reads.Add(1)
	if other, seen := c.s.clone.seen(o.Card, c.reader, c.s.cfg.Now()); seen {
		c.s.audit(audit.Event{Kind: audit.KindPossibleClone, Reader: c.reader, Card: o.Card, Code: int(wire.PossibleClone),
			Detail: "also read by reader " + other + " within the clone window"})
	}
	if c.s.cfg.OnRead != nil {
		t := c.sw.timing()
		t.Hold = o.Hold
		c.s.cfg.OnRead(t)
	}
	return true, false
}

// readerTurn sends the queued frame (ending with last, which asks the
// reader for card replies), waits for the reader's answer and returns it as
// the host's next input: the answer, or why there is none.
func (c *conn) readerTurn(last wire.Message, within time.Duration) *host.Input {
	c.sw.pause() // from here until the answer is in, the reader has the turn
	waitStart := time.Now()
	defer func() { c.sw.wait += time.Since(waitStart); c.sw.resume() }()
	if err := c.flush(); err != nil {
		return fail(wire.CardGone, fmt.Errorf("write to reader: %w", err))
	}
	dl := c.s.cfg.Now().Add(c.s.cfg.ReaderTimeout)
	if within > 0 && within < c.s.cfg.ReaderTimeout {
		dl = c.s.cfg.Now().Add(within)
	}
	c.nc.SetReadDeadline(dl)
	msgs, err := wire.ReadFrame(c.br)
	if err != nil {
		err = fmt.Errorf("reader answer: %w", err)
		switch {
		case isTimeout(err):
			return fail(wire.Timeout, err)
		case readerGone(err): // the card link is gone with the reader
			return fail(wire.CardGone, err)
		case errors.Is(err, wire.ErrTooLarge):
			return c.badFrame(wire.TooLarge, err)
		case errors.Is(err, wire.ErrVersion):
			return c.badFrame(wire.UnsupportedVersion, err)
		}
		return c.badFrame(wire.Malformed, err)
	}
	if len(msgs) != 1 {
		return c.badFrame(wire.UnexpectedMessage, fmt.Errorf("reader answered with %d messages, want 1", len(msgs)))
	}
	var want wire.Type
	switch last.(type) {
	case *wire.FindResponse:
		want = wire.TypeFindConfirm
	case *wire.SelectResponse:
		want = wire.TypeSelectConfirm
	default:
		want = wire.TypeRelay
	}
	if msgs[0].Type() != want {
		return c.badFrame(wire.UnexpectedMessage, fmt.Errorf("reader answered %v to %v", msgs[0].Type(), last.Type()))
	}
	return &host.Input{Answer: msgs[0]}
}

func fail(code wire.Code, err error) *host.Input {
	return &host.Input{Fail: &host.Failure{Code: code, Detail: err.Error()}}
}

// badFrame is a reader answer that breaks the protocol: it is audited as a
// malformed frame, like one outside a session, and ends the session.
func (c *conn) badFrame(code wire.Code, err error) *host.Input {
	c.s.audit(audit.Event{Kind: audit.KindFrameMalformed, Reader: c.reader, Code: int(code), Detail: err.Error()})
	return fail(code, err)
}

// finish ends the session from the front end's side with an error code
// (the host did not answer, or the reader stalled or left between phases):
// the host releases the SAM.
func (c *conn) finish(code wire.Code, kind, detail string, retry time.Duration) {
	s := c.sess
	ev := audit.Event{Kind: kind, Code: int(code), Detail: detail}
	if s != nil {
		ev.Reader, ev.Card, ev.Duration = s.reader.Serial, s.hash, c.s.cfg.Now().Sub(s.started)
	}
	c.s.audit(ev)
	c.sendError(code, retry, detail) // counted before the SAM is handed back
	c.endSession(fmt.Errorf("session ended: %s", code))
}

// endSession releases whatever the session holds.
func (c *conn) endSession(outcome error) {
	s := c.sess
	if s == nil {
		return
	}
	c.sess = nil
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.HostTimeout)
	defer cancel()
	s.hs.Release(ctx, outcome)
}

// endOnHost ends the session through its host with the reader-side code:
// the host audits it with the SAM it held and queues the Error.
func (c *conn) endOnHost(ctx context.Context, code wire.Code, detail string) {
	out, err := c.step(ctx, fail(code, errors.New(detail)))
	if err != nil {
		c.hostFailed(ctx, err)
		return
	}
	for _, m := range out.Messages {
		if e, isErr := m.(*wire.Error); isErr {
			c.countError(e.Code)
		}
	}
	c.out = append(c.out, out.Messages...)
	if out.End == nil { // a host that goes on after a failure: end it here
		c.endSession(errors.New(detail))
	}
	c.sess = nil
}

// errorMessage is the Error message for code: for 404 the parseable list
// of versions PROTOCOL.md §11 specifies (wire.VersionsMessage), else
// detail.
func errorMessage(code wire.Code, detail string) string {
	if code == wire.UnsupportedVersion {
		return wire.VersionsMessage()
	}
	return detail
}
