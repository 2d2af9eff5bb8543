package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/audit"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
)

// phase of a session: the seed's find, select and read.
type phase int

const (
	phaseOpen phase = iota
	phaseFound
	phaseSelected
	phaseDone
)

// session is one card read on a connection.
type session struct {
	id       [16]byte
	reader   Reader
	declared sam.Serial // the serial the reader sealed in Open
	hash     string     // keyed hash of declared, for audit
	prefetch []wire.Exchange
	used     []bool
	keys     *suite.Session
	lease    Lease
	attempts int
	phase    phase
	selected sam.Serial // the serial the SAM selected (authenticated by Read)
	what     sam.ReadWhat
	started  time.Time

	linkErr  error     // why the card link failed, if it did
	linkCode wire.Code // the wire code for linkErr
	cardGone bool      // the card stopped answering mid-script
}

// open runs the checks of an Open and, if they pass, leases a SAM and
// answers Accept. It returns false if the session was refused (an Error is
// queued).
func (c *conn) open(ctx context.Context, m *wire.Open) bool {
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
	s := &session{reader: r, declared: pre.CardSerial, prefetch: pre.Prefetch, used: make([]bool, len(pre.Prefetch)), started: cfg.Now()}
	s.hash = cfg.HashCard(s.declared)
	if cfg.Directory.CardBlacklisted(s.declared) {
		c.s.audit(audit.Event{Kind: audit.KindCardBlacklisted, Reader: r.Serial, Card: s.hash, Code: int(wire.CardBlacklisted), Detail: "declared serial"})
		c.sendError(wire.CardBlacklisted, 0, "card is blacklisted")
		return false
	}
	if uid, ok := prefetchedSerial(pre.Prefetch); ok && uid != s.declared {
		// The card's own answer to GET UID, as the reader prefetched it,
		// already contradicts the declared serial: refuse now rather than
		// hold a SAM for a whole read that deliver would refuse. Not
		// authenticated (the reader could forge it), so it only ever
		// refuses; the SAM-authenticated check in deliver stays the guard.
		return c.refuseUID(s, uid)
	}
	var share *wire.KeyShare
	for i := range m.KeyShares {
		if slices.Contains(suite.Supported(), m.KeyShares[i].Suite) {
			share = &m.KeyShares[i]
			break
		}
	}
	if share == nil {
		return reject(wire.NoCommonSuite, audit.KindReaderRejected, "no common suite", 0)
	}
	if _, err := fullRead(cfg.Rand, s.id[:]); err != nil {
		return reject(wire.Internal, "internal", "session id: "+err.Error(), 0)
	}
	eph, err := suite.Generate(share.Suite, cfg.Rand)
	if err != nil {
		return reject(wire.Internal, "internal", "ephemeral key: "+err.Error(), 0)
	}
	tr := wire.Transcript(r.Serial, share.Public, s.id, share.Suite, eph.Public())
	s.keys, err = eph.Agree(share.Public, tr, false)
	if err != nil {
		return reject(wire.BadCredentials, audit.KindReaderRejected, "key agreement: "+err.Error(), 0)
	}
	if err := c.lease(ctx, s); err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			return reject(wire.Busy, audit.KindBusy, "no idle SAM", busy.RetryAfter)
		}
		if ctx.Err() != nil { // the appliance is stopping
			return reject(wire.ShuttingDown, audit.KindBusy, "appliance shutting down", time.Second)
		}
		return reject(wire.SAMFault, audit.KindBusy, err.Error(), time.Second)
	}
	c.sess = s
	c.out = append(c.out, &wire.Accept{SessionID: s.id, Suite: share.Suite, Public: eph.Public()})
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
// declared serial, in the order deliver uses: a blacklisted card is told
// 201, any other 202; both raise the tampering alert. No SAM was leased.
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

func (c *conn) lease(ctx context.Context, s *session) error {
	ctx, cancel := context.WithTimeout(ctx, c.s.cfg.QueueWait)
	defer cancel()
	var prefer []ga467.SAMID
	if s.attempts == 0 {
		// A restart takes whichever SAM is idle: the reader's preferred
		// SAM may be the one that just failed, back from a quick recovery.
		prefer = c.s.cfg.Directory.PreferredSAMs(s.reader.Serial)
	}
	l, err := c.s.cfg.Pool.Lease(ctx, prefer)
	if err != nil {
		return err
	}
	s.lease = l
	s.attempts++
	c.sw.leased, c.sw.wait = time.Now(), 0
	return nil
}

// phase runs one of the seed's phases on the session's SAM. ok is false if
// the session ended with an error (queued); fatal if the connection must
// also close.
func (c *conn) phase(ctx context.Context, m wire.Message) (ok, fatal bool) {
	s := c.sess
	var want phase
	switch m.(type) {
	case *wire.FindRequest:
		want = phaseOpen
	case *wire.SelectRequest:
		want = phaseFound
	case *wire.ReadRequest:
		want = phaseSelected
	}
	if s.phase != want {
		return false, c.protocolError(wire.UnexpectedMessage, fmt.Sprintf("%T out of order", m))
	}
	err := c.runPhase(ctx, m)
	for err != nil {
		retry, fatal := c.sessionError(err)
		if !retry {
			return false, fatal
		}
		// The SAM failed under a card that is still at the reader: take
		// another SAM and run the phases so far again on it, with every
		// card exchange going to the reader (the prefetch was consumed).
		for i := range s.used {
			s.used[i] = true
		}
		if lerr := c.lease(ctx, s); lerr != nil {
			c.finish(wire.SAMFault, audit.KindSAMFault, "no SAM to restart on: "+lerr.Error(), time.Second)
			return false, false
		}
		c.s.audit(audit.Event{Kind: "read.restarted", Reader: s.reader.Serial, Card: s.hash, Slot: s.lease.Slot(), SAMID: s.lease.SAMID().String()})
		s.phase = phaseOpen
		// A failure of the replay or of the phase goes round again: the
		// SAM is released and, attempts permitting, another one leased.
		if err = c.replay(ctx, m, want); err == nil {
			err = c.runPhase(ctx, m)
		}
	}
	return true, false
}

// replay re-runs the phases before want on a fresh SAM through the link of
// the phase the reader is in.
func (c *conn) replay(ctx context.Context, m wire.Message, want phase) error {
	s := c.sess
	l := &link{c: c, msg: m}
	if want >= phaseFound {
		if _, err := c.findCard(ctx, l); err != nil {
			return err
		}
		s.phase = phaseFound
	}
	if want >= phaseSelected {
		serial, err := c.selectCard(ctx, l)
		if err != nil {
			return err
		}
		s.selected = serial
		s.phase = phaseSelected
	}
	return nil
}

// runPhase runs one phase and queues its response.
func (c *conn) runPhase(ctx context.Context, m wire.Message) error {
	s := c.sess
	l := &link{c: c, msg: m}
	switch m := m.(type) {
	case *wire.FindRequest:
		info, err := c.findCard(ctx, l)
		if err != nil {
			return err
		}
		s.phase = phaseFound
		c.out = append(c.out, &wire.FindResponse{Done: true, SW3: ga467.SW3CardFound, Sealed: s.keys.Seal(info)})
	case *wire.SelectRequest:
		serial, err := c.selectCard(ctx, l)
		if err != nil {
			return err
		}
		s.selected = serial
		s.phase = phaseSelected
		c.out = append(c.out, &wire.SelectResponse{Done: true, SW3: ga467.SW3OK, Sealed: s.keys.Seal(serial[:])})
	case *wire.ReadRequest:
		what := sam.ReadTextPhoto
		if m.Fingerprint {
			what = sam.ReadFingerprint
		}
		s.what = what
		rd, err := c.readCard(ctx, l, what)
		if err != nil {
			return err
		}
		c.deliver(rd)
	}
	return nil
}

// deliver runs the checks on the SAM-authenticated serial, releases the SAM
// and queues the Result.
func (c *conn) deliver(rd *sam.Reading) {
	s := c.sess
	auth := c.s.cfg.HashCard(s.selected)
	mismatch := s.selected != s.declared
	if mismatch {
		c.s.audit(audit.Event{Kind: audit.KindReaderTamper, Reader: s.reader.Serial, Card: auth, Declared: s.hash,
			Code: int(wire.SerialMismatch), Detail: "declared card serial differs from the SAM-authenticated one"})
	}
	switch {
	case c.s.cfg.Directory.CardBlacklisted(s.selected):
		// Checked first: a reader that lies about the serial of a
		// blacklisted card is told the card is blacklisted (do not retry),
		// with both alerts.
		c.s.audit(audit.Event{Kind: audit.KindCardBlacklisted, Reader: s.reader.Serial, Card: auth, Code: int(wire.CardBlacklisted), Detail: "SAM-authenticated serial"})
		c.finish(wire.CardBlacklisted, audit.KindReadRejected, "card is blacklisted", 0)
		return
	case mismatch:
		c.finish(wire.SerialMismatch, audit.KindReadRejected, "card serial mismatch", 0)
		return
	}
	data, err := encodeReading(rd, s.what)
	if err != nil { // the SAM driver checked the reply's bounds: a bug
		c.finish(wire.Internal, "read.failed", "result: "+err.Error(), 0)
		return
	}
	sealed := s.keys.Seal(data)
	clear(data)
	slot, id := s.lease.Slot(), s.lease.SAMID().String()
	timing := c.sw.timing()
	s.lease.Release(nil)
	s.lease = nil
	c.s.reads.Add(1)
	now := c.s.cfg.Now()
	c.s.audit(audit.Event{Kind: audit.KindReadOK, Reader: s.reader.Serial, Card: auth, Slot: slot, SAMID: id, Duration: now.Sub(s.started)})
	if other, ok := c.s.clone.seen(auth, s.reader.Serial, now); ok {
		c.s.audit(audit.Event{Kind: audit.KindPossibleClone, Reader: s.reader.Serial, Card: auth, Code: int(wire.PossibleClone),
			Detail: "also read by reader " + other + " within the clone window"})
	}
	c.out = append(c.out, &wire.Result{SW3: ga467.SW3OK, Sealed: sealed})
	if c.s.cfg.OnRead != nil {
		now := c.sw.timing()
		timing.Total, timing.Overhead = now.Total, now.Overhead
		c.s.cfg.OnRead(timing)
	}
	c.sess = nil
}

// sessionError classifies a failed phase. retry is true if the SAM failed
// and the read may restart on another SAM (the SAM was released as
// suspect); otherwise the session ended and its Error is queued.
func (c *conn) sessionError(err error) (retry, fatal bool) {
	s := c.sess
	if s.linkErr != nil {
		code := s.linkCode
		fatal = code != wire.CardGone
		c.finish(code, "read.failed", errorMessage(code, s.linkErr.Error()), 0)
		return false, fatal
	}
	if s.cardGone {
		c.finish(wire.CardGone, "read.failed", "card left the field: "+err.Error(), 0)
		return false, false
	}
	if sam.ModuleFault(err) {
		c.s.audit(audit.Event{Kind: audit.KindSAMFault, Reader: s.reader.Serial, Card: s.hash, Slot: s.lease.Slot(), SAMID: s.lease.SAMID().String(), Detail: err.Error()})
		s.lease.Release(err)
		s.lease = nil
		if s.attempts < c.s.cfg.MaxAttempts {
			return true, false
		}
		c.finish(wire.SAMFault, "read.failed", "SAM failed", time.Second)
		return false, false
	}
	var se *ga467.StatusError
	code := wire.CardReadFailed
	if errors.As(err, &se) {
		switch se.SW3 {
		case ga467.SW3CardAuthSAM, ga467.SW3SAMAuthCard, ga467.SW3Verify:
			code = wire.CardAuthFailed
		case ga467.SW3FindFailed, ga467.SW3SelectFailed:
			code = wire.CardGone
		}
	} else if errors.Is(err, context.Canceled) {
		code = wire.ShuttingDown
	}
	c.finish(code, "read.failed", err.Error(), 0)
	return false, false
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

// finish ends the session with an error code: the SAM (if still leased) is
// released with the failure as outcome, so the rack resets it.
func (c *conn) finish(code wire.Code, kind, detail string, retry time.Duration) {
	s := c.sess
	ev := audit.Event{Kind: kind, Code: int(code), Detail: detail}
	if s != nil {
		ev.Reader, ev.Card, ev.Duration = s.reader.Serial, s.hash, c.s.cfg.Now().Sub(s.started)
		if s.lease != nil {
			ev.Slot, ev.SAMID = s.lease.Slot(), s.lease.SAMID().String()
		}
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
	if s.lease != nil {
		s.lease.Release(fmt.Errorf("%w: %w", sam.ErrCardLink, outcome))
		s.lease = nil
	}
}

// findCard, selectCard and readCard run the SAM operations with the stopwatch paused:
// SAM time is not the appliance's overhead.
func (c *conn) findCard(ctx context.Context, l *link) ([]byte, error) {
	c.sw.pause()
	defer c.sw.resume()
	return c.sess.lease.SAM().Find(ctx, l)
}

func (c *conn) selectCard(ctx context.Context, l *link) (sam.Serial, error) {
	c.sw.pause()
	defer c.sw.resume()
	return c.sess.lease.SAM().Select(ctx, l)
}

func (c *conn) readCard(ctx context.Context, l *link, what sam.ReadWhat) (*sam.Reading, error) {
	c.sw.pause()
	defer c.sw.resume()
	return c.sess.lease.SAM().Read(ctx, l, what)
}

// link is the session's sam.CardLink for one phase: card frames the SAM
// wants are answered from the prefetch when it holds exactly those
// commands, else sent to the reader in the phase's message.
type link struct {
	c   *conn
	msg wire.Message // the phase's request
}

var _ sam.CardLink = (*link)(nil)

// Exchange implements sam.CardLink.
func (l *link) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	l.c.sw.resume()
	defer l.c.sw.pause()
	s := l.c.sess
	replies := make([][]byte, 0, len(cmds))
	for len(cmds) > 0 {
		r, ok := s.fromPrefetch(cmds[0])
		if !ok {
			break
		}
		replies = append(replies, r)
		cmds = cmds[1:]
	}
	if len(cmds) == 0 {
		return replies, nil
	}
	more, err := l.toReader(ctx, cmds)
	if err != nil {
		return nil, err
	}
	return append(replies, more...), nil
}

func (s *session) fromPrefetch(cmd []byte) ([]byte, bool) {
	for i, ex := range s.prefetch {
		if !s.used[i] && bytes.Equal(ex.Cmd, cmd) {
			s.used[i] = true
			return ex.Resp, true
		}
	}
	return nil, false
}

// linkFail records why the link failed and returns the error for the SAM
// driver (which wraps it in sam.ErrCardLink).
func (l *link) linkFail(code wire.Code, err error) error {
	l.c.sess.linkErr, l.c.sess.linkCode = err, code
	return err
}

// badFrame is linkFail for a reader frame that breaks the protocol: it is
// audited as a malformed frame, like one outside a session.
func (l *link) badFrame(code wire.Code, err error) error {
	l.c.s.audit(audit.Event{Kind: audit.KindFrameMalformed, Reader: l.c.reader, Code: int(code), Detail: err.Error()})
	return l.linkFail(code, err)
}

func (l *link) toReader(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	c, s := l.c, l.c.sess
	plain, err := ga467.EncodeCardFrames(cmds)
	if err != nil {
		return nil, l.linkFail(wire.Internal, err)
	}
	sealed := s.keys.Seal(plain)
	switch l.msg.(type) {
	case *wire.FindRequest:
		c.out = append(c.out, &wire.FindResponse{SW3: ga467.SW3CardExchange, Sealed: sealed})
	case *wire.SelectRequest:
		c.out = append(c.out, &wire.SelectResponse{SW3: ga467.SW3CardExchange, Sealed: sealed})
	default:
		c.out = append(c.out, &wire.Relay{Sealed: sealed})
	}
	c.sw.pause() // from here until the answer is in, the reader has the turn
	waitStart := time.Now()
	defer func() { c.sw.wait += time.Since(waitStart) }()
	err = c.flush()
	if err != nil {
		c.sw.resume()
		return nil, l.linkFail(wire.CardGone, fmt.Errorf("write to reader: %w", err))
	}
	dl := c.s.cfg.Now().Add(c.s.cfg.ReaderTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c.nc.SetReadDeadline(dl)
	msgs, err := wire.ReadFrame(c.br)
	c.sw.resume()
	if err != nil {
		err = fmt.Errorf("reader answer: %w", err)
		switch {
		case isTimeout(err):
			return nil, l.linkFail(wire.Timeout, err)
		case readerGone(err): // the card link is gone with the reader
			return nil, l.linkFail(wire.CardGone, err)
		case errors.Is(err, wire.ErrTooLarge):
			return nil, l.badFrame(wire.TooLarge, err)
		case errors.Is(err, wire.ErrVersion):
			return nil, l.badFrame(wire.UnsupportedVersion, err)
		}
		return nil, l.badFrame(wire.Malformed, err)
	}
	if len(msgs) != 1 {
		return nil, l.badFrame(wire.UnexpectedMessage, fmt.Errorf("reader answered with %d messages, want 1", len(msgs)))
	}
	var answer []byte
	switch m := msgs[0].(type) {
	case *wire.FindConfirm:
		if _, ok := l.msg.(*wire.FindRequest); ok {
			answer = m.Sealed
		}
	case *wire.SelectConfirm:
		if _, ok := l.msg.(*wire.SelectRequest); ok {
			answer = m.Sealed
		}
	case *wire.Relay:
		if _, ok := l.msg.(*wire.ReadRequest); ok {
			answer = m.Sealed
		}
	}
	if answer == nil {
		return nil, l.badFrame(wire.UnexpectedMessage, fmt.Errorf("reader answered %T to %T", msgs[0], l.msg))
	}
	plain, err = s.keys.Open(answer)
	if err != nil {
		return nil, l.linkFail(wire.SessionAuth, fmt.Errorf("reader answer: %w", err))
	}
	replies, err := ga467.DecodeCardFrames(plain)
	if err != nil {
		return nil, l.linkFail(wire.Malformed, fmt.Errorf("reader answer: %w", err))
	}
	if len(replies) > len(cmds) {
		return nil, l.linkFail(wire.Malformed, fmt.Errorf("reader sent %d card replies to %d commands", len(replies), len(cmds)))
	}
	if len(replies) < len(cmds) {
		s.cardGone = true
	}
	return replies, nil
}

// encodeReading is the plaintext of a successful Result (wire.EncodeResult:
// the version-1 length order, see wire.ResultOrder).
func encodeReading(rd *sam.Reading, what sam.ReadWhat) ([]byte, error) {
	return wire.EncodeResult(&ga467.ReadReply{Text: rd.Text, Photo: rd.Photo, Fingerprint: rd.Fingerprint,
		WithFingerprint: what == sam.ReadFingerprint})
}

func fullRead(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
