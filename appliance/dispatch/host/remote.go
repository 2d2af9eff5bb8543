package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	clink "github.com/samrack/samrack/cluster/link"
)

// A session host forwarded over cluster/link. The front end's appliance
// holds a Remote per peer; each peer serves its Local with a Server. A
// call is a request frame and a reply frame, under the deadline of the
// caller's context (carried in the request, so the host's side keeps it
// too). A session's calls share one stream: Place opens it, the session's
// Steps and its Release follow on it, and it closes when the session ends
// (opening and closing a stream per call cost a read a third of its
// forwarding time). A call that fails leaves the stream unusable — a late
// reply must never be read as the next call's — so it is closed, and a
// later call opens a new stream on the same connection.
//
// Lease safety: Place answers with a lease ID of 128 random bits, bound on
// the Server to the link connection (peer node ID and connection number)
// that placed it. A Step or Release naming a lease that connection does not
// hold — forged, replayed after its end, or another peer's — is refused
// (ErrNoLease) and touches nothing. When a connection ends, the Server
// releases every lease it carried; a session the link lost track of in
// between (its Place reply never arrived) is released by the host's
// IdleTimeout.

// serverIdle bounds the wait for a request on a stream a peer opened.
const serverIdle = 10 * time.Second

// sessionIdle bounds the wait for a session's next request on its stream:
// longer than a front end waits for its reader (PROTOCOL.md §10) and than
// the Local host's default IdleTimeout, after which the lease is gone
// anyway. A front end that comes back later opens a new stream.
const sessionIdle = 45 * time.Second

// defaultTurn bounds a host call whose request carries no deadline.
const defaultTurn = 30 * time.Second

// Server serves a Host to the peers of a link.
type Server struct {
	// Counts, if set, records the Counts peers announce (Announce).
	Counts *Counts
	h      Host
	mu     sync.Mutex
	leases map[[16]byte]*served
	closed bool
}

type served struct {
	conn clink.Conn
	s    Session
}

// NewServer serves h; wire Handle and Down into clink.Config.
func NewServer(h Host) *Server { return &Server{h: h, leases: map[[16]byte]*served{}} }

// Leases is the number of leases peers hold (tests, metrics).
func (sv *Server) Leases() int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.sweepLocked()
	return len(sv.leases)
}

// ender is a Session that can tell it ended (the Local host's sessions).
type ender interface{ ended() bool }

// sweepLocked forgets the leases whose session ended on the host's side
// without a word from the peer — the host released a silent front end's
// lease after its IdleTimeout, or the rack took the SAM back — while the
// link connection that placed them stayed up (a peer stopped for a while,
// then continued). Down would never forget them: the connection did not
// end.
func (sv *Server) sweepLocked() {
	for id, l := range sv.leases {
		if e, ok := l.s.(ender); ok && e.ended() {
			delete(sv.leases, id)
		}
	}
}

// Handle serves one stream (clink.Config.Handle): a single call, or the
// calls of one session, one after the other.
//
// A session's stream is its front end's lifeline: when it ends while the
// session it placed is still open — the front end closed it after a failed
// call, or gave up on a Place this appliance answered late (it was stopped
// for a while and found the request queued) — the lease is released at
// once, not after the host's idle timeout.
func (sv *Server) Handle(c clink.Conn, st net.Conn) {
	var (
		lease [16]byte
		open  bool // lease was placed on this stream and has not ended
	)
	defer func() {
		if open {
			sv.drop(c, lease, errors.New("link: the front end closed the session's stream"))
		}
	}()
	idle := serverIdle
	for {
		st.SetDeadline(time.Now().Add(idle))
		typ, p, err := clink.ReadFrame(st, 0)
		if err != nil {
			return
		}
		var rtyp uint8
		var reply []byte
		more := false // the stream goes on: a session's next call may follow
		switch typ {
		case frPlace:
			rtyp, reply, _ = sv.place(c, st, p, false)
			if more = rtyp == frPlaced; more {
				lease, open = [16]byte(reply[:16]), true
			}
		case frPlaceFirst:
			// The Placed reply, then the first Step's reply.
			var pl *Placement
			rtyp, reply, pl = sv.place(c, st, p, true)
			if rtyp == frPlaced {
				lease = [16]byte(reply[:16])
				if !sv.reply(c, st, rtyp, reply) {
					return // reply dropped the lease
				}
				open = true
				var end bool
				rtyp, reply, end = sv.stepLease(c, st, lease, &Input{Requests: pl.First}, pl.FirstWithin)
				more = rtyp == frOutput && !end
				open = !end
			}
		case frStep:
			var end bool
			rtyp, reply, end = sv.step(c, st, p)
			more = rtyp == frOutput && !end
			if end {
				open = false
			}
		case frRelease:
			rtyp, reply = sv.release(c, p)
			open = false // the front end released it (or it was gone)
		case frCount:
			if n, err := decodeCount(p); err == nil && sv.Counts != nil {
				sv.Counts.Set(c.Peer, n)
			}
			return
		default:
			rtyp, reply = frError, encodeError(fmt.Errorf("%w: frame type %d", ErrBadFrame, typ))
		}
		if !sv.reply(c, st, rtyp, reply) || !more {
			return
		}
		idle = sessionIdle
	}
}

// reply writes a reply frame; false if the stream failed.
func (sv *Server) reply(c clink.Conn, st net.Conn, rtyp uint8, reply []byte) bool {
	st.SetWriteDeadline(time.Now().Add(serverIdle))
	if err := clink.WriteFrame(st, rtyp, reply); err != nil {
		if rtyp == frPlaced {
			// The front end will never know the lease: end it now.
			sv.drop(c, [16]byte(reply[:16]), errors.New("link: Place reply lost"))
		}
		return false
	}
	return true
}

func turn(st net.Conn, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = defaultTurn
	}
	st.SetDeadline(time.Now().Add(d + serverIdle))
	return context.WithTimeout(context.Background(), d)
}

// place serves a Place, or a PlaceFirst (first) whose first Step the
// caller runs next: pl is the decoded placement.
func (sv *Server) place(c clink.Conn, st net.Conn, p []byte, first bool) (rtyp uint8, reply []byte, pl *Placement) {
	var d time.Duration
	var err error
	if first {
		pl, d, err = decodePlaceFirst(p)
	} else {
		pl, d, err = decodePlace(p)
	}
	if err != nil {
		return frError, encodeError(err), nil
	}
	ctx, cancel := turn(st, d)
	defer cancel()
	// The first Step runs here, as a Step of the lease: a host that
	// would run it itself is not asked to.
	hp := *pl
	hp.First, hp.FirstWithin = nil, 0
	s, placed, err := sv.h.Place(ctx, &hp)
	if err != nil {
		return frError, encodeError(err), nil
	}
	var id [16]byte
	rand.Read(id[:])
	sv.mu.Lock()
	closed := sv.closed
	if !closed {
		sv.sweepLocked()
		sv.leases[id] = &served{conn: c, s: s}
	}
	sv.mu.Unlock()
	if closed {
		s.Release(context.Background(), ErrClosed)
		return frError, encodeError(ErrClosed), nil
	}
	return frPlaced, encodePlaced(id, placed), pl
}

// lookup finds lease id of connection c.
func (sv *Server) lookup(c clink.Conn, id [16]byte) *served {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	l := sv.leases[id]
	if l == nil || l.conn != c {
		return nil
	}
	return l
}

func (sv *Server) forget(id [16]byte, l *served) {
	sv.mu.Lock()
	if sv.leases[id] == l {
		delete(sv.leases, id)
	}
	sv.mu.Unlock()
}

// step serves a Step; end reports that the session ended with it.
func (sv *Server) step(c clink.Conn, st net.Conn, p []byte) (rtyp uint8, reply []byte, end bool) {
	id, in, d, err := decodeStep(p)
	if err != nil {
		return frError, encodeError(err), false
	}
	return sv.stepLease(c, st, id, in, d)
}

// stepLease runs a Step of lease id within d.
func (sv *Server) stepLease(c clink.Conn, st net.Conn, id [16]byte, in *Input, d time.Duration) (rtyp uint8, reply []byte, end bool) {
	l := sv.lookup(c, id)
	if l == nil {
		return frError, encodeError(ErrNoLease), false
	}
	ctx, cancel := turn(st, d)
	defer cancel()
	out, err := l.s.Step(ctx, in)
	if errors.Is(err, ErrSessionGone) || (err == nil && out.End != nil) {
		sv.forget(id, l)
	}
	if err != nil {
		return frError, encodeError(err), false
	}
	b, err := encodeOutput(out)
	if err != nil {
		sv.drop(c, id, err)
		return frError, encodeError(err), false
	}
	return frOutput, b, out.End != nil
}

func (sv *Server) release(c clink.Conn, p []byte) (uint8, []byte) {
	id, outcome, err := decodeRelease(p)
	if err != nil {
		return frError, encodeError(err)
	}
	if sv.lookup(c, id) == nil {
		return frError, encodeError(ErrNoLease)
	}
	sv.drop(c, id, outcome)
	return frReleased, nil
}

// drop releases lease id of c.
func (sv *Server) drop(c clink.Conn, id [16]byte, outcome error) {
	l := sv.lookup(c, id)
	if l == nil {
		return
	}
	sv.forget(id, l)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTurn)
	defer cancel()
	l.s.Release(ctx, outcome)
}

// Down releases every lease connection c carried (clink.Config.Down).
func (sv *Server) Down(c clink.Conn) {
	if sv.Counts != nil {
		sv.Counts.Forget(c.Peer)
	}
	sv.releaseAll(func(l *served) bool { return l.conn == c }, fmt.Errorf("link to %s lost", c.Peer))
}

// Close releases every lease and refuses new ones.
func (sv *Server) Close() {
	sv.mu.Lock()
	sv.closed = true
	sv.mu.Unlock()
	sv.releaseAll(func(*served) bool { return true }, ErrClosed)
}

func (sv *Server) releaseAll(match func(*served) bool, why error) {
	sv.mu.Lock()
	var gone []*served
	for id, l := range sv.leases {
		if match(l) {
			gone = append(gone, l)
			delete(sv.leases, id)
		}
	}
	sv.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTurn)
	defer cancel()
	for _, l := range gone {
		l.s.Release(ctx, why)
	}
}

// Remote is the Host of a peer appliance, reached over a link.
type Remote struct {
	l    *clink.Link
	peer string
}

var _ Host = (*Remote)(nil)

// NewRemote returns peer's host over l.
func NewRemote(l *clink.Link, peer string) *Remote { return &Remote{l: l, peer: peer} }

// Peer is the peer's node ID.
func (r *Remote) Peer() string { return r.peer }

// ErrLink wraps failures of the link itself (no connection, broken
// stream, a reply that does not decode): the host's state is unknown.
var ErrLink = errors.New("host: link to peer failed")

// open opens a stream to the peer, on connection on if it is set (a
// placed session's calls must reach the connection its lease is bound
// to).
func (r *Remote) open(ctx context.Context, on clink.Conn) (net.Conn, clink.Conn, error) {
	var st net.Conn
	var err error
	if on != (clink.Conn{}) {
		st, err = r.l.OpenOn(ctx, on)
	} else {
		st, on, err = r.l.Open(ctx, r.peer)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, on, ctx.Err()
		}
		return nil, on, fmt.Errorf("%w: %w", ErrLink, err)
	}
	return st, on, nil
}

// exchange sends one request on st and reads its reply, within ctx. After
// an error st must not be used again: its state is unknown, or the peer
// (which answered frError) ended its side.
func (r *Remote) exchange(ctx context.Context, st net.Conn, typ uint8, req []byte) (uint8, []byte, error) {
	d, _ := ctx.Deadline() // zero: none
	st.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := clink.WriteFrame(st, typ, req); err != nil {
		return 0, nil, r.fail(ctx, err)
	}
	return r.read(ctx, st)
}

// reply reads a further reply frame on st, within ctx.
func (r *Remote) reply(ctx context.Context, st net.Conn) (uint8, []byte, error) {
	d, _ := ctx.Deadline()
	st.SetDeadline(d)
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return r.read(ctx, st)
}

func (r *Remote) read(ctx context.Context, st net.Conn) (uint8, []byte, error) {
	rt, p, err := clink.ReadFrame(st, 0)
	if err != nil {
		return 0, nil, r.fail(ctx, err)
	}
	if rt == frError {
		if err := expired(ctx); err != nil {
			return 0, nil, err
		}
		return rt, nil, decodeError(p)
	}
	return rt, p, nil
}

func (r *Remote) fail(ctx context.Context, err error) error {
	if err := expired(ctx); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrLink, r.peer, err)
}

// expired is ctx's error once its deadline has passed, also in the moment
// before its timer fires: the peer works to the same deadline, so its
// answer to a turn that ran out (an error frame, a stream it cut) can
// arrive first. Nil while the caller's time is not up.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// Place implements Host.
func (r *Remote) Place(ctx context.Context, p *Placement) (Session, *Placed, error) {
	d, ok := ctx.Deadline()
	typ := frPlace
	var req []byte
	var err error
	if len(p.First) > 0 {
		typ = frPlaceFirst
		req, err = encodePlaceFirst(p, d, ok)
	} else {
		req, err = encodePlace(p, d, ok)
	}
	if err != nil {
		return nil, nil, err
	}
	st, on, err := r.open(ctx, clink.Conn{})
	if err != nil {
		return nil, nil, err
	}
	rt, b, err := r.exchange(ctx, st, typ, req)
	if err == nil && rt != frPlaced {
		err = fmt.Errorf("%w: reply type %d to Place", ErrLink, rt)
	}
	var id [16]byte
	var placed *Placed
	if err == nil {
		if id, placed, err = decodePlaced(b); err != nil {
			err = fmt.Errorf("%w: %w", ErrLink, err)
		}
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	s := &remoteSession{r: r, id: id, on: on, st: st}
	if typ == frPlaceFirst {
		s.first(p.FirstWithin, placed)
	}
	return s, placed, nil
}

// first reads the reply to the first Step that a PlaceFirst asked for,
// within the Step's own time (the Place's ctx bounded the placement only),
// into placed.First or placed.FirstErr.
func (s *remoteSession) first(within time.Duration, placed *Placed) {
	if within <= 0 {
		within = defaultTurn
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, b, err := s.r.reply(ctx, s.st)
	if err == nil && rt != frOutput {
		err = fmt.Errorf("%w: reply type %d to the first Step", ErrLink, rt)
	}
	var out *Output
	if err == nil {
		if out, err = decodeOutput(b); err != nil {
			err = fmt.Errorf("%w: %w", ErrLink, err)
		}
	}
	if err != nil {
		s.st.Close()
		s.st = nil
		placed.FirstErr = err
		return
	}
	if out.End != nil {
		s.end()
	}
	placed.First = out
}

type remoteSession struct {
	r  *Remote
	id [16]byte
	on clink.Conn // the connection the lease is bound to
	mu sync.Mutex // serialises the session's calls
	st net.Conn   // the session's stream; nil after a failed call
	// ended: the session ended or was released; nothing more is sent.
	ended bool
}

// call sends a request of the session and reads its reply: on the
// session's stream while it is sound, else on a new stream on the lease's
// connection. s.mu is held.
func (s *remoteSession) call(ctx context.Context, typ uint8, req []byte) (uint8, []byte, error) {
	if s.st == nil {
		st, _, err := s.r.open(ctx, s.on)
		if err != nil {
			return 0, nil, err
		}
		s.st = st
	}
	rt, b, err := s.r.exchange(ctx, s.st, typ, req)
	if err != nil {
		// The peer's own errors too: its side of the stream ends after
		// an error.
		s.st.Close()
		s.st = nil
	}
	return rt, b, err
}

// end marks the session ended and closes its stream. s.mu is held.
func (s *remoteSession) end() {
	s.ended = true
	if s.st != nil {
		s.st.Close()
		s.st = nil
	}
}

// Step implements Session.
func (s *remoteSession) Step(ctx context.Context, in *Input) (*Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, ErrSessionGone
	}
	d, ok := ctx.Deadline()
	req, err := encodeStep(s.id, in, d, ok)
	if err != nil {
		return nil, err
	}
	rt, b, err := s.call(ctx, frStep, req)
	if errors.Is(err, ErrNoLease) {
		err = fmt.Errorf("%w (%w)", ErrSessionGone, err)
	}
	if err != nil {
		return nil, err
	}
	if rt != frOutput {
		return nil, fmt.Errorf("%w: reply type %d to Step", ErrLink, rt)
	}
	out, err := decodeOutput(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLink, err)
	}
	if out.End != nil {
		s.end()
	}
	return out, nil
}

// releaseGrace bounds a Release whose ctx is already done: the request
// still goes out, and the reply is awaited this long.
const releaseGrace = time.Second

// Release implements Session. With ctx done, the release is still sent.
func (s *remoteSession) Release(ctx context.Context, outcome error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), releaseGrace)
		defer cancel()
	}
	s.call(ctx, frRelease, encodeRelease(s.id, outcome))
	s.end()
}
