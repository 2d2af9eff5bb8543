package rack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/samrack/samrack/drivers/sam"
)

// A module pulled from an idle slot: out of the pool at once, its SAM
// closed, leases go elsewhere; nothing waits for a check.
func TestPresenceRemovedIdle(t *testing.T) {
	h := newHarness(t, 2, false, nil)
	h.start()
	t0 := h.clk.Now()
	m := h.hw.module("dev0")
	h.r.Presence(0, false)
	if info, _ := h.r.Slot(0); info.State != StateAbsent || info.Present || info.Health != HealthWarning {
		t.Fatalf("right after the removal: %+v", info)
	}
	if st := h.r.Stats(); st.Idle != 1 || st.Enabled != 1 {
		t.Fatalf("Stats %+v", st)
	}
	for range 3 {
		l := h.lease()
		if l.Slot() != 1 {
			t.Fatalf("leased slot %d, which was pulled", l.Slot())
		}
		l.Release(nil)
	}
	h.waitFor("SAM closed", func() bool { return m.count("close") == 1 && h.r.slots[0].m.job.what == "reprobe" })
	if !h.clk.Now().Equal(t0) {
		t.Fatal("the clock moved")
	}
	got := h.eventLog(0)
	if want := []string{"module-removed", "state Enabled→Absent health=Warning: module removed"}; !slices.Equal(got[len(got)-2:], want) {
		t.Errorf("events %q", got)
	}
}

// A module pulled mid-read: the holder's operation in flight returns at
// once with an error that wraps sam.ErrGone (so a dispatcher restarts the
// read elsewhere), the lease comes back without the holder, Release is a
// no-op, and the next lease gets another SAM.
func TestPresenceRemovedWhileLeased(t *testing.T) {
	h := newHarness(t, 2, false, nil)
	h.start()
	l := h.lease(h.hw.module("dev0").id)
	readErr := h.hungRead(l, "dev0")
	h.r.Presence(0, false)
	err := <-readErr // no clock advance: the cancellation, not a deadline
	if !errors.Is(err, sam.ErrGone) || !errors.Is(err, ErrRemoved) || !sam.ModuleFault(err) {
		t.Fatalf("Read of a removed module: %v", err)
	}
	if cause := context.Cause(l.Context()); !errors.Is(cause, ErrRemoved) {
		t.Fatalf("lease cause %v", cause)
	}
	if _, err := l.SAM().Find(context.Background(), nil); !errors.Is(err, sam.ErrGone) {
		t.Fatalf("Find after removal: %v", err)
	}
	// The dispatcher restarts the read on another SAM, then releases.
	l2 := h.lease()
	if l2.Slot() != 1 {
		t.Fatalf("restart leased slot %d", l2.Slot())
	}
	if _, err := l2.SAM().Read(context.Background(), nil, sam.ReadTextPhoto); err != nil {
		t.Fatal(err)
	}
	l2.Release(nil)
	l.Release(err)
	l.Release(nil)
	h.waitFor("lease back, SAM closed", func() bool {
		return len(h.r.leases) == 0 && h.hw.module("dev0").count("close") == 1 && h.r.slots[0].m.act == actIdle
	})
	info := h.want(0, StateAbsent)
	if info.Busy || info.Failures != 0 {
		t.Fatalf("pulled slot %+v", info)
	}
	if st := h.r.Stats(); st.Busy != 0 || st.Idle != 1 {
		t.Fatalf("Stats %+v", st)
	}
	// The module back: probed now, and in service.
	h.hw.module("dev0").set(func(f *fakeSAM) { f.hang["read"] = false })
	h.r.Presence(0, true)
	h.want(0, StateEnabled)
}

// A lease whose holder never touches the SAM again still comes back.
func TestPresenceRemovedLeaseComesBack(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	l := h.lease()
	h.r.Presence(0, false)
	h.waitFor("lease back", func() bool { return len(h.r.leases) == 0 })
	if err := l.SAM().Status(context.Background()); !errors.Is(err, ErrRemoved) {
		t.Fatalf("Status: %v", err)
	}
	l.Release(nil) // late, harmless
	h.r.Presence(0, true)
	l = h.lease()
	l.Release(nil)
	if info, _ := h.r.Slot(0); info.Leases != 2 || info.State != StateEnabled {
		t.Fatalf("%+v", info)
	}
}

// An operation that failed with sam.ErrGone sends the slot to Absent, not
// to a reset or recovery, whatever outcome the holder releases with.
func TestGoneDuringLeaseIsAbsent(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	m := h.hw.module("dev0")
	l := h.lease()
	m.set(func(f *fakeSAM) { f.gone = true })
	if _, err := l.SAM().Read(context.Background(), nil, sam.ReadTextPhoto); !errors.Is(err, sam.ErrGone) {
		t.Fatal(err)
	}
	l.Release(fmt.Errorf("reader says: %w", sam.ErrCardLink))
	info := h.want(0, StateAbsent)
	if m.count("reset") != 0 || info.Failures != 0 || strings.Contains(strings.Join(h.eventLog(0), "|"), "recovery") {
		t.Fatalf("gone module reset or recovered: %+v %v", info, h.eventLog(0))
	}
}

// A module inserted into an empty slot is probed at once: Enabled without
// the clock moving, let alone by CheckInterval.
func TestPresenceInsertProbesNow(t *testing.T) {
	h := newHarness(t, 1, true, nil)
	m := h.hw.module("dev0")
	h.hw.insert("dev0", nil)
	h.run()
	h.clk.waitSleepers(t, 1, h.cfg.BootTime)
	h.clk.Advance(h.cfg.BootTime)
	h.waitFor("failed start", func() bool { return h.r.slots[0].m.lastErr != "" })
	h.want(0, StateAbsent)
	h.clk.waitSleepers(t, 1, h.cfg.CheckInterval) // the slow reprobe is armed
	t0 := h.clk.Now()

	h.hw.insert("dev0", m)
	h.r.Presence(0, true)
	info := h.want(0, StateEnabled)
	if info.SAMID != m.id || info.Health != HealthOK || !info.Present {
		t.Fatalf("after insertion: %+v", info)
	}
	if !h.clk.Now().Equal(t0) {
		t.Fatal("the clock moved")
	}
	if got := h.hw.pin("pwr0").History(); got != "H" {
		t.Errorf("power line %s: an insertion needs no power-cycle", got)
	}
}

// A different module inserted where one was pulled is a swap.
func TestPresenceSwap(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	old := h.hw.module("dev0")
	h.lease().Release(nil)
	h.r.Presence(0, false)
	h.hw.insert("dev0", nil)
	nu := newFakeSAM(4242)
	h.hw.insert("dev0", nu)
	h.r.Presence(0, true)
	info := h.want(0, StateEnabled)
	if info.SAMID != nu.id || info.Leases != 0 {
		t.Fatalf("after swap: %+v", info)
	}
	if got := h.eventLog(0); !slices.Contains(got, fmt.Sprintf("swap %v→%v", old.id, nu.id)) {
		t.Errorf("no swap event: %q", got)
	}
	if l := h.lease(nu.id); l.SAMID() != nu.id {
		t.Errorf("leased %v", l.SAMID())
	} else {
		l.Release(nil)
	}
}

// Flapping: a removal cancels the probe of the insertion before it, and the
// slot settles on the last report.
func TestPresenceFlapping(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	h.start()
	m := h.hw.module("dev0")
	h.r.Presence(0, false)
	m.set(func(f *fakeSAM) { f.hang["status"] = true })
	h.r.Presence(0, true)
	<-m.hung // the probe hangs on a half-seated module
	h.r.Presence(0, false)
	h.waitFor("probe cancelled", func() bool {
		s := h.r.slots[0]
		return s.m.state == StateAbsent && s.m.job != nil && s.m.job.what == "reprobe"
	})
	m.set(func(f *fakeSAM) { f.hang["status"] = false })
	for i := range 20 {
		h.r.Presence(0, i%2 == 1) // ends present
	}
	h.want(0, StateEnabled)
	for i := range 21 {
		h.r.Presence(0, i%2 == 1) // ends removed
	}
	h.want(0, StateAbsent)
	h.waitFor("settled", func() bool { j := h.r.slots[0].m.job; return j != nil && j.what == "reprobe" })
	if n := m.count("status"); n > 25 {
		t.Errorf("%d probes for 41 reports", n)
	}
	if st := h.r.Stats(); st.Idle != 0 || st.Enabled != 0 {
		t.Fatalf("a pulled slot in the pool: %+v", st)
	}
}

// DevicePresence finds slots by driver and device; a device no slot has is
// reported for discovery.
func TestDevicePresence(t *testing.T) {
	h := newHarness(t, 3, false, func(c *Config) {
		c.Slots[1].Driver, c.Slots[1].Device = "pcsc", "ACS ACR39U 00 00"
	})
	h.hw.insert("ACS ACR39U 00 00", h.hw.module("dev1"))
	h.start()
	h.r.DevicePresence("pcsc", "dev0", false)             // dev0 is not a pcsc slot
	h.r.DevicePresence("pcsc", "ACS ACR39U 01 00", true)  // nowhere configured
	h.r.DevicePresence("pcsc", "ACS ACR39U 00 00", false) // slot 1
	h.r.Presence(9, true)
	for n, want := range []State{StateEnabled, StateAbsent, StateEnabled} {
		if info, _ := h.r.Slot(n); info.State != want {
			t.Errorf("slot %d %v, want %v", n, info.State, want)
		}
	}
	h.r.DevicePresence("pcsc", "ACS ACR39U 00 00", true)
	h.want(1, StateEnabled)
	h.eventLog(0)
	var unknown []string
	h.evMu.Lock()
	for _, e := range h.events {
		if e.Kind == EventUnknownDevice {
			unknown = append(unknown, e.String())
		}
	}
	h.evMu.Unlock()
	want := []string{`slot -1: unknown-device pcsc "dev0" present=false`, `slot -1: unknown-device pcsc "ACS ACR39U 01 00" present=true`,
		`slot 9: unknown-device  "" present=true: no slot has that number`}
	if !slices.Equal(unknown, want) {
		t.Errorf("unknown devices:\n%s\nwant\n%s", strings.Join(unknown, "\n"), strings.Join(want, "\n"))
	}
}

// The rack's own power-cycle makes a USB module vanish and come back: those
// reports do not disturb the recovery.
func TestPresenceDuringPowerCycleIgnored(t *testing.T) {
	h := newHarness(t, 1, true, nil)
	h.start()
	m := h.hw.module("dev0")
	m.set(func(f *fakeSAM) { f.errs["status"] = fmt.Errorf("fake: %w", sam.ErrTimeout) })
	h.clk.Advance(h.cfg.CheckInterval) // check fails, the reset fails: backoff
	h.clk.waitSleepers(t, 1, h.cfg.Backoff)
	h.clk.Advance(h.cfg.Backoff)
	h.clk.waitSleepers(t, 1, h.cfg.PowerOffTime) // power line low now
	h.r.Presence(0, false)
	m.set(func(f *fakeSAM) { delete(f.errs, "status") })
	h.clk.Advance(h.cfg.PowerOffTime)
	h.clk.waitSleepers(t, 1, h.cfg.BootTime)
	h.r.Presence(0, true)
	h.clk.Advance(h.cfg.BootTime)
	info := h.want(0, StateEnabled)
	if got := trimErr(h.eventLog(0)); !slices.Contains(got, "recovered attempt=2") || slices.Contains(got, "module-removed") {
		t.Errorf("events %q", got)
	}
	if info.Failures != 0 || h.hw.pin("pwr0").History() != "HLH" {
		t.Errorf("%+v power %s", info, h.hw.pin("pwr0").History())
	}
}

// A quarantined slot: re-seating the same module keeps the quarantine, a
// new module clears it.
func TestPresenceQuarantineReplaced(t *testing.T) {
	h := newHarness(t, 1, false, func(c *Config) { c.MaxFailures = 1 })
	h.start()
	m := h.hw.module("dev0")
	m.set(func(f *fakeSAM) { f.errs["status"] = fmt.Errorf("fake: %w", sam.ErrTimeout) })
	h.clk.Advance(h.cfg.CheckInterval)
	h.want(0, StateQuarantined)
	h.r.Presence(0, false)
	m.set(func(f *fakeSAM) { delete(f.errs, "status") })
	h.r.Presence(0, true)
	h.waitFor("identified", func() bool {
		return h.r.slots[0].m.job == nil && strings.Contains(h.r.slots[0].m.lastErr, "re-inserted")
	})
	if info := h.want(0, StateQuarantined); !info.Fault {
		t.Fatalf("%+v", info)
	}
	h.r.Presence(0, false)
	nu := newFakeSAM(5)
	h.hw.insert("dev0", nu)
	h.r.Presence(0, true)
	info := h.want(0, StateEnabled)
	if info.Fault || info.SAMID != nu.id || h.hw.pin("flt0").Level() != gpio.Low {
		t.Fatalf("%+v", info)
	}
}

// statIn maps device names to files of dir, so a DevWatcher sees the
// harness's "devN" devices as real files it can stat.
func statIn(dir string) func(string) (os.FileInfo, error) {
	return func(dev string) (os.FileInfo, error) { return os.Stat(filepath.Join(dir, dev)) }
}

type report struct {
	dev     string
	present bool
}

func TestDevWatcher(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	touch := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("a")
	clk := newFakeClock()
	w := &DevWatcher{Paths: []string{"a", "b"}, Clock: clk, stat: statIn(dir)}
	reports := make(chan report, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, func(d string, p bool) { reports <- report{d, p} }) }()
	expect := func(want ...report) {
		t.Helper()
		for _, r := range want {
			select {
			case got := <-reports:
				if got != r {
					t.Fatalf("report %+v, want %+v", got, r)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no report, want %+v", r)
			}
		}
	}
	tick := func() {
		clk.waitSleepers(t, 1, 250*time.Millisecond)
		clk.Advance(250 * time.Millisecond)
	}
	expect(report{"a", true}, report{"b", false})
	touch("b")
	tick()
	expect(report{"b", true})
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	tick()
	expect(report{"a", false})
	// Swapped between two looks: a new node under the same name.
	touch("b.new")
	if err := os.Rename(filepath.Join(dir, "b.new"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	tick()
	expect(report{"b", false}, report{"b", true})
	tick() // nothing changed: nothing reported
	touch("a")
	tick()
	expect(report{"a", true})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v", err)
	}
	if len(reports) != 0 {
		t.Fatalf("extra report %+v", <-reports)
	}
}

// Run runs the watchers: a serial device node pulled under a lease takes the
// slot out and the lease back; put back, the module is in service again
// within one poll (250 ms), far inside 1 s.
func TestRunsDevWatcher(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"dev0", "dev1"} {
		if err := os.WriteFile(filepath.Join(dir, d), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, 2, false, nil)
	h.r.watch = map[string]PresenceWatcher{
		"fake": &DevWatcher{Paths: h.cfg.Devices("fake"), Clock: h.clk, stat: statIn(dir)},
	}
	h.start()
	h.clk.waitSleepers(t, 1, 250*time.Millisecond)
	l := h.lease(h.hw.module("dev1").id)
	if err := os.Remove(filepath.Join(dir, "dev1")); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(250 * time.Millisecond)
	h.want(1, StateAbsent)
	if err := l.SAM().Status(context.Background()); !errors.Is(err, sam.ErrGone) {
		t.Fatalf("Status on a pulled module: %v", err)
	}
	l.Release(nil)
	h.waitFor("lease back", func() bool { return len(h.r.leases) == 0 })

	if err := os.WriteFile(filepath.Join(dir, "dev1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := h.clk.Now()
	h.clk.waitSleepers(t, 1, 250*time.Millisecond)
	h.clk.Advance(250 * time.Millisecond)
	h.want(1, StateEnabled)
	if d := h.clk.Now().Sub(t0); d >= time.Second {
		t.Fatalf("back in service after %v", d)
	}
	if st := h.r.Stats(); st.Idle != 2 {
		t.Fatalf("Stats %+v", st)
	}
}

// failingWatcher fails its first Watch, then reports until ctx is done.
type failingWatcher struct{ calls chan int }

func (w *failingWatcher) Watch(ctx context.Context, notify func(string, bool)) error {
	n := len(w.calls)
	w.calls <- n
	if n == 0 {
		return errors.New("pcscd not running")
	}
	notify("dev0", false)
	<-ctx.Done()
	return ctx.Err()
}

// A watcher that fails is reported and run again after CheckInterval; Run
// stops it at shutdown (the leak check sees to it).
func TestWatcherRestarted(t *testing.T) {
	h := newHarness(t, 1, false, nil)
	w := &failingWatcher{calls: make(chan int, 4)}
	h.r.watch = map[string]PresenceWatcher{"fake": w}
	h.start()
	h.clk.waitSleepers(t, 1, h.cfg.CheckInterval)
	h.clk.Advance(h.cfg.CheckInterval)
	h.want(0, StateAbsent)
	h.eventLog(0)
	h.evMu.Lock()
	defer h.evMu.Unlock()
	if !slices.ContainsFunc(h.events, func(e Event) bool {
		return e.Kind == EventWatcherFailed && e.Driver == "fake" && e.Err == "pcscd not running"
	}) {
		t.Errorf("no watcher-failed event in %v", h.events)
	}
}
