// Package client is the Go SDK of the samrack reader protocol
// (api/PROTOCOL.md): what a reader maker links into a reader that has an RF
// front-end but no SAM. A Client holds one TLS 1.3 connection to the
// appliance (or the cluster's virtual IP) and reads cards over it, one at a
// time; the card itself is reached through an idcard.RF, the reader's RF
// front-end.
//
// By default a read is batched into 2 round trips on a warm connection: the
// reader prefetches what it can from the card (find, select, challenge),
// sends Open with the find, select and read requests in one frame, runs the
// card script it gets back, and receives the card information. WithBatching
// (false) sends one message per frame, which the appliance serves the same.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
)

// Option configures a Client.
type Option func(*options)

type options struct {
	dialer      DialFunc
	addrTimeout time.Duration
	batch       bool
	suites      []suite.ID
	dialTimeout time.Duration
	readTimeout time.Duration
	retries     int
	rand        io.Reader
	localAddr   net.Addr
	unsigned    bool
	now         func() time.Time
}

// Named errors.
var (
	// ErrKeyShareSignature reports a session whose SAM-side key share is
	// not signed by a node of the installation (api/PROTOCOL.md §8.1):
	// the signature is missing, does not verify against ca_pem, or is by
	// a certificate that is not a node's. An appliance between the reader
	// and the SAM may be tampering with the key exchange; the read is
	// refused before any card data is sent or opened.
	ErrKeyShareSignature = errors.New("samrack: session host key share signature refused")
	// ErrUnsignedKeyShares reports an appliance that does not sign its
	// key shares (it did not negotiate the ALPN protocol
	// samrack-signed-key-share: older than the signature, or someone in
	// the middle). WithUnsignedKeyShares(true) reads from it anyway.
	ErrUnsignedKeyShares = errors.New("samrack: the appliance does not sign its key shares")
)

// WithUnsignedKeyShares(true) lets reads go on with an appliance that does
// not sign its session hosts' key shares (one that predates the signature).
// The default is false: the SDK asks for signed key shares and verifies
// them against the CA of the bundle, so that no appliance on the way can
// read or alter the card data.
func WithUnsignedKeyShares(allow bool) Option { return func(o *options) { o.unsigned = allow } }

// WithLocalAddr makes the connections from local address a (a host with
// several addresses; the appliance budgets connections per source).
func WithLocalAddr(a net.Addr) Option { return func(o *options) { o.localAddr = a } }

// WithRetries makes Read try again, up to n more times, when the appliance
// answers with a retryable code (busy, SAM fault, shutting down: after the
// RetryAfter it gives, at least 50 ms), the connection breaks (the
// appliance failed: Read re-dials after 50 ms, through the bundle's
// addresses, the cluster's virtual IP first, and runs the whole read again
// while the card is still in the field) or no address answers (after 100 ms
// doubling up to 1 s; see dial.go). The default is 0: errors are returned
// to the caller.
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithBatching turns batching of messages into frames on (the default) or
// off (one message per frame).
func WithBatching(on bool) Option { return func(o *options) { o.batch = on } }

// WithSuites sets the suites offered, in order of preference; the reader
// sends a key share for each, so every extra suite costs a key generation
// per read. The default offers the GM suite alone (SM2/SM3/SM4), which every
// samrack appliance speaks.
func WithSuites(ids ...suite.ID) Option { return func(o *options) { o.suites = ids } }

// WithTimeouts sets the connect timeout (default 8 s; with several
// addresses in the bundle each gets at most WithAddressTimeout) and the
// per-read timeout used when the context has no deadline (default 10 s).
func WithTimeouts(dial, read time.Duration) Option {
	return func(o *options) { o.dialTimeout, o.readTimeout = dial, read }
}

// Client is a connection to the appliance. Its methods are safe for
// concurrent use; reads on one Client run one at a time (use one Client per
// reader, or several for load).
type Client struct {
	b    *credentials.Bundle
	ds   dialState // ds is guarded by mu
	key  []byte
	tls  *tls.Config
	opts options

	mu     sync.Mutex // mu serialises reads and guards conn, br, signed and nodes
	conn   net.Conn
	br     *bufio.Reader
	signed bool // the connection negotiated wire.ALPNSignedKeyShare
	// nodes are the node certificate chains verified against the
	// bundle's CA, by their DER, with the end of their validity: a read
	// checks only the signature of a chain it has seen.
	nodes map[string]verifiedNode
}

type verifiedNode struct {
	cert  *x509.Certificate
	until time.Time
}

// maxNodes bounds the verified chains a Client keeps (one per appliance of
// a cluster, in practice).
const maxNodes = 64

// Result is a card read. Text, Photo and Fingerprint are personal
// information: the caller decides what to show or keep.
type Result struct {
	Serial      [8]byte
	Identity    *ga467.Identity
	Text        []byte // 256-byte text block
	Photo       []byte // 1024-byte WLT photo
	Fingerprint []byte // nil unless asked for and present
	Suite       suite.ID
	// Host is the CommonName of the node certificate that signed the
	// session host's key share; empty for an unsigned key share
	// (WithUnsignedKeyShares).
	Host       string
	RoundTrips int // frames sent that the appliance answered
	Duration   time.Duration
	// Turns is the time the reader spent on its own turns: from reading
	// an appliance frame that asked for card replies to writing them
	// (the card's RF exchanges, the key agreement and its signature's
	// check, sealing). It is time the leased SAM waits for the reader on
	// top of the network's round trip.
	Turns time.Duration
}

// ReadOptions says what to read.
type ReadOptions struct {
	Fingerprint bool
}

// New returns a Client that connects on first use.
func New(b *credentials.Bundle, opts ...Option) (*Client, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	key, _ := b.Key()
	tc, _ := b.TLSConfig()
	// Ask for signed key shares (PROTOCOL.md §2, §8.1); appliances that
	// do not know the protocol ignore the offer.
	tc.NextProtos = []string{wire.ALPNSignedKeyShare}
	c := &Client{b: b, key: key, tls: tc, opts: options{batch: true, suites: []suite.ID{suite.GM},
		dialTimeout: 8 * time.Second, readTimeout: 10 * time.Second, rand: rand.Reader, now: time.Now}}
	for _, o := range opts {
		o(&c.opts)
	}
	return c, nil
}

// Dial returns a connected Client.
func Dial(ctx context.Context, b *credentials.Bundle, opts ...Option) (*Client, error) {
	c, err := New(b, opts...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connectLocked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) connectLocked(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	nc, err := c.dialLocked(ctx) // dial.go: the bundle's addresses in turn
	if err != nil {
		return err
	}
	c.conn, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	if tc, ok := nc.(*tls.Conn); ok {
		c.signed = tc.ConnectionState().NegotiatedProtocol == wire.ALPNSignedKeyShare
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropLocked()
}

func (c *Client) dropLocked() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.br, c.signed = nil, nil, false
	return err
}

// Ping measures one round trip to the appliance.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connectLocked(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	c.deadlineLocked(ctx)
	nonce := uint64(start.UnixNano())
	if err := wire.WriteFrame(c.conn, &wire.Ping{Nonce: nonce}); err != nil {
		c.dropLocked()
		return 0, err
	}
	msgs, err := wire.ReadFrame(c.br)
	if err != nil {
		c.dropLocked()
		return 0, err
	}
	if p, ok := msgs[0].(*wire.Pong); !ok || p.Nonce != nonce || len(msgs) != 1 {
		c.dropLocked()
		return 0, fmt.Errorf("samrack: bad answer to ping")
	}
	return time.Since(start), nil
}

func (c *Client) deadlineLocked(ctx context.Context) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.opts.readTimeout)
	}
	c.conn.SetDeadline(dl)
}

// Read reads the card in rf's field. A *wire.Error is returned for an error
// the appliance reported (errors.As it to see the code and whether to
// retry). A broken connection is re-dialled by the next Read.
func (c *Client) Read(ctx context.Context, rf idcard.RF, ro ReadOptions) (*Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	for attempt := 0; ; attempt++ {
		res, err := c.readOnceLocked(ctx, rf, ro)
		if err == nil {
			res.Duration = time.Since(start)
			return res, nil
		}
		wait, retry := retryable(err)
		var ue *UnreachableError
		if errors.As(err, &ue) {
			ue.Attempts = attempt + 1
			wait = unreachableBackoff(attempt)
		}
		if !retry || attempt >= c.opts.retries {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// retryable says whether a failed read may be run again, and after how long.
func retryable(err error) (time.Duration, bool) {
	const minWait = 50 * time.Millisecond
	var we *wire.Error
	if errors.As(err, &we) {
		return max(we.RetryAfter, minWait), we.Code.Retryable()
	}
	var ne net.Error
	if errors.Is(err, ErrUnreachable) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return minWait, true
	}
	return 0, false
}

func (c *Client) readOnceLocked(ctx context.Context, rf idcard.RF, ro ReadOptions) (*Result, error) {
	if err := c.connectLocked(ctx); err != nil {
		return nil, err
	}
	c.deadlineLocked(ctx)
	res, err := c.readLocked(ctx, rf, ro)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) || closesConn(we.Code) {
			c.dropLocked()
		}
		return nil, err
	}
	return res, nil
}

// read is the state of one read on the client side.
type read struct {
	c        *Client
	ctx      context.Context
	rf       idcard.RF
	ro       ReadOptions
	ephs     map[suite.ID]*suite.Ephemeral
	shares   []wire.KeyShare
	keys     *suite.Session
	awaitSig bool // Accept came; its KeyShareSignature has not come yet
	// sig is the check of the KeyShareSignature that came with the
	// Accept, running beside the reader's work (acceptSigned); nil when
	// none runs. It ends before the reader writes or trusts anything.
	sig      chan checkedSig
	tr       []byte // the handshake transcript
	out      []wire.Message
	res      *Result
	done     bool
	cardGone error
}

func (c *Client) readLocked(ctx context.Context, rf idcard.RF, ro ReadOptions) (*Result, error) {
	ex, serial, err := idcard.Prefetch(ctx, rf)
	if err != nil {
		return nil, fmt.Errorf("samrack: card: %w", err)
	}
	r := &read{c: c, ctx: ctx, rf: rf, ro: ro, ephs: map[suite.ID]*suite.Ephemeral{}, res: &Result{Serial: serial}}
	for _, id := range c.opts.suites {
		e, err := suite.Generate(id, c.opts.rand)
		if err != nil {
			return nil, err
		}
		r.ephs[id] = e
		r.shares = append(r.shares, wire.KeyShare{Suite: id, Public: e.Public()})
	}
	pre := &wire.PreSession{CardSerial: serial}
	if c.opts.batch {
		for _, e := range ex {
			pre.Prefetch = append(pre.Prefetch, wire.Exchange{Cmd: e.Cmd, Resp: e.Resp})
		}
	}
	plain, err := wire.MarshalPreSession(pre)
	if err != nil {
		return nil, err
	}
	sealed, err := suite.SealWithReaderKey(c.b.Cipher, c.key, c.b.ReaderSerial, plain, c.opts.rand)
	clear(plain)
	if err != nil {
		return nil, err
	}
	r.out = append(r.out, &wire.Open{ReaderSerial: c.b.ReaderSerial, KeyShares: r.shares, Sealed: sealed})
	if c.opts.batch {
		r.out = append(r.out, &wire.FindRequest{}, &wire.SelectRequest{}, &wire.ReadRequest{Fingerprint: ro.Fingerprint})
	}
	var got time.Time // when the last frame from the appliance was read
	for !r.done {
		if len(r.out) == 0 {
			return nil, fmt.Errorf("samrack: protocol stalled")
		}
		if err := r.signed(); err != nil { // nothing leaves unverified
			return nil, err
		}
		if err := wire.WriteFrame(c.conn, r.out...); err != nil {
			return nil, fmt.Errorf("samrack: write: %w", err)
		}
		if !got.IsZero() {
			r.res.Turns += time.Since(got)
		}
		clear(r.out)
		r.out = r.out[:0]
		msgs, err := wire.ReadFrame(c.br)
		if err != nil {
			return nil, fmt.Errorf("samrack: read: %w", err)
		}
		got = time.Now()
		r.res.RoundTrips++
		for i := 0; i < len(msgs); i++ {
			if a, ok := msgs[i].(*wire.Accept); ok && i+1 < len(msgs) {
				if sig, ok := msgs[i+1].(*wire.KeyShareSignature); ok {
					// The usual frame: the Accept, its signature, the first
					// card commands.
					if err := r.acceptSigned(a, sig); err != nil {
						return nil, r.failed(err)
					}
					i++
					continue
				}
			}
			if err := r.handle(msgs[i]); err != nil {
				return nil, r.failed(err)
			}
		}
	}
	return r.res, nil
}

func (r *read) handle(m wire.Message) error {
	switch m := m.(type) {
	case *wire.Error:
		if r.cardGone != nil && m.Code == wire.CardGone {
			return fmt.Errorf("%w (%w)", m, r.cardGone)
		}
		return m
	case *wire.Accept:
		e, ok := r.ephs[m.Suite]
		if !ok || r.keys != nil {
			return fmt.Errorf("samrack: unexpected Accept (suite %v)", m.Suite)
		}
		if !r.c.signed && !r.c.opts.unsigned {
			return ErrUnsignedKeyShares
		}
		tr := wire.Transcript(r.c.b.ReaderSerial, e.Public(), m.SessionID, m.Suite, m.Public)
		keys, err := e.Agree(m.Public, tr, true)
		if err != nil {
			return fmt.Errorf("samrack: key agreement: %w", err)
		}
		r.keys, r.res.Suite = keys, m.Suite
		// Nothing is opened or sealed under these keys until the
		// KeyShareSignature that follows has verified.
		r.awaitSig, r.tr = r.c.signed, tr
		if !r.c.opts.batch {
			r.out = append(r.out, &wire.FindRequest{})
		}
	case *wire.KeyShareSignature:
		return r.verify(m)
	case *wire.FindResponse:
		return r.step(m.Done, m.SW3, ga467.SW3CardFound, m.Sealed, nil,
			func(s []byte) wire.Message { return &wire.FindConfirm{Sealed: s} }, &wire.SelectRequest{})
	case *wire.SelectResponse:
		return r.step(m.Done, m.SW3, ga467.SW3OK, m.Sealed, r.checkSerial,
			func(s []byte) wire.Message { return &wire.SelectConfirm{Sealed: s} }, &wire.ReadRequest{Fingerprint: r.ro.Fingerprint})
	case *wire.Relay:
		return r.step(false, 0, 0, m.Sealed, nil, func(s []byte) wire.Message { return &wire.Relay{Sealed: s} }, nil)
	case *wire.Result:
		return r.result(m)
	case *wire.Pong:
	default:
		return fmt.Errorf("samrack: unexpected %T from the appliance", m)
	}
	return nil
}

// verify checks the session host's signature of its key share against the
// CA of the bundle (PROTOCOL.md §8.1).
func (r *read) verify(m *wire.KeyShareSignature) error {
	if !r.awaitSig {
		return fmt.Errorf("samrack: unexpected KeyShareSignature")
	}
	cert, err := r.checkSignature(m, r.tr)
	if err != nil {
		return err
	}
	r.awaitSig, r.res.Host = false, cert.Subject.CommonName
	return nil
}

// checkSignature verifies m over the transcript tr and returns the signer.
// It reads only the read's key shares and touches only the client's cache
// of verified chains, so it may run beside the key agreement.
func (r *read) checkSignature(m *wire.KeyShareSignature, tr []byte) (*x509.Certificate, error) {
	cert, err := r.c.nodeLocked(m.Chain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyShareSignature, err)
	}
	content := wire.KeyShareSignedContent(m.Alg, r.shares, tr)
	if err := suite.VerifyKeyShareSignature(cert, m.Alg, content, m.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyShareSignature, err)
	}
	return cert, nil
}

// checkedSig is the outcome of a KeyShareSignature's check.
type checkedSig struct {
	cert *x509.Certificate
	err  error
}

// acceptSigned handles an Accept followed by its KeyShareSignature. The
// signature is checked on another goroutine while this one agrees the
// keys and runs the card commands that follow in the frame (a P-256
// verification is ~0.1–0.2 ms; the card's RF exchanges take milliseconds):
// all of it inside the SAM's hold. Nothing leaves the reader, and no
// Result is accepted, before the check has passed (signed); if it failed,
// the read fails with the signature's error whatever else went wrong
// (failed). What the reader does before that with the keys — open the
// host's card commands, run them on the card, seal the card's answers in
// memory — gives a host in the middle nothing: the answers are never sent.
func (r *read) acceptSigned(a *wire.Accept, sig *wire.KeyShareSignature) error {
	if !r.c.signed || r.keys != nil {
		if err := r.handle(a); err != nil {
			return err
		}
		return r.handle(sig)
	}
	e, ok := r.ephs[a.Suite]
	if !ok {
		return fmt.Errorf("samrack: unexpected Accept (suite %v)", a.Suite)
	}
	tr := wire.Transcript(r.c.b.ReaderSerial, e.Public(), a.SessionID, a.Suite, a.Public)
	r.sig = make(chan checkedSig, 1)
	go func() { // joined by signed or failed before the read returns
		cert, err := r.checkSignature(sig, tr)
		r.sig <- checkedSig{cert, err}
	}()
	keys, err := e.Agree(a.Public, tr, true)
	if err != nil {
		return fmt.Errorf("samrack: key agreement: %w", err)
	}
	r.keys, r.res.Suite, r.tr = keys, a.Suite, tr
	if !r.c.opts.batch {
		r.out = append(r.out, &wire.FindRequest{})
	}
	return nil
}

// signed waits for the running signature check, if any: its error, or
// nil once the host is known.
func (r *read) signed() error {
	if r.sig == nil {
		return nil
	}
	c := <-r.sig
	r.sig = nil
	if c.err != nil {
		return c.err
	}
	r.res.Host = c.cert.Subject.CommonName
	return nil
}

// failed is the error a read ends with when err stopped it: a failed
// signature check, if one was running, comes first (a swapped key share
// also makes the host's records fail to open).
func (r *read) failed(err error) error {
	if serr := r.signed(); serr != nil {
		return serr
	}
	return err
}

// nodeLocked returns the signer's certificate of a node certificate chain
// verified against the bundle's CA, from the chains verified before while
// they are valid.
func (c *Client) nodeLocked(chain [][]byte) (*x509.Certificate, error) {
	var kb []byte
	for _, der := range chain {
		kb = append(binary.BigEndian.AppendUint32(kb, uint32(len(der))), der...)
	}
	key := string(kb)
	now := c.opts.now()
	if n, ok := c.nodes[key]; ok && now.Before(n.until) && !now.Before(n.cert.NotBefore) {
		return n.cert, nil
	}
	cert, until, err := suite.VerifyKeyShareChain(c.tls.RootCAs, chain, now)
	if err != nil {
		return nil, err
	}
	if c.nodes == nil || len(c.nodes) >= maxNodes {
		c.nodes = map[string]verifiedNode{}
	}
	c.nodes[key] = verifiedNode{cert: cert, until: until}
	return cert, nil
}

// verified fails while the session host's key share awaits its signature.
func (r *read) verified() error {
	if r.awaitSig {
		return fmt.Errorf("%w: Accept not followed by its KeyShareSignature", ErrKeyShareSignature)
	}
	return nil
}

// step handles a phase response: done with a status (and the SAM's reply
// data, checked by check), or card commands to run and answer.
func (r *read) step(done bool, sw3, want byte, sealed []byte, check func([]byte) error, answer func([]byte) wire.Message, next wire.Message) error {
	if r.keys == nil {
		return fmt.Errorf("samrack: phase response before Accept")
	}
	if err := r.verified(); err != nil {
		return err
	}
	if done {
		var data []byte
		if len(sealed) > 0 { // every record is opened, in order (PROTOCOL §7.3)
			var err error
			if data, err = r.keys.Open(sealed); err != nil {
				return fmt.Errorf("samrack: open phase result: %w", err)
			}
		}
		if sw3 != want {
			return fmt.Errorf("samrack: SAM answered %02X: %s", sw3, ga467.StatusText(sw3))
		}
		if check != nil && data != nil {
			if err := check(data); err != nil {
				return err
			}
		}
		if !r.c.opts.batch && next != nil {
			r.out = append(r.out, next)
		}
		return nil
	}
	plain, err := r.keys.Open(sealed)
	if err != nil {
		return fmt.Errorf("samrack: open card script: %w", err)
	}
	cmds, err := ga467.DecodeCardFrames(plain)
	if err != nil {
		return fmt.Errorf("samrack: card script: %w", err)
	}
	replies, err := idcard.Run(r.ctx, r.rf, cmds)
	if err != nil {
		r.cardGone = err // the appliance hears of it by the short answer
	}
	enc, err := ga467.EncodeCardFrames(replies)
	if err != nil {
		return fmt.Errorf("samrack: card replies: %w", err)
	}
	r.out = append(r.out, answer(r.keys.Seal(enc)))
	return nil
}

// checkSerial compares the serial the SAM selected with the one the reader
// read itself: a mismatch means something between card and SAM is lying.
func (r *read) checkSerial(serial []byte) error {
	if !bytes.Equal(serial, r.res.Serial[:]) {
		return fmt.Errorf("samrack: the SAM selected card %X, not the card in the field", serial)
	}
	return nil
}

func (r *read) result(m *wire.Result) error {
	if r.keys == nil {
		return fmt.Errorf("samrack: Result before Accept")
	}
	if err := r.verified(); err != nil {
		return err
	}
	if err := r.signed(); err != nil {
		return err
	}
	plain, err := r.keys.Open(m.Sealed)
	if err != nil {
		return fmt.Errorf("samrack: open result: %w", err)
	}
	rd, err := wire.DecodeResult(plain, r.ro.Fingerprint)
	clear(plain)
	if err != nil {
		return fmt.Errorf("samrack: result: %w", err)
	}
	id, err := ga467.DecodeText(rd.Text)
	if err != nil {
		return fmt.Errorf("samrack: card text: %w", err)
	}
	r.res.Identity, r.res.Text, r.res.Photo, r.res.Fingerprint = id, rd.Text, rd.Photo, rd.Fingerprint
	r.done = true
	return nil
}

// closesConn reports whether the appliance closes the connection after
// sending code (protocol errors and a stalled or undecryptable session).
func closesConn(code wire.Code) bool {
	switch code {
	case wire.UnknownReader, wire.ReaderBlacklisted, wire.ReaderSuspended, wire.BadCredentials,
		wire.Malformed, wire.TooLarge, wire.UnexpectedMessage, wire.UnsupportedVersion,
		wire.Timeout, wire.SessionAuth, wire.ShuttingDown, wire.Internal:
		return true
	}
	return false
}
