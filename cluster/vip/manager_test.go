package vip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

type managerRig struct {
	t    *testing.T
	clk  fakeClock
	l    *fakeLeadership
	e    *fakeEffector
	m    *Manager
	acts chan string
}

func newManagerRig(t *testing.T, e *fakeEffector) *managerRig {
	t.Helper()
	leaktest.Check(t)
	r := &managerRig{t: t, clk: fakeClock{clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))},
		l: newFakeLeadership(500 * time.Millisecond), e: e, acts: make(chan string, 100)}
	r.m = NewManager(r.l, r.e, Options{
		Clock:  r.clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Notify: func(a Action, err error) {
			s := a.Kind.String()
			if err != nil {
				s += " failed"
			}
			r.acts <- s
		},
	})
	if err := r.m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.m.Close() })
	return r
}

// expect waits for the next actions the manager carried out.
func (r *managerRig) expect(want ...string) {
	r.t.Helper()
	for _, w := range want {
		select {
		case got := <-r.acts:
			if got != w {
				r.t.Fatalf("action %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			r.t.Fatalf("no action, want %q", w)
		}
	}
}

// advance moves the clock by d once the manager waits on its timer.
func (r *managerRig) advance(d time.Duration) {
	r.t.Helper()
	r.clk.BlockUntil(1)
	r.clk.Advance(d)
}

func TestManagerLifecycle(t *testing.T) {
	e := &fakeEffector{has: true} // a stale VIP from a crash
	r := newManagerRig(t, e)
	r.expect("remove")
	if has, _ := e.state(); has {
		t.Fatal("stale VIP kept")
	}
	// Leader: add, announce at once, then 4 more 500 ms apart. A quorum
	// answers all the time: the lease checks (every 400 ms) keep the VIP.
	r.l.setLive(r.clk.Now)
	r.l.ch <- true
	r.expect("add", "announce")
	for i := 0; i < 4; i++ {
		r.advance(400 * time.Millisecond) // lease check
		r.advance(100 * time.Millisecond)
		r.expect("announce")
	}
	if st := r.m.Status(); !st.Leader || !st.Holding || st.Fenced {
		t.Fatalf("status %+v", st)
	}
	// Then one every 10 s.
	for i := 0; i < 25; i++ {
		r.advance(400 * time.Millisecond)
	}
	r.expect("announce")
	if _, n := e.state(); n != 6 {
		t.Fatalf("%d announcements, want 6", n)
	}
	// Quorum contact stops: the VIP goes lease-margin after the last one.
	last := r.clk.Now()
	r.l.setContact(last)
	r.l.setLive(nil)
	r.advance(400 * time.Millisecond)
	r.expect("remove")
	if got := r.clk.Now().Sub(last); got > 500*time.Millisecond {
		t.Fatalf("VIP dropped %v after the last contact, lease 500ms", got)
	}
	if st := r.m.Status(); !st.Fenced || st.Holding {
		t.Fatalf("status %+v", st)
	}
	// Contact is back while still leader: the VIP comes back.
	r.l.setContact(r.clk.Now())
	r.advance(125 * time.Millisecond)
	r.expect("add", "announce")
	// Leadership lost: removed at once.
	r.l.ch <- false
	r.expect("remove")
	if has, _ := e.state(); has {
		t.Fatal("VIP kept after leadership lost")
	}
	// Leader again, then a graceful stop: remove, then transfer.
	r.l.setContact(r.clk.Now())
	r.l.ch <- true
	r.expect("add", "announce")
	if err := r.m.Close(); err != nil {
		t.Fatal(err)
	}
	r.expect("remove", "transfer")
	if has, _ := e.state(); has {
		t.Fatal("VIP kept after Close")
	}
}

func TestManagerRemoveFailsStepsDown(t *testing.T) {
	e := &fakeEffector{}
	r := newManagerRig(t, e)
	r.expect("remove")
	r.l.setContact(r.clk.Now())
	r.l.ch <- true
	r.expect("add", "announce")
	e.mu.Lock()
	e.removeErr = errors.New("operation not permitted")
	e.mu.Unlock()
	r.advance(400 * time.Millisecond) // lease runs out
	r.expect("remove failed", "step-down")
	r.l.mu.Lock()
	n := r.l.transfers
	r.l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d transfers, want 1", n)
	}
	if st := r.m.Status(); !strings.Contains(st.LastErr, "operation not permitted") {
		t.Fatalf("status %+v", st)
	}
	err := r.m.Close()
	if !errors.Is(err, ErrRemove) {
		t.Fatalf("Close: %v, want ErrRemove", err)
	}
}

func TestManagerBarrierRetry(t *testing.T) {
	e := &fakeEffector{}
	r := newManagerRig(t, e)
	r.expect("remove")
	r.l.mu.Lock()
	r.l.barrierErr = errors.New("timed out enqueuing operation")
	r.l.mu.Unlock()
	r.l.ch <- true
	r.advance(500 * time.Millisecond) // no VIP before a barrier passes
	if has, _ := e.state(); has {
		t.Fatal("VIP added without a barrier")
	}
	r.l.mu.Lock()
	r.l.barrierErr = nil
	r.l.mu.Unlock()
	r.l.setContact(r.clk.Now().Add(time.Second))
	r.advance(time.Second)
	r.expect("add", "announce")
}

func TestManagerContextStops(t *testing.T) {
	leaktest.Check(t)
	l := newFakeLeadership(time.Second)
	e := &fakeEffector{}
	m := NewManager(l, e, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: %v", err)
	}
	l.ch <- true
	cancel()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if has, _ := e.state(); has {
		t.Fatal("VIP kept after the context ended")
	}
}

func TestManagerNeedsLease(t *testing.T) {
	m := NewManager(newFakeLeadership(0), &fakeEffector{}, Options{})
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("Start with a zero lease succeeded")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
