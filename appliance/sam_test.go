package appliance

import (
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// "No idle SAM → bounded queue with deadline, then busy, retry after": the
// only SAM is held by a reader in the middle of its read; another reader
// waits QueueWait and gets 301 with a retry hint. The first read then
// completes and the SAM is back.
func TestNoIdleSAM(t *testing.T) {
	const queueWait = 300 * time.Millisecond
	r := startRig(t, rigOptions{sams: 1, dispatch: dispatch.Config{QueueWait: queueWait}})
	holder := r.addReader("R-HOLD", credentials.CipherSM4)
	waiter := r.dial(r.addReader("R-WAIT", credentials.CipherSM4))
	held := newCard(1, sim.CardOptions{})

	s := r.rawDial(holder).open(held, rawOpen{})
	turn := s.untilScript() // the SAM is leased and waits for the card
	if st := r.a.Rack().Stats(); st.Busy != 1 || st.Idle != 0 {
		t.Fatalf("rack while the read is held: %+v", st)
	}

	start := time.Now()
	_, err := r.read(waiter, newCard(2, sim.CardOptions{}), client.ReadOptions{})
	we := wantCode(t, err, wire.Busy)
	if waited := time.Since(start); waited < queueWait {
		t.Errorf("busy after %v, want after the queue wait of %v", waited, queueWait)
	}
	if we.RetryAfter <= 0 || !we.Code.Retryable() {
		t.Errorf("busy with retry after %v, want a positive hint", we.RetryAfter)
	}
	r.wantEvent(audit.KindBusy, "R-WAIT", wire.Busy)

	if turn = s.finish(held, turn); turn.result == nil {
		t.Fatalf("held read: %v", turn.err)
	}
	r.wantStats(1, map[wire.Code]uint64{wire.Busy: 1})
	r.checkPool()
	// And the waiter, retrying, is served.
	r.mustRead(waiter, newCard(2, sim.CardOptions{}), nil, client.ReadOptions{})
}

// samFault is a way for a SAM to fail under a read.
type samFault struct {
	name   string
	inject func(r *rig, i int) // on SAM i
	heal   func(r *rig, i int) // after the read, if the fault stays
	// event is the rack audit event the failed slot must show: recovery
	// started, or the module found gone.
	event string
}

var (
	faultError = samFault{name: "error", event: "slot.recovery-started",
		inject: func(r *rig, i int) { r.sams[i].FailNext(ga467.SW3Unrecognised, 1) }}
	faultHang = samFault{name: "hang", event: "slot.recovery-started",
		inject: func(r *rig, i int) { r.sams[i].SetHang(true) }} // the rack's power-cycle ends it
	faultPowerOff = samFault{name: "power lost", event: "slot.recovery-started",
		inject: func(r *rig, i int) { r.sams[i].PowerOff() }} // the rack's power-cycle ends it
	faultPulled = samFault{name: "pulled", event: "slot.state",
		inject: func(r *rig, i int) { r.sams[i].Vanish() },
		heal:   func(r *rig, i int) { r.sams[i].Replug() }}
	faultSelfTest = samFault{name: "self-test failure", event: "slot.recovery-started",
		inject: func(r *rig, i int) { r.sams[i].SetSelfTestFail(true) },
		heal:   func(r *rig, i int) { r.sams[i].SetSelfTestFail(false) }}
)

// faultOpts are rig options under which SAM faults resolve quickly: short
// SAM deadlines (a hung SAM times out in half a second) and, for pulled
// modules, a short re-probe interval.
func faultOpts(sams int) rigOptions {
	return rigOptions{
		sams: sams,
		host: samhost.Timeouts{Control: 300 * time.Millisecond, Find: 500 * time.Millisecond, Select: 500 * time.Millisecond, Read: 500 * time.Millisecond},
		rack: func(c *rack.Config) { c.CheckInterval = 100 * time.Millisecond },
	}
}

// "SAM error / timeout / pulled mid-read → release, mark suspect,
// power-cycle; the session restarts on another SAM if the card is still
// there". The reader's SAM (slot 0, by the terminal→SAM table) fails while
// it waits for the card's answer to its read script; the read restarts on
// slot 1 and the reader gets its data, with no error. Slot 0 goes to
// recovery (or Absent, pulled) and comes back.
func TestSAMFaultMidReadRestarts(t *testing.T) {
	for _, tc := range []struct {
		fault samFault
		at    func(n int, cmd []byte) bool
	}{
		{faultError, atMutualAuth},
		{faultError, func(n int, _ []byte) bool { return n == 1 }}, // before the read: find fails
		{faultHang, atMutualAuth},
		{faultPowerOff, atMutualAuth},
		{faultPulled, atMutualAuth},
	} {
		name := tc.fault.name
		if tc.at(1, nil) {
			name += " at find"
		}
		t.Run(name, func(t *testing.T) {
			o := faultOpts(2)
			if tc.fault.name != faultPulled.name {
				o.rack = nil // no health checks: they must not meet the fault first
			}
			r := startRig(t, o)
			b := r.addReader("R-0001", credentials.CipherSM4)
			r.preferSAM("R-0001", 0)
			c := r.dial(b)
			card := newCard(1, sim.CardOptions{})
			hook := &rfHook{rf: card, at: tc.at, fire: func() { tc.fault.inject(r, 0) }}

			r.mustRead(c, card, hook, client.ReadOptions{})
			if !hook.fired {
				t.Fatal("fault never injected")
			}
			f := r.wantEvent(audit.KindSAMFault, "R-0001", 0)
			if f.Slot != 0 || f.SAMID != r.sams[0].ID().String() || f.Card != r.cardHash(card.Serial()) {
				t.Errorf("sam.fault %+v, want slot 0", f)
			}
			if e := r.wantEvent("read.restarted", "R-0001", 0); e.Slot != 1 {
				t.Errorf("read.restarted on slot %d, want 1", e.Slot)
			}
			if e := r.wantEvent(audit.KindReadOK, "R-0001", 0); e.Slot != 1 {
				t.Errorf("read.ok on slot %d, want 1", e.Slot)
			}
			if info, _ := r.a.Rack().Slot(0); info.Errors == 0 || info.State == rack.StateEnabled && info.Failures == 0 && info.Health == rack.HealthOK {
				t.Errorf("slot 0 after the fault: %+v, want it suspect", info)
			}
			r.wantStats(1, nil)
			if tc.fault.heal != nil {
				tc.fault.heal(r, 0)
			}
			r.checkPool()
			var seen bool
			for _, e := range r.events(tc.fault.event) {
				seen = seen || e.Slot == 0 && (tc.fault.event != "slot.state" || strings.Contains(e.Detail, "Absent"))
			}
			if !seen {
				t.Errorf("no %s event for slot 0: %s", tc.fault.event, r.recentKinds())
			}
			// Slot 0 serves again.
			r.mustRead(c, newCard(2, sim.CardOptions{}), nil, client.ReadOptions{})
		})
	}
}

// With a rack of one SAM there is nowhere to restart: the reader gets 302
// (retry now) once the queue wait for another SAM is over, the SAM is in
// recovery, and after it recovers the retry is served.
func TestSAMFaultMidReadOneSAM(t *testing.T) {
	for _, fault := range []samFault{faultSelfTest, faultHang} {
		t.Run(fault.name, func(t *testing.T) {
			o := faultOpts(1)
			o.rack = func(c *rack.Config) { c.Backoff = time.Second } // still recovering when the queue wait ends
			o.dispatch.QueueWait = 300 * time.Millisecond
			r := startRig(t, o)
			c := r.dial(r.addReader("R-0001", credentials.CipherSM4))
			card := newCard(1, sim.CardOptions{})
			hook := &rfHook{rf: card, at: atMutualAuth, fire: func() { fault.inject(r, 0) }}

			_, err := r.read(c, hook, client.ReadOptions{})
			we := wantCode(t, err, wire.SAMFault)
			if !we.Code.Retryable() {
				t.Errorf("302 not retryable")
			}
			faults := r.wantEvents(audit.KindSAMFault, 2)
			if faults[0].Slot != 0 || faults[1].Code != int(wire.SAMFault) {
				t.Errorf("sam.fault events %+v, want the fault on slot 0 then the 302", faults)
			}
			r.wantEvents("read.restarted", 0)
			r.wantEvents(audit.KindReadOK, 0)
			if info, _ := r.a.Rack().Slot(0); info.State != rack.StateUnavailableOffline || info.Busy {
				t.Errorf("slot 0 %v (busy %v) after the fault, want UnavailableOffline, not leased", info.State, info.Busy)
			}
			r.wantEvents("slot.recovery-started", 1)
			r.wantStats(0, map[wire.Code]uint64{wire.SAMFault: 1})
			if fault.heal != nil {
				fault.heal(r, 0)
			}
			r.checkPool()
			r.mustRead(c, card, nil, client.ReadOptions{})
		})
	}
}

// A SAM that fails while the read is replayed on the restart SAM: with
// MaxAttempts 3 the session must take a third SAM (here the first one,
// recovered), not use a lease it no longer holds.
func TestSAMFaultDuringRestart(t *testing.T) {
	o := faultOpts(2)
	o.rack = nil
	o.dispatch.MaxAttempts = 3
	o.dispatch.QueueWait = 5 * time.Second // long enough for a recovery
	r := startRig(t, o)
	b := r.addReader("R-0001", credentials.CipherSM4)
	r.preferSAM("R-0001", 0)
	r.sams[1].FailNext(ga467.SW3Unrecognised, 1) // fails the restart's find
	card := newCard(1, sim.CardOptions{})
	hook := &rfHook{rf: card, at: atMutualAuth, fire: func() { r.sams[0].FailNext(ga467.SW3Unrecognised, 1) }}

	r.mustRead(r.dial(b), card, hook, client.ReadOptions{})
	faults := r.wantEvents(audit.KindSAMFault, 2)
	if faults[0].Slot != 0 || faults[1].Slot != 1 {
		t.Errorf("sam.fault on slots %d, %d; want 0, 1", faults[0].Slot, faults[1].Slot)
	}
	r.wantEvents("read.restarted", 2)
	r.wantStats(1, nil)
	r.checkPool()
}
