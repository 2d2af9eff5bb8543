package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Leadership is what the manager needs of the consensus layer. The caller
// owns it: the appliance adapts *raft.Raft to it (LeaderCh, Barrier,
// LeadershipTransfer, Config().LeaderLeaseTimeout, and a VerifyLeader loop
// for QuorumContact); tests pass a fake.
type Leadership interface {
	// LeaderCh reports leadership changes: true when this node became
	// leader, false when it lost leadership. Like raft's LeaderCh it may
	// coalesce changes; the latest value is what counts.
	LeaderCh() <-chan bool
	// Barrier returns once everything the previous leaders committed is
	// applied here, or with an error (not leader any more, timeout).
	Barrier(ctx context.Context) error
	// QuorumContact is the latest time at which this node knew a quorum
	// accepted it as leader, no later than when that quorum heard from it:
	// the start of the last VerifyLeader round that passed. (The time a
	// heartbeat reply came back is later by up to a round trip, which
	// Options.Margin must then cover.) The zero time means never.
	QuorumContact() time.Time
	// LeaseTimeout is raft's LeaderLeaseTimeout: a leader that has not
	// heard from a quorum for this long steps down.
	LeaseTimeout() time.Duration
	// TransferLeadership gives leadership to another voter (raft's
	// LeadershipTransfer), returning once it is done or has failed.
	TransferLeadership() error
}

// Options tune a Manager; zero values take the defaults.
type Options struct {
	Clock  Clock        // RealClock
	Logger *slog.Logger // slog.Default()
	// Burst announcements (default 5) BurstInterval apart (default 500 ms)
	// right after taking the VIP, then one every Refresh (default 10 s).
	Burst         int
	BurstInterval time.Duration
	Refresh       time.Duration
	// Margin: the VIP is dropped once the last quorum contact is
	// LeaseTimeout-Margin old (default LeaseTimeout/5), so that removing it
	// fits inside the lease.
	Margin time.Duration
	// Retry is the wait after a failed add, remove or barrier (default 1 s).
	Retry time.Duration
	// MaxAddFailures: failed adds in a row before the leader steps down
	// (default 3).
	MaxAddFailures int
	// BarrierTimeout bounds Barrier (default 5 s); OpTimeout bounds each
	// add, remove and announce (default 2 s).
	BarrierTimeout time.Duration
	OpTimeout      time.Duration
	// Notify, if set, is called from the manager's goroutine after each
	// action with its outcome (for metrics and tests). It must not block.
	Notify func(Action, error)
}

// Status is a snapshot of the manager for the admin API.
type Status struct {
	Leader  bool   // raft leader (barrier passed)
	Holding bool   // the VIP is on the interface as far as the manager knows
	Fenced  bool   // leader, but the quorum contact is too old to hold the VIP
	LastErr string // last failed action, "" after a success
}

// Manager keeps the VIP on this node exactly while it is the raft leader
// in contact with a quorum. See the package comment for the fencing model.
type Manager struct {
	l    Leadership
	e    Effector
	o    Options
	clk  Clock
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // mu guards status, started, stopErr
	status  Status
	started bool
	stopErr error

	closeOnce sync.Once
}

// NewManager returns a manager of the VIP that e changes, following l.
func NewManager(l Leadership, e Effector, o Options) *Manager {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Burst <= 0 {
		o.Burst = 5
	}
	if o.BurstInterval <= 0 {
		o.BurstInterval = 500 * time.Millisecond
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.MaxAddFailures <= 0 {
		o.MaxAddFailures = 3
	}
	if o.BarrierTimeout <= 0 {
		o.BarrierTimeout = 5 * time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 2 * time.Second
	}
	return &Manager{l: l, e: e, o: o, clk: o.Clock, log: o.Logger,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start removes a stale VIP (left by a crash) and starts the manager's
// goroutine. It stops when ctx ends or Close is called, in both cases
// gracefully: it removes the VIP and, if leader, transfers leadership.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return ErrRunning
	}
	lease := m.l.LeaseTimeout()
	if lease <= 0 {
		return fmt.Errorf("vip: leader lease timeout %v: must be positive", lease)
	}
	margin := m.o.Margin
	if margin <= 0 || margin >= lease {
		margin = lease / 5
	}
	mc := newMachine(machineConfig{
		lease: lease, margin: margin,
		burst: m.o.Burst, burstEvery: m.o.BurstInterval, refresh: m.o.Refresh,
		retry: m.o.Retry, maxAddFail: m.o.MaxAddFailures,
	})
	m.started = true
	go m.run(ctx, &mc)
	return nil
}

// Close stops the manager gracefully and waits for it: the VIP is removed,
// then leadership is transferred if this node had it. It returns an error
// wrapping ErrRemove if the VIP could not be removed. Close of a manager
// that was never started returns nil.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() { close(m.stop) })
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if !started {
		return nil
	}
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopErr
}

// Status returns the manager's state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// run is the manager's goroutine: it feeds the machine and carries out its
// actions. The machine is used by this goroutine only.
func (m *Manager) run(ctx context.Context, mc *machine) {
	defer close(m.done)
	leaderCh := m.l.LeaderCh()
	var (
		wantLeader bool      // the latest LeaderCh value
		barrierAt  time.Time // retry a failed barrier then
		stopping   bool
		stopErr    error
	)
	feed := func(ev event) {
		mc.handle(ev)
		for acts := mc.take(); len(acts) > 0; acts = mc.take() {
			for _, a := range acts {
				err := m.do(a, mc)
				if err != nil && a.Kind == ActRemove && mc.stopping {
					stopErr = err
				}
				m.setStatus(mc)
				if m.o.Notify != nil {
					m.o.Notify(a, err)
				}
			}
		}
		m.setStatus(mc)
	}
	becomeLeader := func() {
		start := m.clk.Now()
		ctx, cancel := context.WithTimeout(context.Background(), m.o.BarrierTimeout)
		err := m.l.Barrier(ctx)
		cancel()
		if err != nil {
			m.log.Warn("vip: barrier failed; not taking the VIP yet", "err", err)
			barrierAt = m.clk.Now().Add(m.o.Retry)
			return
		}
		barrierAt = time.Time{}
		feed(event{kind: evLeader, now: m.clk.Now(), at: start})
	}
	feed(event{kind: evStart, now: m.clk.Now()})
	for !mc.stopped {
		now := m.clk.Now()
		next := mc.next(now)
		if !barrierAt.IsZero() && !stopping && (next.IsZero() || barrierAt.Before(next)) {
			next = barrierAt
		}
		var timerC <-chan time.Time
		var timer Timer
		if !next.IsZero() {
			timer = m.clk.NewTimer(max(next.Sub(now), 0))
			timerC = timer.C()
		}
		var stopC <-chan struct{} = m.stop
		ctxC := ctx.Done()
		if stopping {
			stopC, ctxC = nil, nil
		}
		select {
		case <-stopC:
			stopping = true
			feed(event{kind: evStop, now: m.clk.Now()})
		case <-ctxC:
			stopping = true
			feed(event{kind: evStop, now: m.clk.Now()})
		case v, ok := <-leaderCh:
			if !ok { // the consensus layer shut down: not leader
				leaderCh, v = nil, false
			}
			wantLeader = v
			switch {
			case !v:
				barrierAt = time.Time{}
				feed(event{kind: evFollower, now: m.clk.Now()})
			case !mc.leader && !stopping:
				becomeLeader()
			}
		case <-timerC:
			timer = nil
			now := m.clk.Now()
			if !barrierAt.IsZero() && !now.Before(barrierAt) && wantLeader && !mc.leader && !stopping {
				becomeLeader()
			}
			if mc.leader {
				feed(event{kind: evContact, now: now, at: m.l.QuorumContact()})
			}
			feed(event{kind: evTick, now: m.clk.Now()})
		}
		if timer != nil {
			timer.Stop()
		}
	}
	m.mu.Lock()
	m.stopErr = stopErr
	m.mu.Unlock()
}

// do carries out one action and feeds its result back for add, remove and
// announce.
func (m *Manager) do(a Action, mc *machine) error {
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), m.o.OpTimeout)
	defer cancel()
	switch a.Kind {
	case ActAdd:
		err = m.e.Add(ctx)
		m.logResult(a, err, slog.LevelInfo)
	case ActRemove:
		err = m.e.Remove(ctx)
		if err != nil && !errors.Is(err, ErrRemove) {
			err = fmt.Errorf("%w: %w", ErrRemove, err)
		}
		m.logResult(a, err, slog.LevelInfo)
	case ActAnnounce:
		err = m.e.Announce(ctx)
		m.logResult(a, err, slog.LevelDebug)
	case ActStepDown:
		// Loudly: an operator must know why the leader gave up.
		m.log.Error("vip: STEPPING DOWN from raft leadership", "reason", a.Reason)
		err = m.l.TransferLeadership()
		if err != nil {
			m.log.Error("vip: step-down failed", "reason", a.Reason, "err", err)
		}
	case ActTransfer:
		err = m.l.TransferLeadership()
		m.logResult(a, err, slog.LevelInfo)
	}
	switch a.Kind {
	case ActAdd, ActRemove, ActAnnounce:
		mc.handle(event{kind: evDone, now: m.clk.Now(), act: a.Kind, err: err})
	}
	return err
}

func (m *Manager) logResult(a Action, err error, lvl slog.Level) {
	if err != nil {
		if a.Kind == ActRemove {
			lvl = slog.LevelError
		} else {
			lvl = slog.LevelWarn
		}
		m.log.Log(context.Background(), lvl, "vip: "+a.Kind.String()+" failed", "reason", a.Reason, "err", err)
		return
	}
	m.log.Log(context.Background(), lvl, "vip: "+a.Kind.String(), "reason", a.Reason)
}

func (m *Manager) setStatus(mc *machine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = Status{Leader: mc.leader, Holding: mc.have == addrPresent, Fenced: mc.fenced, LastErr: mc.lastErr}
}
