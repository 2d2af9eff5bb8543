package rack

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// State is a slot's state, named after Redfish's Status.State values so that
// data-center tools read them naturally. See the package comment for the
// diagram.
type State int

const (
	// StateAbsent: no module answers in the slot (never found, pulled, or
	// its device vanished). The rack re-probes it every CheckInterval, and
	// at once when the OS reports a module inserted (Rack.Presence).
	StateAbsent State = iota
	// StateStarting: powered, being opened and probed (Status + ID).
	StateStarting
	// StateEnabled: in the pool; idle or busy (leased, checked, reset).
	StateEnabled
	// StateDraining: out of the pool for new leases, in-flight work finishing.
	StateDraining
	// StateStandbyOffline: drained or powered off by an operator.
	StateStandbyOffline
	// StateUnavailableOffline: failed health; the rack is recovering it.
	StateUnavailableOffline
	// StateQuarantined: recovery failed K times in a row; fault LED on; only
	// an operator (ClearQuarantine) brings it back.
	StateQuarantined
)

var stateNames = [...]string{"Absent", "Starting", "Enabled", "Draining", "StandbyOffline", "UnavailableOffline", "Quarantined"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText writes the state's name (for the admin API's JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Health is a slot's Redfish Status.Health.
type Health int

const (
	HealthOK       Health = iota // last check or read succeeded
	HealthWarning                // absent, or recovered but not yet proven by a check or read
	HealthCritical               // failed; recovering or quarantined
)

func (h Health) String() string {
	switch h {
	case HealthOK:
		return "OK"
	case HealthWarning:
		return "Warning"
	case HealthCritical:
		return "Critical"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// MarshalText writes the health's name.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// activity is what occupies an Enabled or Draining slot.
type activity int

const (
	actIdle      activity = iota
	actLeased             // a Lease holds it
	actChecking           // a health check runs
	actResetting          // reset after a lease that ended with a card or reader error
)

var activityNames = [...]string{"idle", "leased", "checking", "resetting"}

func (a activity) String() string { return activityNames[a] }

// job is I/O the machine asks the runtime to do, in the order of the fields.
// Its result comes back as an evJobDone event carrying the job's generation.
type job struct {
	what     string        // check, reset, start, recover, reprobe, power-off, …
	delay    time.Duration // wait first (backoff)
	powerOff bool          // power line low, close the SAM
	closeSAM bool          // close the SAM (stale transport)
	powerOn  bool          // power line high (after PowerOffTime if powerOff), wait BootTime
	open     bool          // open the SAM if it is closed
	reset    bool          // Reset
	probe    bool          // Status, then ID
}

func (j *job) String() string {
	if j == nil {
		return "none"
	}
	var steps []string
	if j.delay > 0 {
		steps = append(steps, "wait "+j.delay.String())
	}
	for _, s := range []struct {
		on   bool
		name string
	}{{j.powerOff, "power-off"}, {j.closeSAM, "close"}, {j.powerOn, "power-on"}, {j.open, "open"}, {j.reset, "reset"}, {j.probe, "probe"}} {
		if s.on {
			steps = append(steps, s.name)
		}
	}
	return j.what + "(" + strings.Join(steps, ",") + ")"
}

// evKind is the kind of an input event of the machine.
type evKind int

const (
	evStart    evKind = iota // the rack starts running
	evJobDone                // a job finished: gen, err, id
	evCheckDue               // the health-check timer fired
	evLease                  // the pool leases the slot
	evRelease                // the lease ended: err is its outcome
	evDrain                  // operator actions …
	evEnable
	evPowerOff
	evPowerOn
	evPowerCycle
	evLocate // on
	evClearQuarantine
	evRemoved  // the OS saw the module go (waiting: the job in flight is still in its backoff wait)
	evInserted // the OS saw a module appear (waiting: as for evRemoved)
)

// event is an input of the machine.
type event struct {
	kind evKind
	gen  uint64      // evJobDone: the job's generation
	err  error       // evJobDone: the job's error; evRelease: the outcome
	id   ga467.SAMID // evJobDone of a probe: the SAM ID read
	on   bool        // evLocate
	// evRemoved, evInserted: the job in flight has not got past its
	// delay (backoff), so it is not switching the slot's power yet.
	waiting bool
}

// machineConfig is what the machine needs to know of the rack's config.
type machineConfig struct {
	maxFailures int           // K: failed recoveries before quarantine
	backoff     time.Duration // first power-cycle delay, doubled per failure
	maxBackoff  time.Duration
	reprobe     time.Duration // how often an Absent slot is probed
	hasPower    bool          // the slot has a power line
}

// machine is the slot state machine. It is pure: events in (handle), state,
// a job to run and audit events out; no I/O, no clock, no goroutines. The
// runtime (Rack) feeds it under its lock and carries out its jobs.
type machine struct {
	cfg machineConfig

	state    State
	health   Health
	act      activity
	drained  bool // operator wants the slot out of the pool
	powered  bool // we drive the power line high (or it has none)
	locate   bool // locate LED wanted on
	present  bool // last presence the OS reported (true until one says otherwise)
	fault    bool // fault LED wanted on
	samID    ga467.SAMID
	failures int // consecutive failed recoveries
	lastErr  string

	job *job   // the job in flight (or queued); nil if none
	gen uint64 // generation of job; bumped whenever job is replaced

	out []Event // audit events not yet taken by the runtime
}

func newMachine(cfg machineConfig) machine {
	if cfg.maxFailures <= 0 {
		cfg.maxFailures = 1
	}
	return machine{cfg: cfg, state: StateAbsent, health: HealthWarning, powered: !cfg.hasPower, present: true}
}

// leasable reports whether the pool may lease the slot.
func (m *machine) leasable() bool { return m.state == StateEnabled && m.act == actIdle }

// takeEvents returns and clears the machine's audit events.
func (m *machine) takeEvents() []Event {
	out := m.out
	m.out = nil
	return out
}

// handle feeds one event to the machine. It returns ErrNotAllowed or
// ErrNoPowerLine for an action the current state refuses (the machine is
// then unchanged); internal events never fail except evLease and evRelease
// in the wrong state, which are bugs of the caller.
func (m *machine) handle(ev event) error {
	var err error
	switch ev.kind {
	case evStart:
		if m.state != StateAbsent || m.job != nil {
			return ErrNotAllowed
		}
		m.powerUp("start", false)
	case evCheckDue:
		if m.leasable() {
			m.act = actChecking
			m.setJob(&job{what: "check", probe: true})
		}
	case evLease:
		if !m.leasable() {
			return ErrNotAllowed
		}
		m.act = actLeased
	case evRelease:
		if m.act != actLeased {
			return ErrNotAllowed
		}
		m.act = actIdle
		switch {
		case m.state != StateEnabled && m.state != StateDraining:
			// Pulled while leased (evRemoved): now nothing uses the SAM,
			// drop it, and probe at once if a module is back already.
			if m.present && m.powered {
				m.probeNow()
			} else {
				m.setJob(&job{what: "removed", closeSAM: true})
			}
		case ev.err == nil:
			m.proven()
		case errors.Is(ev.err, sam.ErrGone) || sam.ModuleFault(ev.err):
			// ErrGone first: a gone module is Absent even if the
			// outcome also blames the card link.
			m.fail(ev.err)
		default: // card or reader trouble mid-read: reset before reuse
			m.lastErr = ev.err.Error()
			m.act = actResetting
			m.setJob(&job{what: "reset", reset: true})
		}
	case evJobDone:
		if m.job == nil || ev.gen != m.gen {
			return nil // superseded
		}
		j := m.job
		m.job = nil
		m.jobDone(j, ev)
	case evDrain:
		err = m.drain()
	case evEnable:
		err = m.enable()
	case evPowerOff:
		err = m.powerOff()
	case evPowerOn:
		err = m.powerOn()
	case evPowerCycle:
		err = m.powerCycle()
	case evLocate:
		if m.locate != ev.on {
			m.locate = ev.on
			m.emit(Event{Kind: EventLocate, On: ev.on})
		}
	case evClearQuarantine:
		if m.state != StateQuarantined {
			return ErrNotAllowed
		}
		m.fault = false
		m.failures = 0
		m.drained = false
		m.emit(Event{Kind: EventQuarantineCleared})
		m.powerUp("clear-quarantine", true)
	case evRemoved:
		m.removed(ev.waiting)
	case evInserted:
		m.inserted(ev.waiting)
	}
	// A draining slot whose last work ended is drained.
	if m.state == StateDraining && m.act == actIdle {
		m.setState(StateStandbyOffline)
	}
	return err
}

// jobDone takes the result of the job j that just ended.
func (m *machine) jobDone(j *job, ev event) {
	switch m.state {
	case StateStarting, StateAbsent:
		if !j.probe { // "removed": the stale SAM is closed; look again now and then
			m.setJob(m.reprobeJob())
			return
		}
		if ev.err != nil {
			m.fail(ev.err)
			return
		}
		m.up(ev.id, HealthOK)
	case StateUnavailableOffline:
		if ev.err == nil {
			m.emit(Event{Kind: EventRecovered, Attempt: m.failures + 1})
			m.failures = 0
			m.up(ev.id, HealthWarning)
			return
		}
		m.failures++
		m.lastErr = ev.err.Error()
		m.emit(Event{Kind: EventRecoveryFailed, Attempt: m.failures, Err: m.lastErr})
		if m.failures >= m.cfg.maxFailures {
			m.fault = true
			m.health = HealthCritical
			m.setState(StateQuarantined)
			m.setJob(nil)
			m.emit(Event{Kind: EventQuarantined, Attempt: m.failures, Err: m.lastErr})
			return
		}
		m.setJob(m.recoveryJob())
	case StateEnabled, StateDraining:
		act := m.act
		m.act = actIdle
		if ev.err != nil {
			m.fail(ev.err)
			return
		}
		if act == actChecking {
			m.recordID(ev.id)
		}
		m.proven()
	default: // StandbyOffline or Quarantined: a power-off or close ended, or an identify
		if m.state == StateQuarantined && j.what == "identify" {
			m.identified(ev)
			return
		}
		if ev.err != nil {
			m.lastErr = ev.err.Error()
		}
	}
}

// fail takes the slot out of the pool after a module fault: Absent if the
// module is gone, else UnavailableOffline with recovery.
func (m *machine) fail(err error) {
	m.lastErr = err.Error()
	m.act = actIdle
	if errors.Is(err, sam.ErrGone) || errors.Is(err, ErrNoModule) {
		m.health = HealthWarning
		m.setState(StateAbsent)
		m.setJob(m.reprobeJob())
		return
	}
	m.health = HealthCritical
	m.setState(StateUnavailableOffline)
	m.emit(Event{Kind: EventRecoveryStarted, Err: m.lastErr})
	m.setJob(m.recoveryJob())
}

// reprobeJob looks for a module in an Absent slot every reprobe interval
// (the fallback when no presence report comes).
func (m *machine) reprobeJob() *job {
	return &job{what: "reprobe", delay: m.cfg.reprobe, closeSAM: true, open: true, probe: true}
}

// probeNow probes the slot at once: a module was reported inserted.
func (m *machine) probeNow() {
	m.act = actIdle
	m.setState(StateStarting)
	m.setJob(&job{what: "inserted", closeSAM: true, open: true, probe: true})
}

// switchingPower reports whether the job in flight drives the slot's power
// line (and is past its backoff wait): the rack itself makes USB modules
// vanish and reappear then, and the job's probe has the last word.
func (m *machine) switchingPower(waiting bool) bool {
	return m.job != nil && (m.job.powerOff || m.job.powerOn) && !waiting
}

// removed takes the OS's word that the module left the slot. An in-service,
// starting or recovering slot is Absent at once (the runtime cancels the
// job in flight and the lease); a slot on standby or quarantined keeps its
// state. The stale SAM is closed — after the lease is back, if leased.
func (m *machine) removed(waiting bool) {
	if m.switchingPower(waiting) {
		return
	}
	if m.present {
		m.present = false
		m.emit(Event{Kind: EventRemoved})
	}
	switch m.state {
	case StateStandbyOffline, StateQuarantined: // the operator's call, not ours
		m.setJob(&job{what: "removed", closeSAM: true})
		return
	case StateAbsent:
	default: // Starting, Enabled, Draining, UnavailableOffline
		m.lastErr = "module removed"
		m.health = HealthWarning
		m.setState(StateAbsent)
	}
	if m.act == actLeased {
		return // evRelease closes the SAM once the lease is back
	}
	m.act = actIdle
	m.setJob(&job{what: "removed", closeSAM: true})
}

// inserted takes the OS's word that a module is in the slot: an Absent slot
// is probed now, not at the next reprobe; a quarantined one is identified
// (a new module clears the quarantine, the same one re-seated does not).
func (m *machine) inserted(waiting bool) {
	if m.switchingPower(waiting) {
		return
	}
	was := m.present
	if !was {
		m.present = true
		m.emit(Event{Kind: EventInserted})
	}
	if !m.powered {
		return
	}
	switch m.state {
	case StateAbsent:
		if m.act != actLeased { // else evRelease probes it
			m.probeNow()
		}
	case StateStarting:
		if !was { // a probe that started before the module was there
			m.probeNow()
		}
	case StateQuarantined:
		m.setJob(&job{what: "identify", closeSAM: true, open: true, probe: true})
	}
	// Enabled, Draining, UnavailableOffline: the module in hand answers or
	// is being recovered. StandbyOffline: the operator's Enable probes it.
}

// identified takes the probe of a module inserted in a quarantined slot.
func (m *machine) identified(ev event) {
	switch {
	case ev.err != nil:
		m.lastErr = ev.err.Error()
	case ev.id == m.samID:
		m.lastErr = "the quarantined module was re-inserted; clear the quarantine to use it"
	default: // a new module replaced the quarantined one
		m.fault = false
		m.failures = 0
		m.drained = false
		m.emit(Event{Kind: EventQuarantineCleared, Err: "module replaced"})
		m.up(ev.id, HealthOK)
	}
}

// recoveryJob is the next recovery step: a reset first, then power-cycles
// (a close and re-open without a power line) with exponential backoff.
func (m *machine) recoveryJob() *job {
	if m.failures == 0 {
		return &job{what: "recover", open: true, reset: true, probe: true}
	}
	d := m.cfg.backoff
	for i := 1; i < m.failures && d < m.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.cfg.maxBackoff)
	if m.cfg.hasPower {
		return &job{what: "recover", delay: d, powerOff: true, powerOn: true, open: true, probe: true}
	}
	return &job{what: "recover", delay: d, closeSAM: true, open: true, reset: true, probe: true}
}

// up puts a slot whose probe passed in the pool (or on standby if drained).
func (m *machine) up(id ga467.SAMID, h Health) {
	m.recordID(id)
	m.health = h
	m.act = actIdle
	m.powered = true
	if m.drained {
		m.setState(StateStandbyOffline)
	} else {
		m.setState(StateEnabled)
	}
}

// proven records a passed check or a clean lease.
func (m *machine) proven() {
	m.health = HealthOK
	m.failures = 0
}

// recordID notes the SAM ID a probe read; a different ID is a swapped module.
func (m *machine) recordID(id ga467.SAMID) {
	if id == m.samID {
		return
	}
	if !m.samID.IsZero() {
		m.emit(Event{Kind: EventSwap, SAMID: id, OldSAMID: m.samID})
		m.failures = 0
		m.lastErr = ""
	} else {
		m.emit(Event{Kind: EventSAMID, SAMID: id})
	}
	m.samID = id
}

// powerUp moves to Starting with a job that powers the slot (cycling it
// first if cycle) and probes it.
func (m *machine) powerUp(what string, cycle bool) {
	j := &job{what: what, open: true, probe: true}
	if m.cfg.hasPower {
		j.powerOff = cycle
		j.powerOn = cycle || !m.powered
	} else {
		j.closeSAM = cycle
	}
	m.powered = true
	m.act = actIdle
	m.setState(StateStarting)
	m.setJob(j)
}

func (m *machine) drain() error {
	switch m.state {
	case StateEnabled:
		m.drained = true
		m.setState(StateDraining)
	case StateDraining, StateStandbyOffline:
		m.drained = true
	default:
		return ErrNotAllowed
	}
	return nil
}

func (m *machine) enable() error {
	switch m.state {
	case StateEnabled:
	case StateDraining:
		m.drained = false
		m.setState(StateEnabled)
	case StateStandbyOffline:
		m.drained = false
		m.powerUp("enable", false)
	default:
		return ErrNotAllowed
	}
	return nil
}

func (m *machine) powerOff() error {
	if !m.cfg.hasPower {
		return ErrNoPowerLine
	}
	switch m.state {
	case StateEnabled, StateDraining:
		return ErrNotAllowed // drain first
	case StateQuarantined:
		if m.powered {
			m.powered = false
			m.setJob(&job{what: "power-off", powerOff: true})
		}
	default: // Absent, Starting, StandbyOffline, UnavailableOffline
		if m.state == StateStandbyOffline && !m.powered {
			return nil
		}
		m.drained = true
		m.powered = false
		m.act = actIdle
		m.setState(StateStandbyOffline)
		m.setJob(&job{what: "power-off", powerOff: true})
	}
	return nil
}

func (m *machine) powerOn() error {
	switch m.state {
	case StateQuarantined:
		return ErrNotAllowed // ClearQuarantine
	case StateStandbyOffline, StateAbsent:
		m.drained = false
		m.powerUp("power-on", false)
	}
	return nil // already on
}

func (m *machine) powerCycle() error {
	if !m.cfg.hasPower {
		return ErrNoPowerLine
	}
	switch m.state {
	case StateEnabled, StateDraining, StateQuarantined:
		return ErrNotAllowed // drain first; ClearQuarantine
	}
	m.drained = false
	m.powerUp("power-cycle", true)
	return nil
}

// setJob replaces the job in flight; the runtime cancels the old one.
func (m *machine) setJob(j *job) {
	m.job = j
	m.gen++
}

func (m *machine) setState(s State) {
	if s == m.state {
		return
	}
	e := Event{Kind: EventState, From: m.state, To: s}
	switch s {
	case StateAbsent, StateUnavailableOffline, StateQuarantined:
		e.Err = m.lastErr
	}
	m.emit(e)
	m.state = s
}

func (m *machine) emit(e Event) {
	e.Health = m.health
	if e.SAMID.IsZero() {
		e.SAMID = m.samID
	}
	m.out = append(m.out, e)
}
