// Package pace gives the simulators timers that keep their time on
// average.
//
// A Go timer fires late: the runtime wakes a parked thread through the
// network poller, whose wait has millisecond granularity, and with dozens
// of timers pending a 20 ms sleep ends some 0.3–0.7 ms late on this kind
// of machine. A virtual SAM that takes 100 ms "of its own" per read, or a
// reader simulator that injects a 20 ms round trip, would then add that
// lateness to every read, and the benchmarks would charge it to the
// appliance. A Pacer learns the lateness of the timers it arms and arms
// the next ones that much early, so that the waits it times are exact on
// average: it costs no CPU (no spinning), and a single wait is still off
// by the scheduler's jitter, as a real device's time varies too.
package pace

import (
	"sync/atomic"
	"time"
)

// maxLead bounds how early a timer is armed: lateness beyond it is the
// machine being overloaded, which a simulator must not hide.
const maxLead = 2 * time.Millisecond

// gain: each lateness observed moves the lead by 1/gain of the difference.
const gain = 16

// Pacer arms timers early by the lateness it has observed. The zero Pacer
// is ready; it is safe for concurrent use. Lateness is a property of the
// process's scheduler, so one Pacer (Default) serves a whole process.
type Pacer struct {
	lead atomic.Int64 // nanoseconds
}

// Default is the process's Pacer.
var Default = &Pacer{}

// Lead is how early the Pacer arms a timer at present.
func (p *Pacer) Lead() time.Duration { return time.Duration(p.lead.Load()) }

// Arm is the duration to arm a timer with so that it fires at due, and
// the lead it used, to give back to Fired.
func (p *Pacer) Arm(due time.Time) (d, lead time.Duration) {
	lead = p.Lead()
	return time.Until(due) - lead, lead
}

// Fired records that a timer armed with Arm(due) (which answered lead)
// fired now. Its lateness is measured against the time it was armed for,
// not against due, so that timers armed before an update still measure
// the scheduler and not the Pacer: the lead is a moving average of that
// lateness.
func (p *Pacer) Fired(due time.Time, lead time.Duration) {
	late := time.Since(due) + lead
	for {
		old := p.lead.Load()
		next := min(max(time.Duration(old)+(late-time.Duration(old))/gain, 0), maxLead)
		if p.lead.CompareAndSwap(old, int64(next)) {
			return
		}
	}
}

// Wait waits d, or until a or b is closed (nil channels are ignored). It
// reports whether the whole wait passed.
func (p *Pacer) Wait(d time.Duration, a, b <-chan struct{}) bool {
	return p.WaitUntil(time.Now().Add(d), a, b)
}

// WaitUntil is Wait until the time due.
func (p *Pacer) WaitUntil(due time.Time, a, b <-chan struct{}) bool {
	wait, lead := p.Arm(due)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		p.Fired(due, lead)
		return true
	case <-a:
		return false
	case <-b:
		return false
	}
}
