package rack

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// fakeClock is a Clock that moves only when Advance is called. AfterFunc
// callbacks run on the goroutine calling Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed when a timer is added
}

type fakeTimer struct {
	c    *fakeClock
	d    time.Duration
	when time.Time
	ch   chan time.Time
	f    func()
}

var _ Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(t *fakeTimer) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.c, t.when = c, c.now.Add(t.d)
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	return c.add(&fakeTimer{d: d, ch: make(chan time.Time, 1)})
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	return c.add(&fakeTimer{d: d, f: f})
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// Advance moves the clock by d, firing due timers in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		i := -1
		for j, t := range c.timers {
			if !t.when.After(end) && (i < 0 || t.when.Before(c.timers[i].when)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		if t.f != nil {
			t.f()
		} else {
			t.ch <- t.when
		}
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// waitSleepers waits until n channel timers (worker sleeps, Lease waits)
// of duration d are pending.
func (c *fakeClock) waitSleepers(t testing.TB, n int, d time.Duration) {
	t.Helper()
	watchdog := time.NewTimer(10 * time.Second)
	defer watchdog.Stop()
	for {
		c.mu.Lock()
		k := 0
		for _, tm := range c.timers {
			if tm.ch != nil && tm.d == d {
				k++
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-ch:
		case <-watchdog.C:
			t.Fatalf("fake clock: %d sleepers of %v after 10 s, want %d", k, d, n)
		}
	}
}

// fakeSAM is a sam.SAM whose behaviour tests set. Ops in hang block until
// their ctx is done and fail with sam.ErrTimeout, like a driver at its
// deadline; gone modules fail with sam.ErrGone.
type fakeSAM struct {
	mu     sync.Mutex
	id     ga467.SAMID
	errs   map[string]error // op → error to return
	hang   map[string]bool  // op → block until the deadline
	calls  map[string]int
	gone   bool
	closed bool
	hung   chan string // receives the op name when an op hangs (buffered)
}

var _ sam.SAM = (*fakeSAM)(nil)

func newFakeSAM(serial uint32) *fakeSAM {
	return &fakeSAM{
		id:    ga467.SAMID{A: 5, B: 1, Date: 20250101, Serial1: serial, Serial2: serial * 7},
		errs:  map[string]error{},
		hang:  map[string]bool{},
		calls: map[string]int{},
		hung:  make(chan string, 16),
	}
}

func (f *fakeSAM) set(fn func(f *fakeSAM)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeSAM) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeSAM) do(ctx context.Context, op string) error {
	f.mu.Lock()
	f.calls[op]++
	closed, gone, hang, err := f.closed, f.gone, f.hang[op], f.errs[op]
	f.mu.Unlock()
	switch {
	case closed:
		return sam.ErrClosed
	case gone:
		return fmt.Errorf("fake %s: %w", op, sam.ErrGone)
	case hang:
		f.hung <- op
		<-ctx.Done()
		return fmt.Errorf("fake %s: %w: %w", op, sam.ErrTimeout, ctx.Err())
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (f *fakeSAM) Reset(ctx context.Context) error  { return f.do(ctx, "reset") }
func (f *fakeSAM) Status(ctx context.Context) error { return f.do(ctx, "status") }
func (f *fakeSAM) ID(ctx context.Context) (ga467.SAMID, error) {
	if err := f.do(ctx, "id"); err != nil {
		return ga467.SAMID{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id, nil
}
func (f *fakeSAM) Find(ctx context.Context, _ sam.CardLink) ([]byte, error) {
	return []byte{0, 0, 0, 0}, f.do(ctx, "find")
}
func (f *fakeSAM) Select(ctx context.Context, _ sam.CardLink) (sam.Serial, error) {
	return sam.Serial{1, 2, 3, 4, 5, 6, 7, 8}, f.do(ctx, "select")
}
func (f *fakeSAM) Read(ctx context.Context, _ sam.CardLink, _ sam.ReadWhat) (*sam.Reading, error) {
	if err := f.do(ctx, "read"); err != nil {
		return nil, err
	}
	return &sam.Reading{Text: make([]byte, 256), Photo: make([]byte, 1024)}, nil
}
func (f *fakeSAM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["close"]++
	f.closed = true
	return nil
}

// fakePin is a gpio.PinOut recording its levels (gpiotest needs a module
// go.sum does not have). onOut, if set, runs after each Out.
type fakePin struct {
	name  string
	mu    sync.Mutex
	level gpio.Level
	log   []gpio.Level
	onOut func(gpio.Level)
}

var _ gpio.PinOut = (*fakePin)(nil)

func (p *fakePin) String() string   { return p.name }
func (p *fakePin) Name() string     { return p.name }
func (p *fakePin) Number() int      { return -1 }
func (p *fakePin) Function() string { return "Out" }
func (p *fakePin) Halt() error      { return nil }
func (p *fakePin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("fakePin: no PWM")
}
func (p *fakePin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.level = l
	p.log = append(p.log, l)
	f := p.onOut
	p.mu.Unlock()
	if f != nil {
		f(l)
	}
	return nil
}
func (p *fakePin) Level() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}
func (p *fakePin) History() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.log {
		if l {
			b.WriteByte('H')
		} else {
			b.WriteByte('L')
		}
	}
	return b.String()
}

// hardware is the fake rack's modules and lines, by device and line name.
type hardware struct {
	mu      sync.Mutex
	modules map[string]*fakeSAM // device → module; nil: slot empty
	opens   map[string]int
	pins    map[string]*fakePin
}

func (h *hardware) open(_ context.Context, driver, dev string, _ map[string]string) (sam.SAM, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opens[dev]++
	m := h.modules[dev]
	if m == nil {
		return nil, fmt.Errorf("fake: %s: no such device", dev)
	}
	m.set(func(f *fakeSAM) { f.closed = false })
	return m, nil
}

func (h *hardware) lines(name string) (gpio.PinOut, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pins[name]
	if p == nil {
		p = &fakePin{name: name}
		h.pins[name] = p
	}
	return p, nil
}

func (h *hardware) module(dev string) *fakeSAM {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.modules[dev]
}

func (h *hardware) insert(dev string, m *fakeSAM) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.modules[dev] = m
}

func (h *hardware) pin(name string) *fakePin {
	p, _ := h.lines(name)
	return p.(*fakePin)
}

// harness runs a Rack of fakes on a fake clock.
type harness struct {
	t   testing.TB
	r   *Rack
	clk *fakeClock
	hw  *hardware
	cfg Config

	evMu   sync.Mutex
	events []Event

	stop context.CancelFunc
	done chan error
}

// newHarness builds a rack of n slots "dev0".. with modules, power lines
// "pwrN" and LEDs "locN", "fltN" (power: false leaves the power lines out).
func newHarness(t testing.TB, n int, power bool, edit func(*Config)) *harness {
	checkLeaks(t)
	h := &harness{t: t, clk: newFakeClock(), hw: &hardware{modules: map[string]*fakeSAM{}, opens: map[string]int{}, pins: map[string]*fakePin{}}}
	for i := range n {
		sc := SlotConfig{ID: i, Driver: "fake", Device: fmt.Sprintf("dev%d", i),
			Locate: fmt.Sprintf("loc%d", i), Fault: fmt.Sprintf("flt%d", i)}
		if power {
			sc.Power = fmt.Sprintf("pwr%d", i)
		}
		h.cfg.Slots = append(h.cfg.Slots, sc)
		h.hw.modules[sc.Device] = newFakeSAM(uint32(1000 + i))
	}
	if edit != nil {
		edit(&h.cfg)
	}
	r, err := New(h.cfg, Options{Open: h.hw.open, Lines: h.hw.lines, Clock: h.clk, OnEvent: func(e Event) {
		h.evMu.Lock()
		h.events = append(h.events, e)
		h.evMu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	h.cfg = r.cfg
	return h
}

// run starts Run; the test's cleanup stops it.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.r.Run(ctx) }()
	h.t.Cleanup(h.shutdown)
}

// shutdown stops Run and waits for it.
func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.stop = nil
}

// start runs the rack and boots every slot to Enabled.
func (h *harness) start() {
	h.t.Helper()
	h.run()
	if n := h.powered(); n > 0 {
		h.clk.waitSleepers(h.t, n, h.cfg.BootTime)
		h.clk.Advance(h.cfg.BootTime)
	}
	for _, sc := range h.cfg.Slots {
		h.want(sc.ID, StateEnabled)
	}
}

// powered counts the slots with a power line.
func (h *harness) powered() int {
	n := 0
	for _, sc := range h.cfg.Slots {
		if sc.Power != "" {
			n++
		}
	}
	return n
}

// want waits until slot n is in state st and idle of checks and resets.
func (h *harness) want(n int, st State) SlotInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := h.r.WaitState(ctx, n, st)
	if err != nil {
		h.t.Fatalf("slot %d: waiting for %v: %v; slot is %+v", n, st, err, info)
	}
	return info
}

// waitFor waits until cond (called with r.mu held) is true.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.r.mu.Lock()
	ok := h.r.waitLocked(nil, ctx.Done(), cond)
	h.r.mu.Unlock()
	if !ok {
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

// kinds lists the events seen so far for slot n, as strings.
func (h *harness) eventLog(n int) []string {
	// Wait for deliveries in progress, then deliver what is left.
	h.r.flushMu.Lock()
	for {
		h.r.mu.Lock()
		evs := h.r.events
		h.r.events = nil
		h.r.mu.Unlock()
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			h.r.event(e)
		}
	}
	h.r.flushMu.Unlock()
	h.evMu.Lock()
	defer h.evMu.Unlock()
	var out []string
	for _, e := range h.events {
		if e.Slot == n {
			out = append(out, strings.TrimPrefix(e.String(), fmt.Sprintf("slot %d: ", n)))
		}
	}
	return out
}

func (h *harness) lease(prefer ...ga467.SAMID) *Lease {
	h.t.Helper()
	l, err := h.r.Lease(context.Background(), prefer)
	if err != nil {
		h.t.Fatalf("Lease: %v", err)
	}
	return l
}

// hungRead makes the module on dev hang on reads, starts a Read through
// lease l in a goroutine and returns once the module holds it; the Read's
// error arrives on the channel (the goroutine ends with the Read).
func (h *harness) hungRead(l *Lease, dev string) <-chan error {
	m := h.hw.module(dev)
	m.set(func(f *fakeSAM) { f.hang["read"] = true })
	readErr := make(chan error, 1)
	go func() {
		_, err := l.SAM().Read(context.Background(), nil, sam.ReadTextPhoto)
		readErr <- err
	}()
	<-m.hung
	return readErr
}

// checkLeaks fails the test if goroutines of this package outlive it.
// Registered first, it runs after every other cleanup.
func checkLeaks(t testing.TB) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := leakedGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			runtime.Gosched()
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "samrack/rack.") {
			continue
		}
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*M)") ||
			strings.Contains(g, "leakedGoroutines") {
			continue
		}
		out = append(out, g)
	}
	return out
}
