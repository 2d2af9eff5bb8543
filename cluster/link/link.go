package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/samrack/samrack/cluster/raftstore"
)

// DefaultPort is the link's default TCP port.
const DefaultPort = 7469

// Named errors.
var (
	ErrClosed      = errors.New("link: closed")
	ErrUnknownPeer = errors.New("link: unknown peer")
	ErrNotMember   = errors.New("link: peer is not a cluster member")
)

// Conn names one connection to a peer: the peer's node ID and the
// connection's number (a reconnection is a new Conn). What a peer holds
// through a connection (a lease) is bound to it.
type Conn struct {
	Peer string
	Seq  uint64
}

// Config wires a Link.
type Config struct {
	// ID is this node's ID (its certificate's node URI).
	ID string
	// TLS holds the node certificate (Certificates) and the installation
	// CA (RootCAs); verification is replaced by the node checks below and
	// TLS 1.3 is required.
	TLS *tls.Config
	// Member reports whether id is a current cluster member; a peer that
	// is not is refused at the handshake.
	Member func(id string) bool
	// Handle serves one stream a peer opened, on a goroutine of the
	// Link's; it must return when the stream fails (Close closes it).
	Handle func(c Conn, s net.Conn)
	// Down, if set, is called once a connection has ended (after its
	// streams were closed), on the Link's goroutine.
	Down func(c Conn)
	// HandshakeTimeout bounds a TLS handshake (default 5 s).
	HandshakeTimeout time.Duration
	// MinBackoff and MaxBackoff bound the redial delay (defaults 50 ms
	// and 5 s), doubled after each failure.
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is yamux's keepalive interval (default 2 s): a dead peer
	// is noticed within about twice that.
	KeepAlive time.Duration
	Logger    *slog.Logger
}

// Link holds the connections of one node to its peers.
type Link struct {
	cfg    Config
	server *tls.Config
	client *tls.Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	seq    uint64
	peers  map[string]*peer
	lns    []net.Listener
}

// peer is what the link knows of one peer: its address (if this end
// dials), its connection and a channel closed when the connection changes.
type peer struct {
	addr    string
	sess    *yamux.Session
	conn    Conn
	changed chan struct{}
	stop    context.CancelFunc // the dialer's, if any
}

// New returns a Link; Serve accepts connections, SetPeers dials them.
func New(cfg Config) (*Link, error) {
	if cfg.TLS == nil || cfg.TLS.RootCAs == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("link: TLS config needs a node certificate and the CA in RootCAs")
	}
	if cfg.ID == "" || cfg.Member == nil || cfg.Handle == nil {
		return nil, errors.New("link: Config.ID, Member and Handle are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, 5*time.Second)
	def(&cfg.MinBackoff, 50*time.Millisecond)
	def(&cfg.MaxBackoff, 5*time.Second)
	def(&cfg.KeepAlive, 2*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	roots := cfg.TLS.RootCAs
	verify := func(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			_, err := verifyPeer(cs, roots, usage, cfg.Member)
			return err
		}
	}
	server := cfg.TLS.Clone()
	server.MinVersion = tls.VersionTLS13
	server.ClientAuth = tls.RequireAnyClientCert
	server.ClientCAs = roots
	server.VerifyConnection = verify(x509.ExtKeyUsageClientAuth)
	client := cfg.TLS.Clone()
	client.MinVersion = tls.VersionTLS13
	client.InsecureSkipVerify = true // no host names: VerifyConnection checks chain and identity
	client.VerifyConnection = verify(x509.ExtKeyUsageServerAuth)
	ctx, cancel := context.WithCancel(context.Background())
	return &Link{cfg: cfg, server: server, client: client, ctx: ctx, cancel: cancel, peers: map[string]*peer{}}, nil
}

// verifyPeer checks a peer's chain and that its node ID is a member.
func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage, member func(string) bool) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", errors.New("link: peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("link: peer certificate: %w", err)
	}
	id, ok := raftstore.NodeID(leaf)
	if !ok {
		return "", raftstore.ErrNoNodeIdentity
	}
	if !member(id) {
		return "", fmt.Errorf("%w: %q", ErrNotMember, id)
	}
	return id, nil
}

func (l *Link) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.KeepAliveInterval = l.cfg.KeepAlive
	c.ConnectionWriteTimeout = 2 * l.cfg.KeepAlive
	c.StreamOpenTimeout = 2 * l.cfg.KeepAlive
	c.StreamCloseTimeout = 2 * l.cfg.KeepAlive
	c.MaxStreamWindowSize = 1 << 20
	c.LogOutput = io.Discard
	return c
}

// Serve accepts peers' connections on ln until Close (which closes ln).
func (l *Link) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	l.lns = append(l.lns, ln)
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !l.goOwned(func() { l.accept(c) }) {
			c.Close()
			return ErrClosed
		}
	}
}

// goOwned runs f on a goroutine the Link waits for, unless it is closed.
func (l *Link) goOwned(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

func (l *Link) accept(c net.Conn) {
	tc := tls.Server(c, l.server)
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.cfg.Logger.Warn("link: handshake refused", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	id, _ := raftstore.NodeID(tc.ConnectionState().PeerCertificates[0])
	if id == l.cfg.ID {
		c.Close()
		return
	}
	sess, err := yamux.Server(&joinWrites{Conn: tc}, l.yamuxConfig())
	if err != nil {
		c.Close()
		return
	}
	l.run(id, sess)
}

// run installs sess as the connection to peer id (closing the one it
// replaces), accepts its streams until it ends, then reports it down.
func (l *Link) run(id string, sess *yamux.Session) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		sess.Close()
		return
	}
	p := l.peers[id]
	if p == nil {
		p = &peer{changed: make(chan struct{})}
		l.peers[id] = p
	}
	old := p.sess
	l.seq++
	conn := Conn{Peer: id, Seq: l.seq}
	p.sess, p.conn = sess, conn
	close(p.changed)
	p.changed = make(chan struct{})
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	for {
		s, err := sess.Accept()
		if err != nil {
			break
		}
		if !l.goOwned(func() { defer s.Close(); l.cfg.Handle(conn, s) }) {
			s.Close()
			break
		}
	}
	sess.Close()
	l.mu.Lock()
	if p.sess == sess {
		p.sess = nil
		close(p.changed)
		p.changed = make(chan struct{})
	}
	l.mu.Unlock()
	if l.cfg.Down != nil {
		l.cfg.Down(conn)
	}
}

// SetPeers makes addrs (node ID → link address) the peers: a peer with a
// larger ID than this node's is dialed (and redialed) here, the others
// dial in. Peers no longer named are disconnected.
func (l *Link) SetPeers(addrs map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for id, p := range l.peers {
		if a, ok := addrs[id]; ok && a == p.addr {
			continue
		}
		if _, ok := addrs[id]; !ok {
			if p.stop != nil {
				p.stop()
			}
			if p.sess != nil {
				p.sess.Close()
			}
			delete(l.peers, id)
		}
	}
	for id, addr := range addrs {
		if id == l.cfg.ID {
			continue
		}
		p := l.peers[id]
		if p == nil {
			p = &peer{changed: make(chan struct{})}
			l.peers[id] = p
		}
		if p.addr == addr || id < l.cfg.ID {
			p.addr = addr
			continue
		}
		if p.stop != nil {
			p.stop()
		}
		p.addr = addr
		ctx, stop := context.WithCancel(l.ctx)
		p.stop = stop
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.dialLoop(ctx, id, addr)
		}()
	}
}

// dialLoop keeps a connection to peer id at addr, redialing with backoff.
func (l *Link) dialLoop(ctx context.Context, id, addr string) {
	backoff := l.cfg.MinBackoff
	for ctx.Err() == nil {
		sess, err := l.dial(ctx, id, addr)
		if err != nil {
			l.cfg.Logger.Debug("link: dial", "peer", id, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, l.cfg.MaxBackoff)
			continue
		}
		backoff = l.cfg.MinBackoff
		stop := context.AfterFunc(ctx, func() { sess.Close() })
		l.run(id, sess)
		stop()
	}
}

func (l *Link) dial(ctx context.Context, id, addr string) (*yamux.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	d := tls.Dialer{Config: l.client}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	got, _ := raftstore.NodeID(c.(*tls.Conn).ConnectionState().PeerCertificates[0])
	if got != id {
		c.Close()
		return nil, fmt.Errorf("link: %s answered as %q, want %q", addr, got, id)
	}
	sess, err := yamux.Client(&joinWrites{Conn: c}, l.yamuxConfig())
	if err != nil {
		c.Close()
		return nil, err
	}
	return sess, nil
}

// Open opens a stream to peer, waiting for its connection until ctx is
// done; the stream's deadline is ctx's. The caller closes it.
func (l *Link) Open(ctx context.Context, id string) (net.Conn, Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, Conn{}, ErrClosed
		}
		p := l.peers[id]
		if p == nil {
			l.mu.Unlock()
			return nil, Conn{}, fmt.Errorf("%w: %q", ErrUnknownPeer, id)
		}
		sess, conn, changed := p.sess, p.conn, p.changed
		l.mu.Unlock()
		if sess != nil && !sess.IsClosed() {
			s, err := sess.OpenStream()
			if err == nil {
				if d, ok := ctx.Deadline(); ok {
					s.SetDeadline(d)
				}
				return s, conn, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, Conn{}, fmt.Errorf("link: no connection to %s: %w", id, ctx.Err())
		case <-changed:
		case <-l.ctx.Done():
		}
	}
}

// Connected reports whether a connection to peer id is up.
func (l *Link) Connected(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[id]
	return p != nil && p.sess != nil && !p.sess.IsClosed()
}

// Close closes every connection and listener and waits for the Link's
// goroutines.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.cancel()
	for _, ln := range l.lns {
		ln.Close()
	}
	for _, p := range l.peers {
		if p.sess != nil {
			p.sess.Close()
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// ErrConnGone reports a stream asked of a connection that has ended.
var ErrConnGone = errors.New("link: connection ended")

// OpenOn opens a stream on connection c only (what c carries, such as a
// lease, ends with it): without waiting for a new connection.
func (l *Link) OpenOn(ctx context.Context, c Conn) (net.Conn, error) {
	l.mu.Lock()
	p := l.peers[c.Peer]
	var sess *yamux.Session
	if p != nil && p.conn == c && !l.closed {
		sess = p.sess
	}
	l.mu.Unlock()
	if sess == nil || sess.IsClosed() {
		return nil, fmt.Errorf("%w: %s #%d", ErrConnGone, c.Peer, c.Seq)
	}
	s, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnGone, err)
	}
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	return s, nil
}
