// Package hosttest holds the fakes of a session host's surroundings (a pool
// of one fake SAM) and Conformance, the contract every host.Host must keep,
// run over the in-process host.Local and, later, over a host forwarded to
// another appliance. Unit-test fakes: no card scheme, fixed answers.
package hosttest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

// waitLimit bounds every wait of these tests; they never sleep.
const waitLimit = 10 * time.Second

var cardSerial = sam.Serial{1, 2, 3, 4, 5, 6, 7, 8}

// fakeSAM runs each phase as one card exchange with the reader (a unit
// test fake: no card scheme, fixed answers). With block set, Find waits for
// its ctx instead.
type fakeSAM struct {
	block bool
}

func (f *fakeSAM) Reset(context.Context) error             { return nil }
func (f *fakeSAM) Status(context.Context) error            { return nil }
func (f *fakeSAM) ID(context.Context) (ga467.SAMID, error) { return ga467.SAMID{}, nil }
func (f *fakeSAM) Close() error                            { return nil }
func (f *fakeSAM) exchange(ctx context.Context, l sam.CardLink) error {
	r, err := l.Exchange(ctx, [][]byte{{0x05, 0x00, 0x00}})
	if err != nil {
		return fmt.Errorf("%w: %w", sam.ErrCardLink, err)
	}
	if len(r) != 1 || string(r[0]) != "ok" {
		return fmt.Errorf("%w: card answered %q", sam.ErrCardLink, r)
	}
	return nil
}

func (f *fakeSAM) Find(ctx context.Context, l sam.CardLink) ([]byte, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte{0, 0, 0, 0}, f.exchange(ctx, l)
}

func (f *fakeSAM) Select(ctx context.Context, l sam.CardLink) (sam.Serial, error) {
	return cardSerial, nil // answered without the reader
}

func (f *fakeSAM) Read(ctx context.Context, l sam.CardLink, what sam.ReadWhat) (*sam.Reading, error) {
	if err := f.exchange(ctx, l); err != nil {
		return nil, err
	}
	return &sam.Reading{Text: make([]byte, 256), Photo: make([]byte, 1024)}, nil
}

// fakePool leases its one SAM to one session at a time.
type fakePool struct {
	sam      *fakeSAM
	released chan error // each lease's outcome
	busy     bool
}

type fakeLease struct {
	p    *fakePool
	once sync.Once
}

func (p *fakePool) Lease(ctx context.Context, _ []ga467.SAMID) (host.Lease, error) {
	if p.busy {
		return nil, &host.BusyError{RetryAfter: time.Second}
	}
	return &fakeLease{p: p}, nil
}

func (l *fakeLease) Slot() int          { return 1 }
func (l *fakeLease) SAMID() ga467.SAMID { return ga467.SAMID{} }
func (l *fakeLease) SAM() sam.SAM       { return l.p.sam }
func (l *fakeLease) Release(outcome error) {
	first := false
	l.once.Do(func() { first = true })
	if !first {
		panic("lease released twice")
	}
	select {
	case l.p.released <- outcome:
	default: // NewPool's: nobody waits (the rig's tests take each one)
	}
}

// NewHost makes the host under test from cfg (host.Pool, host.Signer, Audit and
// HashCard filled in by the suite); the suite closes nothing: the factory
// registers its own cleanup.
type NewHost func(t *testing.T, cfg host.Config) host.Host

type rig struct {
	t      *testing.T
	h      host.Host
	pool   *fakePool
	pki    *pki.PKI
	mu     sync.Mutex // guards events
	events []audit.Event
}

func newRig(t *testing.T, newHost NewHost, cfg host.Config) *rig {
	leaktest.Check(t)
	p, err := pki.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, pool: &fakePool{sam: &fakeSAM{}, released: make(chan error, 4)}, pki: p}
	switch cfg.Signer.(type) {
	case nil:
		if cfg.Signer, err = host.CertSigner(p.Server()); err != nil {
			t.Fatal(err)
		}
	case noSigner:
		cfg.Signer = nil
	}
	cfg.Pool, cfg.HashCard = r.pool, func(s [8]byte) string { return fmt.Sprintf("h%x", s[:2]) }
	cfg.Audit = func(e audit.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
	r.h = newHost(t, cfg)
	return r
}

func (r *rig) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []string
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return k
}

// released waits for the lease's outcome.
func (r *rig) released() error {
	r.t.Helper()
	select {
	case err := <-r.pool.released:
		return err
	case <-time.After(waitLimit):
		r.t.Fatal("the lease was never released")
		return nil
	}
}

// reader is the reader's side of a placed session.
type reader struct {
	t      testing.TB
	eph    *suite.Ephemeral
	keys   *suite.Session
	shares []wire.KeyShare
	tr     []byte
	pool   *x509.CertPool
	signed bool // the first Output must start with a KeyShareSignature that verifies
	seen   bool // the first Output was seen
}

func (r *rig) place(sign bool) (*reader, host.Session, *host.Placed) {
	r.t.Helper()
	return r.placeWith(&host.Placement{Sign: sign})
}

// placeWith places p, with the rig's reader, key shares and card.
func (r *rig) placeWith(p *host.Placement) (*reader, host.Session, *host.Placed) {
	r.t.Helper()
	sign := p.Sign
	e, err := suite.Generate(suite.X25519, rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	shares := []wire.KeyShare{{Suite: 0x7E, Public: []byte{1}}, {Suite: suite.X25519, Public: e.Public()}}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p.Reader, p.KeyShares, p.Declared = "R-1", shares, cardSerial
	s, placed, err := r.h.Place(ctx, p)
	if err != nil {
		r.t.Fatal(err)
	}
	a := placed.Accept
	tr := wire.Transcript("R-1", e.Public(), a.SessionID, a.Suite, a.Public)
	keys, err := e.Agree(a.Public, tr, true)
	if err != nil {
		r.t.Fatal(err)
	}
	return &reader{t: r.t, eph: e, keys: keys, shares: shares, tr: tr, pool: r.pki.Pool(), signed: sign}, s, placed
}

func doStep(t testing.TB, s host.Session, in *host.Input) *host.Output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	out, err := s.Step(ctx, in)
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	return out
}

// answer opens every record of out in order and answers its card script.
func (rd *reader) answer(out *host.Output) *host.Input {
	rd.t.Helper()
	msgs := out.Messages
	if !rd.seen {
		rd.seen = true
		sig, ok := msgs[0].(*wire.KeyShareSignature)
		if ok != rd.signed {
			rd.t.Fatalf("first message %T; a signature was asked for: %v", msgs[0], rd.signed)
		}
		if ok {
			c, err := suite.VerifyKeyShare(rd.pool, sig.Chain, sig.Alg, wire.KeyShareSignedContent(sig.Alg, rd.shares, rd.tr), sig.Signature, time.Now())
			if err != nil || c.Subject.CommonName != pki.ServerName {
				rd.t.Fatalf("key share signature: %v", err)
			}
			msgs = msgs[1:]
		}
	}
	var in *host.Input
	for _, m := range msgs {
		var sealed []byte
		switch m := m.(type) {
		case *wire.FindResponse:
			sealed = m.Sealed
		case *wire.SelectResponse:
			sealed = m.Sealed
		case *wire.Relay:
			sealed = m.Sealed
		case *wire.Result:
			sealed = m.Sealed
		}
		plain, err := rd.keys.Open(sealed)
		if err != nil {
			rd.t.Fatalf("open %T: %v", m, err)
		}
		if !out.Await || m != msgs[len(msgs)-1] {
			continue
		}
		if _, err := ga467.DecodeCardFrames(plain); err != nil {
			rd.t.Fatal(err)
		}
		enc, _ := ga467.EncodeCardFrames([][]byte{[]byte("ok")})
		switch m.(type) {
		case *wire.FindResponse:
			in = &host.Input{Answer: &wire.FindConfirm{Sealed: rd.keys.Seal(enc)}}
		default:
			in = &host.Input{Answer: &wire.Relay{Sealed: rd.keys.Seal(enc)}}
		}
	}
	return in
}

// noSigner in a host.Config asks newRig for a host without a node key.
type noSigner struct{ host.Signer }

// Conformance runs the contract of a session host against the hosts
// newHost makes: a whole read through Place and Step (with a signed key
// share that verifies against the installation CA), the lease released
// when the front end falls silent, on Release (before it returns, quietly)
// and on a reader-side failure (audited, with its code), a Step deadline
// that holds while the host is stuck in the SAM, and Place's refusals.
func Conformance(t *testing.T, newHost NewHost) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, NewHost)
	}{
		{"Read", testRead},
		{"SilentFrontEnd", testSilentFrontEnd},
		{"Release", testRelease},
		{"StepDeadline", testStepDeadline},
		{"FirstStep", testFirstStep},
		{"ReaderFailure", testReaderFailure},
		{"Refusals", testRefusals},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHost) })
	}
}

var allRequests = []wire.Message{&wire.FindRequest{}, &wire.SelectRequest{}, &wire.ReadRequest{}}

func testRead(t *testing.T, newHost NewHost) {
	for _, flushFirst := range []bool{false, true} {
		r := newRig(t, newHost, host.Config{})
		rd, s, _ := r.place(true)
		if flushFirst {
			// An unbatched reader's Open comes alone: the front end asks
			// for the signature to send it with the Accept.
			out := doStep(t, s, &host.Input{})
			if out.Await || out.End != nil || len(out.Messages) != 1 {
				t.Fatalf("empty Input: %+v, want the signature alone", out)
			}
			if in := rd.answer(out); in != nil {
				t.Fatalf("answer to the signature: %+v", in)
			}
		}
		out := doStep(t, s, &host.Input{Requests: allRequests})
		if want := map[bool]int{false: 2, true: 1}[flushFirst]; !out.Await || len(out.Messages) != want {
			t.Fatalf("first Output %+v, want (the signature and) the find's card exchange", out)
		}
		out = doStep(t, s, rd.answer(out))
		// find done, select done (no exchange), the read's card exchange
		if !out.Await || len(out.Messages) != 3 {
			t.Fatalf("second Output %+v", out)
		}
		out = doStep(t, s, rd.answer(out))
		if out.End == nil || out.End.Code != 0 || out.End.Card != "h0102" || len(out.Messages) != 1 {
			t.Fatalf("last Output %+v, end %+v", out, out.End)
		}
		rd.answer(out) // the Result opens
		if err := r.released(); err != nil {
			t.Fatalf("lease released with %v, want nil", err)
		}
		if _, err := s.Step(context.Background(), &host.Input{Requests: allRequests}); !errors.Is(err, host.ErrSessionGone) {
			t.Fatalf("Step after the end: %v", err)
		}
		s.Release(context.Background(), nil) // harmless after the end
	}
}

// testSilentFrontEnd: a front end that places a session and goes away
// does not keep the SAM past the host's idle timeout.
func testSilentFrontEnd(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{IdleTimeout: 20 * time.Millisecond})
	_, s, _ := r.place(false)
	if err := r.released(); !errors.Is(err, sam.ErrCardLink) {
		t.Fatalf("abandoned lease released with %v", err)
	}
	if _, err := s.Step(context.Background(), &host.Input{Requests: allRequests}); !errors.Is(err, host.ErrSessionGone) {
		t.Fatalf("Step after abandon: %v", err)
	}
	// Same when the front end vanishes while the host waits for the
	// reader's answer, inside a SAM operation.
	_, s, _ = r.place(false)
	doStep(t, s, &host.Input{Requests: allRequests})
	if err := r.released(); !errors.Is(err, sam.ErrCardLink) {
		t.Fatalf("abandoned lease released with %v", err)
	}
	if k := r.kinds(); len(k) != 2 || k[0] != "session.abandoned" || k[1] != "session.abandoned" {
		t.Fatalf("audit %v, want two session.abandoned", k)
	}
}

// testRelease: Release mid-exchange returns with the lease released,
// quietly.
func testRelease(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{})
	_, s, _ := r.place(false)
	doStep(t, s, &host.Input{Requests: allRequests})
	why := errors.New("reader protocol error")
	s.Release(context.Background(), why)
	select {
	case err := <-r.pool.released:
		// A forwarded host carries the outcome's text, not its identity.
		if !errors.Is(err, sam.ErrCardLink) || !strings.Contains(err.Error(), why.Error()) {
			t.Fatalf("released with %v", err)
		}
	default:
		t.Fatal("Release returned before the lease was released")
	}
	s.Release(context.Background(), why) // again: no second release
	if k := r.kinds(); len(k) != 0 {
		t.Fatalf("a released session audited %v", k)
	}
}

// testStepDeadline: a host turn that overruns the Step's deadline
// returns the deadline's error; Release then ends the SAM operation and
// releases the lease, even when Release itself does not wait for it.
func testStepDeadline(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{})
	r.pool.sam.block = true
	_, s, _ := r.place(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Step(ctx, &host.Input{Requests: allRequests}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Step: %v", err)
	}
	// A Release whose own deadline has passed still releases the lease.
	done, stop := context.WithCancel(context.Background())
	stop()
	s.Release(done, errors.New("host too slow"))
	if err := r.released(); !errors.Is(err, sam.ErrCardLink) {
		t.Fatalf("released with %v", err)
	}
}

// testFirstStep: the phase requests of the Open's frame given with the
// Placement (Placement.First) give the Output a first Step would give,
// whether the host runs them with the Place (Placed.First) or leaves them
// to the front end's Step; a first Step that overruns FirstWithin ends in
// the deadline's error, and Release releases the lease.
func testFirstStep(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{})
	rd, s, placed := r.placeWith(&host.Placement{Sign: true, First: allRequests, FirstWithin: waitLimit})
	if placed.FirstErr != nil {
		t.Fatalf("first Step: %v", placed.FirstErr)
	}
	out := placed.First
	if out == nil { // the host left it to the front end
		out = doStep(t, s, &host.Input{Requests: allRequests})
	}
	if !out.Await || len(out.Messages) != 2 {
		t.Fatalf("first Output %+v, want the signature and the find's card exchange", out)
	}
	for range 8 {
		if out = doStep(t, s, rd.answer(out)); out.End != nil {
			break
		}
	}
	if out.End == nil || out.End.Code != 0 {
		t.Fatalf("read ended with %+v", out.End)
	}
	rd.answer(out)
	if err := r.released(); err != nil {
		t.Fatalf("released with %v", err)
	}

	r = newRig(t, newHost, host.Config{})
	r.pool.sam.block = true
	_, s, placed = r.placeWith(&host.Placement{First: allRequests, FirstWithin: 20 * time.Millisecond})
	err := placed.FirstErr
	if placed.First != nil {
		t.Fatalf("a blocked SAM's first Step answered %+v", placed.First)
	}
	if err == nil { // the host left it to the front end
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err = s.Step(ctx, &host.Input{Requests: allRequests})
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Step of a blocked SAM: %v", err)
	}
	s.Release(context.Background(), errors.New("host too slow"))
	if err := r.released(); !errors.Is(err, sam.ErrCardLink) {
		t.Fatalf("released with %v", err)
	}
}

// testReaderFailure: a reader-side failure ends the session with its
// code, audited with the SAM it held.
func testReaderFailure(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{})
	_, s, _ := r.place(false)
	doStep(t, s, &host.Input{Requests: allRequests})
	out := doStep(t, s, &host.Input{Fail: &host.Failure{Code: wire.Timeout, Detail: "reader stalled"}})
	if out.End == nil || out.End.Code != wire.Timeout || !out.End.Closes {
		t.Fatalf("host.Output %+v end %+v", out, out.End)
	}
	if e, ok := out.Messages[len(out.Messages)-1].(*wire.Error); !ok || e.Code != wire.Timeout {
		t.Fatalf("last message %#v", out.Messages[len(out.Messages)-1])
	}
	if err := r.released(); !errors.Is(err, sam.ErrCardLink) {
		t.Fatalf("released with %v", err)
	}
	if k := r.kinds(); len(k) != 1 || k[0] != "read.failed" {
		t.Fatalf("audit %v", k)
	}
}

func testRefusals(t *testing.T, newHost NewHost) {
	r := newRig(t, newHost, host.Config{})
	ctx := context.Background()
	x := []wire.KeyShare{{Suite: suite.X25519, Public: make([]byte, 32)}}
	x[0].Public[0] = 9
	var ref *host.Refusal
	if _, _, err := r.h.Place(ctx, &host.Placement{KeyShares: []wire.KeyShare{{Suite: 0x7E, Public: []byte{1}}}}); !errors.As(err, &ref) || ref.Code != wire.NoCommonSuite {
		t.Errorf("no common suite: %v", err)
	}
	if _, _, err := r.h.Place(ctx, &host.Placement{KeyShares: []wire.KeyShare{{Suite: suite.X25519, Public: make([]byte, 32)}}}); !errors.As(err, &ref) || ref.Code != wire.BadCredentials {
		t.Errorf("low-order key share: %v", err)
	}
	r.pool.busy = true
	var busy *host.BusyError
	if _, _, err := r.h.Place(ctx, &host.Placement{KeyShares: x}); !errors.As(err, &busy) {
		t.Errorf("busy pool: %v", err)
	}
	r.pool.busy = false
	noKey := newRig(t, newHost, host.Config{Signer: noSigner{}})
	if _, _, err := noKey.h.Place(ctx, &host.Placement{KeyShares: x, Sign: true}); !errors.As(err, &ref) || ref.Code != wire.Internal {
		t.Errorf("signature without a node key: %v", err)
	}
}

// NewPool returns a pool of one fake SAM whose leases are never waited
// for.
func NewPool() host.Pool { return &fakePool{sam: &fakeSAM{}, released: make(chan error, 4)} }

// Read runs one whole read on h as a front end and its reader would
// (Place, then Steps answering every card exchange, unsigned key share)
// and returns the SAM time the host reported. Benchmarks use it to time a
// host, local or forwarded, over NewPool's fake SAM.
func Read(tb testing.TB, h host.Host) time.Duration {
	e, err := suite.Generate(suite.X25519, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	shares := []wire.KeyShare{{Suite: suite.X25519, Public: e.Public()}}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// As the front end does: the requests of the Open's frame go with the
	// Placement.
	s, placed, err := h.Place(ctx, &host.Placement{Reader: "R-1", KeyShares: shares, Declared: cardSerial,
		First: allRequests, FirstWithin: waitLimit})
	if err != nil {
		tb.Fatal(err)
	}
	if placed.FirstErr != nil {
		tb.Fatal(placed.FirstErr)
	}
	a := placed.Accept
	tr := wire.Transcript("R-1", e.Public(), a.SessionID, a.Suite, a.Public)
	keys, err := e.Agree(a.Public, tr, true)
	if err != nil {
		tb.Fatal(err)
	}
	rd := &reader{t: tb, eph: e, keys: keys, shares: shares, tr: tr}
	var sam time.Duration
	in := &host.Input{Requests: allRequests}
	for range 8 {
		var out *host.Output
		if placed.First != nil {
			out, placed.First = placed.First, nil
		} else {
			out = doStep(tb, s, in)
		}
		sam += out.SAMTime
		in = rd.answer(out)
		if out.End != nil {
			if out.End.Code != 0 {
				tb.Fatalf("read ended with %v", out.End.Code)
			}
			return sam
		}
	}
	tb.Fatal("read did not end")
	return 0
}
