package raftstore

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Leadership is the store's raft leadership as cluster/vip's Manager needs
// it (it implements vip.Leadership without importing the package):
//
//   - LeaderCh: raft's Config.NotifyCh, which raft blocks on until it is
//     read. The store always sets it and a goroutine of its own reads it at
//     once and queues the changes for LeaderCh in order, dropping only what
//     a later change makes moot: a queue of true, false, true becomes
//     false, true, so a consumer that was slow still sees that leadership
//     was lost in between (a term may have passed, another node may have
//     held the VIP). raft's own LeaderCh is not used: it keeps the latest
//     value only.
//   - Barrier: raft's Barrier.
//   - QuorumContact: while this node leads, a goroutine runs
//     raft.VerifyLeader every LeaseTimeout/4 (62.5 ms for the LAN lease of
//     250 ms); a round sends a heartbeat to every follower and passes when
//     a quorum answered. QuorumContact is the start of the last round that
//     passed: no later than when that quorum heard from this leader, as the
//     VIP's fencing needs (see cluster/vip's doc). Healthy, it is at most
//     a period plus a round trip old; partitioned, it stops moving and raft
//     itself steps down a lease after the last contact.
//   - LeaseTimeout: raft's LeaderLeaseTimeout as the store opened it.
//   - TransferLeadership: raft's LeadershipTransfer to the most up-to-date
//     follower.
//
// Store.Leadership starts the VerifyLeader goroutine the first time it is
// called; the store's Close stops it.
type Leadership struct {
	s     *Store
	lease time.Duration
	ch    chan bool

	mu      sync.Mutex // mu guards contact
	contact time.Time
}

// Leadership returns the store's leadership adapter, the same one each
// time (LeaderCh has one reader: the VIP manager).
func (s *Store) Leadership() *Leadership {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.ldr != nil {
		return s.ldr
	}
	s.ldr = &Leadership{s: s, lease: s.lease, ch: s.leaderOut}
	select {
	case <-s.done:
		// Closed: nothing to verify.
	default:
		s.wg.Add(1)
		go s.verifyLoop(s.ldr)
	}
	return s.ldr
}

// LeaderCh reports leadership changes in order (see Leadership). It is
// closed when the store closes.
func (l *Leadership) LeaderCh() <-chan bool { return l.ch }

// Barrier returns once everything committed before it is applied here.
func (l *Leadership) Barrier(ctx context.Context) error { return l.s.Barrier(ctx) }

// QuorumContact is the start of the last VerifyLeader round that a quorum
// passed; the zero time if none did.
func (l *Leadership) QuorumContact() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.contact
}

// LeaseTimeout is raft's LeaderLeaseTimeout.
func (l *Leadership) LeaseTimeout() time.Duration { return l.lease }

// TransferLeadership hands leadership to the most up-to-date follower.
func (l *Leadership) TransferLeadership() error { return l.s.TransferLeadership("", "") }

func (l *Leadership) contacted(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.After(l.contact) {
		l.contact = at
	}
}

// verifyLoop runs VerifyLeader every lease/4 while this node leads. A
// round in flight when the store closes ends within a lease (raft answers
// pending rounds when it steps down or shuts down).
func (s *Store) verifyLoop(l *Leadership) {
	defer s.wg.Done()
	period := max(l.lease/4, time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		if s.raft.State() != raft.Leader {
			continue
		}
		start := time.Now()
		if s.raft.VerifyLeader().Error() == nil {
			l.contacted(start)
		}
	}
}

// watchLeader reads raft's NotifyCh at once (raft blocks on it) and hands
// the changes to LeaderCh in order, keeping at most two: "false, true"
// when leadership came back before the reader looked, "false" or "true"
// otherwise. It closes LeaderCh when the store closes.
func (s *Store) watchLeader() {
	defer s.wg.Done()
	defer close(s.leaderOut)
	var pending []bool
	for {
		var out chan bool
		var next bool
		if len(pending) > 0 {
			out, next = s.leaderOut, pending[0]
		}
		select {
		case v := <-s.notify:
			pending = queueLeader(pending, v)
		case out <- next:
			pending = pending[1:]
		case <-s.done:
			return
		}
	}
}

// queueLeader appends v to the pending changes, dropping what v makes
// moot: a repeat of the last value, and anything before a loss that
// precedes v = true.
func queueLeader(pending []bool, v bool) []bool {
	if n := len(pending); n > 0 && pending[n-1] == v {
		return pending
	}
	pending = append(pending, v)
	switch {
	case !v:
		return append(pending[:0], false)
	case len(pending) > 2:
		return append(pending[:0], false, true)
	}
	return pending
}
