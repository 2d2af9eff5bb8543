package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// phase of a session: the seed's find, select and read.
type phase int

const (
	phaseOpen phase = iota
	phaseFound
	phaseSelected
)

// step is one Step in flight: the input and where its Output goes
// (buffered, so the session's goroutine never blocks on a front end that
// stopped waiting).
type step struct {
	in  *Input
	out chan *Output
}

// session is one placed session. The fields below done are owned by the
// session's goroutine (run); Step and Release talk to it through in, ctx
// and done.
type session struct {
	h       *Local
	ctx     context.Context // cancelled by Release and by the host's Close
	cancel  context.CancelFunc
	in      chan step
	done    chan struct{} // closed when run has returned: the lease is released
	relOnce sync.Once
	relWhy  error // Release's outcome, written before cancel

	id       [16]byte
	reader   string
	declared sam.Serial
	hash     string // keyed hash of declared, for audit
	prefetch []wire.Exchange
	used     []bool
	keys     *suite.Session
	lease    Lease
	leasedAt time.Time
	attempts int
	phase    phase
	selected sam.Serial // the serial the SAM selected (authenticated by Read)
	what     sam.ReadWhat
	started  time.Time

	sigc     chan signature // the key share's signature, until the first Output carries it
	cur      step           // the Step being answered
	msgs     []wire.Message // the Output being built
	pending  []wire.Message // phase requests not yet run
	samTime  time.Duration  // inside SAM operations, this Step
	samSince time.Time      // zero when not inside one
	end      *Outcome
	idle     bool // the front end fell silent

	linkErr  error     // why the card link failed, if it did
	linkCode wire.Code // the wire code for linkErr
	cardGone bool      // the card stopped answering mid-script
}

var _ Session = (*session)(nil)

func (s *session) setLease(l Lease) {
	s.lease, s.leasedAt = l, time.Now()
	s.attempts++
}

// Step implements Session.
func (s *session) Step(ctx context.Context, in *Input) (*Output, error) {
	st := step{in: in, out: make(chan *Output, 1)}
	select {
	case s.in <- st:
	case <-s.done:
		return nil, ErrSessionGone
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case o := <-st.out:
		return o, nil
	case <-s.done:
		select {
		case o := <-st.out: // the last Output, sent as the session ended
			return o, nil
		default:
			return nil, ErrSessionGone
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ended says whether the session ended (host.ender).
func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Release implements Session.
func (s *session) Release(ctx context.Context, outcome error) {
	s.relOnce.Do(func() {
		s.relWhy = outcome
		s.cancel()
	})
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}

// run is the session's goroutine: it takes the front end's inputs in turn
// until the session ends.
func (s *session) run() {
	defer s.h.wg.Done()
	defer close(s.done)
	defer s.cancel()
	for s.end == nil {
		st, ok := s.next()
		if !ok {
			s.quit()
			return
		}
		s.cur = st
		switch in := st.in; {
		case in.Fail != nil:
			s.finish(in.Fail.Code, "read.failed", in.Fail.Detail, 0, in.Fail.Code != wire.CardGone)
		case in.Answer != nil:
			s.finish(wire.Internal, "read.failed", "front end: answer out of turn", 0, true)
		default: // requests, or none: what is ready
			s.pending = append(s.pending, in.Requests...)
			for len(s.pending) > 0 && s.end == nil && s.ctx.Err() == nil {
				m := s.pending[0]
				s.pending = s.pending[1:]
				s.runPhase(m)
			}
		}
		if s.ctx.Err() != nil { // released while a SAM operation ran
			s.quit()
			return
		}
		s.reply(false, 0)
	}
}

// next waits for the front end's next input. It returns false when the
// session was released, the host closed, or the front end fell silent.
func (s *session) next() (step, bool) {
	t := time.NewTimer(s.h.cfg.IdleTimeout)
	defer t.Stop()
	select {
	case st := <-s.in:
		return st, true
	case <-s.ctx.Done():
		return step{}, false
	case <-t.C:
		s.idle = true
		s.cancel() // a SAM operation waiting on the link ends quietly too
		return step{}, false
	}
}

// reply sends the Output built so far to the Step being answered; within
// is the SAM's bound on the reader's answer when await is set.
func (s *session) reply(await bool, within time.Duration) {
	s.pauseSAM()
	if s.sigc != nil {
		// The first Output starts with the key share's signature. A
		// signer that failed leaves it out: the reader refuses the
		// session (PROTOCOL.md §8.1).
		sig := <-s.sigc
		s.sigc = nil
		if sig.err != nil {
			s.h.cfg.Logger.Error("sign key share", "reader", s.reader, "err", sig.err)
		} else {
			s.msgs = append([]wire.Message{sig.msg}, s.msgs...)
		}
	}
	s.cur.out <- &Output{Messages: s.msgs, Await: await, AnswerWithin: within, End: s.end, SAMTime: s.samTime}
	s.msgs, s.samTime = nil, 0
}

// quit ends a session that its front end left: the lease is released and
// nothing more is said to the front end.
func (s *session) quit() {
	if s.lease == nil {
		return
	}
	why := s.relWhy
	switch {
	case s.idle:
		why = fmt.Errorf("front end silent for %v", s.h.cfg.IdleTimeout)
		s.h.audit(audit.Event{Kind: "session.abandoned", Reader: s.reader, Card: s.hash, Slot: s.lease.Slot(),
			SAMID: s.lease.SAMID().String(), Detail: why.Error()})
	case why == nil:
		why = errReleased
	}
	s.lease.Release(fmt.Errorf("%w: %w", sam.ErrCardLink, why))
	s.lease = nil
}

// runPhase runs one phase request, restarting on another SAM when the SAM
// fails under a card that is still there.
func (s *session) runPhase(m wire.Message) {
	want := phaseOf(m)
	if s.phase != want {
		s.finish(wire.Internal, "read.failed", fmt.Sprintf("front end: %T out of order", m), 0, true)
		return
	}
	err := s.phaseOnce(m)
	for err != nil {
		if s.ctx.Err() != nil {
			return // released: run quits
		}
		if !s.sessionError(err) {
			return
		}
		// The SAM failed under a card that is still at the reader: take
		// another SAM and run the phases so far again on it, with every
		// card exchange going to the reader (the prefetch was consumed).
		for i := range s.used {
			s.used[i] = true
		}
		if lerr := s.relet(); lerr != nil {
			s.finish(wire.SAMFault, audit.KindSAMFault, "no SAM to restart on: "+lerr.Error(), time.Second, false)
			return
		}
		s.h.audit(audit.Event{Kind: "read.restarted", Reader: s.reader, Card: s.hash, Slot: s.lease.Slot(), SAMID: s.lease.SAMID().String()})
		s.phase = phaseOpen
		if err = s.replay(m, want); err == nil {
			err = s.phaseOnce(m)
		}
	}
}

func phaseOf(m wire.Message) phase {
	switch m.(type) {
	case *wire.SelectRequest:
		return phaseFound
	case *wire.ReadRequest:
		return phaseSelected
	}
	return phaseOpen
}

// relet leases another SAM for a restart: whichever is idle (the preferred
// SAM may be the one that just failed, back from a quick recovery).
func (s *session) relet() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.h.cfg.QueueWait)
	defer cancel()
	l, err := s.h.cfg.Pool.Lease(ctx, nil)
	if err != nil {
		return err
	}
	s.setLease(l)
	return nil
}

// replay re-runs the phases before want on a fresh SAM through the link of
// the phase the reader is in.
func (s *session) replay(m wire.Message, want phase) error {
	l := &link{s: s, msg: m}
	if want >= phaseFound {
		if _, err := s.findCard(l); err != nil {
			return err
		}
		s.phase = phaseFound
	}
	if want >= phaseSelected {
		serial, err := s.selectCard(l)
		if err != nil {
			return err
		}
		s.selected = serial
		s.phase = phaseSelected
	}
	return nil
}

// phaseOnce runs one phase and queues its response.
func (s *session) phaseOnce(m wire.Message) error {
	l := &link{s: s, msg: m}
	switch m := m.(type) {
	case *wire.FindRequest:
		info, err := s.findCard(l)
		if err != nil {
			return err
		}
		s.phase = phaseFound
		s.msgs = append(s.msgs, &wire.FindResponse{Done: true, SW3: ga467.SW3CardFound, Sealed: s.keys.Seal(info)})
	case *wire.SelectRequest:
		serial, err := s.selectCard(l)
		if err != nil {
			return err
		}
		s.selected = serial
		s.phase = phaseSelected
		s.msgs = append(s.msgs, &wire.SelectResponse{Done: true, SW3: ga467.SW3OK, Sealed: s.keys.Seal(serial[:])})
	case *wire.ReadRequest:
		what := sam.ReadTextPhoto
		if m.Fingerprint {
			what = sam.ReadFingerprint
		}
		s.what = what
		rd, err := s.readCard(l, what)
		if err != nil {
			return err
		}
		s.deliver(rd)
	}
	return nil
}

// deliver runs the checks on the SAM-authenticated serial, releases the SAM
// and queues the Result.
func (s *session) deliver(rd *sam.Reading) {
	auth := s.h.cfg.HashCard(s.selected)
	mismatch := s.selected != s.declared
	if mismatch {
		s.h.audit(audit.Event{Kind: audit.KindReaderTamper, Reader: s.reader, Card: auth, Declared: s.hash,
			Code: int(wire.SerialMismatch), Detail: "declared card serial differs from the SAM-authenticated one"})
	}
	switch {
	case s.h.cfg.Blacklist != nil && s.h.cfg.Blacklist.CardBlacklisted(s.selected):
		// Checked first: a reader that lies about the serial of a
		// blacklisted card is told the card is blacklisted (do not retry),
		// with both alerts.
		s.h.audit(audit.Event{Kind: audit.KindCardBlacklisted, Reader: s.reader, Card: auth, Code: int(wire.CardBlacklisted), Detail: "SAM-authenticated serial"})
		s.finish(wire.CardBlacklisted, audit.KindReadRejected, "card is blacklisted", 0, false)
		return
	case mismatch:
		s.finish(wire.SerialMismatch, audit.KindReadRejected, "card serial mismatch", 0, false)
		return
	}
	data, err := encodeReading(rd, s.what)
	if err != nil { // the SAM driver checked the reply's bounds: a bug
		s.finish(wire.Internal, "read.failed", "result: "+err.Error(), 0, false)
		return
	}
	sealed := s.keys.Seal(data)
	clear(data)
	slot, id := s.lease.Slot(), s.lease.SAMID()
	hold := time.Since(s.leasedAt)
	s.lease.Release(nil)
	s.lease = nil
	s.h.audit(audit.Event{Kind: audit.KindReadOK, Reader: s.reader, Card: auth, Slot: slot, SAMID: id.String(), Duration: s.h.cfg.Now().Sub(s.started)})
	s.msgs = append(s.msgs, &wire.Result{SW3: ga467.SW3OK, Sealed: sealed})
	s.end = &Outcome{Card: auth, Slot: slot, SAMID: id, Hold: hold, Attempts: s.attempts}
}

// sessionError classifies a failed phase. It returns true if the SAM
// failed and the read may restart on another SAM (the SAM was released as
// suspect); otherwise the session ended and its Error is queued.
func (s *session) sessionError(err error) (retry bool) {
	if s.linkErr != nil {
		code := s.linkCode
		s.finish(code, "read.failed", errorMessage(code, s.linkErr.Error()), 0, code != wire.CardGone)
		return false
	}
	if s.cardGone {
		s.finish(wire.CardGone, "read.failed", "card left the field: "+err.Error(), 0, false)
		return false
	}
	if sam.ModuleFault(err) {
		s.h.audit(audit.Event{Kind: audit.KindSAMFault, Reader: s.reader, Card: s.hash, Slot: s.lease.Slot(), SAMID: s.lease.SAMID().String(), Detail: err.Error()})
		s.lease.Release(err)
		s.lease = nil
		if s.attempts < s.h.cfg.MaxAttempts {
			return true
		}
		s.finish(wire.SAMFault, "read.failed", "SAM failed", time.Second, false)
		return false
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
	s.finish(code, "read.failed", err.Error(), 0, false)
	return false
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
func (s *session) finish(code wire.Code, kind, detail string, retry time.Duration, closes bool) {
	ev := audit.Event{Kind: kind, Code: int(code), Detail: detail, Reader: s.reader, Card: s.hash, Duration: s.h.cfg.Now().Sub(s.started)}
	out := &Outcome{Code: code, Closes: closes, Attempts: s.attempts}
	if s.lease != nil {
		ev.Slot, ev.SAMID = s.lease.Slot(), s.lease.SAMID().String()
		out.Slot, out.SAMID, out.Hold = s.lease.Slot(), s.lease.SAMID(), time.Since(s.leasedAt)
	}
	s.h.audit(ev)
	if len(detail) > 200 {
		detail = detail[:200]
	}
	s.msgs = append(s.msgs, &wire.Error{Code: code, RetryAfter: retry, Message: detail})
	if s.lease != nil {
		s.lease.Release(fmt.Errorf("%w: %w", sam.ErrCardLink, fmt.Errorf("session ended: %s", code)))
		s.lease = nil
	}
	s.pending = nil // the session's queued requests end with it
	s.end = out
}

// findCard, selectCard and readCard run the SAM operations, timed as SAM
// time (the link's own work is not).
func (s *session) findCard(l *link) ([]byte, error) {
	s.resumeSAM()
	defer s.pauseSAM()
	return s.lease.SAM().Find(s.ctx, l)
}

func (s *session) selectCard(l *link) (sam.Serial, error) {
	s.resumeSAM()
	defer s.pauseSAM()
	return s.lease.SAM().Select(s.ctx, l)
}

func (s *session) readCard(l *link, what sam.ReadWhat) (*sam.Reading, error) {
	s.resumeSAM()
	defer s.pauseSAM()
	return s.lease.SAM().Read(s.ctx, l, what)
}

func (s *session) resumeSAM() {
	if s.samSince.IsZero() {
		s.samSince = time.Now()
	}
}

func (s *session) pauseSAM() {
	if !s.samSince.IsZero() {
		s.samTime += time.Since(s.samSince)
		s.samSince = time.Time{}
	}
}

// link is the session's sam.CardLink for one phase: card frames the SAM
// wants are answered from the prefetch when it holds exactly those
// commands, else sent to the reader, through the front end, in the phase's
// message.
type link struct {
	s   *session
	msg wire.Message // the phase's request
}

var _ sam.CardLink = (*link)(nil)

// Exchange implements sam.CardLink.
func (l *link) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	s := l.s
	s.pauseSAM()
	defer s.resumeSAM()
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
	l.s.linkErr, l.s.linkCode = err, code
	return err
}

// toReader sends cmds to the reader in the phase's message, hands the
// Output to the front end and waits for the reader's answer.
func (l *link) toReader(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	s := l.s
	plain, err := ga467.EncodeCardFrames(cmds)
	if err != nil {
		return nil, l.linkFail(wire.Internal, err)
	}
	sealed := s.keys.Seal(plain)
	switch l.msg.(type) {
	case *wire.FindRequest:
		s.msgs = append(s.msgs, &wire.FindResponse{SW3: ga467.SW3CardExchange, Sealed: sealed})
	case *wire.SelectRequest:
		s.msgs = append(s.msgs, &wire.SelectResponse{SW3: ga467.SW3CardExchange, Sealed: sealed})
	default:
		s.msgs = append(s.msgs, &wire.Relay{Sealed: sealed})
	}
	var within time.Duration
	if d, ok := ctx.Deadline(); ok {
		within = max(time.Until(d), time.Millisecond)
	}
	s.reply(true, within)
	st, ok := s.next()
	if !ok {
		return nil, errReleased // run quits: the front end is gone
	}
	s.cur = st
	var answer []byte
	switch m := st.in.Answer.(type) {
	case *wire.FindConfirm:
		answer = m.Sealed
	case *wire.SelectConfirm:
		answer = m.Sealed
	case *wire.Relay:
		answer = m.Sealed
	}
	switch {
	case st.in.Fail != nil:
		return nil, l.linkFail(st.in.Fail.Code, errors.New(st.in.Fail.Detail))
	case answer == nil:
		return nil, l.linkFail(wire.Internal, fmt.Errorf("front end: %T instead of the reader's answer", st.in.Answer))
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
