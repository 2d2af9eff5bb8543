package raftstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// DefaultHandshakeTimeout bounds a peer's TLS handshake.
const DefaultHandshakeTimeout = 5 * time.Second

// TLSStreamLayer is a raft.StreamLayer on mutual TLS 1.3. Accept returns
// only connections whose handshake completed with a valid node certificate
// (see NodeURI); handshakes run on their own goroutines with a deadline, so
// a slow or hostile peer does not hold up the others. Dial checks the
// accepting node's certificate the same way. Host names play no part:
// identity is the node certificate.
type TLSStreamLayer struct {
	ln        net.Listener
	server    *tls.Config
	client    *tls.Config
	advertise net.Addr
	timeout   time.Duration

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and handshakes

	mu       sync.Mutex
	accepted map[*acceptedConn]struct{} // mu guards: connections Accept returned and nobody closed yet
}

// acceptedConn is a connection Accept returned: the layer closes it on
// Close, so raft's connection handlers for peers that still run end with
// the layer instead of waiting for the peer to hang up.
type acceptedConn struct {
	*tls.Conn
	s    *TLSStreamLayer
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *acceptedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.accepted, c)
		c.s.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

var _ raft.StreamLayer = (*TLSStreamLayer)(nil)

// NewTLSStreamLayer serves raft on ln. cfg holds this node's certificate
// (Certificates or GetCertificate) and the installation CA in RootCAs
// (ClientCAs is used if RootCAs is nil); its verification settings are
// replaced by the node checks, and TLS 1.3 is required. advertise is the
// address peers dial (nil: ln's address).
func NewTLSStreamLayer(ln net.Listener, cfg *tls.Config, advertise net.Addr) (*TLSStreamLayer, error) {
	roots := cfg.RootCAs
	if roots == nil {
		roots = cfg.ClientCAs
	}
	if roots == nil {
		return nil, errors.New("raftstore: TLS config without a CA pool")
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("raftstore: TLS config without a node certificate")
	}
	server := cfg.Clone()
	server.MinVersion = tls.VersionTLS13
	server.ClientAuth = tls.RequireAnyClientCert // verified below, with the node check
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyNode(cs, roots, x509.ExtKeyUsageClientAuth, time.Now)
	}
	client := cfg.Clone()
	client.MinVersion = tls.VersionTLS13
	client.InsecureSkipVerify = true // no host names: VerifyConnection checks chain and identity
	client.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyNode(cs, roots, x509.ExtKeyUsageServerAuth, time.Now)
	}
	if client.GetClientCertificate == nil && len(client.Certificates) == 0 && cfg.GetCertificate != nil {
		client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cfg.GetCertificate(nil)
		}
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	s := &TLSStreamLayer{ln: ln, server: server, client: client, advertise: advertise, timeout: DefaultHandshakeTimeout,
		conns: make(chan net.Conn), done: make(chan struct{}), accepted: map[*acceptedConn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *TLSStreamLayer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // the listener is broken; Accept reports closed
		}
		s.wg.Add(1)
		go s.handshake(c)
	}
}

func (s *TLSStreamLayer) handshake(c net.Conn) {
	defer s.wg.Done()
	tc := tls.Server(c, s.server)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	go func() { // end the handshake early on Close
		select {
		case <-s.done:
			c.Close()
		case <-ctx.Done():
		}
	}()
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	select {
	case s.conns <- tc:
	case <-s.done:
		c.Close()
	}
}

// Accept implements net.Listener: the next peer that completed a mutual
// TLS handshake as a node.
func (s *TLSStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		ac := &acceptedConn{Conn: c.(*tls.Conn), s: s}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.accepted == nil { // closed meanwhile
			c.Close()
			return nil, net.ErrClosed
		}
		s.accepted[ac] = struct{}{}
		return ac, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it waits for the handshakes in flight
// and closes the connections Accept returned.
func (s *TLSStreamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
		s.wg.Wait()
		s.mu.Lock()
		open := s.accepted
		s.accepted = nil
		s.mu.Unlock()
		for c := range open {
			c.Conn.Close()
		}
	})
	return err
}

// Addr implements net.Listener: the advertised address.
func (s *TLSStreamLayer) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer: a mutual TLS connection to a node.
func (s *TLSStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), s.client)
	if err != nil {
		return nil, fmt.Errorf("raftstore: dial %s: %w", address, err)
	}
	return c, nil
}

// NewTLSTransport returns a raft transport over a TLSStreamLayer on ln;
// logger may be nil (hashicorp/raft's default, to stderr).
func NewTLSTransport(ln net.Listener, cfg *tls.Config, advertise net.Addr, logger hclog.Logger) (*raft.NetworkTransport, error) {
	sl, err := NewTLSStreamLayer(ln, cfg, advertise)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithConfig(transportConfig(sl, logger)), nil
}

// transportConfig is the raft transport's configuration over stream.
//
// Pipelined replication is off (MaxRPCsInFlight 1): hashicorp/raft's
// pipeline can deadlock when a follower refuses an append (its decoder
// parks on a channel nobody reads any more while the sender parks on the
// next send; grafana/pyroscope#5518), after which that follower gets
// heartbeats but never another entry, and raft's Shutdown joins the stuck
// sender forever (seen here: a leader that lost its peers did not stop on
// SIGTERM). Between a few appliances on a LAN, with every append an fsync
// on the follower, overlapping the next send gains little.
func transportConfig(stream raft.StreamLayer, logger hclog.Logger) *raft.NetworkTransportConfig {
	return &raft.NetworkTransportConfig{
		Stream:          stream,
		MaxPool:         3,
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          logger,
	}
}
