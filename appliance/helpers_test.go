package appliance

// Shared helpers of the end-to-end tests: a whole appliance (storage, PKI,
// audit, a simulated rack, the dispatcher) on loopback TLS, readers
// provisioned through its own PKI, the Go SDK as the honest reader and a
// "raw" reader built from api/wire and api/suite for the crafted cases (a
// reader that lies, stalls, vanishes or sends garbage).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// waitLimit bounds every wait of the tests; nothing legitimate comes close.
const waitLimit = 15 * time.Second

// rigOptions configure startRig. Zero fields take test-friendly defaults:
// 2 instant SAMs, generous reader and SAM timeouts, no health checks
// during a test.
type rigOptions struct {
	sams     int
	timing   sim.SAMTiming    // default: instant, 1 ms boot
	host     samhost.Timeouts // SAM operation deadlines; default 3 s each
	rack     func(*rack.Config)
	dispatch dispatch.Config // Directory, Pool, Audit, HashCard are wired by New
	// threshold is Config.AuthFailureThreshold (default 5).
	threshold int
	// dataDir and listen, if set, start the appliance on existing data
	// and a given reader address (a restart).
	dataDir, listen string
	// hw, if set, replaces the simulated rack (sams and timing are then
	// unused): a rack of real drivers whose slot timings are kept as
	// configured (rack still applies).
	hw *rigHardware
}

// rigHardware is a rack of real drivers for startRig: the slots and
// options of a rack file (LoadHardware), the virtual SAM in each slot, and
// what serves them (pcscd, ptys).
type rigHardware struct {
	cfg  rack.Config
	opts rack.Options
	sams []*sim.SAM // sams[i] sits in slot i
	// close stops what serves the SAMs. The rig calls it once the
	// appliance has stopped, before its goroutine leak check.
	close func()
}

// rig is one running appliance with a simulated rack whose SAMs the test
// can fault.
type rig struct {
	t    *testing.T
	a    *Appliance
	sams []*sim.SAM // sams[i] sits in slot i

	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
	hwClose func() // rigOptions.hw's close, if any
}

// startRig starts an appliance on 127.0.0.1:0 in a temporary data
// directory and waits until every slot is Enabled. It is stopped, and
// checked for leaked goroutines, when the test ends.
func startRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.sams == 0 {
		o.sams = 2
	}
	if o.timing == (sim.SAMTiming{}) {
		o.timing = sim.SAMTiming{Boot: time.Millisecond}
	}
	if o.host == (samhost.Timeouts{}) {
		o.host = samhost.Timeouts{Control: time.Second, Find: 3 * time.Second, Select: 3 * time.Second, Read: 3 * time.Second}
	}
	var (
		rc    rack.Config
		ropts rack.Options
		sams  []*sim.SAM
	)
	if o.hw != nil {
		rc, ropts, sams = o.hw.cfg, o.hw.opts, o.hw.sams
	} else {
		var sr *SimRack
		sr, rc, ropts = NewSimRack(o.sams, o.timing, o.host)
		sams = sr.SAMs
		rc.BootTime = o.timing.Boot + 20*time.Millisecond
		rc.PowerOffTime = 10 * time.Millisecond
		rc.CheckInterval = time.Minute // no health check runs unless a test asks
		rc.CheckTimeout = 300 * time.Millisecond
		rc.Backoff = 50 * time.Millisecond
		rc.MaxBackoff = 200 * time.Millisecond
		rc.MaxWait = 5 * time.Second
		rc.ShutdownGrace = time.Second
	}
	if o.rack != nil {
		o.rack(&rc)
	}
	dc := o.dispatch
	if dc.ReaderTimeout == 0 {
		dc.ReaderTimeout = 3 * time.Second
	}
	if dc.QueueWait == 0 {
		dc.QueueWait = time.Second
	}
	if dc.HandshakeTimeout == 0 {
		dc.HandshakeTimeout = 5 * time.Second
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	a, err := New(Config{
		DataDir: o.dataDir, Listen: o.listen, Admin: "127.0.0.1:0",
		Rack: &rc, RackOptions: ropts,
		AuthFailureThreshold: o.threshold,
		Dispatch:             dc,
		Logger:               slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, a: a, sams: sams, cancel: cancel, done: make(chan error, 1)}
	if o.hw != nil {
		r.hwClose = o.hw.close
	}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(r.stop)
	wctx, wcancel := context.WithTimeout(ctx, waitLimit)
	defer wcancel()
	for _, s := range a.Rack().Slots() {
		if _, err := a.Rack().WaitState(wctx, s.ID, rack.StateEnabled); err != nil {
			t.Fatalf("slot %d never came up: %v", s.ID, err)
		}
	}
	return r
}

// stop cancels Run, waits for it, stops the hardware (if any) and checks
// that nothing the appliance (or the test) started is still running.
func (r *rig) stop() {
	r.once.Do(func() {
		r.t.Helper()
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			r.t.Fatalf("Run did not return %v after its context ended:\n%s", waitLimit, samrackStacks())
		}
		if r.hwClose != nil {
			r.hwClose()
		}
		checkNoGoroutines(r.t)
	})
}

// samrackStacks returns the stacks of goroutines running samrack code,
// other than the test goroutines themselves.
func samrackStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/samrack/samrack/") ||
			strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*M).") {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n\n")
}

// checkNoGoroutines fails the test if goroutines running samrack code
// outlive the appliance. Goroutines on their way out (a timer's or a
// context's AfterFunc finishing) get a bounded moment to return; the check
// passes at once when none is left.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		left := samrackStacks()
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after the appliance stopped:\n%s", left)
		}
		time.Sleep(delay) // polling for exits, bounded by deadline
	}
}

// ctx is a context for one operation of the test.
func (r *rig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	r.t.Cleanup(cancel)
	return ctx
}

// addReader registers a reader and returns its credential bundle.
func (r *rig) addReader(serial, cipher string) *credentials.Bundle {
	r.t.Helper()
	b, err := r.a.AddReader(r.ctx(), serial, cipher, "test")
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// apply applies a state command.
func (r *rig) apply(cmd state.Command) {
	r.t.Helper()
	cmd.Version, cmd.By = state.CommandVersion, "test"
	if err := r.a.Store().Apply(r.ctx(), &cmd); err != nil {
		r.t.Fatalf("apply %s: %v", cmd.Op, err)
	}
}

// blacklistCard puts a card serial on the card blacklist.
func (r *rig) blacklistCard(serial [8]byte) {
	r.apply(state.Command{Op: state.OpAddCards, Cards: []state.CardSerial{serial}, Reason: "reported stolen"})
}

// preferSAM makes slot i the reader's SAM in the terminal→SAM table, so
// its reads start there.
func (r *rig) preferSAM(reader string, i int) {
	r.apply(state.Command{Op: state.OpSetAffinity, Serial: reader, SAMs: []ga467.SAMID{r.sams[i].ID()}})
}

// dial connects the SDK with b.
func (r *rig) dial(b *credentials.Bundle, opts ...client.Option) *client.Client {
	r.t.Helper()
	c, err := client.Dial(r.ctx(), b, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// read reads rf with c.
func (r *rig) read(c *client.Client, rf idcard.RF, ro client.ReadOptions) (*client.Result, error) {
	return c.Read(r.ctx(), rf, ro)
}

// mustRead reads rf with c and checks the data is the card's.
func (r *rig) mustRead(c *client.Client, card *sim.Card, rf idcard.RF, ro client.ReadOptions) *client.Result {
	r.t.Helper()
	if rf == nil {
		rf = card
	}
	res, err := r.read(c, rf, ro)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	checkResult(r.t, res, card, ro)
	return res
}

// checkResult checks a read returned exactly the card's data.
func checkResult(t *testing.T, res *client.Result, card *sim.Card, ro client.ReadOptions) {
	t.Helper()
	if res.Serial != card.Serial() {
		t.Errorf("serial %x, want %x", res.Serial, card.Serial())
	}
	if res.Identity == nil || *res.Identity != card.Identity() {
		t.Errorf("identity %+v, want %+v", res.Identity, card.Identity())
	}
	if string(res.Text) != string(card.Text()) || string(res.Photo) != string(card.Photo()) {
		t.Errorf("text or photo differ from the card's")
	}
	want := []byte(nil)
	if ro.Fingerprint {
		want = card.Fingerprint()
	}
	if string(res.Fingerprint) != string(want) || (want == nil) != (res.Fingerprint == nil) {
		t.Errorf("fingerprint of %d bytes, want %d", len(res.Fingerprint), len(want))
	}
}

// wantCode checks err is a *wire.Error with code and returns it.
func wantCode(t *testing.T, err error, code wire.Code) *wire.Error {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v, want wire code %d (%v)", err, code, code)
	}
	if we.Code != code {
		t.Fatalf("wire code %d (%v: %q), want %d (%v)", we.Code, we.Code, we.Message, code, code)
	}
	return we
}

// newCard is a virtual card with instant RF.
func newCard(seed int64, opts sim.CardOptions) *sim.Card {
	opts.Timing = &sim.RFTiming{}
	return sim.NewCard(seed, opts)
}

// cardHash is how the appliance's audit log names a card.
func (r *rig) cardHash(serial [8]byte) string { return r.a.hasher.Card(serial) }

// events returns the audit events of kind, oldest first.
func (r *rig) events(kind string) []audit.Event {
	all := r.a.Audit().Recent(1 << 20)
	var out []audit.Event
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Kind == kind {
			out = append(out, all[i])
		}
	}
	return out
}

// wantEvents checks exactly n audit events of kind were recorded (Counts
// and Recent agree) and returns them, oldest first.
func (r *rig) wantEvents(kind string, n int) []audit.Event {
	r.t.Helper()
	evs := r.events(kind)
	if got := r.a.Audit().Counts()[kind]; got != uint64(n) || len(evs) != n {
		r.t.Fatalf("%d %q audit events (%d in Recent), want %d; recent: %s", got, kind, len(evs), n, r.recentKinds())
	}
	return evs
}

func (r *rig) recentKinds() string {
	var ks []string
	for _, e := range r.a.Audit().Recent(64) {
		ks = append(ks, fmt.Sprintf("%s(%s code=%d slot=%d %q)", e.Kind, e.Reader, e.Code, e.Slot, e.Detail))
	}
	slices.Reverse(ks)
	return strings.Join(ks, ", ")
}

// wantEvent checks exactly one audit event of kind was recorded, with the
// reader and code given (code 0: any), and returns it.
func (r *rig) wantEvent(kind, reader string, code wire.Code) audit.Event {
	r.t.Helper()
	e := r.wantEvents(kind, 1)[0]
	if reader != "" && e.Reader != reader {
		r.t.Errorf("%s event of reader %q, want %q", kind, e.Reader, reader)
	}
	if code != 0 && e.Code != int(code) {
		r.t.Errorf("%s event with code %d, want %d", kind, e.Code, code)
	}
	return e
}

// wantStats checks the dispatcher counted reads successful reads and sent
// exactly the errors of want (count by code).
func (r *rig) wantStats(reads uint64, want map[wire.Code]uint64) {
	r.t.Helper()
	w := map[string]uint64{}
	for c, n := range want {
		w[c.String()] = n
	}
	// The front end counts an Error when it sends it, after the host
	// ended the session and released its SAM (what the caller waited
	// for): wait for the counters to get there (they only grow).
	st := r.a.Dispatcher().Stats()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(5 * time.Second); (st.Reads < reads || fmt.Sprint(st.Errors) != fmt.Sprint(w)) && time.Now().Before(deadline); <-tick.C {
		st = r.a.Dispatcher().Stats()
	}
	if st.Reads != reads {
		r.t.Errorf("dispatcher counted %d reads, want %d", st.Reads, reads)
	}
	if fmt.Sprint(st.Errors) != fmt.Sprint(w) {
		r.t.Errorf("dispatcher error counters %v, want %v", st.Errors, w)
	}
}

// leases is the number of leases the rack handed out so far.
func (r *rig) leases() uint64 {
	var n uint64
	for _, s := range r.a.Rack().Slots() {
		n += s.Leases
	}
	return n
}

// waitSlot waits until slot i is in one of the states (not checking or
// resetting).
func (r *rig) waitSlot(i int, states ...rack.State) rack.SlotInfo {
	r.t.Helper()
	info, err := r.a.Rack().WaitState(r.ctx(), i, states...)
	if err != nil {
		r.t.Fatalf("slot %d: waiting for %v: %v (now %v, %s)", i, states, err, info.State, info.LastError)
	}
	return info
}

// checkPool proves no SAM lease was lost: every slot comes back Enabled and
// idle, so the rack can lease all of them at once; they are given back
// clean. A slot still leased by a session on its way out is waited for
// (the rack's queue hands it over when it is released and reset).
func (r *rig) checkPool() {
	r.t.Helper()
	rk := r.a.Rack()
	slots := rk.Slots()
	for _, s := range slots {
		r.waitSlot(s.ID, rack.StateEnabled)
	}
	var got []*rack.Lease
	seen := map[int]bool{}
	for range slots {
		l, err := rk.Lease(r.ctx(), nil)
		if err != nil {
			for _, l := range got {
				l.Release(nil)
			}
			r.t.Fatalf("a SAM lease is lost: leased %d of %d slots: %v (rack %+v)", len(got), len(slots), err, rk.Stats())
		}
		got = append(got, l)
		seen[l.Slot()] = true
	}
	for _, l := range got {
		l.Release(nil)
	}
	if len(seen) != len(slots) {
		r.t.Fatalf("leased slots %v, want all %d", seen, len(slots))
	}
	if st := rk.Stats(); st.Busy != 0 || st.Waiters != 0 || st.Enabled != len(slots) {
		r.t.Fatalf("rack after giving every SAM back: %+v", st)
	}
}

// rfHook wraps a card's RF: fire runs once, before the command for which
// at (with the 1-based count of commands so far) first reports true.
type rfHook struct {
	rf   idcard.RF
	at   func(n int, cmd []byte) bool
	fire func()

	mu    sync.Mutex // guards n and fired
	n     int
	fired bool
}

func (h *rfHook) Transceive(ctx context.Context, cmd []byte) ([]byte, error) {
	h.mu.Lock()
	h.n++
	trigger := !h.fired && h.at(h.n, cmd)
	if trigger {
		h.fired = true
	}
	h.mu.Unlock()
	if trigger {
		h.fire()
	}
	return h.rf.Transceive(ctx, cmd)
}

// atMutualAuth triggers at the card's first MUTUAL AUTH: the SAM is then in
// the middle of its read, waiting for the card's answers.
func atMutualAuth(_ int, cmd []byte) bool { return len(cmd) > 2 && cmd[0] == 0x80 && cmd[1] == 0x82 }

// rawConn is a reader connection driven by hand with api/wire.
type rawConn struct {
	t  *testing.T
	b  *credentials.Bundle
	tc *tls.Conn
	br *bufio.Reader
}

// rawDial connects over TLS 1.3 with b's certificate.
func (r *rig) rawDial(b *credentials.Bundle) *rawConn {
	r.t.Helper()
	cfg, err := b.TLSConfig()
	if err != nil {
		r.t.Fatal(err)
	}
	d := tls.Dialer{Config: cfg}
	nc, err := d.DialContext(r.ctx(), "tcp", r.a.ReaderAddr())
	if err != nil {
		r.t.Fatal(err)
	}
	tc := nc.(*tls.Conn)
	r.t.Cleanup(func() { tc.Close() })
	return &rawConn{t: r.t, b: b, tc: tc, br: bufio.NewReader(tc)}
}

// send writes one frame.
func (c *rawConn) send(msgs ...wire.Message) {
	c.t.Helper()
	c.tc.SetWriteDeadline(time.Now().Add(waitLimit))
	if err := wire.WriteFrame(c.tc, msgs...); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// sendRaw writes bytes as they are, in one TLS record.
func (c *rawConn) sendRaw(b []byte) {
	c.t.Helper()
	c.tc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := c.tc.Write(b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv reads one frame.
func (c *rawConn) recv() ([]wire.Message, error) {
	c.tc.SetReadDeadline(time.Now().Add(waitLimit))
	return wire.ReadFrame(c.br)
}

// wantError reads a frame that must be exactly one Error of code.
func (c *rawConn) wantError(code wire.Code) *wire.Error {
	c.t.Helper()
	msgs, err := c.recv()
	if err != nil {
		c.t.Fatalf("want Error %d, got %v", code, err)
	}
	if len(msgs) != 1 {
		c.t.Fatalf("want one Error %d, got %d messages %T…", code, len(msgs), msgs[0])
	}
	we, ok := msgs[0].(*wire.Error)
	if !ok || we.Code != code {
		c.t.Fatalf("want Error %d, got %#v", code, msgs[0])
	}
	return we
}

// wantClosed checks the appliance closed the connection.
func (c *rawConn) wantClosed() {
	c.t.Helper()
	msgs, err := c.recv()
	if err == nil {
		c.t.Fatalf("connection still open: got %d messages, first %#v", len(msgs), msgs[0])
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "connection reset") {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

// rawOpen describes the Open of a raw session.
type rawOpen struct {
	serial   string     // Open.ReaderSerial; default the bundle's
	declared *[8]byte   // card serial to declare; default the card's own
	suites   []suite.ID // key shares; default X25519
	unbatch  bool       // send Open alone (no prefetch, no pipelined requests)
	noUID    bool       // leave GET UID out of the prefetch: the SAM asks the reader for it
	finger   bool
}

// rawSession is a read driven by hand: a reader that may lie, stall or
// vanish.
type rawSession struct {
	c      *rawConn
	serial string
	ephs   map[suite.ID]*suite.Ephemeral
	keys   *suite.Session
	finger bool
}

// open prefetches from rf (unless unbatched), seals the pre-session data
// and sends Open (with Find, Select and Read when batched).
func (c *rawConn) open(rf idcard.RF, o rawOpen) *rawSession {
	c.t.Helper()
	if o.serial == "" {
		o.serial = c.b.ReaderSerial
	}
	if o.suites == nil {
		o.suites = []suite.ID{suite.X25519}
	}
	key, err := c.b.Key()
	if err != nil {
		c.t.Fatal(err)
	}
	s := &rawSession{c: c, serial: o.serial, ephs: map[suite.ID]*suite.Ephemeral{}, finger: o.finger}
	pre := &wire.PreSession{}
	if rf != nil {
		ex, serial, err := idcard.Prefetch(context.Background(), rf)
		if err != nil {
			c.t.Fatal(err)
		}
		pre.CardSerial = serial
		if !o.unbatch {
			for _, e := range ex {
				if o.noUID && bytes.Equal(e.Cmd, idcard.GetUID) {
					continue
				}
				pre.Prefetch = append(pre.Prefetch, wire.Exchange{Cmd: e.Cmd, Resp: e.Resp})
			}
		}
	}
	if o.declared != nil {
		pre.CardSerial = *o.declared
	}
	plain, err := wire.MarshalPreSession(pre)
	if err != nil {
		c.t.Fatal(err)
	}
	sealed, err := suite.SealWithReaderKey(c.b.Cipher, key, o.serial, plain, rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	open := &wire.Open{ReaderSerial: o.serial, Sealed: sealed}
	for _, id := range o.suites {
		share := wire.KeyShare{Suite: id, Public: []byte{0x04}}
		if e, err := suite.Generate(id, rand.Reader); err == nil {
			s.ephs[id] = e
			share.Public = e.Public()
		}
		open.KeyShares = append(open.KeyShares, share)
	}
	msgs := []wire.Message{open}
	if !o.unbatch {
		msgs = append(msgs, &wire.FindRequest{}, &wire.SelectRequest{}, &wire.ReadRequest{Fingerprint: o.finger})
	}
	c.send(msgs...)
	return s
}

// rawTurn is what one frame from the appliance asked of the reader.
type rawTurn struct {
	msgs   []wire.Message
	accept bool
	script [][]byte                  // card commands to run and answer
	answer func([]byte) wire.Message // how to answer them
	result *sam.Reading
	err    *wire.Error
}

// next reads one frame and processes it as a reader must: every record
// opened in order.
func (s *rawSession) next() rawTurn {
	t := s.c.t
	t.Helper()
	msgs, err := s.c.recv()
	if err != nil {
		t.Fatalf("raw session: %v", err)
	}
	turn := rawTurn{msgs: msgs}
	openRec := func(sealed []byte) []byte {
		if s.keys == nil {
			t.Fatalf("record before Accept")
		}
		plain, err := s.keys.Open(sealed)
		if err != nil {
			t.Fatalf("open record: %v", err)
		}
		return plain
	}
	// The dispatcher answers a phase completed on the SAM side with a done
	// response that carries no record (as the SDK expects); a record, if
	// there is one, is opened in order.
	openDone := func(sealed []byte) {
		if len(sealed) > 0 {
			openRec(sealed)
		}
	}
	script := func(sealed []byte, answer func([]byte) wire.Message) {
		cmds, err := ga467.DecodeCardFrames(openRec(sealed))
		if err != nil {
			t.Fatalf("card script: %v", err)
		}
		if turn.script != nil {
			t.Fatalf("two card scripts in one frame")
		}
		turn.script, turn.answer = cmds, answer
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *wire.Accept:
			e := s.ephs[m.Suite]
			if e == nil {
				t.Fatalf("Accept of suite %v not offered", m.Suite)
			}
			tr := wire.Transcript(s.serial, e.Public(), m.SessionID, m.Suite, m.Public)
			if s.keys, err = e.Agree(m.Public, tr, true); err != nil {
				t.Fatal(err)
			}
			turn.accept = true
		case *wire.FindResponse:
			if m.Done {
				openDone(m.Sealed)
			} else {
				script(m.Sealed, func(b []byte) wire.Message { return &wire.FindConfirm{Sealed: b} })
			}
		case *wire.SelectResponse:
			if m.Done {
				openDone(m.Sealed)
			} else {
				script(m.Sealed, func(b []byte) wire.Message { return &wire.SelectConfirm{Sealed: b} })
			}
		case *wire.Relay:
			script(m.Sealed, func(b []byte) wire.Message { return &wire.Relay{Sealed: b} })
		case *wire.Result:
			// The Result is parsed as readers in the field parse it.
			rd, err := fieldReaderParse(openRec(m.Sealed), s.finger)
			if err != nil {
				t.Fatal(err)
			}
			turn.result = rd
		case *wire.Error:
			turn.err = m
		default:
			t.Fatalf("unexpected %T from the appliance", m)
		}
	}
	return turn
}

// answer runs the turn's script on rf and sends the card's replies.
func (s *rawSession) answer(rf idcard.RF, turn rawTurn) {
	s.c.t.Helper()
	replies, _ := idcard.Run(context.Background(), rf, turn.script)
	enc, err := ga467.EncodeCardFrames(replies)
	if err != nil {
		s.c.t.Fatal(err)
	}
	s.c.send(turn.answer(s.keys.Seal(enc)))
}

// finish answers card scripts with rf until the session ends, and returns
// the last turn (with its result or error).
func (s *rawSession) finish(rf idcard.RF, turn rawTurn) rawTurn {
	s.c.t.Helper()
	for turn.script != nil && turn.err == nil {
		s.answer(rf, turn)
		turn = s.next()
	}
	return turn
}

// untilScript reads frames until the appliance asks for card commands
// (the SAM is then leased and waiting for the reader).
func (s *rawSession) untilScript() rawTurn {
	s.c.t.Helper()
	for {
		turn := s.next()
		if turn.err != nil {
			s.c.t.Fatalf("session ended: %v", turn.err)
		}
		if turn.script != nil {
			return turn
		}
		if turn.result != nil {
			s.c.t.Fatalf("session ended with a result before any script")
		}
	}
}

// fieldReaderParse is a frozen copy of how version-1 readers in the field
// (the Go SDK up to this change) parse a Result: little-endian lengths,
// text 256, photo and fingerprint ≤ 1024, adding up exactly. Every
// appliance test parses Results with it, so a change of the Result bytes
// that would break readers in the field fails here. Do not "fix" it.
func fieldReaderParse(data []byte, fingerprint bool) (*sam.Reading, error) {
	n := 2
	if fingerprint {
		n = 3
	}
	if len(data) < 2*n {
		return nil, fmt.Errorf("read reply of %d bytes", len(data))
	}
	lens := make([]int, n)
	total := 2 * n
	for i := range lens {
		lens[i] = int(data[2*i]) | int(data[2*i+1])<<8
		total += lens[i]
	}
	if lens[0] != 256 || lens[1] > 1024 || (fingerprint && lens[2] > 1024) {
		return nil, fmt.Errorf("read reply lengths %v", lens)
	}
	if total != len(data) {
		return nil, fmt.Errorf("read reply lengths %v do not add up to %d bytes", lens, len(data))
	}
	body := append([]byte(nil), data[2*n:]...)
	rd := &sam.Reading{Text: body[:lens[0]:lens[0]], Photo: body[lens[0] : lens[0]+lens[1] : lens[0]+lens[1]]}
	if fingerprint && lens[2] > 0 {
		rd.Fingerprint = body[lens[0]+lens[1]:]
	}
	return rd, nil
}
