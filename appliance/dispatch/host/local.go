package host

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
)

// Config wires a Local host.
type Config struct {
	Pool      Pool
	Blacklist Blacklist
	// Signer is the appliance's node identity. Without one, a Placement
	// that asks for a signed key share is refused (Internal).
	Signer Signer
	// Audit receives the host's audit events; it must not block for long.
	Audit func(audit.Event)
	// HashCard is the keyed hash under which card serials are logged.
	HashCard func(serial [8]byte) string
	Logger   *slog.Logger
	// QueueWait bounds the wait for another SAM when a session restarts
	// after a SAM failed (default 2 s).
	QueueWait time.Duration
	// MaxAttempts is how many SAMs one read may try when SAMs fail under
	// it (default 2: the first and one restart).
	MaxAttempts int
	// IdleTimeout releases the lease of a session whose front end has
	// sent nothing for this long (default 30 s). It must exceed the front
	// end's wait for its reader (dispatch.Config.ReaderTimeout).
	IdleTimeout time.Duration
	// Rand is the source of ephemeral keys, session IDs and signatures.
	Rand io.Reader
	// Now is the clock of audit events (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.QueueWait <= 0 {
		c.QueueWait = 2 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 2
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
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
		panic("host: Config.HashCard is required")
	}
}

// Local is the session host of the appliance it runs on, called in
// process. Each placed session has one goroutine, which runs the SAM
// operations and ends when the session does; Close ends them all.
type Local struct {
	cfg    Config
	ctx    context.Context // the host's lifetime: the parent of every session's
	cancel context.CancelFunc

	mu     sync.Mutex // mu guards closed and the wg.Add that must not follow Close
	closed bool
	wg     sync.WaitGroup
}

var _ Host = (*Local)(nil)

// New returns a Local host. Pool and HashCard are required.
func New(cfg Config) *Local {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Local{cfg: cfg, ctx: ctx, cancel: cancel}
}

// Close releases the lease of every session (quietly: their front ends
// are gone or going) and waits for the sessions' goroutines.
func (h *Local) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

func (h *Local) audit(e audit.Event) {
	if e.SAMID == "" && e.Slot == 0 {
		e.Slot = audit.NoSlot
	}
	if e.Time.IsZero() {
		e.Time = h.cfg.Now()
	}
	h.cfg.Audit(e)
}

// Place implements Host: it picks the first of the reader's key shares
// whose suite it supports, makes the session ID and its own ephemeral key,
// signs its key share if asked (on a goroutine of its own, alongside the
// key agreement and the SAM's first work), derives the session keys, and
// leases a SAM (the preferred ones first) within ctx's deadline.
func (h *Local) Place(ctx context.Context, p *Placement) (Session, *Placed, error) {
	var share *wire.KeyShare
	for i := range p.KeyShares {
		if slices.Contains(suite.Supported(), p.KeyShares[i].Suite) {
			share = &p.KeyShares[i]
			break
		}
	}
	if share == nil {
		return nil, nil, &Refusal{Code: wire.NoCommonSuite, Kind: audit.KindReaderRejected, Detail: "no common suite"}
	}
	var alg suite.SigAlg
	if p.Sign {
		if h.cfg.Signer == nil {
			return nil, nil, &Refusal{Code: wire.Internal, Kind: "internal", Detail: ErrNoSigner.Error()}
		}
		var err error
		if alg, err = suite.SigAlgFor(h.cfg.Signer.Public()); err != nil {
			return nil, nil, &Refusal{Code: wire.Internal, Kind: "internal", Detail: err.Error()}
		}
	}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(1) // the session's goroutine, given back if Place fails
	}
	h.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	fail := func(err error) (Session, *Placed, error) {
		h.wg.Done()
		return nil, nil, err
	}
	s := &session{h: h, reader: p.Reader, declared: p.Declared, prefetch: p.Prefetch,
		used: make([]bool, len(p.Prefetch)), started: h.cfg.Now(), in: make(chan step), done: make(chan struct{})}
	s.hash = h.cfg.HashCard(s.declared)
	if _, err := io.ReadFull(h.cfg.Rand, s.id[:]); err != nil {
		return fail(&Refusal{Code: wire.Internal, Kind: "internal", Detail: "session id: " + err.Error()})
	}
	eph, err := suite.Generate(share.Suite, h.cfg.Rand)
	if err != nil {
		return fail(&Refusal{Code: wire.Internal, Kind: "internal", Detail: "ephemeral key: " + err.Error()})
	}
	tr := wire.Transcript(p.Reader, share.Public, s.id, share.Suite, eph.Public())
	if p.Sign {
		// The signer runs beside the key agreement and the SAM's first
		// work; the session's first Output waits for it. If Place fails,
		// it finishes on its own (wg counts it: the count is not zero).
		s.sigc = make(chan signature, 1)
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			s.sigc <- h.sign(alg, p.KeyShares, tr)
		}()
	}
	if s.keys, err = eph.Agree(share.Public, tr, false); err != nil {
		return fail(&Refusal{Code: wire.BadCredentials, Kind: audit.KindReaderRejected, Detail: "key agreement: " + err.Error()})
	}
	l, err := h.cfg.Pool.Lease(ctx, p.Prefer)
	if err != nil {
		return fail(err)
	}
	s.ctx, s.cancel = context.WithCancel(h.ctx)
	s.setLease(l)
	go s.run()
	return s, &Placed{Accept: wire.Accept{SessionID: s.id, Suite: share.Suite, Public: eph.Public()}, Slot: l.Slot(), SAMID: l.SAMID()}, nil
}

// signature is the outcome of signing a session's key share.
type signature struct {
	msg *wire.KeyShareSignature
	err error
}

// sign signs the key share of a session (PROTOCOL.md §8.1).
func (h *Local) sign(alg suite.SigAlg, shares []wire.KeyShare, transcript []byte) signature {
	sig, err := suite.SignKeyShare(h.cfg.Signer, alg, wire.KeyShareSignedContent(alg, shares, transcript), h.cfg.Rand)
	if err != nil {
		return signature{err: err}
	}
	return signature{msg: &wire.KeyShareSignature{Alg: alg, Chain: h.cfg.Signer.Chain(), Signature: sig}}
}

// errReleased: the front end released the session (or the host closed, or
// the front end fell silent); the session ends without a word.
var errReleased = errors.New("session released")
