package rack

import (
	"fmt"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

// SlotInfo is a snapshot of one slot for the admin API and the dashboard.
type SlotInfo struct {
	ID       int
	Driver   string
	Device   string
	State    State
	Health   Health
	SAMID    ga467.SAMID // zero until a probe read it
	Activity string      // idle, leased, checking, resetting (Enabled/Draining)
	Job      string      // the rack's I/O in flight on the slot, "" if none
	Busy     bool        // leased

	HasPower bool // the slot has a power line
	Powered  bool // power on (always true without a power line)
	Locate   bool // locate LED on
	Fault    bool // fault LED on
	Present  bool // the OS's last presence report for the module (true until one says otherwise)

	Reads            uint64  // card reads (Read calls that succeeded) since the module was seen
	Leases           uint64  // leases given out
	Errors           uint64  // leases that ended with an error, failed checks and resets
	ErrorRate        float64 // moving average (α = 0.1) of failures per lease or check
	Failures         int     // consecutive failed recoveries
	LastCheck        time.Time
	LastCheckLatency time.Duration
	LastError        string
	Since            time.Time // when the slot entered State
}

// Stats counts the pool.
type Stats struct {
	Total       int // configured slots
	Enabled     int // slots in StateEnabled
	Idle        int // Enabled and leasable now
	Busy        int // leased
	Offline     int // Absent, Starting, Draining, StandbyOffline, UnavailableOffline
	Quarantined int
	Waiters     int // Lease calls queued for a SAM
}

// EventKind says what an Event reports.
type EventKind int

const (
	EventState             EventKind = iota // From → To
	EventSAMID                              // first SAM ID read in the slot
	EventSwap                               // the SAM ID changed: a new module (OldSAMID → SAMID)
	EventRecoveryStarted                    // a module fault took the slot offline (Err)
	EventRecoveryFailed                     // recovery attempt Attempt failed (Err)
	EventRecovered                          // recovery attempt Attempt succeeded
	EventQuarantined                        // Attempt failures in a row: fault LED on
	EventQuarantineCleared                  // operator cleared the quarantine
	EventLocate                             // locate LED turned On or off
	EventLeaseExpired                       // a lease was held past MaxLease and taken back
	EventRemoved                            // the OS reported the slot's module gone (Rack.Presence)
	EventInserted                           // the OS reported a module in the slot again
	EventUnknownDevice                      // a presence report for a Driver/Device no slot has (Slot -1, or the unknown number given to Presence; On: present)
	EventWatcherFailed                      // a PresenceWatcher of Driver returned early (Err); restarted after CheckInterval (Slot -1)
)

var eventNames = [...]string{"state", "sam-id", "swap", "recovery-started", "recovery-failed", "recovered", "quarantined", "quarantine-cleared", "locate", "lease-expired",
	"module-removed", "module-inserted", "unknown-device", "watcher-failed"}

func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is an audit record of a slot: a state change, a recovery step, a
// quarantine, a module swap. Delivered through Options.OnEvent.
type Event struct {
	Time     time.Time
	Slot     int
	Kind     EventKind
	From, To State // EventState
	Health   Health
	SAMID    ga467.SAMID // the slot's SAM ID (the new one for EventSwap)
	OldSAMID ga467.SAMID // EventSwap
	Attempt  int         // recovery attempt number
	On       bool        // EventLocate; EventUnknownDevice: present
	Driver   string      // EventUnknownDevice, EventWatcherFailed
	Device   string      // EventUnknownDevice
	Err      string      // what went wrong, when something did
}

func (e Event) String() string {
	s := fmt.Sprintf("slot %d: %v", e.Slot, e.Kind)
	switch e.Kind {
	case EventState:
		s += fmt.Sprintf(" %v→%v health=%v", e.From, e.To, e.Health)
	case EventSAMID:
		s += " " + e.SAMID.String()
	case EventSwap:
		s += fmt.Sprintf(" %v→%v", e.OldSAMID, e.SAMID)
	case EventRecoveryFailed, EventRecovered, EventQuarantined:
		s += fmt.Sprintf(" attempt=%d", e.Attempt)
	case EventLocate:
		s += fmt.Sprintf(" on=%v", e.On)
	case EventUnknownDevice:
		s += fmt.Sprintf(" %s %q present=%v", e.Driver, e.Device, e.On)
	case EventWatcherFailed:
		s += " " + e.Driver
	}
	if e.Err != "" {
		s += ": " + e.Err
	}
	return s
}
