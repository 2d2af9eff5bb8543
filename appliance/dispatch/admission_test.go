package dispatch

// The admission budgets over real TCP and TLS on loopback: a dispatcher
// with the appliance's own PKI, flooders on 127.0.0.1/.3/.4 and a reader
// with its certificate on 127.0.0.2.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

// noDirectory and noPool: the admission tests never open a session.
type noDirectory struct{}

func (noDirectory) Reader(string) (Reader, bool)       { return Reader{}, false }
func (noDirectory) ReaderBlacklisted(string) bool      { return false }
func (noDirectory) CardBlacklisted(sam.Serial) bool    { return false }
func (noDirectory) PreferredSAMs(string) []ga467.SAMID { return nil }
func (noDirectory) AuthFailed(context.Context, string) {}
func (noPool) Lease(context.Context, []ga467.SAMID) (Lease, error) {
	return nil, &BusyError{RetryAfter: time.Second}
}

type noPool struct{}

// lockedBuf is a log sink safe for the server's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// refusals returns the warn lines about refused connections.
func (l *lockedBuf) refusals() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ln := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(ln, "level=WARN") && strings.Contains(ln, "reader connection refused") {
			out = append(out, ln)
		}
	}
	return out
}

type admRig struct {
	t    *testing.T
	s    *Server
	addr string
	pki  *pki.PKI
	logs *lockedBuf
	skew atomic.Int64 // added to the real time: the server's clock
}

// startAdm serves cfg (Directory, Pool, HashCard, Logger and Now filled
// in) on 127.0.0.1:0 with a fresh PKI until the test ends.
func startAdm(t *testing.T, cfg Config) *admRig {
	t.Helper()
	leaktest.Check(t)
	p, err := pki.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &admRig{t: t, pki: p, logs: &lockedBuf{}}
	cfg.Directory, cfg.Pool = noDirectory{}, noPool{}
	cfg.HashCard = func([8]byte) string { return "h" }
	cfg.Logger = slogText(r.logs)
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(r.skew.Load())) }
	r.s = New(cfg)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r
}

// dialFrom opens a bare TCP connection from the loopback address src.
func (r *admRig) dialFrom(src string) net.Conn {
	r.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// reader connects from src with a reader certificate and checks a Ping is
// answered.
func (r *admRig) reader(src, serial string) error {
	r.t.Helper()
	certPEM, keyPEM, err := r.pki.IssueReader(serial)
	if err != nil {
		r.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: r.pki.Pool(), ServerName: pki.ServerName, MinVersion: tls.VersionTLS13}
	c := tls.Client(r.dialFrom(src), cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return err
	}
	if err := wire.WriteFrame(c, &wire.Ping{Nonce: 7}); err != nil {
		return err
	}
	msgs, err := wire.ReadFrame(bufio.NewReader(c))
	if err != nil {
		return err
	}
	if p, ok := msgs[0].(*wire.Pong); !ok || p.Nonce != 7 {
		return errors.New("no pong")
	}
	return nil
}

// wantStats waits (bounded) until the counters satisfy ok.
func (r *admRig) wantStats(what string, ok func(Stats) bool) Stats {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		st := r.s.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: stats %+v", what, st)
		}
		time.Sleep(delay) // polling the server's counters, bounded by deadline
	}
}

// refusalLines waits (bounded) until n refusal lines are logged and
// returns them.
func (r *admRig) refusalLines(n int) []string {
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		lines := r.logs.refusals()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(delay) // polling the server's log, bounded by deadline
	}
}

// wantRefused dials from src and checks the appliance resets the
// connection (the reset may already fail the dial, on loopback).
func (r *admRig) wantRefused(src string) {
	r.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			r.t.Fatalf("dial: %v, want a connection reset", err)
		}
		return
	}
	defer c.Close()
	wantReset(r.t, c)
}

// wantReset checks the appliance closed c (reset or end of stream)
// without sending anything.
func wantReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if err == nil || n > 0 {
		t.Fatalf("connection still open: read %d bytes, %v", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed: %v", err)
	}
}

func TestAdmissionPerSourceBudget(t *testing.T) {
	r := startAdm(t, Config{MaxPendingPerSource: 4, MaxPending: 100, RefusalLogEvery: time.Minute})
	for range 4 {
		r.dialFrom("127.0.0.1")
	}
	r.wantStats("4 pending", func(st Stats) bool { return st.Pending == 4 })
	r.wantRefused("127.0.0.1")
	r.wantRefused("127.0.0.1")
	// Another source has its own budget, and an authenticated reader is
	// not pending at all.
	if err := r.reader("127.0.0.2", "R-1"); err != nil {
		t.Fatalf("reader from another source: %v", err)
	}
	st := r.wantStats("refusals", func(st Stats) bool { return st.RefusedSource == 2 })
	if st.Pending != 4 || st.Refused != 2 || st.Evicted != 0 {
		t.Errorf("stats %+v: want 4 pending, 2 refused by source, none evicted", st)
	}
	// One warn line for the source in the period, the next one after it
	// with the count of those suppressed.
	lines := r.logs.refusals()
	if len(lines) != 1 || !strings.Contains(lines[0], "source=127.0.0.1") || !strings.Contains(lines[0], "reason="+reasonSourceBudget) {
		t.Fatalf("warn lines %q, want one for 127.0.0.1", lines)
	}
	r.skew.Add(int64(time.Minute))
	r.wantRefused("127.0.0.1")
	r.wantStats("third refusal", func(st Stats) bool { return st.RefusedSource == 3 })
	lines = r.refusalLines(2) // counted before it is logged: wait for the line
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=1") {
		t.Fatalf("warn lines %q, want a second one with suppressed=1", lines)
	}
}

func TestAdmissionEvictsOldestPending(t *testing.T) {
	r := startAdm(t, Config{MaxPendingPerSource: 4, MaxPending: 8})
	var flood []net.Conn
	for _, src := range []string{"127.0.0.3", "127.0.0.4"} {
		for range 4 {
			flood = append(flood, r.dialFrom(src))
			n := int64(len(flood))
			r.wantStats("pending", func(st Stats) bool { return st.Pending == n }) // keeps the age order known
		}
	}
	// The budget is full: the reader's connection evicts the oldest
	// pending one and completes.
	if err := r.reader("127.0.0.2", "R-1"); err != nil {
		t.Fatalf("reader while the pending budget is full: %v", err)
	}
	wantReset(t, flood[0])
	st := r.wantStats("eviction", func(st Stats) bool { return st.Evicted == 1 })
	if st.Pending != 7 || st.RefusedSource != 0 {
		t.Errorf("stats %+v: want 7 pending, no refusal by source", st)
	}
	if lines := r.logs.refusals(); len(lines) != 1 || !strings.Contains(lines[0], "reason="+reasonEvicted) ||
		!strings.Contains(lines[0], "source=127.0.0.3") {
		t.Errorf("warn lines %q, want one eviction of 127.0.0.3", lines)
	}
}

func TestAdmissionHandshakeDeadline(t *testing.T) {
	r := startAdm(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	idle := r.dialFrom("127.0.0.1")
	// Slowloris: a ClientHello record header, then a byte every 50 ms. The
	// deadline runs from accept, so trickling bytes does not extend it.
	slow := r.dialFrom("127.0.0.1")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		slow.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00})
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := slow.Write([]byte{0x01}); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	wantReset(t, idle)
	wantReset(t, slow)
	close(stop)
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow handshakes cut after %v, want about 300 ms", d)
	}
	st := r.wantStats("timeouts", func(st Stats) bool { return st.HandshakeTimeouts == 2 })
	if st.Pending != 0 || st.Refused != 2 {
		t.Errorf("stats %+v: want nothing pending, 2 refused", st)
	}
	// Not TLS at all fails at once, and is counted apart.
	junk := r.dialFrom("127.0.0.1")
	junk.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	wantReset(t, junk)
	r.wantStats("failed", func(st Stats) bool { return st.HandshakeFailed == 1 })
}

func TestAdmissionAuthenticatedBudget(t *testing.T) {
	r := startAdm(t, Config{MaxConns: 1})
	certPEM, keyPEM, _ := r.pki.IssueReader("R-1")
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	hold := tls.Client(r.dialFrom("127.0.0.2"), &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: r.pki.Pool(), ServerName: pki.ServerName})
	if err := hold.Handshake(); err != nil {
		t.Fatal(err)
	}
	r.wantStats("one authenticated", func(st Stats) bool { return st.Authenticated == 1 })
	if err := r.reader("127.0.0.2", "R-2"); err == nil {
		t.Fatal("a second reader got in beyond MaxConns=1")
	}
	st := r.wantStats("refused full", func(st Stats) bool { return st.RefusedFull == 1 })
	if st.Authenticated != 1 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	hold.Close()
	r.wantStats("none authenticated", func(st Stats) bool { return st.Authenticated == 0 && st.Active == 0 })
	if err := r.reader("127.0.0.2", "R-2"); err != nil {
		t.Fatalf("reader once the budget has room: %v", err)
	}
}

func TestWarnLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newWarnLimiter(10*time.Second, 2)
	check := func(key string, at time.Duration, ok bool, n uint64) {
		t.Helper()
		gotOK, gotN := l.allow(key, t0.Add(at))
		if gotOK != ok || gotN != n {
			t.Fatalf("allow(%s, +%v) = %v, %d; want %v, %d", key, at, gotOK, gotN, ok, n)
		}
	}
	check("a", 0, true, 0)
	check("a", time.Second, false, 0)
	check("a", 2*time.Second, false, 0)
	check("b", 3*time.Second, true, 0)
	check("a", 10*time.Second, true, 2)
	// Full (a, b in their period): a third source shares "*".
	check("c", 11*time.Second, true, 0)
	check("d", 12*time.Second, false, 0)
	// a's and b's periods are over: they are forgotten to make room.
	check("e", 21*time.Second, true, 0)
	// Full again (e, and "*" which is never forgotten): f shares "*",
	// whose period is over, and learns of d's line suppressed.
	check("f", 22*time.Second, true, 1)
}

func slogText(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5000":             "192.0.2.7",
		"[::ffff:192.0.2.7]:5000":    "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"not-an-address":             "not-an-address",
	} {
		var a net.Addr = strAddr(in)
		if tcp, err := net.ResolveTCPAddr("tcp", in); err == nil {
			a = tcp
		}
		if got := sourceOf(a); got != want {
			t.Errorf("sourceOf(%s) = %s, want %s", in, got, want)
		}
	}
}

type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }
