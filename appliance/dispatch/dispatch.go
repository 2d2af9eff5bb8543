package dispatch

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// ReaderStatus is the administrative status of a registered reader.
type ReaderStatus int

const (
	ReaderActive ReaderStatus = iota
	ReaderSuspended
	ReaderBlacklisted
)

// Reader is what the dispatcher needs to know of a registered reader.
type Reader struct {
	Serial string
	Cipher string // "sm4" or "aes": the cipher of Key
	Key    []byte // 16-byte reader key; card serials are sealed under it
	Status ReaderStatus
}

// Directory is what the dispatcher needs of the replicated state: the reader
// registry, the blacklists and the terminal→SAM table.
type Directory interface {
	Reader(serial string) (Reader, bool)
	ReaderBlacklisted(serial string) bool
	CardBlacklisted(serial sam.Serial) bool
	PreferredSAMs(reader string) []ga467.SAMID
	// AuthFailed records a failed authentication of a registered reader;
	// the directory suspends the reader after its threshold.
	AuthFailed(ctx context.Context, reader string)
}

// AuthSucceeder is an optional capability of a Directory: AuthSucceeded
// records that a registered reader authenticated (its Open opened under its
// key), which ends a run of failures, so that the threshold counts
// failures in a row.
type AuthSucceeder interface {
	AuthSucceeded(ctx context.Context, reader string)
}

// CatchUpper is an optional capability of a Directory whose state is a
// replica: CatchUp waits until it holds every write acknowledged before
// the call (a read index from the leader), or ctx ends. The front end calls
// it before it answers a reader unknown, so that a reader registered a
// moment ago on another appliance is not refused here.
type CatchUpper interface {
	CatchUp(ctx context.Context) error
}

// catchUpWait bounds CatchUp for one Open.
const catchUpWait = time.Second

// Pool, Lease and BusyError are the session host's (package host): the
// SAMs are leased beside them.
type (
	Pool      = host.Pool
	Lease     = host.Lease
	BusyError = host.BusyError
)

// Config wires a Server.
type Config struct {
	Directory Directory
	// Host places sessions on SAMs. If nil, New makes a host.Local of
	// Pool, Signer and this Config's audit, hash, clock and limits, which
	// Serve closes when it returns.
	Host   host.Host
	Pool   Pool
	Signer host.Signer // the node identity that signs key shares (host.CertSigner)
	// Audit receives every audit event; it must not block for long.
	Audit func(audit.Event)
	// HashCard is the keyed hash under which card serials are logged.
	HashCard func(serial [8]byte) string
	Logger   *slog.Logger

	// HandshakeTimeout bounds the TLS handshake, from accept (default
	// 5 s): a connection that has not proved a certificate by then is
	// reset.
	HandshakeTimeout time.Duration
	// ReaderTimeout bounds the wait for a reader's answer inside a
	// session (default DefaultReaderTimeout).
	ReaderTimeout time.Duration
	// IdleTimeout closes a connection with no frame for that long
	// (default 60 s).
	IdleTimeout time.Duration
	// QueueWait bounds how long a session waits for a free SAM before
	// the reader is told busy (default 2 s).
	QueueWait time.Duration
	// MaxAttempts is how many SAMs one read may try when SAMs fail
	// under it (default 2: the first and one restart).
	MaxAttempts int
	// HostTimeout bounds one turn of the session host (a Step: SAM work
	// up to the next card exchange with the reader; default 30 s, above
	// the SAM's own bounds of a whole read — find 3 s, select 3 s, read
	// 6 s — run twice when the read restarts on another SAM). A host that
	// does not answer in time is told to release its SAM and the reader
	// gets 302.
	HostTimeout time.Duration
	// MaxConns bounds the authenticated reader connections (TLS handshake
	// done with a certificate of our CA) open at once; one more is closed
	// once authenticated (default 10000; a connection costs ~40 KiB).
	MaxConns int
	// MaxPending bounds the connections whose TLS handshake has not
	// finished, in all (default 1024); when full, the oldest is reset to
	// admit a new one (see admission.go).
	MaxPending int
	// MaxPendingPerSource bounds them per source address, an IPv6 source
	// being its /64 (default 64); more from that source are reset on
	// accept.
	MaxPendingPerSource int
	// RefusalLogEvery: refused connections are logged at warn at most
	// once per source per this period, with a count of those suppressed
	// (default 10 s).
	RefusalLogEvery time.Duration
	// CloneWindow: the same card read by two different readers within
	// this window raises a possible-clone alert (default 10 s; <0 off).
	CloneWindow time.Duration
	// Rand is the source of ephemeral keys and session IDs.
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnRead, if set, is called with the timing of every successful read
	// (benchmarks and metrics).
	OnRead func(ReadTiming)
}

// DefaultReaderTimeout is Config.ReaderTimeout's default.
const DefaultReaderTimeout = 5 * time.Second

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.RefusalLogEvery, 10*time.Second)
	def(&c.ReaderTimeout, DefaultReaderTimeout)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.QueueWait, 2*time.Second)
	def(&c.CloneWindow, 10*time.Second)
	def(&c.HostTimeout, 30*time.Second)
	if c.MaxConns == 0 {
		c.MaxConns = 10000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1024
	}
	if c.MaxPendingPerSource <= 0 {
		c.MaxPendingPerSource = 64
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 2
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Audit == nil {
		c.Audit = func(audit.Event) {}
	}
	if c.HashCard == nil {
		panic("dispatch: Config.HashCard is required")
	}
}

// Stats are the dispatcher's counters.
type Stats struct {
	Connections   uint64 // accepted so far
	Active        int64  // open now: Pending + Authenticated
	Pending       int64  // open now, TLS handshake not finished
	Authenticated int64  // open now, handshake done with our CA's certificate
	// Refused counts the connections closed for the admission budgets or
	// a failed handshake: the sum of the five counters that follow.
	Refused           uint64
	RefusedSource     uint64            // reset on accept: MaxPendingPerSource pending from the source
	Evicted           uint64            // pending, reset as the oldest when MaxPending were pending
	RefusedFull       uint64            // authenticated while MaxConns were: closed
	HandshakeTimeouts uint64            // no certificate proved within HandshakeTimeout
	HandshakeFailed   uint64            // handshake failed (not TLS, no or bad certificate, …)
	Reads             uint64            // reads that returned card info
	Errors            map[string]uint64 // wire error codes sent, by name
}

// Server is the reader-facing side of the appliance.
type Server struct {
	cfg     Config
	clone   *cloneTracker
	host    host.Host
	ownHost *host.Local // made by New, closed by Serve

	conns         atomic.Uint64
	refusedSource atomic.Uint64
	evicted       atomic.Uint64
	refusedFull   atomic.Uint64
	hsTimeouts    atomic.Uint64
	hsFailed      atomic.Uint64
	active        atomic.Int64
	reads         atomic.Uint64
	errs          [1024]atomic.Uint64 // by wire code (< 1024)
	warns         *warnLimiter

	mu      sync.Mutex // mu guards open, closing and the admission budgets
	open    map[net.Conn]*admitted
	closing bool
	// the admission budgets (admission.go)
	oldest, newest *admitted // the pending connections, oldest first
	npending       int
	perSource      map[string]int // pending connections by source
	nauthed        int
	wg             sync.WaitGroup
}

// New returns a Server. Directory, HashCard and Host or Pool are required.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, clone: newCloneTracker(cfg.CloneWindow), open: map[net.Conn]*admitted{},
		perSource: map[string]int{}, warns: newWarnLimiter(cfg.RefusalLogEvery, 4096), host: cfg.Host}
	if s.host == nil {
		s.ownHost = host.New(host.Config{Pool: cfg.Pool, Blacklist: cfg.Directory, Signer: cfg.Signer,
			Audit: s.audit, HashCard: cfg.HashCard, Logger: cfg.Logger, QueueWait: cfg.QueueWait,
			MaxAttempts: cfg.MaxAttempts, IdleTimeout: max(30*time.Second, 2*cfg.ReaderTimeout),
			Rand: cfg.Rand, Now: cfg.Now})
		s.host = s.ownHost
	}
	return s
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{Connections: s.conns.Load(), Active: s.active.Load(), Reads: s.reads.Load(), Errors: map[string]uint64{},
		RefusedSource: s.refusedSource.Load(), Evicted: s.evicted.Load(), RefusedFull: s.refusedFull.Load(),
		HandshakeTimeouts: s.hsTimeouts.Load(), HandshakeFailed: s.hsFailed.Load()}
	st.Refused = st.RefusedSource + st.Evicted + st.RefusedFull + st.HandshakeTimeouts + st.HandshakeFailed
	st.Pending, st.Authenticated = s.budgets()
	for i := range s.errs {
		if n := s.errs[i].Load(); n > 0 {
			st.Errors[wire.Code(i).String()] = n
		}
	}
	return st
}

// Serve accepts TLS connections on ln (a TLS listener whose config requires
// client certificates) until ctx is done, then closes ln and every
// connection and waits for their goroutines.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	// One accept loop per CPU: a flood is refused at accept, so the
	// listen queue drains only as fast as the loops turn; a full queue
	// drops every source's SYNs alike, the readers' too.
	n := runtime.GOMAXPROCS(0)
	errs := make(chan error, n)
	for range n {
		go func() { errs <- s.acceptLoop(ctx, ln) }()
	}
	var err error
	for range n {
		if e := <-errs; err == nil {
			err = e
		}
	}
	s.closeAll()
	s.wg.Wait()
	if s.ownHost != nil {
		s.ownHost.Close()
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// acceptLoop admits connections from ln until it is closed.
func (s *Server) acceptLoop(ctx context.Context, ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off and go on
			// serving the readers already connected (net/http does the same).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		backoff = 0
		s.conns.Add(1)
		a, src, reason, evict := s.admit(c)
		if evict != nil {
			reset(evict.nc) // its goroutine sees the error and releases it
			s.refusedConn(evict.src, reasonEvicted)
		}
		if a == nil {
			reset(c)
			if reason == "" {
				return net.ErrClosed // closing
			}
			s.refusedConn(src, reason)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(a)
			s.serveConn(ctx, a)
		}()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for c := range s.open {
		c.Close()
	}
}

func (s *Server) audit(e audit.Event) {
	if e.SAMID == "" && e.Slot == 0 {
		e.Slot = audit.NoSlot
	}
	if e.Time.IsZero() {
		e.Time = s.cfg.Now()
	}
	s.cfg.Audit(e)
}

// conn is one reader connection; its fields are owned by its goroutine.
type conn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	reader string // the verified certificate's CommonName
	signed bool   // the reader negotiated wire.ALPNSignedKeyShare
	out    []wire.Message
	sess   *session
	sw     stopwatch // the appliance's own time in the current session
}

func (s *Server) serveConn(ctx context.Context, a *admitted) {
	nc := a.nc
	c := &conn{s: s, nc: nc}
	if tc, ok := nc.(*tls.Conn); ok {
		// A deadline rather than HandshakeContext: no second goroutine
		// per pending connection (closeAll interrupts it on shutdown).
		tc.SetDeadline(a.since.Add(s.cfg.HandshakeTimeout))
		err := tc.Handshake()
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Debug("tls handshake failed", "remote", nc.RemoteAddr(), "err", err)
				reason := reasonHandshakeBad
				if isTimeout(err) {
					reason = reasonHandshakeSlow
				}
				// An evicted connection fails here too: it is counted
				// as evicted already.
				if s.leavePending(a) {
					reset(nc)
					s.refusedConn(a.src, reason)
				}
			}
			return
		}
		tc.SetDeadline(time.Time{})
		// Only a reader certificate names a reader: the admin certificate,
		// valid under the same CA, does not.
		cs := tc.ConnectionState()
		c.reader, _ = pki.ReaderSerialFromConn(cs)
		c.signed = cs.NegotiatedProtocol == wire.ALPNSignedKeyShare
	}
	if ok, reason := s.promote(a); !ok {
		if reason != "" {
			reset(nc)
			s.refusedConn(a.src, reason)
		}
		return
	}
	// Authenticated: only now the frame buffer.
	c.br = bufio.NewReaderSize(nc, 16<<10)
	defer c.endSession(errConnClosed)
	for ctx.Err() == nil {
		wait := s.cfg.IdleTimeout
		if c.sess != nil {
			// A SAM is leased to the session: the reader has ReaderTimeout
			// for its next request, not the idle timeout.
			wait = s.cfg.ReaderTimeout
		}
		nc.SetReadDeadline(s.cfg.Now().Add(wait))
		msgs, err := wire.ReadFrame(c.br)
		if err != nil {
			c.frameError(ctx, err)
			return
		}
		fatal := c.handle(ctx, msgs)
		if c.sess != nil && c.sess.sigPending {
			c.collect(ctx)
		}
		if fatal {
			c.flush()
			return
		}
		if err := c.flush(); err != nil {
			return
		}
	}
}

var errConnClosed = errors.New("connection closed")

// frameError answers a frame that could not be read, when it makes sense,
// and counts it.
func (c *conn) frameError(ctx context.Context, err error) {
	var code wire.Code
	switch {
	case readerGone(err):
		if c.sess != nil {
			c.endOnHost(ctx, wire.CardGone, "reader gone between phases: "+err.Error())
		}
		return
	case isTimeout(err):
		if c.sess != nil { // the reader stalled in the middle of a read
			c.endOnHost(ctx, wire.Timeout, "reader stalled between phases")
			c.flush()
		}
		return // else an idle connection
	case errors.Is(err, wire.ErrVersion):
		code = wire.UnsupportedVersion
	case errors.Is(err, wire.ErrTooLarge):
		code = wire.TooLarge
	default:
		code = wire.Malformed
	}
	c.s.audit(audit.Event{Kind: audit.KindFrameMalformed, Reader: c.reader, Code: int(code), Detail: err.Error()})
	c.sendError(code, 0, errorMessage(code, err.Error()))
	c.flush()
}

// readerGone reports whether a read from the reader failed because the
// connection ended (closed, reset, or cut inside a frame).
func readerGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle processes the messages of one frame in order. It returns true when
// the connection must be closed.
func (c *conn) handle(ctx context.Context, msgs []wire.Message) (fatal bool) {
	if c.sess == nil {
		c.sw.reset()
	} else {
		c.sw.resume()
	}
	defer c.sw.pause()
	for i := 0; i < len(msgs); i++ {
		switch m := msgs[i].(type) {
		case *wire.Ping:
			c.out = append(c.out, &wire.Pong{Nonce: m.Nonce})
		case *wire.Open:
			if c.sess != nil {
				return c.protocolError(wire.UnexpectedMessage, "Open inside a session")
			}
			if !c.open(ctx, m, leadingRequests(msgs[i+1:])) {
				if c.refusedReader() {
					return true // PROTOCOL §9: 101–104 close the connection
				}
				// The session failed before it began: the rest of the
				// frame belongs to it and is dropped.
				return c.dropRest(msgs[i+1:])
			}
		case *wire.FindRequest, *wire.SelectRequest, *wire.ReadRequest:
			if c.sess == nil {
				return c.protocolError(wire.UnexpectedMessage, fmt.Sprintf("%T outside a session", m))
			}
			n, ok, fatal := c.requests(ctx, msgs[i:])
			if fatal {
				return true
			}
			if !ok {
				return c.dropRest(msgs[i+n:])
			}
			i += n - 1
		default:
			return c.protocolError(wire.UnexpectedMessage, fmt.Sprintf("unexpected %T", m))
		}
	}
	return false
}

// leadingRequests are the phase requests at the start of msgs in their
// order (Find, Select, Read): the run a session's first Step takes.
func leadingRequests(msgs []wire.Message) []wire.Message {
	n := 0
	for n < len(msgs) && requestIndex(msgs[n]) == n {
		n++
	}
	return msgs[:n:n]
}

// refusedReader reports whether the Error just queued refuses the reader
// itself (unknown, blacklisted, suspended, bad credentials): nothing can
// succeed on the connection, so it is closed.
func (c *conn) refusedReader() bool {
	if len(c.out) == 0 {
		return false
	}
	e, ok := c.out[len(c.out)-1].(*wire.Error)
	return ok && e.Code >= wire.UnknownReader && e.Code <= wire.BadCredentials
}

// dropRest discards the messages that followed a failed session in the same
// frame; anything but that session's requests is a protocol error.
func (c *conn) dropRest(rest []wire.Message) bool {
	for _, m := range rest {
		switch m.(type) {
		case *wire.FindRequest, *wire.SelectRequest, *wire.ReadRequest:
		default:
			return c.protocolError(wire.UnexpectedMessage, fmt.Sprintf("%T after a failed session", m))
		}
	}
	return false
}

func (c *conn) protocolError(code wire.Code, detail string) bool {
	c.endSession(fmt.Errorf("%w: %s", errProtocol, detail))
	c.s.audit(audit.Event{Kind: audit.KindFrameMalformed, Reader: c.reader, Code: int(code), Detail: detail})
	c.sendError(code, 0, detail)
	return true
}

var errProtocol = errors.New("reader protocol error")

// countError counts an Error sent to a reader, by code.
func (c *conn) countError(code wire.Code) {
	if int(code) < len(c.s.errs) {
		c.s.errs[code].Add(1)
	}
}

func (c *conn) sendError(code wire.Code, retry time.Duration, msg string) {
	c.countError(code)
	if len(msg) > 200 {
		msg = msg[:200]
	}
	c.out = append(c.out, &wire.Error{Code: code, RetryAfter: retry, Message: msg})
}

// flush writes the queued messages as one frame.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(c.s.cfg.Now().Add(c.s.cfg.ReaderTimeout))
	err := wire.WriteFrame(c.nc, c.out...)
	clear(c.out)
	c.out = c.out[:0]
	return err
}
