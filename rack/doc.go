// Package rack is the local rack of a samrack appliance: the slots that hold
// GA/T 467 SAM modules, the slot state machine, health checks, hot-swap,
// power-cycle recovery, quarantine, locate and fault LEDs, and the pool
// that leases the SAMs to card reads.
//
// # Slots and their states
//
// Each configured slot has a SAM opened through the driver registry
// (drivers/sam), and optionally a power line and locate and fault LEDs
// (periph.io gpio.PinOut). Its state follows Redfish's Status.State:
//
//	        start, PowerOn    probe ok           Drain              in-flight done
//	Absent ─────────▶ Starting ─────▶ Enabled ─────────▶ Draining ────────────▶ StandbyOffline
//	 ▲  │ re-probe ok    │ ▲        idle ⇄ busy ◀──────────┘ Enable                    │
//	 │  └──────────▶ Enabled   └─────────── Enable, PowerOn, PowerCycle ──────────────┘
//	 │                 │ ▲
//	 │ gone      check │ │ recovered               K failed recoveries
//	 │ no module failed▼ │ (health Warning)        in a row
//	 └──────────── UnavailableOffline ───────────────────────────────▶ Quarantined
//	               recovery: reset, then power-cycles                  (fault LED on)
//	               with exponential backoff                                  │
//	                                   Starting ◀──── ClearQuarantine ───────┘
//
// In words: Run starts every slot (power on, open, Status + ID). A slot
// whose module cannot be opened, is gone (sam.ErrGone) or is reported
// removed is Absent and is re-probed every CheckInterval, or at once when
// a module is reported inserted (see Hot-swap); a probe that passes puts
// it in service. A
// failed probe or check, a module fault reported at Release, or a failed
// reset takes an Enabled slot to UnavailableOffline, where the rack
// recovers it: a reset first, then power-cycles (a close and re-open
// without a power line) after Backoff, doubling up to MaxBackoff. After
// MaxFailures failed recoveries in a row the slot is Quarantined with its
// fault LED on until an operator clears it. Operators drain, enable and
// power slots (see Rack.Drain and the other operator actions).
//
// Enabled slots are idle (in the pool), leased, being health-checked, or
// being reset after a lease that ended with a card or reader error; only
// idle ones are leased. Idle slots nothing has proved healthy for
// CheckInterval get a check (Status, then ID, each under CheckTimeout); a
// failed or hung check — the driver returns at the deadline — takes the
// slot out of the pool into recovery. A SAM ID that changes is a module
// swap: recorded (EventSwap), counters reset. Health is OK, Warning
// (absent, or recovered but not yet proven) or Critical (failed). The
// locate LED is independent of the state.
//
// # Hot-swap
//
// The OS sees modules come and go before any check does. The appliance
// reports it with Rack.Presence (by slot) or Rack.DevicePresence (by the
// slot's driver and device), or lets Run do it: Options.Watchers runs a
// PresenceWatcher per driver — pcsc.Watch for PC/SC readers, DevWatcher
// (a 250 ms os.Stat poll) for serial device nodes — in goroutines Run owns.
// A removal makes an in-service, starting or recovering slot Absent at
// once, cancels the rack's I/O on it and takes its lease back: the lease's
// operations return an error wrapping ErrRemoved and sam.ErrGone, so the
// dispatcher restarts the read on another SAM. An insertion probes an
// Absent slot now; it is Enabled as soon as Status and ID pass (a new SAM
// ID is a swap). Standby keeps the operator's choice; a quarantined slot
// leaves quarantine only for a module with another SAM ID. Reports caused
// by the rack's own power switching are ignored, and a device no slot is
// configured with is reported (EventUnknownDevice). A lease whose module
// fails with sam.ErrGone sends the slot to Absent, not to recovery,
// whatever outcome it is released with.
//
// The state machine (machine, state.go) is pure: events in, state, a job of
// I/O and audit events out. The Rack runs it: one worker goroutine per slot
// does the jobs (power, open, reset, probe, backoff waits), timers on an
// injected Clock drive the checks, and jobs a later event supersedes are
// cancelled and their results dropped (by generation).
//
// # The pool
//
// Rack.Lease picks an idle slot, preferring the SAM IDs the caller names,
// else the least recently used; when none is idle it queues (FIFO, bounded)
// and a released SAM goes straight to the oldest waiter. A lease is always
// given back: by Release, by the MaxLease watchdog, or at shutdown.
//
// # Locks
//
// Lock order: Rack.flushMu → Rack.mu → Lease.mu. Rack.mu guards the pool
// and every slot's machine; it is never held across SAM I/O (GPIO writes
// for the LEDs excepted: they do not block). OnEvent is called without
// Rack.mu.
package rack
