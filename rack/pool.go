package rack

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// Lease is one SAM lent to one card read. Whoever gets a Lease must call
// Release exactly once it is done — on every path, typically with defer —
// and must not use SAM() afterwards. Release is idempotent, safe from any
// goroutine, and never blocks on the module. A lease whose holder forgets
// is taken back after Config.MaxLease; a lease outstanding at shutdown is
// cancelled (see Run). Either way the SAM always returns to its slot.
type Lease struct {
	r      *Rack
	s      *slot
	samID  ga467.SAMID
	sam    sam.SAM // the slot's SAM at grant time
	wrap   leasedSAM
	start  time.Time
	ctx    context.Context
	cancel context.CancelCauseFunc
	expire Timer

	mu       sync.Mutex // mu guards the fields below
	inflight int        // SAM operations running through wrap
	released bool       // Release was called (or the rack took it back)
	returned bool       // the slot was handed back to the rack
	shut     bool       // the rack shut down
	gone     error      // the module was reported removed (wraps ErrRemoved)
	sawGone  error      // an operation of the lease failed with sam.ErrGone
	outcome  error
}

// Slot returns the number of the leased slot.
func (l *Lease) Slot() int { return l.s.id }

// SAMID returns the leased module's SAM ID.
func (l *Lease) SAMID() ga467.SAMID { return l.samID }

// SAM returns the leased module. Its methods fail with ErrReleased after
// Release and ErrClosed after shutdown, and are cancelled when Context is
// done. When the module is reported removed (Rack.Presence) the lease is
// cancelled and its methods, those in flight included, fail with an error
// wrapping ErrRemoved and so sam.ErrGone. Its Close does nothing: the rack
// owns the module.
func (l *Lease) SAM() sam.SAM { return &l.wrap }

// Context is done when the lease ends: released, taken back after
// MaxLease or when its module was removed, or cancelled by the rack's
// shutdown. Its cause says which.
func (l *Lease) Context() context.Context { return l.ctx }

// Release gives the SAM back. outcome is how the read went:
//   - nil: clean; the SAM goes straight to the oldest waiter or the pool.
//   - an error for which sam.ModuleFault is true: the slot is marked suspect
//     (UnavailableOffline, or Absent if the module is gone) and recovered
//     in the background. A lease any of whose operations failed with
//     sam.ErrGone counts as gone whatever the outcome: the slot is Absent.
//   - any other error (card removed, reader gone mid-read): the rack resets
//     the SAM, asynchronously and with a deadline, before it returns to the
//     pool; a failed reset is a module fault.
//
// Release is idempotent: calls after the first do nothing. If a SAM
// operation of the lease is still running (from another goroutine), the
// slot is handed back when it returns, which it does promptly since
// Release cancels it.
func (l *Lease) Release(outcome error) { l.release(outcome, ErrReleased) }

// release ends the lease; cause is what its Context reports.
func (l *Lease) release(outcome, cause error) {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return
	}
	l.released = true
	if l.sawGone != nil && !errors.Is(outcome, sam.ErrGone) {
		outcome = l.sawGone
	}
	l.outcome = outcome
	fin := l.inflight == 0 && !l.returned
	if fin {
		l.returned = true
	}
	l.mu.Unlock()
	l.cancel(cause)
	if l.expire != nil {
		l.expire.Stop()
	}
	if fin {
		l.r.returnLease(l, outcome)
	}
}

// markGone records that the lease's module was removed: from now on its
// operations fail with err (which wraps sam.ErrGone). Called with r.mu
// held, in the step that makes the slot Absent; pull follows.
func (l *Lease) markGone(err error) {
	l.mu.Lock()
	if l.gone == nil {
		l.gone = err
	}
	l.mu.Unlock()
}

// pull takes back a lease marked gone: operations in flight are cancelled
// and return its error, and the slot goes back when the last one returns.
// The holder's Release is then a no-op. Called without r.mu.
func (l *Lease) pull() {
	l.mu.Lock()
	err := l.gone
	l.mu.Unlock()
	l.release(err, err)
}

// result is the error an operation of the lease returns: the removal, if
// the module was reported removed meanwhile (whatever the driver made of
// the cancellation), else the driver's.
func (l *Lease) result(err error) error {
	if err == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone != nil {
		// The driver's error says only how the cancellation looked to it
		// (timeout, card link, closed): keep its text, not its chain, so
		// that sam.ModuleFault sees a gone module, not a card problem.
		return fmt.Errorf("%w: %v", l.gone, err)
	}
	if l.sawGone == nil && errors.Is(err, sam.ErrGone) {
		l.sawGone = err
	}
	return err
}

// shutdown cancels the lease at the rack's shutdown. Called with r.mu held.
func (l *Lease) shutdown() {
	l.mu.Lock()
	l.shut = true
	l.mu.Unlock()
	l.cancel(ErrClosed)
	if l.expire != nil {
		l.expire.Stop()
	}
}

func (l *Lease) inflightOps() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// begin starts a SAM operation of the lease: ctx is merged with the lease's
// context so that Release or shutdown cancels it.
func (l *Lease) begin(ctx context.Context) (context.Context, func(), error) {
	l.mu.Lock()
	switch {
	case l.shut:
		l.mu.Unlock()
		return nil, nil, ErrClosed
	case l.gone != nil:
		err := l.gone
		l.mu.Unlock()
		return nil, nil, err
	case l.released:
		l.mu.Unlock()
		return nil, nil, ErrReleased
	}
	l.inflight++
	l.mu.Unlock()
	c, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return c, func() {
		stop()
		cancel(nil)
		l.end()
	}, nil
}

// end ends a SAM operation; the last one to end after Release hands the
// slot back.
func (l *Lease) end() {
	l.mu.Lock()
	l.inflight--
	fin := l.inflight == 0 && l.released && !l.returned
	if fin {
		l.returned = true
	}
	shut := l.inflight == 0 && l.shut
	outcome := l.outcome
	l.mu.Unlock()
	if fin {
		l.r.returnLease(l, outcome)
	} else if shut {
		l.r.mu.Lock()
		l.r.broadcastLocked()
		l.r.mu.Unlock()
	}
}

// leasedSAM is the sam.SAM a Lease hands out: the slot's module, guarded
// by the lease.
type leasedSAM struct{ l *Lease }

var _ sam.SAM = (*leasedSAM)(nil)

// Reset implements sam.Control.
func (w *leasedSAM) Reset(ctx context.Context) error {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	return w.l.result(w.l.sam.Reset(ctx))
}

// Status implements sam.Control.
func (w *leasedSAM) Status(ctx context.Context) error {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	return w.l.result(w.l.sam.Status(ctx))
}

// ID implements sam.Control.
func (w *leasedSAM) ID(ctx context.Context) (ga467.SAMID, error) {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return ga467.SAMID{}, err
	}
	defer done()
	id, err := w.l.sam.ID(ctx)
	return id, w.l.result(err)
}

// Find implements sam.Card.
func (w *leasedSAM) Find(ctx context.Context, link sam.CardLink) ([]byte, error) {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	info, err := w.l.sam.Find(ctx, link)
	return info, w.l.result(err)
}

// Select implements sam.Card.
func (w *leasedSAM) Select(ctx context.Context, link sam.CardLink) (sam.Serial, error) {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return sam.Serial{}, err
	}
	defer done()
	serial, err := w.l.sam.Select(ctx, link)
	return serial, w.l.result(err)
}

// Read implements sam.Card.
func (w *leasedSAM) Read(ctx context.Context, link sam.CardLink, what sam.ReadWhat) (*sam.Reading, error) {
	ctx, done, err := w.l.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rd, err := w.l.sam.Read(ctx, link, what)
	if err == nil {
		w.l.s.reads.Add(1)
	}
	return rd, w.l.result(err)
}

// Close does nothing: the rack owns the module. It implements sam.SAM.
func (w *leasedSAM) Close() error { return nil }

// waiter is a Lease call queued for a SAM.
type waiter struct {
	ch   chan grant    // buffered 1: the grant never blocks
	elem *list.Element // in r.waiters; nil once granted or failed
}

type grant struct {
	l   *Lease
	err error
}

// Lease leases an Enabled, idle, healthy SAM: the first of prefer (the
// terminal→SAM table's choice) that is idle, else the least recently used
// idle one. If none is idle, the call waits in a bounded FIFO queue — a
// released SAM goes straight to the oldest waiter — until ctx is done or
// Config.MaxWait passes. A full queue or a wait that timed out returns a
// *BusyError (errors.Is ErrBusy) with a retry hint; a cancelled ctx returns
// its cause; a rack that shut down returns ErrClosed.
//
// The caller must Release the lease (see Lease).
func (r *Rack) Lease(ctx context.Context, prefer []ga467.SAMID) (*Lease, error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if s := r.pickLocked(prefer); s != nil {
		l := r.newLeaseLocked(s)
		r.mu.Unlock()
		return l, nil
	}
	if r.waiters.Len() >= r.cfg.MaxWaiters {
		err := r.busyLocked(true)
		r.mu.Unlock()
		return nil, err
	}
	w := &waiter{ch: make(chan grant, 1)}
	w.elem = r.waiters.PushBack(w)
	r.broadcastLocked()
	r.mu.Unlock()

	t := r.clk.NewTimer(r.cfg.MaxWait)
	defer t.Stop()
	select {
	case g := <-w.ch:
		return g.l, g.err
	case <-ctx.Done():
	case <-t.C():
	}
	r.mu.Lock()
	if w.elem == nil { // granted (or failed) while we gave up
		r.mu.Unlock()
		g := <-w.ch
		if g.l != nil {
			g.l.giveBack()
		}
		return nil, r.waitErr(ctx)
	}
	r.waiters.Remove(w.elem)
	w.elem = nil
	r.broadcastLocked()
	r.mu.Unlock()
	return nil, r.waitErr(ctx)
}

// waitErr is the error of a Lease that stopped waiting.
func (r *Rack) waitErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return context.Cause(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return ErrClosed
	}
	return r.busyLocked(false)
}

// busyLocked builds the BusyError: a caller arriving now waits about one
// lease duration per round of the queue ahead of it.
func (r *Rack) busyLocked(full bool) *BusyError {
	n := 0
	for _, s := range r.slots {
		if s.m.state == StateEnabled {
			n++
		}
	}
	var after time.Duration
	if n == 0 {
		after = r.cfg.CheckInterval // nothing in service: wait for a recovery
	} else {
		rounds := 1 + r.waiters.Len()/n
		after = r.hold * time.Duration(rounds)
	}
	return &BusyError{RetryAfter: max(after, 10*time.Millisecond), QueueFull: full}
}

// pickLocked chooses an idle slot: a preferred one, else the least recently
// used.
func (r *Rack) pickLocked(prefer []ga467.SAMID) *slot {
	for _, id := range prefer {
		if s := r.byID[id]; s != nil && s.inIdle {
			return s
		}
	}
	return r.idle.head
}

// newLeaseLocked leases the leasable slot s.
func (r *Rack) newLeaseLocked(s *slot) *Lease {
	if s.inIdle {
		r.idle.remove(s)
	}
	if err := s.m.handle(event{kind: evLease}); err != nil {
		panic("rack: leasing a slot that is not leasable")
	}
	l := &Lease{r: r, s: s, samID: s.m.samID, sam: s.sam, start: r.clk.Now()}
	l.wrap.l = l
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.expire = r.clk.AfterFunc(r.cfg.MaxLease, l.expired)
	r.leases[l] = struct{}{}
	s.lease = l
	s.leases++
	return l
}

// expired takes back a lease held past MaxLease.
func (l *Lease) expired() {
	r := l.r
	r.mu.Lock()
	if r.event != nil && !r.stopped {
		r.events = append(r.events, Event{Time: r.clk.Now(), Slot: l.s.id, Kind: EventLeaseExpired,
			Health: l.s.m.health, SAMID: l.samID})
	}
	r.unlockAndFlush()
	l.release(ErrLeaseExpired, ErrLeaseExpired)
}

// giveBack returns a lease that was granted to a Lease call that had
// already given up: the slot goes back untouched.
func (l *Lease) giveBack() {
	l.mu.Lock()
	if l.released { // taken back meanwhile (removal, expiry): it returns that way
		l.mu.Unlock()
		return
	}
	l.released, l.returned = true, true
	l.mu.Unlock()
	l.cancel(ErrReleased)
	l.expire.Stop()
	r := l.r
	r.mu.Lock()
	delete(r.leases, l)
	if l.s.lease == l {
		l.s.lease = nil
	}
	if !r.stopped {
		l.s.leases--
		if st := l.s.m.state; st == StateEnabled || st == StateDraining {
			l.s.m.act = actIdle // undo evLease: nothing was done with the SAM
			r.syncPoolLocked(l.s)
		} else { // pulled meanwhile: the machine closes and re-probes
			r.stepLocked(l.s, event{kind: evRelease})
		}
	}
	r.broadcastLocked()
	r.unlockAndFlush()
}

// returnLease hands a released lease's slot back to the machine.
func (r *Rack) returnLease(l *Lease, outcome error) {
	r.mu.Lock()
	delete(r.leases, l)
	if l.s.lease == l {
		l.s.lease = nil
	}
	if r.stopped {
		r.broadcastLocked()
		r.mu.Unlock()
		return
	}
	now := r.clk.Now()
	r.hold += (now.Sub(l.start) - r.hold) / 8
	l.s.countLocked(outcome != nil)
	if outcome == nil {
		l.s.lastProof = now
	}
	r.stepLocked(l.s, event{kind: evRelease, err: outcome})
	r.unlockAndFlush()
}

// syncPoolLocked puts a slot that became leasable in the hands of the
// oldest waiter, else in the idle list, and takes one that stopped being
// leasable out of it.
func (r *Rack) syncPoolLocked(s *slot) {
	if !s.m.leasable() {
		if s.inIdle {
			r.idle.remove(s)
		}
		return
	}
	if s.inIdle {
		return
	}
	if e := r.waiters.Front(); e != nil {
		w := r.waiters.Remove(e).(*waiter)
		w.elem = nil
		w.ch <- grant{l: r.newLeaseLocked(s)}
		return
	}
	r.idle.pushBack(s)
}

// slotList is an intrusive doubly linked list of slots.
type slotList struct{ head, tail *slot }

func (q *slotList) pushBack(s *slot) {
	s.prev, s.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = s
	} else {
		q.head = s
	}
	q.tail = s
	s.inIdle = true
}

func (q *slotList) remove(s *slot) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		q.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		q.tail = s.prev
	}
	s.prev, s.next, s.inIdle = nil, nil, false
}
