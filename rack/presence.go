package rack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// PresenceWatcher reports modules appearing in and disappearing from the
// places a driver opens them: PC/SC readers (pcsc.Watch on
// SCardGetStatusChange), serial device nodes (DevWatcher). Watch calls
// notify for every device once when it starts, then on every change, one
// call at a time, until ctx is done; then it returns. A device whose module
// was swapped faster than the watcher looks is reported removed then
// present. device is the address a SlotConfig.Device names.
type PresenceWatcher interface {
	Watch(ctx context.Context, notify func(device string, present bool)) error
}

// Presence tells the rack that the OS saw the module of slot disappear
// (present false: a PC/SC removal event, the serial device node gone) or
// appear (present true). The appliance calls it from its hot-plug handlers;
// the watchers of Options.Watchers call it through DevicePresence.
//
// A removal takes the slot out of the pool at once: an Enabled, Starting or
// recovering slot is Absent, the rack's I/O on it (a check, a probe) is
// cancelled, and an outstanding lease is taken back — its operations,
// those in flight too, fail promptly with an error wrapping ErrRemoved and
// so sam.ErrGone, for which a dispatcher restarts the read on another SAM;
// the holder's Release is then a no-op. The SAM is closed once nothing uses
// it. Nothing waits for a health check.
//
// An insertion probes an Absent slot now (Starting: open, Status, ID), not
// at the next CheckInterval; it is Enabled when the probe passes, and a new
// SAM ID is a swap (EventSwap). A module inserted in a quarantined slot is
// identified: a new module clears the quarantine, the same one re-seated
// does not. A slot on standby stays there until Enable.
//
// Reports that contradict the rack's own doing are ignored: while the rack
// power-cycles a slot, or powers it on or off, its module vanishing and
// reappearing is expected and the job's probe decides. Reports before Run
// or after shutdown are dropped (Run probes every slot anyway). Repeated
// flapping settles on the last report: each removal cancels the probe of
// the insertion before it. A slot number no slot has is reported as
// EventUnknownDevice.
func (r *Rack) Presence(slot int, present bool) {
	r.mu.Lock()
	s := r.byNum[slot]
	if s == nil {
		r.eventLocked(Event{Slot: slot, Kind: EventUnknownDevice, On: present, Err: "no slot has that number"})
		r.unlockAndFlush()
		return
	}
	pulled := r.presenceLocked(s, present)
	r.unlockAndFlush()
	if pulled != nil {
		pulled.pull()
	}
}

// DevicePresence is Presence for the slots whose SlotConfig.Driver and
// Device are driver and device: how watchers that know devices, not slot
// numbers, report. A device no slot is configured with is not an error: it
// is reported as EventUnknownDevice (Slot -1), so that an operator sees a
// module inserted in a place the config does not know.
func (r *Rack) DevicePresence(driver, device string, present bool) {
	r.mu.Lock()
	var pulled []*Lease
	found := false
	for _, s := range r.slots {
		if s.cfg.Driver != driver || s.cfg.Device != device {
			continue
		}
		found = true
		if l := r.presenceLocked(s, present); l != nil {
			pulled = append(pulled, l)
		}
	}
	if !found {
		r.eventLocked(Event{Slot: -1, Kind: EventUnknownDevice, Driver: driver, Device: device, On: present})
	}
	r.unlockAndFlush()
	for _, l := range pulled {
		l.pull()
	}
}

// presenceLocked feeds a presence report to the slot's machine. If the
// report took the slot away from its lease, it marks the lease gone (so no
// operation starts on it once the slot shows Absent) and returns it: the
// caller pulls it without r.mu.
func (r *Rack) presenceLocked(s *slot, present bool) *Lease {
	if !r.running || r.stopped {
		return nil
	}
	ev := event{kind: evInserted, waiting: r.jobWaitingLocked(s)}
	if !present {
		ev.kind = evRemoved
	}
	r.stepLocked(s, ev)
	if !present && s.lease != nil && s.m.state == StateAbsent && s.m.act == actLeased {
		s.lease.markGone(fmt.Errorf("slot %d: %w", s.id, ErrRemoved))
		return s.lease
	}
	return nil
}

// jobWaitingLocked reports whether the slot's job has a delay it has not
// waited out yet (queued for the worker, or in its backoff wait).
func (r *Rack) jobWaitingLocked(s *slot) bool {
	j := s.m.job
	if j == nil || j.delay <= 0 {
		return false
	}
	return (s.pending != nil && s.pendingGen == s.m.gen) || s.delayGen == s.m.gen
}

// eventLocked files an audit event that is not a slot machine's.
func (r *Rack) eventLocked(e Event) {
	if r.event == nil {
		return
	}
	e.Time = r.clk.Now()
	r.events = append(r.events, e)
}

// runWatcher runs one PresenceWatcher until ctx is done, restarting it
// after CheckInterval if it returns early. Run owns it (r.wg).
func (r *Rack) runWatcher(ctx context.Context, driver string, w PresenceWatcher) {
	defer r.wg.Done()
	notify := func(device string, present bool) { r.DevicePresence(driver, device, present) }
	for {
		err := w.Watch(ctx, notify)
		if ctx.Err() != nil {
			return
		}
		msg := "returned"
		if err != nil {
			msg = err.Error()
		}
		r.mu.Lock()
		r.eventLocked(Event{Slot: -1, Kind: EventWatcherFailed, Driver: driver, Err: msg})
		r.unlockAndFlush()
		if r.sleep(ctx, r.cfg.CheckInterval) != nil {
			return
		}
	}
}

// DevWatcher is the PresenceWatcher of drivers that open a device node,
// such as serial ttys (/dev/ttyUSB0, /dev/serial/by-path/…): it polls
// os.Stat of each path every Interval on its Clock. It polls rather than
// using inotify: a few stats four times a second cost nothing, need no
// platform code, and follow udev's by-path symlinks to the node they
// name. A path that exists is present; a path whose file
// changed identity between two looks (a module swapped faster than the
// poll) is reported removed, then present. Stat errors other than "does
// not exist" leave the path's state as it was.
//
//	rack.Options{Watchers: map[string]rack.PresenceWatcher{
//		"serial": &rack.DevWatcher{Paths: cfg.Devices("serial")},
//	}}
type DevWatcher struct {
	Paths    []string      // device paths, as in SlotConfig.Device
	Interval time.Duration // default 250 ms
	Clock    Clock         // default RealClock; pass the rack's

	stat func(string) (os.FileInfo, error) // os.Stat; tests replace it
}

var _ PresenceWatcher = (*DevWatcher)(nil)

// Watch implements PresenceWatcher. It reports every path once, then every
// change, until ctx is done, and returns ctx's error.
func (w *DevWatcher) Watch(ctx context.Context, notify func(device string, present bool)) error {
	clk, every, stat := w.Clock, w.Interval, w.stat
	if clk == nil {
		clk = RealClock{}
	}
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	if stat == nil {
		stat = os.Stat
	}
	seen := make(map[string]os.FileInfo, len(w.Paths)) // nil: absent
	look := func() {
		for _, p := range w.Paths {
			fi, err := stat(p)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					continue
				}
				fi = nil
			}
			old, known := seen[p]
			seen[p] = fi
			switch {
			case !known:
				notify(p, fi != nil)
			case (old == nil) != (fi == nil):
				notify(p, fi != nil)
			case fi != nil && !os.SameFile(old, fi):
				notify(p, false)
				notify(p, true)
			}
		}
	}
	look()
	for {
		t := clk.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
		look()
	}
}
