package rack

import (
	"context"
	"time"
)

// Clock is the rack's source of time (after tailscale's tstime.Clock). Tests
// pass a fake they advance by hand; production uses the real clock.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends on C() after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine (or, for fakes, from the
	// goroutine advancing the clock) after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable timer of a Clock.
type Timer interface {
	// C is the channel of a NewTimer timer; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

var _ Clock = RealClock{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{t: time.NewTimer(d)} }

func (RealClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{t: time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// withTimeout is context.WithTimeout on clk. On the real clock it is exactly
// context.WithTimeout; on another clock the deadline is clk's, and Deadline
// reports it so drivers can pass it on.
func withTimeout(ctx context.Context, clk Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := clk.(RealClock); ok {
		return context.WithTimeout(ctx, d)
	}
	c, cancel := context.WithCancelCause(ctx)
	t := clk.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return &clockCtx{Context: c, deadline: clk.Now().Add(d)}, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// clockCtx is a context whose deadline is kept by a non-real Clock.
type clockCtx struct {
	context.Context
	deadline time.Time
}

func (c *clockCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *clockCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}
