package rack

import (
	"context"
	"slices"
)

// Operator actions, for samctl and the admin API. Each returns a *SlotError
// naming the slot when the slot is unknown or the action is not allowed in
// its state; the work they start (power-cycles, probes) runs in the
// background: follow it with Slots, WaitState or OnEvent.

// Drain takes the slot out of the pool for new leases and waits until the
// work in flight on it is done: the slot is then StandbyOffline (still
// powered; PowerOff it to pull it, Enable to put it back). If ctx ends
// first the drain goes on in the background and Drain returns ctx's error.
// It is allowed in Enabled, Draining and StandbyOffline. Drained slots are
// not health-checked.
func (r *Rack) Drain(ctx context.Context, slot int) error {
	if err := r.act(slot, "drain", event{kind: evDrain}); err != nil {
		return err
	}
	info, err := r.WaitState(ctx, slot, StateStandbyOffline, StateUnavailableOffline, StateAbsent, StateQuarantined, StateEnabled)
	if err != nil {
		return err
	}
	if info.State != StateStandbyOffline {
		return &SlotError{Slot: slot, Op: "drain", State: info.State, Err: ErrInterrupted}
	}
	return nil
}

// Enable puts a Draining slot back in the pool, or powers up and probes a
// StandbyOffline one (Starting, then Enabled when the probe passes).
func (r *Rack) Enable(slot int) error { return r.act(slot, "enable", event{kind: evEnable}) }

// PowerOff drives the slot's power line low and closes its SAM; the slot is
// StandbyOffline (a Quarantined slot stays Quarantined). An Enabled or
// Draining slot must be drained first.
func (r *Rack) PowerOff(slot int) error { return r.act(slot, "power-off", event{kind: evPowerOff}) }

// PowerOn powers up and probes a StandbyOffline or Absent slot. On a slot
// that is already on it does nothing; a Quarantined slot needs
// ClearQuarantine.
func (r *Rack) PowerOn(slot int) error { return r.act(slot, "power-on", event{kind: evPowerOn}) }

// PowerCycle power-cycles and probes a slot that is not in service (Absent,
// Starting, StandbyOffline, UnavailableOffline). Drain an Enabled slot
// first; a Quarantined one needs ClearQuarantine.
func (r *Rack) PowerCycle(slot int) error {
	return r.act(slot, "power-cycle", event{kind: evPowerCycle})
}

// Locate turns the slot's locate LED on or off, in any state.
func (r *Rack) Locate(slot int, on bool) error {
	return r.act(slot, "locate", event{kind: evLocate, on: on})
}

// ClearQuarantine turns the fault LED off, forgets the failures and
// power-cycles and probes the slot (Starting).
func (r *Rack) ClearQuarantine(slot int) error {
	return r.act(slot, "clear-quarantine", event{kind: evClearQuarantine})
}

// act feeds an operator event to a slot.
func (r *Rack) act(n int, op string, ev event) error {
	r.mu.Lock()
	s, err := r.slotByNum(n)
	if err != nil {
		r.mu.Unlock()
		return &SlotError{Slot: n, Op: op, Err: err}
	}
	if r.stopped {
		r.mu.Unlock()
		return &SlotError{Slot: n, Op: op, State: s.m.state, Err: ErrClosed}
	}
	if err := r.stepLocked(s, ev); err != nil {
		st := s.m.state
		r.unlockAndFlush()
		return &SlotError{Slot: n, Op: op, State: st, Err: err}
	}
	r.unlockAndFlush()
	return nil
}

// WaitState waits until the slot is in one of the states (and, if Enabled
// or Draining, not checking or resetting) and returns its snapshot. It is
// for operators and tests following a power-cycle or a drain.
func (r *Rack) WaitState(ctx context.Context, slot int, states ...State) (SlotInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.slotByNum(slot)
	if err != nil {
		return SlotInfo{}, &SlotError{Slot: slot, Op: "wait", Err: err}
	}
	ok := r.waitLocked(nil, ctx.Done(), func() bool {
		return slices.Contains(states, s.m.state) && s.m.act != actChecking && s.m.act != actResetting
	})
	if !ok {
		return r.infoLocked(s), context.Cause(ctx)
	}
	return r.infoLocked(s), nil
}

// Slots returns a snapshot of every slot, in config order.
func (r *Rack) Slots() []SlotInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SlotInfo, len(r.slots))
	for i, s := range r.slots {
		out[i] = r.infoLocked(s)
	}
	return out
}

// Slot returns a snapshot of one slot.
func (r *Rack) Slot(slot int) (SlotInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.slotByNum(slot)
	if err != nil {
		return SlotInfo{}, &SlotError{Slot: slot, Op: "info", Err: err}
	}
	return r.infoLocked(s), nil
}

func (r *Rack) infoLocked(s *slot) SlotInfo {
	m := &s.m
	info := SlotInfo{
		ID:               s.id,
		Driver:           s.cfg.Driver,
		Device:           s.cfg.Device,
		State:            m.state,
		Health:           m.health,
		SAMID:            m.samID,
		Busy:             m.act == actLeased,
		HasPower:         s.power != nil,
		Powered:          m.powered,
		Locate:           m.locate,
		Fault:            m.fault,
		Present:          m.present,
		Reads:            s.reads.Load(),
		Leases:           s.leases,
		Errors:           s.errs,
		ErrorRate:        s.errRate,
		Failures:         m.failures,
		LastCheck:        s.lastCheck,
		LastCheckLatency: s.lastLatency,
		LastError:        m.lastErr,
		Since:            s.since,
	}
	if m.state == StateEnabled || m.state == StateDraining {
		info.Activity = m.act.String()
	}
	if m.job != nil {
		info.Job = m.job.String()
	}
	return info
}

// Stats counts the pool.
func (r *Rack) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{Total: len(r.slots), Waiters: r.waiters.Len()}
	for _, s := range r.slots {
		switch s.m.state {
		case StateEnabled:
			st.Enabled++
		case StateQuarantined:
			st.Quarantined++
		default:
			st.Offline++
		}
		if s.m.act == actLeased {
			st.Busy++
		}
		if s.m.leasable() {
			st.Idle++
		}
	}
	return st
}
