package vip

import (
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// fakeClock adapts clockwork's fake clock to Clock.
type fakeClock struct{ clockwork.FakeClock }

func (c fakeClock) NewTimer(d time.Duration) Timer { return cwTimer{c.FakeClock.NewTimer(d)} }

type cwTimer struct{ t clockwork.Timer }

func (t cwTimer) C() <-chan time.Time { return t.t.Chan() }
func (t cwTimer) Stop() bool          { return t.t.Stop() }

// fakeLeadership is a Leadership the test drives. Not for production.
type fakeLeadership struct {
	ch    chan bool
	lease time.Duration

	mu         sync.Mutex       // mu guards the fields below
	live       func() time.Time // if set, QuorumContact is live(): a quorum answers all the time
	contact    time.Time
	barrierErr error
	transfers  int
}

func newFakeLeadership(lease time.Duration) *fakeLeadership {
	return &fakeLeadership{ch: make(chan bool, 16), lease: lease}
}

func (f *fakeLeadership) LeaderCh() <-chan bool { return f.ch }

func (f *fakeLeadership) Barrier(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barrierErr
}

func (f *fakeLeadership) QuorumContact() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live != nil {
		return f.live()
	}
	return f.contact
}

// setLive makes QuorumContact follow now (nil: the last setContact).
func (f *fakeLeadership) setLive(now func() time.Time) {
	f.mu.Lock()
	f.live = now
	f.mu.Unlock()
}

func (f *fakeLeadership) setContact(t time.Time) {
	f.mu.Lock()
	f.contact = t
	f.mu.Unlock()
}

func (f *fakeLeadership) LeaseTimeout() time.Duration { return f.lease }

func (f *fakeLeadership) TransferLeadership() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.transfers++
	return nil
}

// fakeEffector records the VIP's presence. Not for production.
type fakeEffector struct {
	mu        sync.Mutex // mu guards the fields below
	has       bool
	announces int
	removeErr error
	addErr    error
}

var _ Effector = (*fakeEffector)(nil)

func (f *fakeEffector) Add(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addErr != nil {
		return f.addErr
	}
	f.has = true
	return nil
}

func (f *fakeEffector) Remove(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removeErr != nil {
		return f.removeErr
	}
	f.has = false
	return nil
}

func (f *fakeEffector) Announce(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.has {
		return ErrVanished
	}
	f.announces++
	return nil
}

func (f *fakeEffector) state() (bool, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has, f.announces
}
