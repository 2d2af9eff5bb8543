package rack

import (
	"errors"
	"fmt"
	"time"

	"github.com/samrack/samrack/drivers/sam"
)

// Errors of package rack. Operator actions return them wrapped in a
// *SlotError that names the slot; Lease returns ErrBusy wrapped in a
// *BusyError.
var (
	// ErrBusy: no idle healthy SAM became free in time, or the wait queue is
	// full. The error is a *BusyError carrying a retry hint.
	ErrBusy = errors.New("rack: no idle SAM")
	// ErrClosed: the rack has shut down (Run returned), or a lease's SAM was
	// used after the rack shut down.
	ErrClosed = errors.New("rack: closed")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("rack: already running")
	// ErrUnknownSlot: no slot has that number.
	ErrUnknownSlot = errors.New("rack: unknown slot")
	// ErrNotAllowed: the action is not allowed in the slot's current state.
	ErrNotAllowed = errors.New("rack: not allowed in the slot's state")
	// ErrNoPowerLine: the action needs a power line and the slot has none.
	ErrNoPowerLine = errors.New("rack: slot has no power line")
	// ErrNoModule: no module could be opened in the slot (device missing,
	// driver refused). The slot is Absent until a probe finds one.
	ErrNoModule = errors.New("rack: no module in slot")
	// ErrReleased: the lease was already released; its SAM may not be used.
	ErrReleased = errors.New("rack: lease released")
	// ErrLeaseExpired: the lease was held longer than Config.MaxLease; the
	// rack took the SAM back (and resets it before reuse).
	ErrLeaseExpired = errors.New("rack: lease held too long")
	// ErrInterrupted: a drain ended with the slot in another state than
	// StandbyOffline (a module fault took it offline first).
	ErrInterrupted = errors.New("rack: drain interrupted")
	// ErrRemoved: the OS reported the leased module removed (Rack.Presence);
	// the lease was cancelled. It wraps sam.ErrGone, so sam.ModuleFault is
	// true and a dispatcher restarts the read on another SAM.
	ErrRemoved = fmt.Errorf("rack: module removed: %w", sam.ErrGone)
)

// BusyError is what Lease returns when no SAM could be leased in time. It
// unwraps to ErrBusy.
type BusyError struct {
	// RetryAfter estimates when a SAM will be free, from recent lease
	// durations and the queue length.
	RetryAfter time.Duration
	// QueueFull is true when the bounded wait queue was full (the caller
	// was not queued at all), false when the wait timed out.
	QueueFull bool
}

func (e *BusyError) Error() string {
	why := "wait timed out"
	if e.QueueFull {
		why = "wait queue full"
	}
	return fmt.Sprintf("%v (%s), retry after %v", ErrBusy, why, e.RetryAfter)
}

// Unwrap returns ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }

// SlotError is an operator action refused for one slot. Its message is safe
// to show an operator; it unwraps to ErrUnknownSlot, ErrNotAllowed,
// ErrNoPowerLine, ErrClosed or ErrInterrupted.
type SlotError struct {
	Slot  int
	Op    string // "drain", "power-off", …
	State State  // the slot's state when the action was refused
	Err   error
}

func (e *SlotError) Error() string {
	if errors.Is(e.Err, ErrUnknownSlot) || errors.Is(e.Err, ErrClosed) {
		return fmt.Sprintf("rack: slot %d: %s: %v", e.Slot, e.Op, e.Err)
	}
	return fmt.Sprintf("rack: slot %d: %s: %v (state %v)", e.Slot, e.Op, e.Err, e.State)
}

// Unwrap returns the named error.
func (e *SlotError) Unwrap() error { return e.Err }
