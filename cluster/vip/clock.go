package vip

import "time"

// Clock is the manager's source of time (after tailscale's tstime.Clock):
// tests pass a fake they advance by hand.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends on C() after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a stoppable timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

var _ Clock = RealClock{}

func (RealClock) Now() time.Time                 { return time.Now() }
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
