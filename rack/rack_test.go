package rack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

func TestStartProbesEverySlot(t *testing.T) {
	h := newHarness(t, 2, true, nil)
	h.start()
	for i, info := range h.r.Slots() {
		want := h.hw.module(fmt.Sprint("dev", i)).id
		if info.ID != i || info.SAMID != want || info.Health != HealthOK || !info.Powered || info.Activity != "idle" {
			t.Errorf("slot %d: %+v", i, info)
		}
		if got := h.hw.pin(fmt.Sprint("pwr", i)).History(); got != "H" {
			t.Errorf("slot %d power line %s, want H", i, got)
		}
		if got := h.hw.pin(fmt.Sprint("flt", i)).History(); got != "L" {
			t.Errorf("slot %d fault LED %s, want L", i, got)
		}
	}
	if st := h.r.Stats(); st != (Stats{Total: 2, Enabled: 2, Idle: 2}) {
		t.Errorf("Stats = %+v", st)
	}
	want := []string{"state Absent→Starting health=Warning", "sam-id " + h.hw.module("dev0").id.String(), "state Starting→Enabled health=OK"}
	if got := h.eventLog(0); !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAbsentSlotIsReprobed(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	m := h.hw.module("dev0")
	h.hw.insert("dev0", nil)
	h.run()
	h.waitFor("failed probe", func() bool { return h.r.slots[0].m.lastErr != "" })
	info := h.want(0, StateAbsent)
	if !strings.Contains(info.LastError, "no such device") {
		t.Errorf("LastError = %q", info.LastError)
	}
	h.hw.insert("dev0", m)
	h.clk.waitSleepers(t, 1, h.cfg.CheckInterval)
	h.clk.Advance(h.cfg.CheckInterval)
	if info := h.want(0, StateEnabled); info.SAMID != m.id {
		t.Errorf("SAM ID %v, want %v", info.SAMID, m.id)
	}
}

// A hung check is abandoned at its deadline; the slot leaves the pool and
// is recovered by a reset.
func TestHungCheckRecoveredByReset(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	m := h.hw.module("dev0")
	m.set(func(f *fakeSAM) { f.hang["status"] = true })
	h.clk.Advance(h.cfg.CheckInterval)
	<-m.hung
	if st := h.r.Stats(); st.Idle != 0 {
		t.Errorf("a slot being checked is leasable: %+v", st)
	}
	m.set(func(f *fakeSAM) { f.hang["status"] = false })
	h.clk.Advance(h.cfg.CheckTimeout)
	info := h.want(0, StateEnabled)
	if info.Health != HealthWarning || m.count("reset") != 1 {
		t.Errorf("after recovery: health %v, resets %d", info.Health, m.count("reset"))
	}
	want := []string{"state Enabled→UnavailableOffline health=Critical", "recovery-started", "recovered attempt=1", "state UnavailableOffline→Enabled health=Warning"}
	if got := h.eventLog(0)[3:]; !slices.Equal(trimErr(got), want) {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The next check proves it.
	h.clk.Advance(h.cfg.CheckInterval)
	h.waitFor("health OK", func() bool { return h.r.slots[0].m.health == HealthOK })
}

func trimErr(evs []string) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i], _, _ = strings.Cut(e, ":")
	}
	return out
}

// A module that fails its reset is power-cycled with backoff, then
// quarantined; an operator clears the quarantine.
func TestPowerCycleBackoffQuarantine(t *testing.T) {
	h := newHarness(t, 1, true, nil)
	h.start()
	m := h.hw.module("dev0")
	pwr, flt := h.hw.pin("pwr0"), h.hw.pin("flt0")
	m.set(func(f *fakeSAM) { f.errs["status"] = fmt.Errorf("fake: %w", sam.ErrTransport) })
	h.clk.Advance(h.cfg.CheckInterval) // check fails → reset + probe fails (attempt 1)
	for attempt, backoff := range []time.Duration{2 * time.Second, 4 * time.Second} {
		h.clk.waitSleepers(t, 1, backoff)
		if info, _ := h.r.Slot(0); info.State != StateUnavailableOffline || info.Failures != attempt+1 {
			t.Fatalf("attempt %d: %+v", attempt+2, info)
		}
		h.clk.Advance(backoff)
		h.clk.waitSleepers(t, 1, h.cfg.PowerOffTime)
		if pwr.Level() != gpio.Low {
			t.Fatal("power not off during power-cycle")
		}
		h.clk.Advance(h.cfg.PowerOffTime)
		h.clk.waitSleepers(t, 1, h.cfg.BootTime)
		h.clk.Advance(h.cfg.BootTime)
	}
	info := h.want(0, StateQuarantined)
	if !info.Fault || flt.Level() != gpio.High || info.Health != HealthCritical || info.Failures != 3 {
		t.Fatalf("quarantined slot: %+v", info)
	}
	if got := pwr.History(); got != "HLHLH" {
		t.Errorf("power line %s, want HLHLH", got)
	}
	// Quarantine holds: no checks, no recovery.
	resets := m.count("reset")
	h.clk.Advance(10 * h.cfg.CheckInterval)
	if info, _ := h.r.Slot(0); info.State != StateQuarantined || m.count("reset") != resets {
		t.Fatalf("quarantine did not hold: %+v", info)
	}
	if err := h.r.PowerCycle(0); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("PowerCycle of a quarantined slot: %v", err)
	}
	m.set(func(f *fakeSAM) { delete(f.errs, "status") })
	if err := h.r.ClearQuarantine(0); err != nil {
		t.Fatal(err)
	}
	h.clk.waitSleepers(t, 1, h.cfg.PowerOffTime)
	h.clk.Advance(h.cfg.PowerOffTime)
	h.clk.waitSleepers(t, 1, h.cfg.BootTime)
	h.clk.Advance(h.cfg.BootTime)
	info = h.want(0, StateEnabled)
	if info.Fault || flt.Level() != gpio.Low || info.Failures != 0 {
		t.Fatalf("after ClearQuarantine: %+v", info)
	}
	kinds := trimErr(h.eventLog(0))
	for _, k := range []string{"recovery-failed attempt=1", "recovery-failed attempt=2", "recovery-failed attempt=3", "quarantined attempt=3", "quarantine-cleared"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("no %q event in\n%s", k, strings.Join(kinds, "\n"))
		}
	}
}

// A power-cycle heals a module that a reset did not.
func TestPowerCycleHeals(t *testing.T) {
	h := newHarness(t, 1, true, nil)
	h.start()
	m := h.hw.module("dev0")
	m.set(func(f *fakeSAM) { f.errs["status"] = fmt.Errorf("fake: %w", sam.ErrTimeout) })
	h.hw.pin("pwr0").onOut = func(l gpio.Level) {
		if l == gpio.Low {
			m.set(func(f *fakeSAM) { delete(f.errs, "status") })
		}
	}
	h.clk.Advance(h.cfg.CheckInterval)
	h.clk.waitSleepers(t, 1, h.cfg.Backoff)
	h.clk.Advance(h.cfg.Backoff)
	h.clk.waitSleepers(t, 1, h.cfg.PowerOffTime)
	h.clk.Advance(h.cfg.PowerOffTime)
	h.clk.waitSleepers(t, 1, h.cfg.BootTime)
	h.clk.Advance(h.cfg.BootTime)
	h.want(0, StateEnabled)
	if got := trimErr(h.eventLog(0)); !slices.Contains(got, "recovered attempt=2") {
		t.Errorf("events: %v", got)
	}
	if n := h.hw.opens["dev0"]; n != 2 {
		t.Errorf("module opened %d times, want 2 (start, after power-cycle)", n)
	}
}

// A module swapped between checks is recorded and its counters reset.
func TestSwapDetected(t *testing.T) {
	h := newHarness(t, 2, false, nil)
	h.start()
	l := h.lease()
	n := l.Slot()
	l.Release(nil)
	old := h.hw.module(fmt.Sprint("dev", n))
	nu := newFakeSAM(4242)
	old.set(func(f *fakeSAM) { f.id = nu.id }) // the same device node now answers with another ID
	h.clk.Advance(h.cfg.CheckInterval)
	h.waitFor("swap", func() bool { return h.r.slots[n].m.samID == nu.id && h.r.slots[n].m.act == actIdle })
	info, _ := h.r.Slot(n)
	if info.Leases != 0 || info.Errors != 0 {
		t.Errorf("counters not reset: %+v", info)
	}
	if got := h.eventLog(n); !slices.Contains(got, fmt.Sprintf("swap %v→%v", old.id, nu.id)) && !strings.Contains(strings.Join(got, "|"), "swap") {
		t.Errorf("no swap event: %v", got)
	}
	// The terminal→SAM table's new entry finds it.
	l = h.lease(nu.id)
	if l.Slot() != n || l.SAMID() != nu.id {
		t.Errorf("prefer %v leased slot %d %v", nu.id, l.Slot(), l.SAMID())
	}
	l.Release(nil)
}

// A module pulled mid-lease: the holder's operations fail, Release works,
// the slot is Absent until a module answers again.
func TestPulledWhileLeased(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	m := h.hw.module("dev0")
	m.set(func(f *fakeSAM) { f.gone = true })
	h.hw.insert("dev0", nil)
	_, err := l.SAM().Read(context.Background(), nil, sam.ReadTextPhoto)
	if !errors.Is(err, sam.ErrGone) {
		t.Fatalf("Read of a pulled module: %v", err)
	}
	l.Release(err)
	h.want(0, StateAbsent)
	nu := newFakeSAM(77)
	h.hw.insert("dev0", nu)
	h.clk.waitSleepers(t, 1, h.cfg.CheckInterval)
	h.clk.Advance(h.cfg.CheckInterval)
	if info := h.want(0, StateEnabled); info.SAMID != nu.id {
		t.Errorf("SAM ID after reinsertion %v", info.SAMID)
	}
}

func TestLeasePreferAndLRU(t *testing.T) {
	h := newHarness(t, 3, false, nil)
	h.start()
	id := func(n int) ga467.SAMID { return h.hw.module(fmt.Sprint("dev", n)).id }
	l := h.lease(ga467.SAMID{}, id(2))
	if l.Slot() != 2 {
		t.Fatalf("prefer slot 2's SAM: got slot %d", l.Slot())
	}
	// Slot 2 busy: a preference for it falls back to any idle slot.
	l2 := h.lease(id(2))
	if l2.Slot() == 2 {
		t.Fatal("leased a busy slot")
	}
	l2.Release(nil)
	l.Release(nil)
	// Least recently used first: the slot never leased, then l2's, then 2.
	var order []int
	var ls []*Lease
	for range 3 {
		l := h.lease()
		order = append(order, l.Slot())
		ls = append(ls, l)
	}
	for _, l := range ls {
		l.Release(nil)
	}
	if want := []int{3 - l2.Slot() - 2, l2.Slot(), 2}; !slices.Equal(order, want) {
		t.Errorf("LRU order %v, want %v", order, want)
	}
}

// Waiters are served in arrival order; a released SAM goes straight to the
// oldest one.
func TestLeaseQueueFIFO(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	first := h.lease()
	const n = 3
	got := make(chan int, n)
	leases := make(chan *Lease, n)
	for i := range n {
		go func() {
			l, err := h.r.Lease(context.Background(), nil)
			if err != nil {
				t.Error(err)
				got <- -1
				return
			}
			got <- i
			leases <- l
		}()
		h.waitFor("waiter queued", func() bool { return h.r.waiters.Len() == i+1 })
	}
	first.Release(nil)
	for i := range n {
		if w := <-got; w != i {
			t.Fatalf("served waiter %d, want %d", w, i)
		}
		(<-leases).Release(nil)
	}
}

func TestLeaseBusy(t *testing.T) {
	h := newHarness(t, 1, false, func(c *Config) { c.MaxWaiters = 1 })
	h.start()
	l := h.lease()
	defer l.Release(nil)
	h.clk.Advance(300 * time.Millisecond)
	l.Release(nil)    // one lease of 300 ms teaches the estimate
	held := h.lease() // the waiter below queues behind it
	defer held.Release(nil)

	waitErr := make(chan error, 1)
	go func() {
		_, err := h.r.Lease(context.Background(), nil)
		waitErr <- err
	}()
	h.waitFor("waiter queued", func() bool { return h.r.waiters.Len() == 1 })
	// Queue full: refused at once.
	_, err := h.r.Lease(context.Background(), nil)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) || !be.QueueFull || be.RetryAfter <= 0 {
		t.Fatalf("queue full: %v", err)
	}
	// The queued one times out after MaxWait.
	h.clk.waitSleepers(t, 1, h.cfg.MaxWait)
	h.clk.Advance(h.cfg.MaxWait)
	err = <-waitErr
	if !errors.As(err, &be) || be.QueueFull || be.RetryAfter < 100*time.Millisecond {
		t.Fatalf("wait timed out: %v", err)
	}
	// A cancelled caller gets its cause, not ErrBusy.
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		h.waitFor("waiter queued", func() bool { return h.r.waiters.Len() == 1 })
		cancel(errors.New("reader hung up"))
	}()
	if _, err := h.r.Lease(ctx, nil); err == nil || err.Error() != "reader hung up" {
		t.Fatalf("cancelled Lease: %v", err)
	}
	if n := h.r.Stats().Waiters; n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}

func TestReleaseOutcomes(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	m := h.hw.module("dev0")

	// Card trouble: reset, back in the pool.
	h.lease().Release(fmt.Errorf("read: %w", sam.ErrCardLink))
	h.want(0, StateEnabled)
	if m.count("reset") != 1 {
		t.Fatalf("resets %d, want 1", m.count("reset"))
	}
	// Card trouble and the reset fails: a module fault, recovered.
	m.set(func(f *fakeSAM) { f.errs["reset"] = fmt.Errorf("fake: %w", sam.ErrTransport) })
	h.lease().Release(&ga467.StatusError{SW3: ga467.SW3ReadFailed})
	h.waitFor("recovery", func() bool { return h.r.slots[0].m.failures == 1 })
	m.set(func(f *fakeSAM) { delete(f.errs, "reset") })
	h.clk.waitSleepers(t, 1, h.cfg.Backoff)
	h.clk.Advance(h.cfg.Backoff)
	h.want(0, StateEnabled)
	// Module fault: straight to recovery.
	h.lease().Release(fmt.Errorf("read: %w", sam.ErrTimeout))
	info := h.want(0, StateEnabled)
	if info.Errors != 4 || info.Leases != 3 { // 3 failed leases, 1 failed reset
		t.Errorf("stats %+v", info)
	}
	got := trimErr(h.eventLog(0))
	if n := strings.Count(strings.Join(got, "|"), "recovery-started"); n != 2 {
		t.Errorf("%d recoveries, want 2: %v", n, got)
	}
}

func TestReleaseIdempotentAndUseAfterRelease(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	s := l.SAM()
	if _, err := s.Read(context.Background(), nil, sam.ReadTextPhoto); err != nil {
		t.Fatal(err)
	}
	l.Release(nil)
	l.Release(errors.New("late")) // ignored
	if err := s.Status(context.Background()); !errors.Is(err, ErrReleased) {
		t.Fatalf("Status after Release: %v", err)
	}
	if cause := context.Cause(l.Context()); !errors.Is(cause, ErrReleased) {
		t.Fatalf("lease context cause %v", cause)
	}
	info := h.want(0, StateEnabled)
	if info.Reads != 1 || info.Errors != 0 || info.Busy {
		t.Fatalf("%+v", info)
	}
}

// Release while an operation runs in another goroutine: the slot comes back
// when the operation returns, not before.
func TestReleaseDuringOperation(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	readErr := h.hungRead(l, "dev0")
	l.Release(nil)
	if err := <-readErr; !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("Read cancelled by Release: %v", err)
	}
	h.want(0, StateEnabled)
	h.waitFor("slot idle", func() bool { return h.r.slots[0].m.leasable() })
}

func TestLeaseExpires(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	h.clk.Advance(h.cfg.MaxLease)
	if cause := context.Cause(l.Context()); !errors.Is(cause, ErrLeaseExpired) {
		t.Fatalf("cause %v", cause)
	}
	if _, err := l.SAM().Find(context.Background(), nil); !errors.Is(err, ErrReleased) {
		t.Fatalf("Find on an expired lease: %v", err)
	}
	h.want(0, StateEnabled)
	if n := h.hw.module("dev0").count("reset"); n != 1 {
		t.Fatalf("expired lease: %d resets, want 1", n)
	}
	l.Release(nil) // late, harmless
	l2 := h.lease()
	l2.Release(nil)
	if got := h.eventLog(0); !slices.Contains(got, "lease-expired") {
		t.Errorf("events %v", got)
	}
}

func TestOperatorActions(t *testing.T) {
	h := newHarness(t, 2, true, func(c *Config) { c.Slots[1].Power = "" })
	h.start()
	pwr := h.hw.pin("pwr0")

	// Refusals name the slot.
	for _, tc := range []struct {
		err  error
		want error
		msg  string
	}{
		{h.r.PowerOff(0), ErrNotAllowed, "rack: slot 0: power-off: rack: not allowed in the slot's state (state Enabled)"},
		{h.r.PowerCycle(0), ErrNotAllowed, ""},
		{h.r.ClearQuarantine(0), ErrNotAllowed, ""},
		{h.r.Enable(7), ErrUnknownSlot, "rack: slot 7: enable: rack: unknown slot"},
		{h.r.PowerCycle(1), ErrNoPowerLine, ""},
	} {
		var se *SlotError
		if !errors.Is(tc.err, tc.want) || !errors.As(tc.err, &se) {
			t.Errorf("got %v, want %v", tc.err, tc.want)
		}
		if tc.msg != "" && tc.err.Error() != tc.msg {
			t.Errorf("message %q, want %q", tc.err, tc.msg)
		}
	}

	// Drain waits for the lease in flight.
	l := h.lease(h.hw.module("dev0").id)
	drained := make(chan error, 1)
	go func() { drained <- h.r.Drain(context.Background(), 0) }()
	h.waitFor("draining", func() bool { return h.r.slots[0].m.state == StateDraining })
	if l2 := h.lease(h.hw.module("dev0").id); l2.Slot() != 1 {
		t.Fatal("leased a draining slot")
	} else {
		l2.Release(nil)
	}
	l.Release(nil)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	h.want(0, StateStandbyOffline)

	// Locate is independent of the state.
	if err := h.r.Locate(0, true); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.r.Slot(0); !info.Locate || h.hw.pin("loc0").Level() != gpio.High {
		t.Fatal("locate LED not on")
	}

	if err := h.r.PowerOff(0); err != nil {
		t.Fatal(err)
	}
	h.waitFor("power off", func() bool { return pwr.Level() == gpio.Low && h.r.slots[0].m.job == nil })
	if info, _ := h.r.Slot(0); info.State != StateStandbyOffline || info.Powered {
		t.Fatalf("after PowerOff: %+v", info)
	}
	if err := h.r.PowerOn(0); err != nil {
		t.Fatal(err)
	}
	h.clk.waitSleepers(t, 1, h.cfg.BootTime)
	h.clk.Advance(h.cfg.BootTime)
	if info := h.want(0, StateEnabled); !info.Powered || !info.Locate {
		t.Fatalf("after PowerOn: %+v", info)
	}
	if got := pwr.History(); got != "HLH" {
		t.Errorf("power line %s", got)
	}

	// Drain and Enable without a power-off.
	if err := h.r.Drain(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Enable(1); err != nil {
		t.Fatal(err)
	}
	h.want(1, StateEnabled)
	if st := h.r.Stats(); st.Idle != 2 {
		t.Fatalf("Stats %+v", st)
	}
}

// Shutdown with a lease out and a caller queued.
func TestShutdownWithLeases(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	queued := make(chan error, 1)
	go func() {
		_, err := h.r.Lease(context.Background(), nil)
		queued <- err
	}()
	h.waitFor("waiter queued", func() bool { return h.r.waiters.Len() == 1 })
	h.shutdown()
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Fatalf("queued Lease at shutdown: %v", err)
	}
	if cause := context.Cause(l.Context()); !errors.Is(cause, ErrClosed) {
		t.Fatalf("lease cause %v", cause)
	}
	if err := l.SAM().Status(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Status after shutdown: %v", err)
	}
	l.Release(nil)
	if _, err := h.r.Lease(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lease after shutdown: %v", err)
	}
	if n := h.hw.module("dev0").count("close"); n != 1 {
		t.Fatalf("SAM closed %d times", n)
	}
	if err := h.r.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Run: %v", err)
	}
}

// Shutdown while a lease operation is in flight waits for it.
func TestShutdownWaitsForOperation(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	readErr := h.hungRead(l, "dev0")
	h.shutdown()
	if err := <-readErr; !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("Read at shutdown: %v", err)
	}
	if h.hw.module("dev0").count("close") != 1 {
		t.Fatal("SAM not closed")
	}
	l.Release(nil)
}

// OnEvent may call back into the rack.
func TestOnEventReentrant(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	var seen []string
	h.r.event = func(e Event) {
		seen = append(seen, e.Kind.String())
		_ = h.r.Slots()
		if e.Kind == EventState && e.To == StateEnabled {
			_ = h.r.Locate(0, true) // emits its own event, delivered after this one
		}
	}
	h.start()
	h.waitFor("locate", func() bool { return h.r.slots[0].m.locate })
	h.eventLog(0) // waits for deliveries in progress
	if want := []string{"state", "sam-id", "state", "locate"}; !slices.Equal(seen, want) {
		t.Fatalf("events %v, want %v", seen, want)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		opts Options
		want string
	}{
		{Config{}, Options{}, "no slots"},
		{Config{Slots: []SlotConfig{{ID: 1, Driver: "x"}, {ID: 1, Driver: "x"}}}, Options{Open: (&hardware{}).open}, "configured twice"},
		{Config{Slots: []SlotConfig{{ID: 0, Driver: "nope"}}}, Options{}, "unknown driver"},
		{Config{Slots: []SlotConfig{{ID: 0, Power: "p"}}}, Options{Open: (&hardware{}).open}, "Options.Lines is nil"},
	} {
		if _, err := New(tc.cfg, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
