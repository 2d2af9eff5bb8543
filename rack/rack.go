package rack

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// Rack is the local rack: its slots, their state machines, health checks
// and recovery, and the pool that leases their SAMs. Its methods are safe
// for concurrent use.
type Rack struct {
	cfg   Config
	clk   Clock
	open  func(ctx context.Context, driver, dev string, opts map[string]string) (sam.SAM, error)
	event func(Event)
	watch map[string]PresenceWatcher // by driver name; immutable after New

	slots []*slot       // config order; the slice and map are immutable after New
	byNum map[int]*slot // by slot number

	// flushMu serialises OnEvent delivery. Lock order: flushMu → mu → Lease.mu.
	flushMu sync.Mutex

	// mu guards the fields below, every slot's fields marked "r.mu", and
	// every slot's machine.
	mu         sync.Mutex
	byID       map[ga467.SAMID]*slot // slot holding each known SAM ID
	idle       slotList              // leasable slots, least recently used first
	waiters    list.List             // *waiter, oldest first
	leases     map[*Lease]struct{}   // outstanding leases
	events     []Event               // audit events not yet delivered
	changed    chan struct{}         // closed and cleared on every change, if someone waits
	hold       time.Duration         // moving average of lease durations
	running    bool                  // Run was called
	stopped    bool                  // Run is shutting down or returned
	workerStop context.CancelFunc

	wg sync.WaitGroup // slot workers
}

// slot is the runtime of one configured slot.
type slot struct {
	id                   int
	cfg                  SlotConfig
	power, locate, fault gpio.PinOut   // nil if not wired
	kick                 chan struct{} // wakes the worker: a job is pending

	reads atomic.Uint64 // successful card reads through leases

	// Fields below are guarded by r.mu.
	m           machine
	sam         sam.SAM // nil while closed
	pending     *job    // job for the worker to pick up
	pendingGen  uint64
	delayGen    uint64             // generation of the job whose delay the worker waits out; 0 if none
	lease       *Lease             // the outstanding lease, nil if none
	jobCancel   context.CancelFunc // cancels the job the worker runs
	checkTimer  Timer
	prev, next  *slot // idle list links
	inIdle      bool
	ledSet      bool // LEDs were driven at least once
	ledLocate   bool // LED levels last driven
	ledFault    bool
	leases      uint64
	errs        uint64
	errRate     float64
	lastProof   time.Time // last passed check or clean lease
	lastCheck   time.Time
	lastLatency time.Duration
	since       time.Time
}

// New builds a rack from cfg. It resolves the GPIO lines but opens no SAM
// and starts nothing: Run does.
func New(cfg Config, opts Options) (*Rack, error) {
	var known []string
	if opts.Open == nil {
		opts.Open = sam.Open
		known = sam.Drivers()
	}
	if err := cfg.validate(known); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	r := &Rack{
		cfg:    cfg,
		clk:    opts.Clock,
		open:   opts.Open,
		event:  opts.OnEvent,
		watch:  opts.Watchers,
		byNum:  map[int]*slot{},
		byID:   map[ga467.SAMID]*slot{},
		leases: map[*Lease]struct{}{},
		hold:   time.Second, // until leases tell us better
	}
	now := r.clk.Now()
	for _, sc := range cfg.Slots {
		s := &slot{id: sc.ID, cfg: sc, kick: make(chan struct{}, 1), since: now}
		for _, l := range []struct {
			name string
			pin  *gpio.PinOut
		}{{sc.Power, &s.power}, {sc.Locate, &s.locate}, {sc.Fault, &s.fault}} {
			if l.name == "" {
				continue
			}
			if opts.Lines == nil {
				return nil, fmt.Errorf("rack: slot %d: line %q named but Options.Lines is nil", sc.ID, l.name)
			}
			p, err := opts.Lines(l.name)
			if err != nil {
				return nil, fmt.Errorf("rack: slot %d: line %q: %w", sc.ID, l.name, err)
			}
			*l.pin = p
		}
		s.m = newMachine(machineConfig{
			maxFailures: cfg.MaxFailures,
			backoff:     cfg.Backoff,
			maxBackoff:  cfg.MaxBackoff,
			reprobe:     cfg.CheckInterval,
			hasPower:    s.power != nil,
		})
		r.slots = append(r.slots, s)
		r.byNum[sc.ID] = s
	}
	return r, nil
}

// Run starts the rack: it powers and probes every slot, runs the presence
// watchers of Options.Watchers, then health-checks idle slots and recovers
// failed ones, until ctx is done. Then it shuts
// down: queued Lease calls fail with ErrClosed, outstanding leases are
// cancelled (their Context is done and their SAM's methods fail with
// ErrClosed), Run waits up to ShutdownGrace for lease operations already in
// flight to return, stops every goroutine it started and closes the SAMs.
// Release of a lease after shutdown is a harmless no-op. Run returns nil
// after a shutdown, ErrRunning or ErrClosed if called twice.
func (r *Rack) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.running {
		r.mu.Unlock()
		return ErrRunning
	}
	r.running = true
	wctx, stop := context.WithCancel(context.Background())
	r.workerStop = stop
	for _, s := range r.slots {
		r.wg.Add(1)
		go r.worker(wctx, s)
		r.armCheckLocked(s, r.cfg.CheckInterval)
		r.stepLocked(s, event{kind: evStart}) // refused if an operator acted first
	}
	for driver, w := range r.watch {
		r.wg.Add(1)
		go r.runWatcher(wctx, driver, w)
	}
	r.unlockAndFlush()

	<-ctx.Done()
	r.shutdown()
	return nil
}

// shutdown is the end of Run.
func (r *Rack) shutdown() {
	r.mu.Lock()
	r.stopped = true
	for e := r.waiters.Front(); e != nil; e = e.Next() {
		w := e.Value.(*waiter)
		w.elem = nil
		w.ch <- grant{err: ErrClosed}
	}
	r.waiters.Init()
	for _, s := range r.slots {
		if s.checkTimer != nil {
			s.checkTimer.Stop()
		}
		if s.jobCancel != nil {
			s.jobCancel()
		}
	}
	for l := range r.leases {
		l.shutdown()
	}
	r.workerStop()
	r.mu.Unlock()
	r.wg.Wait()

	// Lease operations in flight return promptly now their context is
	// cancelled; wait for them (bounded) so no SAM is closed under one.
	grace := r.clk.NewTimer(r.cfg.ShutdownGrace)
	r.mu.Lock()
	r.waitLocked(grace.C(), nil, func() bool {
		for l := range r.leases {
			if l.inflightOps() > 0 {
				return false
			}
		}
		return true
	})
	grace.Stop()
	closing := make([]sam.SAM, 0, len(r.slots))
	for _, s := range r.slots {
		if s.sam != nil {
			closing = append(closing, s.sam)
			s.sam = nil
		}
	}
	r.unlockAndFlush()
	for _, c := range closing {
		c.Close()
	}
}

// worker runs the slot's jobs one at a time until ctx is done. It is the
// only goroutine doing I/O on the slot's SAM outside leases, and it only
// runs when the slot is not leased.
func (r *Rack) worker(ctx context.Context, s *slot) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		j, gen := s.pending, s.pendingGen
		s.pending = nil
		var jctx context.Context
		if j != nil {
			jctx, s.jobCancel = context.WithCancel(ctx)
			if j.delay > 0 {
				s.delayGen = gen
			}
		}
		r.mu.Unlock()
		if j == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
				continue
			}
		}
		res := r.runJob(jctx, s, j, gen)
		r.mu.Lock()
		s.jobCancel()
		s.jobCancel = nil
		if s.delayGen == gen {
			s.delayGen = 0
		}
		if ctx.Err() != nil { // shutting down: the result means nothing
			r.mu.Unlock()
			return
		}
		now := r.clk.Now()
		if j.probe {
			s.lastCheck = now
			s.lastLatency = res.latency
		}
		if j.what == "check" || j.what == "reset" {
			s.countLocked(res.err != nil)
		}
		if res.err == nil && gen == s.m.gen {
			s.lastProof = now
		}
		r.stepLocked(s, event{kind: evJobDone, gen: gen, err: res.err, id: res.id})
		r.unlockAndFlush()
	}
}

// jobResult is the outcome of a job.
type jobResult struct {
	err     error
	id      ga467.SAMID
	latency time.Duration // of the probe
}

// runJob does the I/O of j. Every SAM operation has a deadline; the driver
// returns at it, so a hung module holds the worker at most CheckTimeout per
// step.
func (r *Rack) runJob(ctx context.Context, s *slot, j *job, gen uint64) (res jobResult) {
	fail := func(step string, err error) jobResult {
		return jobResult{err: fmt.Errorf("slot %d: %s: %s: %w", s.id, j.what, step, err)}
	}
	if j.delay > 0 {
		if err := r.sleep(ctx, j.delay); err != nil {
			return fail("backoff", err)
		}
		r.mu.Lock()
		if s.delayGen == gen {
			s.delayGen = 0 // the power steps, if any, begin
		}
		r.mu.Unlock()
	}
	if j.powerOff {
		if err := s.power.Out(gpio.Low); err != nil {
			return fail("power off", err)
		}
		r.closeSAM(s)
	}
	if j.closeSAM {
		r.closeSAM(s)
	}
	if j.powerOn {
		if j.powerOff {
			if err := r.sleep(ctx, r.cfg.PowerOffTime); err != nil {
				return fail("power off", err)
			}
		}
		if err := s.power.Out(gpio.High); err != nil {
			return fail("power on", err)
		}
		if err := r.sleep(ctx, r.cfg.BootTime); err != nil {
			return fail("boot", err)
		}
	}
	if j.open {
		if err := r.openSAM(ctx, s); err != nil {
			return fail("open", err)
		}
	}
	m := r.samOf(s)
	if (j.reset || j.probe) && m == nil {
		return fail("probe", ErrNoModule)
	}
	if j.reset {
		c, cancel := withTimeout(ctx, r.clk, r.cfg.CheckTimeout)
		err := m.Reset(c)
		cancel()
		if err != nil {
			return fail("reset", err)
		}
	}
	if j.probe {
		t0 := r.clk.Now()
		c, cancel := withTimeout(ctx, r.clk, r.cfg.CheckTimeout)
		err := m.Status(c)
		cancel()
		if err != nil {
			return fail("status", err)
		}
		c, cancel = withTimeout(ctx, r.clk, r.cfg.CheckTimeout)
		res.id, err = m.ID(c)
		cancel()
		if err != nil {
			return fail("SAM ID", err)
		}
		res.latency = r.clk.Now().Sub(t0)
	}
	return res
}

func (r *Rack) sleep(ctx context.Context, d time.Duration) error {
	t := r.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Rack) samOf(s *slot) sam.SAM {
	r.mu.Lock()
	defer r.mu.Unlock()
	return s.sam
}

func (r *Rack) closeSAM(s *slot) {
	r.mu.Lock()
	m := s.sam
	s.sam = nil
	r.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

// openSAM opens the slot's SAM unless it is open.
func (r *Rack) openSAM(ctx context.Context, s *slot) error {
	if r.samOf(s) != nil {
		return nil
	}
	c, cancel := withTimeout(ctx, r.clk, r.cfg.CheckTimeout)
	defer cancel()
	m, err := r.open(c, s.cfg.Driver, s.cfg.Device, s.cfg.Options)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoModule, err)
	}
	if m == nil {
		return ErrNoModule
	}
	r.mu.Lock()
	s.sam = m
	r.mu.Unlock()
	return nil
}

// armCheckLocked schedules the slot's next health check in d.
func (r *Rack) armCheckLocked(s *slot, d time.Duration) {
	s.checkTimer = r.clk.AfterFunc(d, func() { r.checkDue(s) })
}

// checkDue runs when a slot's check timer fires: it checks the slot if it is
// idle and nothing proved it healthy for CheckInterval, and re-arms.
func (r *Rack) checkDue(s *slot) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	next := r.cfg.CheckInterval
	if s.m.leasable() {
		now := r.clk.Now()
		if due := s.lastProof.Add(r.cfg.CheckInterval); now.Before(due) {
			next = due.Sub(now)
		} else {
			r.stepLocked(s, event{kind: evCheckDue})
		}
	}
	r.armCheckLocked(s, next)
	r.unlockAndFlush()
}

// stepLocked feeds ev to the slot's machine and carries out what changed:
// it hands a new job to the worker (cancelling a superseded one), drives
// the LEDs, files the audit events and puts the slot in or out of the pool.
func (r *Rack) stepLocked(s *slot, ev event) error {
	before, gen, id := s.m.state, s.m.gen, s.m.samID
	err := s.m.handle(ev)
	now := r.clk.Now()
	if s.m.state != before {
		s.since = now
	}
	if s.m.gen != gen {
		if s.jobCancel != nil {
			s.jobCancel()
		}
		s.pending, s.pendingGen = s.m.job, s.m.gen
		if s.pending != nil {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
	if s.m.samID != id {
		if r.byID[id] == s {
			delete(r.byID, id)
		}
		r.byID[s.m.samID] = s
	}
	r.driveLEDsLocked(s)
	for _, e := range s.m.takeEvents() {
		if e.Kind == EventSwap { // a new module: its own counters
			s.reads.Store(0)
			s.leases, s.errs, s.errRate = 0, 0, 0
		}
		if r.event != nil {
			e.Time, e.Slot = now, s.id
			r.events = append(r.events, e)
		}
	}
	r.syncPoolLocked(s)
	r.broadcastLocked()
	return err
}

// driveLEDsLocked sets the LEDs to what the machine wants. GPIO writes are
// register or sysfs writes that do not block, so they are done under r.mu
// and the LEDs always follow the state in order.
func (r *Rack) driveLEDsLocked(s *slot) {
	set := func(p gpio.PinOut, on bool) {
		if p == nil {
			return
		}
		if err := p.Out(gpio.Level(on)); err != nil {
			s.m.lastErr = fmt.Sprintf("LED %s: %v", p.Name(), err)
		}
	}
	if !s.ledSet || s.ledLocate != s.m.locate {
		set(s.locate, s.m.locate)
	}
	if !s.ledSet || s.ledFault != s.m.fault {
		set(s.fault, s.m.fault)
	}
	s.ledSet, s.ledLocate, s.ledFault = true, s.m.locate, s.m.fault
}

// countLocked records a lease or check outcome in the slot's error stats.
func (s *slot) countLocked(failed bool) {
	x := 0.0
	if failed {
		s.errs++
		x = 1
	}
	s.errRate += 0.1 * (x - s.errRate)
}

// unlockAndFlush unlocks r.mu and delivers pending audit events.
func (r *Rack) unlockAndFlush() {
	more := len(r.events) > 0
	r.mu.Unlock()
	if more {
		r.flush()
	}
}

// flush delivers queued events to OnEvent in order. Whoever holds flushMu
// delivers everyone's events; a caller that finds it taken (another
// goroutine, or OnEvent calling back into the rack) leaves its events to
// the holder, which looks again after unlocking.
func (r *Rack) flush() {
	for {
		if !r.flushMu.TryLock() {
			return
		}
		for {
			r.mu.Lock()
			evs := r.events
			r.events = nil
			r.mu.Unlock()
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				r.event(e)
			}
		}
		r.flushMu.Unlock()
		r.mu.Lock()
		more := len(r.events) > 0
		r.mu.Unlock()
		if !more {
			return
		}
	}
}

// broadcastLocked wakes everyone in waitLocked.
func (r *Rack) broadcastLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// waitLocked waits with r.mu held (released while blocked) until cond is
// true, timeout fires or ctxDone is closed (either may be nil); it reports
// cond.
func (r *Rack) waitLocked(timeout <-chan time.Time, ctxDone <-chan struct{}, cond func() bool) bool {
	for !cond() {
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
			r.mu.Lock()
		case <-timeout:
			r.mu.Lock()
			return cond()
		case <-ctxDone:
			r.mu.Lock()
			return cond()
		}
	}
	return true
}

// slotByNum finds a slot by number.
func (r *Rack) slotByNum(n int) (*slot, error) {
	if s := r.byNum[n]; s != nil {
		return s, nil
	}
	return nil, ErrUnknownSlot
}
