package main

// samctl blacklist import against the admin API over TLS (httptest with the
// appliance's PKI) on a real store: state.Memory, or a raft store on disk
// for an import cut short by a dropped connection or a stopped appliance.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/rack"
)

type idleRack struct{}

func (idleRack) Slots() []rack.SlotInfo           { return nil }
func (idleRack) Stats() rack.Stats                { return rack.Stats{Total: 1, Enabled: 1, Idle: 1} }
func (idleRack) Drain(context.Context, int) error { return rack.ErrUnknownSlot }
func (idleRack) Enable(int) error                 { return rack.ErrUnknownSlot }
func (idleRack) PowerOff(int) error               { return rack.ErrUnknownSlot }
func (idleRack) PowerOn(int) error                { return rack.ErrUnknownSlot }
func (idleRack) PowerCycle(int) error             { return rack.ErrUnknownSlot }
func (idleRack) Locate(int, bool) error           { return rack.ErrUnknownSlot }
func (idleRack) ClearQuarantine(int) error        { return rack.ErrUnknownSlot }

// importEnv is the admin API over TLS on a store, and an operator's
// credentials for it.
type importEnv struct {
	srvStore atomic.Pointer[stoppingStore] // if set, what the server uses
	ca       *pki.PKI
	creds    *admin.Credentials
	srv      *httptest.Server
	imported chan audit.Event // the audit events of imports
	inFlight int              // admin.Server.ImportInFlight
}

// newImportEnv issues an operator certificate, records the operator in st
// and serves the admin API on st until the test ends. ca may be nil (a new
// one is made).
func newImportEnv(tb testing.TB, st state.Store, ca *pki.PKI) *importEnv {
	tb.Helper()
	e := &importEnv{ca: ca}
	if v := os.Getenv("SAMRACK_IMPORT_INFLIGHT"); v != "" { // to measure the pipeline
		e.inFlight, _ = strconv.Atoi(v)
	}
	var err error
	if e.ca == nil {
		if e.ca, err = pki.LoadOrCreate(filepath.Join(tb.TempDir(), "ca"), nil); err != nil {
			tb.Fatal(err)
		}
	}
	certPEM, keyPEM, err := e.ca.IssueOperator("importer")
	if err != nil {
		tb.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	op := &state.Command{Version: state.CommandVersion, Op: state.OpPutOperator, By: "test", Operator: &state.Operator{
		Name: "importer", Role: state.RoleOperator, CertSerial: admin.CertSerial(pair.Leaf), Fingerprint: admin.Fingerprint(pair.Leaf)}}
	if err := st.Apply(context.Background(), op); err != nil {
		tb.Fatal(err)
	}
	e.creds = &admin.Credentials{ServerName: pki.ServerName, Operator: "importer",
		CertPEM: string(certPEM), KeyPEM: string(keyPEM), CAPEM: string(e.ca.CAPEM())}
	e.serve(tb, st)
	return e
}

// serve serves the admin API on st (again, after a restart).
func (e *importEnv) serve(tb testing.TB, st state.Store) {
	e.srvStore.Store(nil)
	e.imported = make(chan audit.Event, 64)
	s := &admin.Server{State: switchStore{st, e}, Operators: st.(state.OperatorReads), Rack: idleRack{}, ClientCAs: e.ca.Pool(), Logger: slog.New(slog.DiscardHandler),
		ImportInFlight: e.inFlight,
		Record: func(ev audit.Event) {
			if ev.Kind == "blacklist.card.import" {
				e.imported <- ev
			}
		}}
	e.srv = httptest.NewUnstartedServer(s.Handler())
	e.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{e.ca.Server()}, ClientAuth: tls.RequestClientCert}
	e.srv.StartTLS()
	tb.Cleanup(e.srv.Close)
	e.creds.URL = e.srv.URL
}

// switchStore is the store of the server: st, or the stoppingStore set.
type switchStore struct {
	state.Store
	e *importEnv
}

func (s switchStore) Propose(ctx context.Context, c *state.Command) (state.Pending, error) {
	if ss := s.e.srvStore.Load(); ss != nil {
		return ss.Propose(ctx, c)
	}
	return state.Propose(ctx, s.Store, c)
}

// stoppingStore closes the raft store as its at-th card command is
// proposed: the appliance stops in the middle of an import.
type stoppingStore struct {
	*raftstore.Store
	at int
	n  atomic.Int64
}

func (s *stoppingStore) Propose(ctx context.Context, c *state.Command) (state.Pending, error) {
	if c.Op == state.OpAddCards && s.n.Add(1) == int64(s.at) {
		s.Store.Close()
	}
	return s.Store.Propose(ctx, c)
}

// waitImport waits for the server to finish an import request.
func (e *importEnv) waitImport(tb testing.TB) audit.Event {
	tb.Helper()
	select {
	case ev := <-e.imported:
		return ev
	case <-time.After(waitLimit):
		tb.Fatal("no import finished")
		return audit.Event{}
	}
}

func (e *importEnv) client(tb testing.TB) *admin.Client {
	c, err := admin.NewClient(e.creds, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// cardOf is the serial of card number i of a generated list (never zero).
func cardOf(seed, i uint64) (s [8]byte) {
	x := seed*0x9e3779b97f4a7c15 + i + 1
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	binary.BigEndian.PutUint64(s[:], x|1)
	return s
}

// listGen generates a card list of n card lines as it is read: card i on
// line i+1, no reason, except that lines in bad hold junk.
type listGen struct {
	seed, n, i uint64
	bad        map[uint64]string // line → its text
	buf        []byte
}

func (g *listGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i < g.n {
		line := g.i + 1
		if junk, ok := g.bad[line]; ok {
			g.buf = append(g.buf, junk...)
		} else {
			s := cardOf(g.seed, g.i)
			g.buf = fmt.Appendf(g.buf, "%x", s[:])
		}
		g.buf = append(g.buf, '\n')
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

func writeList(tb testing.TB, g *listGen) (path string, size int64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "cards.txt")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	size, err = io.Copy(f, g)
	if err != nil || f.Close() != nil {
		tb.Fatal(err)
	}
	return path, size
}

func TestImportBadLinesThroughSamctl(t *testing.T) {
	isolate(t)
	st := state.NewMemory()
	e := newImportEnv(t, st, nil)
	credsFile := filepath.Join(t.TempDir(), "creds.json")
	if err := e.creds.Save(credsFile); err != nil {
		t.Fatal(err)
	}
	// 30,000 lines in parts of 1 MiB... of at least 1 MiB: force small
	// parts, so bad lines fall in several parts.
	const n = 150_000
	bad := map[uint64]string{3: "0123", 70_001: "0000000000000000", 149_999: "zz" + strings.Repeat("0", 14)}
	for l := uint64(100_000); l < 100_020; l++ {
		bad[l] = "# a comment line" // not bad: skipped
	}
	path, _ := writeList(t, &listGen{seed: 1, n: n, bad: bad})
	out, code := samctl(t, "--creds", credsFile, "blacklist", "import", path, "--part-size", "1", "--progress", "none", "--reason", "stolen")
	if code != exitBadLines {
		t.Fatalf("exit %d, want %d:\n%s", code, exitBadLines, out)
	}
	for _, want := range []string{
		"150000 line(s) in 3 part(s)", "149977 new, 0 already present, 3 bad", "the first 3 of 3",
		`line 3: card serial "0123": want 16 hex digits`, "line 70001: zero card serial", "line 149999: card serial", "149977 card(s) on the blacklist",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Nothing else lost: every good line is on the list, with its reason.
	for i := uint64(0); i < n; i++ {
		line := i + 1
		en, ok := st.CardBlacklisted(cardOf(1, i))
		if _, isBad := bad[line]; isBad == ok || (ok && en.Reason != "stolen") {
			t.Fatalf("line %d: on the list %v (%+v), bad %v", line, ok, en, isBad)
		}
	}
	// Again, as JSON: all present now.
	out, code = samctl(t, "--creds", credsFile, "--json", "blacklist", "import", path, "--progress", "none")
	var sum importSummary
	if err := json.Unmarshal([]byte(out), &sum); code != exitBadLines || err != nil {
		t.Fatalf("exit %d %v: %s", code, err, out)
	}
	if sum.New != 0 || sum.Present != 149_977 || sum.Bad != 3 || len(sum.BadLines) != 3 || sum.BadLines[1].Line != 70_001 || sum.Parts != 1 {
		t.Fatalf("%+v", sum)
	}
	// A clean list exits 0.
	clean := filepath.Join(t.TempDir(), "clean.txt")
	os.WriteFile(clean, []byte("0102030405060708, lost\n"), 0o600)
	if out, code := samctl(t, "--creds", credsFile, "blacklist", "import", clean, "--progress", "none"); code != 0 || !strings.Contains(out, "1 new, 0 already present, 0 bad") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestPartReaderCutsAtLineEnds(t *testing.T) {
	var in bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&in, "%0*d\n", 1+i%40, i)
	}
	in.WriteString("no newline at the end")
	br := bufio.NewReaderSize(bytes.NewReader(in.Bytes()), 64<<10)
	prog := &importProgress{}
	var all []byte
	for parts := 0; ; parts++ {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		part, err := io.ReadAll(iotestHalf{&partReader{br: br, limit: 4096, prog: prog}})
		if err != nil {
			t.Fatal(err)
		}
		rest := br.Buffered() > 0
		if len(part) < 4096 && rest || rest && part[len(part)-1] != '\n' || len(part) > 4096+64 {
			t.Fatalf("part %d: %d bytes ending %q", parts, len(part), part[max(len(part)-5, 0):])
		}
		all = append(all, part...)
	}
	if !bytes.Equal(all, in.Bytes()) || prog.bytes.Load() != int64(in.Len()) || prog.lines.Load() != 5000 {
		t.Fatalf("parts join to %d bytes of %d; progress %d bytes, %d lines", len(all), in.Len(), prog.bytes.Load(), prog.lines.Load())
	}
}

// iotestHalf reads into at most half of each buffer (odd sizes for the
// part reader).
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:max(len(p)/2, 1)]) }

func TestRenderProgress(t *testing.T) {
	for _, c := range []struct {
		sent, size, lines int64
		el                time.Duration
		bar               bool
		want              string
	}{
		{50 << 20, 200 << 20, 3_000_000, 10 * time.Second, true, "[#######.......................]  25% 3.0M lines, 300k lines/s, ETA 30s"},
		{50 << 20, 200 << 20, 3_000_000, 10 * time.Second, false, " 25% 3.0M lines, 300k lines/s, ETA 30s"},
		{200 << 20, 200 << 20, 10_000_000, 20 * time.Second, false, "100% 10.0M lines, 500k lines/s, 20s"},
		{1 << 20, -1, 5000, 2 * time.Second, true, "5000 lines, 2500 lines/s, 2s"},
	} {
		if got := renderProgress(c.sent, c.size, c.lines, c.el, c.bar); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestImportProgressLines(t *testing.T) {
	st := state.NewMemory()
	e := newImportEnv(t, st, nil)
	var out syncBuffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	path, size := writeList(t, &listGen{seed: 2, n: 1000})
	f, _ := os.Open(path)
	defer f.Close()
	sum, err := importList(context.Background(), e.client(t), f, size, importOptions{Progress: &out, Every: time.Millisecond, Now: now})
	if err != nil || sum.New != 1000 {
		t.Fatalf("%+v %v", sum, err)
	}
	// Plain lines only (no carriage returns), each a progress line.
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "import: ") || strings.Contains(l, "\r") || !strings.Contains(l, "lines/s") {
			t.Fatalf("progress line %q", l)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// failingStore fails its failAt-th command (1-based), changing nothing.
type failingStore struct {
	*state.Memory
	mu     sync.Mutex
	n      int
	failAt int
}

var errInjected = errors.New("injected storage failure")

func (f *failingStore) Exec(ctx context.Context, c *state.Command) (state.Result, error) {
	f.mu.Lock()
	f.n++
	fail := f.n == f.failAt
	f.mu.Unlock()
	if fail {
		return state.Result{}, errInjected
	}
	return f.Memory.Exec(ctx, c)
}

func (f *failingStore) Apply(ctx context.Context, c *state.Command) error {
	_, err := f.Exec(ctx, c)
	return err
}

// TestImportChunkIsAtomic: the third chunk fails to apply; the first two
// are on the list whole, nothing of the third or of the lines after it.
func TestImportChunkIsAtomic(t *testing.T) {
	st := &failingStore{Memory: state.NewMemory(), failAt: 1 + 3} // the operator is command 1
	e := newImportEnv(t, st, nil)
	const n = 350_000
	path, size := writeList(t, &listGen{seed: 3, n: n})
	f, _ := os.Open(path)
	defer f.Close()
	_, err := importList(context.Background(), e.client(t), f, size, importOptions{PartSize: 64 << 20})
	var ae *admin.Error
	if !errors.As(err, &ae) || ae.Status != 503 || !strings.Contains(err.Error(), "2 chunk(s) applied whole") || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("got %v", err)
	}
	for i := uint64(0); i < n; i++ {
		_, ok := st.CardBlacklisted(cardOf(3, i))
		if want := i < 2*state.MaxCardsPerCommand; ok != want {
			t.Fatalf("card of line %d: on the list %v, want %v", i+1, ok, want)
		}
	}
	// Run again: it completes; the first two chunks count as present.
	f.Seek(0, io.SeekStart)
	sum, err := importList(context.Background(), e.client(t), f, size, importOptions{})
	if err != nil || sum.New != n-2*state.MaxCardsPerCommand || sum.Present != 2*state.MaxCardsPerCommand || sum.Count != n {
		t.Fatalf("%+v %v", sum, err)
	}
}

// TestImportRetriesAPart: the third chunk fails with a 5xx; samctl sends
// the part again and the import completes.
func TestImportRetriesAPart(t *testing.T) {
	st := &failingStore{Memory: state.NewMemory(), failAt: 1 + 3}
	e := newImportEnv(t, st, nil)
	const n = 350_000
	path, size := writeList(t, &listGen{seed: 6, n: n})
	f, _ := os.Open(path)
	defer f.Close()
	sum, err := importList(context.Background(), e.client(t), f, size, importOptions{Retries: 1, Backoff: time.Millisecond})
	if err != nil || sum.Retries != 1 || sum.New != n-2*state.MaxCardsPerCommand || sum.Present != 2*state.MaxCardsPerCommand || sum.Count != n || sum.Lines != n {
		t.Fatalf("%+v %v", sum, err)
	}
	// A refusal is not retried; stdin is not retried.
	f.Seek(0, io.SeekStart)
	st.failAt, st.n = 1, 0
	if _, err := importList(context.Background(), e.client(t), io.MultiReader(f), size, importOptions{Retries: 3, Backoff: time.Millisecond}); err == nil || st.n != 1 {
		t.Fatalf("not a file: %v after %d commands", err, st.n)
	}
}

func openSolo(t *testing.T, dir string) *raftstore.Store {
	t.Helper()
	s, err := raftstore.Open(raftstore.Config{Dir: dir, ID: "solo", Bootstrap: true, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Barrier(ctx); err != nil { // the log is applied
		t.Fatal(err)
	}
	return s
}

// hookReader calls hook once, when n bytes have been read.
type hookReader struct {
	r    io.Reader
	n    int64
	hook func() error
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil && h.n <= 0 {
		err := h.hook()
		h.hook = nil
		if err != nil {
			return 0, err
		}
	}
	if h.hook != nil {
		p = p[:min(int64(len(p)), h.n)]
	}
	n, err := h.r.Read(p)
	h.n -= int64(n)
	return n, err
}

// TestImportInterrupted: an import cut short — the connection dropped, or
// the appliance stopped — leaves whole chunks on the list; the same import
// run again completes it and counts them as present.
func TestImportInterrupted(t *testing.T) {
	const n = 350_000
	bad := map[uint64]string{10: "xyz", 300_000: "12"}
	for _, how := range []string{"connection cut", "appliance stopped"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			st := openSolo(t, dir)
			defer func() { st.Close() }()
			e := newImportEnv(t, st, nil)
			path, size := writeList(t, &listGen{seed: 4, n: n, bad: bad})
			f, _ := os.Open(path)
			defer f.Close()
			var r io.Reader = f
			if how == "connection cut" {
				// 4 MB in, about line 235,000: samctl is killed.
				r = &hookReader{r: f, n: 4 << 20, hook: func() error { return errors.New("samctl killed") }}
			} else {
				// The appliance stops as the third chunk is proposed.
				e.srvStore.Store(&stoppingStore{Store: st, at: 3})
			}
			_, err := importList(context.Background(), e.client(t), r, size, importOptions{PartSize: 64 << 20})
			if err == nil {
				t.Fatal("the import did not fail")
			}
			// The server notices and finishes the chunks in flight.
			if ev := e.waitImport(t); !strings.Contains(ev.Detail, "stopped") {
				t.Fatalf("audit: %+v", ev)
			}
			if how == "appliance stopped" {
				// Restart the appliance on its data directory.
				st = openSolo(t, dir)
				e.serve(t, st)
			}
			before := st.CardCount()
			t.Logf("%d cards on the list after the interruption", before)
			if before%state.MaxCardsPerCommand != 0 {
				t.Fatalf("%d cards on the list after the interruption: not whole chunks", before)
			}
			f.Seek(0, io.SeekStart)
			sum, err := importList(context.Background(), e.client(t), f, size, importOptions{})
			good := int64(n - len(bad))
			if err != nil || sum.New != good-int64(before) || sum.Present != int64(before) || sum.Bad != 2 || sum.Count != int(good) {
				t.Fatalf("re-run: %+v %v (%d before)", sum, err, before)
			}
			if sum.BadLines[0].Line != 10 || sum.BadLines[1].Line != 300_000 {
				t.Fatalf("bad lines %+v", sum.BadLines)
			}
		})
	}
}

// countingStore applies nothing: it validates and encodes each command, as
// a store would, and counts the cards, so the import path's own memory
// shows.
type countingStore struct {
	*state.Memory
	mu    sync.Mutex
	cards int
}

func (c *countingStore) Exec(ctx context.Context, cmd *state.Command) (state.Result, error) {
	if cmd.Op != state.OpAddCards {
		return c.Memory.Exec(ctx, cmd)
	}
	p, err := state.Prepare(ctx, cmd, time.Now)
	if err != nil {
		return state.Result{}, err
	}
	if _, err := p.Encode(); err != nil {
		return state.Result{}, err
	}
	c.mu.Lock()
	c.cards += len(cmd.Cards)
	c.mu.Unlock()
	return state.Result{Cards: len(cmd.Cards)}, nil
}

func (c *countingStore) Apply(ctx context.Context, cmd *state.Command) error {
	_, err := c.Exec(ctx, cmd)
	return err
}

// heapPeak samples the heap in use until stop is called, which returns the
// highest sample.
func heapPeak() (stop func() uint64) {
	var peak uint64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-t.C:
			case <-quit:
				return
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		return peak
	}
}

// TestImportMemoryBounded: 1 M lines (17 MB) through samctl's importer and
// the admin API, client and server in this process, and the heap stays
// within a few chunks: the list is never held whole (1 M entries alone
// would be 24 MB, twice that with the garbage of growing a slice).
func TestImportMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M lines")
	}
	st := &countingStore{Memory: state.NewMemory()}
	e := newImportEnv(t, st, nil)
	c := e.client(t)
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	stop := heapPeak()
	const n = 1_000_000
	sum, err := importList(context.Background(), c, &listGen{seed: 5, n: n}, -1, importOptions{PartSize: 64 << 20})
	peak := stop()
	if err != nil || sum.New != n || st.cards != n {
		t.Fatalf("%+v %v", sum, err)
	}
	grew := int64(peak) - int64(base)
	t.Logf("1 M lines: heap peak %.1f MiB above the %.1f MiB before", float64(grew)/(1<<20), float64(base)/(1<<20))
	if grew > 20<<20 {
		t.Fatalf("the heap grew by %.1f MiB importing 1 M lines (bound 20 MiB)", float64(grew)/(1<<20))
	}
}

// FuzzPartReader: the parts of any input join to the input; every part
// but the last ends a line and holds at least the limit.
func FuzzPartReader(f *testing.F) {
	f.Add([]byte("0000000000000001\n0000000000000002\nlast"), uint16(5))
	f.Add([]byte("\n\n\nabc"), uint16(1))
	f.Add([]byte(strings.Repeat("x", 300)+"\n"), uint16(7))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		lim := int64(limit%512) + 1
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		prog := &importProgress{}
		var all []byte
		for {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			part, err := io.ReadAll(iotestHalf{&partReader{br: br, limit: lim, prog: prog}})
			if err != nil || len(part) == 0 {
				t.Fatalf("part: %d bytes, %v", len(part), err)
			}
			all = append(all, part...)
			if len(all) < len(in) && (int64(len(part)) < lim || part[len(part)-1] != '\n') {
				t.Fatalf("part of %d bytes (limit %d) ends %q before the end", len(part), lim, part[len(part)-1])
			}
		}
		if !bytes.Equal(all, in) || prog.bytes.Load() != int64(len(in)) || prog.lines.Load() != int64(bytes.Count(in, []byte{'\n'})) {
			t.Fatalf("parts join to %q, want %q", all, in)
		}
	})
}

// TestImportLogEntries: each chunk is one raft log entry of at most
// state.MaxCardCommandBytes (≤ 1 MiB), holding its cards as 8 raw bytes
// each (not JSON, not hex).
func TestImportLogEntries(t *testing.T) {
	dir := t.TempDir()
	st := openSolo(t, dir)
	e := newImportEnv(t, st, nil)
	const n = 250_000
	sum, err := importList(context.Background(), e.client(t), &listGen{seed: 7, n: n}, -1, importOptions{})
	if err != nil || sum.New != n || sum.Chunks != 3 {
		t.Fatalf("%+v %v", sum, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	first, _ := logs.FirstIndex()
	last, _ := logs.LastIndex()
	var sizes []int
	cards := 0
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		c, err := state.Decode(l.Data)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if c.Op != state.OpAddCards {
			continue
		}
		if len(l.Data) > state.MaxCardCommandBytes || len(l.Data) > 8*len(c.Cards)+64 {
			t.Fatalf("entry %d: %d bytes for %d cards", i, len(l.Data), len(c.Cards))
		}
		sizes = append(sizes, len(l.Data))
		cards += len(c.Cards)
	}
	if cards != n || len(sizes) != 3 {
		t.Fatalf("%d cards in %d entries %v", cards, len(sizes), sizes)
	}
	t.Logf("entries of %v bytes", sizes)
}
