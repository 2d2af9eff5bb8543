package vip

import (
	"errors"
	"fmt"
	"time"
)

// ActionKind is what the ownership machine asks the manager to do.
type ActionKind int

const (
	// ActAdd: add the address to the interface (idempotent).
	ActAdd ActionKind = iota
	// ActRemove: remove the address (idempotent: absent is success).
	ActRemove
	// ActAnnounce: send gratuitous ARP (request and reply) or an
	// unsolicited neighbour advertisement for the address.
	ActAnnounce
	// ActStepDown: give up raft leadership (raft's LeadershipTransfer),
	// because this node cannot serve or cannot release the VIP. Reason
	// says why; the manager logs it at error level.
	ActStepDown
	// ActTransfer: graceful stop: the address is gone, hand leadership on.
	ActTransfer
)

var actionNames = [...]string{"add", "remove", "announce", "step-down", "transfer"}

func (k ActionKind) String() string {
	if k >= 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one decision of the machine.
type Action struct {
	Kind   ActionKind
	Reason string
}

func (a Action) String() string {
	if a.Reason == "" {
		return a.Kind.String()
	}
	return a.Kind.String() + ": " + a.Reason
}

// addrState is what the machine knows of the address on the interface.
type addrState int

const (
	addrUnknown addrState = iota // at start, or after a failed add or remove
	addrAbsent
	addrPresent
)

var addrNames = [...]string{"unknown", "absent", "present"}

func (s addrState) String() string { return addrNames[s] }

// evKind is the kind of an input event of the machine.
type evKind int

const (
	evStart    evKind = iota // the manager starts: clear a stale VIP
	evLeader                 // leadership gained, barrier done
	evFollower               // leadership lost
	evContact                // the leader last heard from a quorum at ev.at
	evTick                   // a timer fired (announce, fence check, retry)
	evDone                   // an action ended with ev.err
	evStop                   // graceful stop
)

// event is an input of the machine. now is the clock's time when it
// happened.
type event struct {
	kind evKind
	now  time.Time
	at   time.Time  // evContact: the contact; evLeader: when the barrier started
	act  ActionKind // evDone
	err  error      // evDone
}

// machineConfig are the machine's timings.
type machineConfig struct {
	lease      time.Duration // raft's LeaderLeaseTimeout
	margin     time.Duration // drop the VIP at lease-margin after the last quorum contact
	burst      int           // announcements right after taking the VIP
	burstEvery time.Duration // spacing of those
	refresh    time.Duration // then one every refresh
	retry      time.Duration // wait after a failed add or remove
	maxAddFail int           // failed adds in a row before stepping down
}

// machine decides who does what to the VIP on this node. It is pure:
// events in (handle), actions out (take), and the time it next wants a
// tick (next); no I/O, no clock, no goroutines. At most one add or remove
// is outstanding; the manager runs each action and feeds its result back
// as evDone.
type machine struct {
	cfg machineConfig

	leader   bool      // raft made us leader and the barrier passed
	contact  time.Time // last quorum contact the leader reported
	fenced   bool      // leader, but contact is older than lease-margin
	stopping bool      // graceful stop asked
	stopped  bool      // graceful stop finished (the manager may exit)

	have     addrState
	pending  bool       // an add or remove is outstanding
	pendAct  ActionKind // which
	failures int        // failed adds or removes in a row
	retryAt  time.Time  // no add or remove before this after a failure
	lastErr  string

	announced  int       // announcements since the address was added
	announceAt time.Time // next announcement
	askedDown  bool      // asked to step down in this term (ask once)
	wanted     bool      // want() at the last reconcile
	vanished   bool      // the address went missing while held (re-add)

	out []Action
}

func newMachine(cfg machineConfig) machine {
	if cfg.maxAddFail <= 0 {
		cfg.maxAddFail = 1
	}
	return machine{cfg: cfg, have: addrUnknown}
}

// take returns and clears the actions decided so far.
func (m *machine) take() []Action {
	out := m.out
	m.out = nil
	return out
}

// want reports whether this node should hold the VIP now.
func (m *machine) want() bool { return m.leader && !m.fenced && !m.stopping }

// fenceAt is when the leader's lease runs out as far as the VIP goes.
func (m *machine) fenceAt() time.Time { return m.contact.Add(m.cfg.lease - m.cfg.margin) }

func (m *machine) handle(ev event) {
	switch ev.kind {
	case evStart:
		m.have = addrUnknown
	case evLeader:
		if !m.leader {
			m.askedDown = false
		}
		m.leader = true
		// The barrier passed: a quorum answered after it started (ev.at;
		// the event's time if not given).
		at := ev.at
		if at.IsZero() {
			at = ev.now
		}
		if at.After(m.contact) {
			m.contact = at
		}
	case evFollower:
		m.leader = false
		m.fenced = false
	case evContact:
		if ev.at.After(m.contact) {
			m.contact = ev.at
		}
	case evTick:
	case evDone:
		m.done(ev)
	case evStop:
		m.stopping = true
		m.retryAt = time.Time{} // one last try at once
	}
	m.reconcile(ev.now)
}

// done takes the result of an action.
func (m *machine) done(ev event) {
	switch ev.act {
	case ActAdd, ActRemove:
		m.pending = false
	default:
		if ev.err != nil {
			m.lastErr = ev.err.Error()
		}
		if ev.act == ActAnnounce && errors.Is(ev.err, ErrVanished) && m.have == addrPresent {
			m.have = addrUnknown // reconcile adds it again
			m.vanished = true
		}
		return
	}
	if ev.err == nil {
		m.failures = 0
		m.lastErr = ""
		m.retryAt = time.Time{}
		m.vanished = false
		if ev.act == ActAdd {
			m.have = addrPresent
			m.announced = 0
			m.announceAt = ev.now
		} else {
			m.have = addrAbsent
		}
		return
	}
	m.have = addrUnknown
	m.failures++
	m.lastErr = ev.err.Error()
	m.retryAt = ev.now.Add(m.cfg.retry)
	switch {
	case ev.act == ActRemove && m.stopping:
		// Nothing more this process can do: say so, hand leadership on
		// if it has it, and let the manager return the error.
		m.stopped = true
		if m.leader {
			m.emit(ActStepDown, "cannot remove the VIP at stop: "+m.lastErr)
		}
	case ev.act == ActRemove && m.leader && !m.askedDown:
		m.askedDown = true
		m.emit(ActStepDown, "cannot remove the VIP: "+m.lastErr)
	case ev.act == ActAdd && m.leader && m.failures >= m.cfg.maxAddFail && !m.askedDown:
		m.askedDown = true
		m.emit(ActStepDown, fmt.Sprintf("cannot add the VIP (%d tries): %s", m.failures, m.lastErr))
	}
}

// reconcile moves the address toward what is wanted and announces it on
// schedule.
func (m *machine) reconcile(now time.Time) {
	if m.stopped {
		return
	}
	if m.leader && !m.contact.IsZero() {
		fenced := !now.Before(m.fenceAt())
		if fenced && !m.fenced {
			m.fenced = true
		} else if !fenced && m.fenced {
			m.fenced = false
		}
	}
	want := m.want()
	if want != m.wanted {
		m.wanted = want
		m.retryAt = time.Time{} // a new goal is tried at once
	}
	if m.pending {
		return
	}
	switch {
	case want && m.have != addrPresent && !now.Before(m.retryAt):
		m.pending, m.pendAct = true, ActAdd
		if m.vanished {
			m.emit(ActAdd, "the address vanished")
		} else {
			m.emit(ActAdd, "leader")
		}
		return
	case !want && m.have != addrAbsent && !now.Before(m.retryAt):
		m.pending, m.pendAct = true, ActRemove
		m.emit(ActRemove, m.removeReason(now))
		return
	}
	if m.stopping && m.have == addrAbsent {
		m.stopped = true
		if m.leader {
			m.emit(ActTransfer, "graceful stop")
		}
		return
	}
	if want && m.have == addrPresent && !now.Before(m.announceAt) {
		m.announced++
		m.emit(ActAnnounce, fmt.Sprintf("#%d", m.announced))
		if m.announced < m.cfg.burst {
			m.announceAt = now.Add(m.cfg.burstEvery)
		} else {
			m.announceAt = now.Add(m.cfg.refresh)
		}
	}
}

func (m *machine) removeReason(now time.Time) string {
	switch {
	case m.stopping:
		return "graceful stop"
	case m.fenced:
		return fmt.Sprintf("no quorum contact for %v (lease %v)", now.Sub(m.contact), m.cfg.lease)
	case m.have == addrUnknown && m.failures == 0:
		return "startup (stale VIP)"
	case m.failures > 0:
		return "retry"
	}
	return "not leader"
}

// next is when the machine next wants a tick, or the zero time if it only
// waits for events.
func (m *machine) next(now time.Time) time.Time {
	if m.stopped || m.pending {
		return time.Time{}
	}
	var t time.Time
	earliest := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	want := m.want()
	if (want && m.have != addrPresent) || (!want && m.have != addrAbsent) {
		earliest(m.retryAt)
	}
	if want && m.have == addrPresent {
		earliest(m.announceAt)
	}
	if m.leader && !m.fenced && !m.contact.IsZero() {
		earliest(m.fenceAt())
	}
	if m.leader && m.fenced {
		// Poll for contact coming back.
		earliest(now.Add(max(m.cfg.lease/4, time.Millisecond)))
	}
	return t
}

func (m *machine) emit(k ActionKind, reason string) {
	m.out = append(m.out, Action{Kind: k, Reason: reason})
}

// String is the machine's state for scenario tests and logs.
func (m *machine) String() string {
	role := "follower"
	switch {
	case m.leader && m.fenced:
		role = "leader/fenced"
	case m.leader:
		role = "leader"
	}
	s := fmt.Sprintf("%s addr=%s", role, m.have)
	if m.pending {
		s += " pending"
	}
	if m.failures > 0 {
		s += fmt.Sprintf(" failures=%d", m.failures)
	}
	if m.stopping {
		s += " stopping"
	}
	if m.stopped {
		s += " stopped"
	}
	return s
}
