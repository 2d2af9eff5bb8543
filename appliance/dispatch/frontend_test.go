package dispatch

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/sim"
)

// oneReader is a Directory with one active reader.
type oneReader struct{ r Reader }

func (d oneReader) Reader(s string) (Reader, bool) { return d.r, s == d.r.Serial }
func (oneReader) ReaderBlacklisted(string) bool    { return false }
func (oneReader) CardBlacklisted(sam.Serial) bool  { return false }
func (oneReader) PreferredSAMs(string) []ga467.SAMID {
	return nil
}
func (oneReader) AuthFailed(context.Context, string) {}

// readerPKI is an installation CA with reader R-1's certificate and key.
type readerPKI struct {
	p               *pki.PKI
	key             []byte
	certPEM, keyPEM []byte
}

func newReaderPKI(t *testing.T) readerPKI {
	t.Helper()
	p, err := pki.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := p.IssueReader("R-1")
	if err != nil {
		t.Fatal(err)
	}
	return readerPKI{p: p, key: []byte("0123456789abcdef"), certPEM: certPEM, keyPEM: keyPEM}
}

// bundle is R-1's credential bundle for a front end at addr.
func (r readerPKI) bundle(addr string) *credentials.Bundle {
	return &credentials.Bundle{Server: addr, ServerName: pki.ServerName, ReaderSerial: "R-1", Cipher: credentials.CipherAES,
		KeyHex: hex.EncodeToString(r.key), CertPEM: string(r.certPEM), KeyPEM: string(r.keyPEM), CAPEM: string(r.p.CAPEM())}
}

// stallHost places sessions whose host never answers a Step (a host on an
// appliance that hung): the front end must give up at HostTimeout and
// release the session.
type stallHost struct {
	mu       sync.Mutex // guards released
	released []error
}

type stallSession struct{ h *stallHost }

func (h *stallHost) Place(ctx context.Context, p *host.Placement) (host.Session, *host.Placed, error) {
	return &stallSession{h}, &host.Placed{Accept: wire.Accept{Suite: p.KeyShares[0].Suite, Public: p.KeyShares[0].Public}}, nil
}

func (s *stallSession) Step(ctx context.Context, in *host.Input) (*host.Output, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *stallSession) Release(_ context.Context, outcome error) {
	s.h.mu.Lock()
	s.h.released = append(s.h.released, outcome)
	s.h.mu.Unlock()
}

// TestFrontEndHostTimeout: every call to the host has a deadline; a host
// that does not answer in time costs the reader a 302 and its session is
// released.
func TestFrontEndHostTimeout(t *testing.T) {
	leaktest.Check(t)
	rp := newReaderPKI(t)
	p, key := rp.p, rp.key
	h := &stallHost{}
	var (
		mu     sync.Mutex // guards events
		events []audit.Event
	)
	s := New(Config{Directory: oneReader{Reader{Serial: "R-1", Cipher: credentials.CipherAES, Key: key}}, Host: h,
		HashCard: func([8]byte) string { return "h" }, HostTimeout: 50 * time.Millisecond,
		Audit: func(e audit.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	b := rp.bundle(ln.Addr().String())
	// The stalled host signs nothing: the reader allows it, to get as far
	// as the Step.
	c, err := client.New(b, client.WithUnsignedKeyShares(true))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	_, err = c.Read(rctx, sim.NewCard(1, sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.SAMFault {
		t.Fatalf("read: %v, want 302", err)
	}
	h.mu.Lock()
	rel := h.released
	h.mu.Unlock()
	if len(rel) != 1 {
		t.Fatalf("session released %d times, want once", len(rel))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != audit.KindSAMFault || events[0].Code != int(wire.SAMFault) {
		t.Fatalf("audit %+v, want one sam.fault 302", events)
	}
	if st := s.Stats(); st.Errors["SAM fault"] != 1 || len(st.Errors) != 1 {
		t.Fatalf("error counters %v", st.Errors)
	}
}

// laggingReplica is a Directory replica that has not applied the reader's
// registration yet: the reader is known once CatchUp has run (or never,
// when the leader cannot be asked).
type laggingReplica struct {
	oneReader
	mu       sync.Mutex
	caughtUp bool
	fail     error
	calls    int
}

func (d *laggingReplica) Reader(s string) (Reader, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.caughtUp {
		return Reader{}, false
	}
	return d.oneReader.Reader(s)
}

func (d *laggingReplica) CatchUp(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.fail != nil {
		return d.fail
	}
	d.caughtUp = true
	return nil
}

// TestFrontEndCatchUp: a reader this replica does not know yet is looked
// up again once the replica has caught up with the leader (its read index)
// and gets its read; one that is still unknown after that, or when the
// leader cannot be asked, is refused 101.
func TestFrontEndCatchUp(t *testing.T) {
	leaktest.Check(t)
	rp := newReaderPKI(t)
	p, key := rp.p, rp.key
	for _, fail := range []error{nil, errors.New("no leader")} {
		dir := &laggingReplica{oneReader: oneReader{Reader{Serial: "R-1", Cipher: credentials.CipherAES, Key: key}}, fail: fail}
		s := New(Config{Directory: dir, Host: &stallHost{}, HashCard: func([8]byte) string { return "h" },
			HostTimeout: 50 * time.Millisecond, Audit: func(audit.Event) {}})
		ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx, ln) }()
		b := rp.bundle(ln.Addr().String())
		c, err := client.New(b, client.WithUnsignedKeyShares(true), client.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.Read(rctx, sim.NewCard(1, sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
		rcancel()
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		want := wire.SAMFault // admitted: the stalled host answers nothing
		if fail != nil {
			want = wire.UnknownReader
		}
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != want {
			t.Errorf("catch-up error %v: read %v, want %d", fail, err, want)
		}
		if dir.calls != 1 {
			t.Errorf("catch-up error %v: CatchUp called %d times, want once", fail, dir.calls)
		}
	}
}
