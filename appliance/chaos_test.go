package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc/pcsctest"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
	"github.com/samrack/samrack/rack/rackfile"
)

// The chaos test's size: a rack of 16 SAMs behind the real pcscd (its limit
// of 16 readers) and 8 behind real ptys, chaosReaders readers reading
// chaosReads cards in all while SAMs fail under them.
const (
	chaosPCSC    = pcsctest.MaxReader
	chaosSerial  = 8
	chaosReaders = 8
	chaosReads   = 1000
	// chaosEvery is how often the chaos goroutine considers a fault; at
	// most chaosMaxOut SAMs have a lasting fault (pulled, off, hung) at a
	// time, so the rack keeps serving.
	chaosEvery  = 25 * time.Millisecond
	chaosMaxOut = 8
	// chaosLimit bounds the reads and the chaos; chaosSettle the wait,
	// once the faults are cleared, for every slot to be back in service or
	// quarantined.
	chaosLimit  = 90 * time.Second
	chaosSettle = 30 * time.Second
)

// chaosSAMTiming: a small SAM read time, a quick boot.
var chaosSAMTiming = sim.SAMTiming{Read: 10 * time.Millisecond, Cmd: time.Millisecond, Boot: 10 * time.Millisecond}

// chaosHost are the SAM operation deadlines of both drivers: a hung SAM
// times out in about a second, with room for a loaded machine (-race, two
// cores, pcscd).
var chaosHost = samhost.Timeouts{Control: 500 * time.Millisecond, Find: time.Second, Select: time.Second, Read: 1500 * time.Millisecond}

// TestChaos runs reads from several readers through an appliance whose
// rack is real hardware stacks — 16 virtual SAMs as cards in vpcd readers
// of a private pcscd (driver "pcsc"), 8 behind ptys (driver "serial"),
// wired from a rack file by LoadHardware with its hot-swap watchers — while
// a chaos goroutine pulls SAMs and plugs them back, cuts and restores their
// power, hangs them for a while and makes them answer GA 467 error codes.
//
// Every read must either return the card's own data or end with a defined
// error code of the catalogue (not 500); a broken connection or a read
// that runs into the reader's deadline fails the test. Once the faults are
// cleared every slot must be back in service or quarantined within a bound,
// no lease may be lost (the rack leases every Enabled slot at once), Run
// must return nil, and no goroutine may be left.
//
// The faults come from a seeded math/rand, logged; SAMRACK_CHAOS_SEED=N
// replays the same sequence of fault decisions (their timing against the
// reads differs from run to run).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos through pcscd and ptys: not in -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAMRACK_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SAMRACK_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("chaos seed %d (replay: SAMRACK_CHAOS_SEED=%d go test -race -run 'TestChaos$' ./appliance/)", seed, seed)

	start := time.Now()
	hw := startChaosHardware(t)
	r := startRig(t, rigOptions{hw: hw.rig()})
	t.Logf("rack of %d SAMs (%d pcsc, %d serial) up in %v", len(hw.sams), chaosPCSC, chaosSerial, time.Since(start).Round(time.Millisecond))

	clients := make([]*client.Client, chaosReaders)
	for i := range clients {
		clients[i] = r.dial(r.addReader(fmt.Sprintf("R-CHAOS-%02d", i), credentials.CipherSM4))
	}

	ctx, cancel := context.WithTimeout(context.Background(), chaosLimit)
	defer cancel()
	ch := &chaos{t: t, hw: hw, rng: rand.New(rand.NewPCG(seed, seed^0x5a4d5241434b)), stop: make(chan struct{}),
		out: map[int]bool{}, kinds: map[string]int{}}
	chaosDone := make(chan struct{})
	chaosStart := time.Now()
	go func() {
		defer close(chaosDone)
		ch.run(ctx)
	}()

	reads := runChaosReads(ctx, t, clients)
	close(ch.stop)
	<-chaosDone
	readTime := time.Since(chaosStart)

	// The faults are cleared: every slot must come back, or be quarantined
	// (which only an operator clears), and give every lease back.
	states := settleChaos(t, r)

	st := r.a.Dispatcher().Stats()
	counts := r.a.Audit().Counts()
	t.Logf("reads: %d ok, %d failed of %d; errors by code: %s", reads.ok, chaosReads-reads.ok, chaosReads, reads.codes())
	t.Logf("faults injected: %s", ch.summary())
	t.Logf("appliance: %d reads, errors %v; audit: %d sam.fault, %d read.restarted, %d slot.recovery-started, %d slot.quarantined",
		st.Reads, st.Errors, counts[audit.KindSAMFault], counts["read.restarted"], counts["slot.recovery-started"], counts["slot.quarantined"])
	swaps := presenceReports(t, r)
	t.Logf("hot-swap reports: %v", swaps)
	t.Logf("final slots: %s", states)
	for _, s := range r.a.Rack().Slots() {
		if s.State != rack.StateEnabled {
			t.Logf("slot %d history:\n%s", s.ID, slotHistory(t, r, s.ID, 12))
		}
	}
	t.Logf("reads and chaos took %v", readTime.Round(time.Millisecond))

	if reads.ok+reads.defined() != chaosReads {
		t.Errorf("%d reads ended without a defined error code:\n%s", chaosReads-reads.ok-reads.defined(), strings.Join(reads.bad, "\n"))
	}
	if st.Reads != uint64(reads.ok) {
		t.Errorf("appliance counted %d successful reads, the readers %d", st.Reads, reads.ok)
	}
	// pcscd saw modules come and go (its watcher works on a full pcscd).
	if swaps["module-removed/pcsc"] == 0 || swaps["module-inserted/pcsc"] == 0 {
		t.Errorf("the PC/SC watcher reported no module removed or inserted: %v", swaps)
	}
	// The chaos must have hit reads, or the test proves nothing.
	if hit := counts[audit.KindSAMFault]; hit < chaosReads/50 {
		t.Errorf("only %d SAM faults under reads: the chaos is too mild", hit)
	}

	for _, c := range clients {
		c.Close()
	}
	r.stop() // Run returns nil, pcscd and the ptys stop, no goroutine is left
	t.Logf("TestChaos took %v", time.Since(start).Round(time.Millisecond))
}

// chaosReadResults are the outcomes of the reads.
type chaosReadResults struct {
	mu     sync.Mutex // guards the fields
	ok     int
	byCode map[wire.Code]int
	bad    []string // reads that ended without a defined code
}

func (r *chaosReadResults) defined() int {
	n := 0
	for _, c := range r.byCode {
		n += c
	}
	return n
}

func (r *chaosReadResults) codes() string {
	var out []string
	for c, n := range r.byCode {
		out = append(out, fmt.Sprintf("%d %v: %d", c, c, n))
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// chaosCodes are the codes a read may end with under SAM faults: those of
// SAMs failing (busy, SAM fault, shutting down) and of the card-side
// outcomes an injected GA 467 error code stands for (find or read failed,
// authentication failed). The others blame the reader or the card's
// identity — an honest reader presenting a fresh card that is on no list
// must never get them — or the appliance itself (500).
var chaosCodes = []wire.Code{wire.Busy, wire.SAMFault, wire.ShuttingDown, wire.CardGone, wire.CardAuthFailed, wire.CardReadFailed}

// runChaosReads reads chaosReads cards, each its own, from the clients at
// once, and checks every outcome.
func runChaosReads(ctx context.Context, t *testing.T, clients []*client.Client) *chaosReadResults {
	res := &chaosReadResults{byCode: map[wire.Code]int{}}
	var (
		next int
		wg   sync.WaitGroup
	)
	take := func() (int, bool) {
		res.mu.Lock()
		defer res.mu.Unlock()
		if next >= chaosReads {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok || ctx.Err() != nil {
					return
				}
				card := newCard(int64(10_000+i), sim.CardOptions{})
				ro := client.ReadOptions{Fingerprint: i%4 == 0}
				rctx, cancel := context.WithTimeout(ctx, waitLimit)
				out, err := c.Read(rctx, card, ro)
				cancel()
				var we *wire.Error
				switch {
				case err == nil:
					checkResult(t, out, card, ro)
					res.mu.Lock()
					res.ok++
					res.mu.Unlock()
				case errors.As(err, &we) && slices.Contains(chaosCodes, we.Code):
					res.mu.Lock()
					res.byCode[we.Code]++
					res.mu.Unlock()
					// A reader waits as told before its next read (the
					// appliance's hint is for a retry of the same card).
					if we.RetryAfter > 0 {
						pause(ctx, min(we.RetryAfter, 100*time.Millisecond))
					}
				default:
					res.mu.Lock()
					res.bad = append(res.bad, fmt.Sprintf("  read %d (reader %d): %v", i, w, err))
					res.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Errorf("reads still running after %v", chaosLimit)
	}
	return res
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// chaosHardware is the rack of the chaos test: SAMs 0..15 are cards in the
// vpcd readers of a private pcscd, SAMs 16..23 answer on ptys reached
// through stable symlinks, as udev's /dev/serial/by-id names are: a
// re-plugged module gets a new pty, as a re-plugged USB adapter gets a new
// ttyUSB, and its link follows.
type chaosHardware struct {
	t    *testing.T
	pcsc *pcsctest.Server
	sams []*sim.SAM
	cfg  *rack.Config
	opts rack.Options

	cancel context.CancelFunc // stops the vpcd cards
	wg     sync.WaitGroup     // the vpcd cards' goroutines

	dir   string     // holds the pty links and the rack file
	links []string   // links[i-chaosPCSC] names SAM i's pty
	ptys  []*sim.PTY // ptys[i-chaosPCSC] serves SAM i; nil while pulled; only the chaos goroutine changes them once running

	closeOnce sync.Once
}

func startChaosHardware(t *testing.T) *chaosHardware {
	t.Helper()
	srv := pcsctest.Start(t, chaosPCSC) // skips (outside CI) if pcscd is not installed
	ctx, cancel := context.WithCancel(context.Background())
	h := &chaosHardware{t: t, pcsc: srv, cancel: cancel, dir: t.TempDir()}
	t.Cleanup(h.close) // if the rig never takes it over
	timing := chaosSAMTiming
	for i := range chaosPCSC + chaosSerial {
		h.sams = append(h.sams, sim.NewSAM(int64(i+1), sim.SAMOptions{Timing: &timing}))
	}

	file := rackfile.File{
		CheckInterval: rackfile.Duration(200 * time.Millisecond),
		CheckTimeout:  rackfile.Duration(chaosHost.Control),
		PowerOffTime:  rackfile.Duration(10 * time.Millisecond),
		BootTime:      rackfile.Duration(chaosSAMTiming.Boot + 20*time.Millisecond),
		Backoff:       rackfile.Duration(100 * time.Millisecond),
		MaxBackoff:    rackfile.Duration(400 * time.Millisecond),
		MaxFailures:   4,
		MaxWait:       rackfile.Duration(5 * time.Second),
	}
	pcscOpts := map[string]string{"control": chaosHost.Control.String(), "find": chaosHost.Find.String(),
		"select": chaosHost.Select.String(), "read": chaosHost.Read.String()}
	for i, rd := range srv.Readers {
		s := h.sams[i]
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := s.ServeVPCD(ctx, rd.Addr); !errors.Is(err, context.Canceled) {
				t.Errorf("SAM %d in %s: ServeVPCD: %v", i, rd.Name, err)
			}
		}()
		file.Slots = append(file.Slots, rackfile.Slot{ID: i, Driver: "pcsc", Device: rd.Name, Options: pcscOpts})
	}
	for i := chaosPCSC; i < len(h.sams); i++ {
		link := filepath.Join(h.dir, fmt.Sprintf("sam%02d", i))
		h.links = append(h.links, link)
		h.ptys = append(h.ptys, nil)
		if err := h.plugPTY(i); err != nil {
			t.Fatal(err)
		}
		file.Slots = append(file.Slots, rackfile.Slot{ID: i, Driver: "serial", Device: link})
	}
	wctx, wcancel := context.WithTimeout(ctx, waitLimit)
	defer wcancel()
	for _, rd := range srv.Readers {
		if err := pcsctest.WaitPresent(wctx, rd.Name, true); err != nil {
			t.Fatalf("virtual SAM never showed in pcscd: %v", err)
		}
	}

	// Wired as samrackd --rack wires a real rack: a rack file, loaded with
	// the PC/SC and device-node watchers.
	data, err := yaml.Marshal(&file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(h.dir, "rack.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadHardware(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loaded.Close() })
	if len(loaded.Config.Slots) != len(h.sams) || loaded.Options.Watchers["pcsc"] == nil || loaded.Options.Watchers["serial"] == nil {
		t.Fatalf("LoadHardware: %d slots, watchers %v", len(loaded.Config.Slots), loaded.Options.Watchers)
	}
	h.cfg, h.opts = loaded.Config, loaded.Options
	// The serial driver takes no deadlines from a rack file; open the
	// pty modules with the chaos deadlines (the pcsc slots have them as
	// driver options).
	h.opts.Open = func(ctx context.Context, driver, dev string, opts map[string]string) (sam.SAM, error) {
		if driver == "serial" {
			m, err := serial.Open(ctx, dev, serial.Options{Timeouts: chaosHost})
			if err != nil {
				return nil, err
			}
			return m, nil
		}
		return sam.Open(ctx, driver, dev, opts)
	}
	return h
}

// rig is the hardware as startRig takes it.
func (h *chaosHardware) rig() *rigHardware {
	return &rigHardware{cfg: *h.cfg, opts: h.opts, sams: h.sams, close: h.close}
}

// close stops the vpcd cards, the ptys and pcscd.
func (h *chaosHardware) close() {
	h.closeOnce.Do(func() {
		h.cancel()
		h.wg.Wait()
		for _, p := range h.ptys {
			if p != nil {
				p.Close()
			}
		}
		if h.pcsc != nil {
			if err := h.pcsc.Close(); err != nil { // again at the test's end: a no-op
				h.t.Errorf("pcsctest: %v", err)
			}
		}
	})
}

// plugPTY serves serial SAM i on a new pty and points its link at it.
func (h *chaosHardware) plugPTY(i int) error {
	p, err := sim.NewPTY(h.sams[i])
	if err != nil {
		return err
	}
	link := h.links[i-chaosPCSC]
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(p.Path(), tmp); err != nil {
		p.Close()
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		p.Close()
		return err
	}
	h.ptys[i-chaosPCSC] = p
	return nil
}

// unplugPTY pulls serial SAM i: the SAM vanishes (its pty hangs up), the
// link goes before the pty's number can be given to another pty.
func (h *chaosHardware) unplugPTY(i int) {
	h.sams[i].Vanish()
	os.Remove(h.links[i-chaosPCSC])
	if p := h.ptys[i-chaosPCSC]; p != nil {
		p.Close() // ErrVanished
		h.ptys[i-chaosPCSC] = nil
	}
}

// chaos injects faults into the SAMs until stop is closed, then undoes
// them all. Only its goroutine touches its fields until run returns.
type chaos struct {
	t    *testing.T
	hw   *chaosHardware
	rng  *rand.Rand
	stop chan struct{}

	out     map[int]bool // SAMs with a lasting fault
	pending []chaosUndo
	kinds   map[string]int // faults injected, by kind and driver
	errs    []string
}

// chaosUndo ends a lasting fault at a time.
type chaosUndo struct {
	at   time.Time
	sam  int
	undo func()
}

// chaosSW3 are the GA 467 error codes injected: module faults (the read
// restarts on another SAM) and card-side outcomes (the read fails with a
// card error code).
var chaosSW3 = []byte{ga467.SW3Unrecognised, ga467.SW3CommFault, ga467.SW3BadCommand, ga467.SW3Random,
	ga467.SW3ReadFailed, ga467.SW3FindFailed, ga467.SW3SAMAuthCard}

func (c *chaos) run(ctx context.Context) {
	tick := time.NewTicker(chaosEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			c.undoAll()
			return
		case <-ctx.Done():
			c.undoAll()
			return
		case now := <-tick.C:
			c.undoDue(now)
			c.inject(now)
		}
	}
}

// inject maybe injects one fault into a random SAM.
func (c *chaos) inject(now time.Time) {
	i := c.rng.IntN(len(c.hw.sams))
	s := c.hw.sams[i]
	driver := "pcsc"
	if i >= chaosPCSC {
		driver = "serial"
	}
	kind := ""
	lasting := func(lo, hi time.Duration, undo func()) {
		c.out[i] = true
		d := lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
		c.pending = append(c.pending, chaosUndo{at: now.Add(d), sam: i, undo: undo})
	}
	switch p := c.rng.Float64(); {
	case p < 0.4: // an error code for the next command or two
		sw3 := chaosSW3[c.rng.IntN(len(chaosSW3))]
		s.FailNext(sw3, 1+c.rng.IntN(2))
		kind = fmt.Sprintf("SW3 %02X", sw3)
	case c.out[i] || len(c.out) >= chaosMaxOut:
		return
	case p < 0.6:
		kind = "pull"
		if driver == "serial" {
			c.hw.unplugPTY(i)
			lasting(100*time.Millisecond, time.Second, func() {
				s.Replug()
				if err := c.hw.plugPTY(i); err != nil {
					c.errs = append(c.errs, fmt.Sprintf("replug SAM %d: %v", i, err))
				}
			})
		} else {
			s.Vanish()
			lasting(100*time.Millisecond, time.Second, s.Replug)
		}
	case p < 0.8:
		kind = "power"
		s.PowerOff()
		lasting(100*time.Millisecond, 800*time.Millisecond, s.PowerOn)
	default:
		kind = "hang"
		s.SetHang(true)
		lasting(100*time.Millisecond, 800*time.Millisecond, func() { s.SetHang(false) })
	}
	c.kinds[kind+"/"+driver]++
}

// undoDue ends the faults whose time has come.
func (c *chaos) undoDue(now time.Time) {
	keep := c.pending[:0]
	for _, u := range c.pending {
		if now.Before(u.at) {
			keep = append(keep, u)
			continue
		}
		u.undo()
		delete(c.out, u.sam)
	}
	c.pending = keep
}

// undoAll ends every fault: the lasting ones, then any error code not used
// up yet.
func (c *chaos) undoAll() {
	for _, u := range c.pending {
		u.undo()
	}
	c.pending = nil
	clear(c.out)
	for _, s := range c.hw.sams {
		s.ClearFaults()
	}
	for _, e := range c.errs {
		c.t.Error(e)
	}
}

func (c *chaos) summary() string {
	var out []string
	total := 0
	for k, n := range c.kinds {
		out = append(out, fmt.Sprintf("%s: %d", k, n))
		total += n
	}
	slices.Sort(out)
	return fmt.Sprintf("%d (%s)", total, strings.Join(out, ", "))
}

// settleChaos waits, once the faults are cleared, until every slot is
// Enabled or Quarantined, and proves no lease was lost: it leases every
// Enabled slot at once and gives them back. A slot that moves while it
// does so (a hot-swap event of the chaos arriving late: pcscd sees a card
// come and go up to 400 ms later) makes it look again; a lease that cannot
// be had while no slot moved is a lost lease. It returns the final states.
func settleChaos(t *testing.T, r *rig) string {
	t.Helper()
	rk := r.a.Rack()
	ctx, cancel := context.WithTimeout(context.Background(), chaosSettle)
	defer cancel()
	for attempt := 1; ; attempt++ {
		var before []rack.SlotInfo
		for _, s := range rk.Slots() {
			info, err := rk.WaitState(ctx, s.ID, rack.StateEnabled, rack.StateQuarantined)
			if err != nil {
				t.Logf("slot %d history:\n%s", s.ID, slotHistory(t, r, s.ID, 30))
				t.Fatalf("slot %d not back in service nor quarantined %v after the chaos: %v (now %v, job %q, %s)",
					s.ID, chaosSettle, err, info.State, info.Job, info.LastError)
			}
			before = append(before, info)
		}
		enabled := 0
		for _, info := range before {
			if info.State == rack.StateEnabled {
				enabled++
			}
		}
		var got []*rack.Lease
		var lerr error
		for range enabled {
			l, err := rk.Lease(ctx, nil)
			if err != nil {
				lerr = err
				break
			}
			got = append(got, l)
		}
		for _, l := range got {
			l.Release(nil)
		}
		if lerr != nil {
			moved := false
			for i, s := range rk.Slots() {
				moved = moved || s.State != before[i].State || !s.Since.Equal(before[i].Since)
			}
			if moved && ctx.Err() == nil {
				continue
			}
			t.Fatalf("a SAM lease is lost: leased %d of %d Enabled slots: %v (rack %+v; slots %s)", len(got), enabled, lerr, rk.Stats(), slotStates(rk.Slots()))
		}
		if st := rk.Stats(); st.Busy != 0 || st.Waiters != 0 {
			t.Fatalf("rack after giving every SAM back: %+v", st)
		}
		if attempt > 1 {
			t.Logf("slots settled at look %d", attempt)
		}
		return slotStates(before)
	}
}

// slotStates counts slots by state and names those not Enabled.
func slotStates(slots []rack.SlotInfo) string {
	n := map[rack.State]int{}
	var odd []string
	for _, s := range slots {
		n[s.State]++
		if s.State != rack.StateEnabled {
			odd = append(odd, fmt.Sprintf("%d (%s %s): %v, %d failures, %s", s.ID, s.Driver, s.Device, s.State, s.Failures, s.LastError))
		}
	}
	out := fmt.Sprintf("%d Enabled, %d Quarantined", n[rack.StateEnabled], n[rack.StateQuarantined])
	if others := len(slots) - n[rack.StateEnabled] - n[rack.StateQuarantined]; others > 0 {
		out += fmt.Sprintf(", %d other", others)
	}
	if len(odd) > 0 {
		out += "; " + strings.Join(odd, "; ")
	}
	return out
}

// auditFile is every event of the appliance's audit log file, oldest
// first (Recent keeps only the last ones).
func auditFile(t *testing.T, r *rig) []audit.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.a.cfg.DataDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []audit.Event
	for line := range strings.Lines(string(data)) {
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// slotHistory is the last n audit events of a slot, one a line.
func slotHistory(t *testing.T, r *rig, slot, n int) string {
	var out []string
	for _, e := range auditFile(t, r) {
		if e.Slot == slot && strings.HasPrefix(e.Kind, "slot.") {
			out = append(out, fmt.Sprintf("  %s %s", e.Time.Format("15:04:05.000"), e.Detail))
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// presenceReports counts the hot-swap reports of the watchers, by kind and
// driver.
func presenceReports(t *testing.T, r *rig) map[string]int {
	n := map[string]int{}
	for _, e := range auditFile(t, r) {
		if e.Kind != "slot.module-removed" && e.Kind != "slot.module-inserted" {
			continue
		}
		driver := "serial"
		if e.Slot < chaosPCSC {
			driver = "pcsc"
		}
		n[strings.TrimPrefix(e.Kind, "slot.")+"/"+driver]++
	}
	return n
}
