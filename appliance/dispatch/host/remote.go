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
// holds a Remote per peer; each peer serves its Local with a Server. Every
// call is one stream: a request frame, a reply frame, under the deadline of
// the caller's context (carried in the request, so the host's side keeps
// it too).
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

// Handle serves one stream (clink.Config.Handle).
func (sv *Server) Handle(c clink.Conn, st net.Conn) {
	st.SetDeadline(time.Now().Add(serverIdle))
	typ, p, err := clink.ReadFrame(st, 0)
	if err != nil {
		return
	}
	var rtyp uint8
	var reply []byte
	switch typ {
	case frPlace:
		rtyp, reply = sv.place(c, st, p)
	case frStep:
		rtyp, reply = sv.step(c, st, p)
	case frRelease:
		rtyp, reply = sv.release(c, p)
	case frCount:
		if n, err := decodeCount(p); err == nil && sv.Counts != nil {
			sv.Counts.Set(c.Peer, n)
		}
		return
	default:
		rtyp, reply = frError, encodeError(fmt.Errorf("%w: frame type %d", ErrBadFrame, typ))
	}
	st.SetWriteDeadline(time.Now().Add(serverIdle))
	if err := clink.WriteFrame(st, rtyp, reply); err != nil && rtyp == frPlaced {
		// The front end will never know the lease: end it now.
		sv.drop(c, [16]byte(reply[:16]), errors.New("link: Place reply lost"))
	}
}

func turn(st net.Conn, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = defaultTurn
	}
	st.SetDeadline(time.Now().Add(d + serverIdle))
	return context.WithTimeout(context.Background(), d)
}

func (sv *Server) place(c clink.Conn, st net.Conn, p []byte) (uint8, []byte) {
	pl, d, err := decodePlace(p)
	if err != nil {
		return frError, encodeError(err)
	}
	ctx, cancel := turn(st, d)
	defer cancel()
	s, placed, err := sv.h.Place(ctx, pl)
	if err != nil {
		return frError, encodeError(err)
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
		return frError, encodeError(ErrClosed)
	}
	return frPlaced, encodePlaced(id, placed)
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

func (sv *Server) step(c clink.Conn, st net.Conn, p []byte) (uint8, []byte) {
	id, in, d, err := decodeStep(p)
	if err != nil {
		return frError, encodeError(err)
	}
	l := sv.lookup(c, id)
	if l == nil {
		return frError, encodeError(ErrNoLease)
	}
	ctx, cancel := turn(st, d)
	defer cancel()
	out, err := l.s.Step(ctx, in)
	if errors.Is(err, ErrSessionGone) || (err == nil && out.End != nil) {
		sv.forget(id, l)
	}
	if err != nil {
		return frError, encodeError(err)
	}
	b, err := encodeOutput(out)
	if err != nil {
		sv.drop(c, id, err)
		return frError, encodeError(err)
	}
	return frOutput, b
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

// call sends one request and reads its reply, within ctx.
// A call on a placed session goes on that session's connection (on (non-zero)).
func (r *Remote) call(ctx context.Context, on clink.Conn, typ uint8, req []byte) (uint8, []byte, clink.Conn, error) {
	var st net.Conn
	var err error
	if on != (clink.Conn{}) {
		st, err = r.l.OpenOn(ctx, on)
	} else {
		st, on, err = r.l.Open(ctx, r.peer)
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, on, ctx.Err()
		}
		return 0, nil, on, fmt.Errorf("%w: %w", ErrLink, err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := clink.WriteFrame(st, typ, req); err != nil {
		return 0, nil, on, r.fail(ctx, err)
	}
	rt, p, err := clink.ReadFrame(st, 0)
	if err != nil {
		return 0, nil, on, r.fail(ctx, err)
	}
	if rt == frError {
		if err := expired(ctx); err != nil {
			return 0, nil, on, err
		}
		return 0, nil, on, decodeError(p)
	}
	return rt, p, on, nil
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
	req, err := encodePlace(p, d, ok)
	if err != nil {
		return nil, nil, err
	}
	rt, b, on, err := r.call(ctx, clink.Conn{}, frPlace, req)
	if err != nil {
		return nil, nil, err
	}
	if rt != frPlaced {
		return nil, nil, fmt.Errorf("%w: reply type %d to Place", ErrLink, rt)
	}
	id, placed, err := decodePlaced(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrLink, err)
	}
	return &remoteSession{r: r, id: id, on: on}, placed, nil
}

type remoteSession struct {
	r  *Remote
	id [16]byte
	on clink.Conn // the connection the lease is bound to
	mu sync.Mutex
	// ended: the session ended or was released; nothing more is sent.
	ended bool
}

// Step implements Session.
func (s *remoteSession) Step(ctx context.Context, in *Input) (*Output, error) {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return nil, ErrSessionGone
	}
	d, ok := ctx.Deadline()
	req, err := encodeStep(s.id, in, d, ok)
	if err != nil {
		return nil, err
	}
	rt, b, _, err := s.r.call(ctx, s.on, frStep, req)
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
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
	}
	return out, nil
}

// releaseGrace bounds a Release whose ctx is already done: the request
// still goes out, and the reply is awaited this long.
const releaseGrace = time.Second

// Release implements Session. With ctx done, the release is still sent.
func (s *remoteSession) Release(ctx context.Context, outcome error) {
	s.mu.Lock()
	ended := s.ended
	s.ended = true
	s.mu.Unlock()
	if ended {
		return
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), releaseGrace)
		defer cancel()
	}
	s.r.call(ctx, s.on, frRelease, encodeRelease(s.id, outcome))
}
