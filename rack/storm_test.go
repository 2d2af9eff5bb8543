package rack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/sam"
)

// TestNoLostLeases runs concurrent Lease/Release with card errors, module
// faults, double releases, releases racing operations and operator calls;
// at the end every lease is back and every slot idle in the pool.
func TestNoLostLeases(t *testing.T) {
	const slots, workers, rounds = 8, 32, 200
	h := newHarness(t, slots, false, func(c *Config) { c.MaxWaiters = 12 })
	h.start()
	var granted, released, busy atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				l, err := h.r.Lease(ctx, nil)
				if errors.Is(err, ErrBusy) {
					busy.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				granted.Add(1)
				var outcome error
				if _, err := l.SAM().Read(ctx, nil, sam.ReadTextPhoto); err != nil {
					outcome = err
				}
				switch p := rng.IntN(100); {
				case p < 10:
					outcome = fmt.Errorf("card gone: %w", sam.ErrCardLink)
				case p < 20:
					outcome = fmt.Errorf("read: %w", sam.ErrTimeout)
				case p < 25: // release while an operation runs
					done := make(chan struct{})
					go func() {
						defer close(done)
						l.SAM().Status(ctx)
					}()
					l.Release(outcome)
					<-done
				}
				l.Release(outcome)
				if rng.IntN(10) == 0 {
					l.Release(errors.New("double release"))
				}
				released.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() { // an operator poking around
		defer wg.Done()
		for i := range 200 {
			h.r.Locate(i%slots, i%2 == 0)
			_ = h.r.Slots()
			_ = h.r.Stats()
		}
	}()
	wg.Wait()
	h.waitFor("every slot back in the pool", func() bool {
		if len(h.r.leases) != 0 {
			return false
		}
		for _, s := range h.r.slots {
			if !s.m.leasable() {
				return false
			}
		}
		return true
	})
	st := h.r.Stats()
	if st.Idle != slots || st.Busy != 0 || st.Waiters != 0 {
		t.Fatalf("Stats %+v", st)
	}
	var leases uint64
	for _, info := range h.r.Slots() {
		leases += info.Leases
	}
	if granted.Load() != released.Load() || int64(leases) != granted.Load() {
		t.Fatalf("granted %d, released %d, slots counted %d", granted.Load(), released.Load(), leases)
	}
	t.Logf("%d leases, %d busy refusals", granted.Load(), busy.Load())
}
