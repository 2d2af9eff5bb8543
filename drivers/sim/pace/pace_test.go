package pace

import (
	"sync"
	"testing"
	"time"
)

// TestWaitsAreExactOnAverage: many concurrent 20 ms waits, as in a
// saturated rack, end within 150 µs of their time on average once the
// Pacer has learned the lateness (or, on a machine too loaded for that,
// at least twice as close as plain timers on the same load).
func TestWaitsAreExactOnAverage(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	const (
		waiters = 64
		rounds  = 30
		d       = 20 * time.Millisecond
	)
	measure := func(wait func()) time.Duration {
		var (
			mu  sync.Mutex
			sum time.Duration
			n   int
			wg  sync.WaitGroup
		)
		for g := range waiters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(g) * d / waiters) // spread, not in lockstep
				for range rounds {
					start := time.Now()
					wait()
					e := time.Since(start) - d
					mu.Lock()
					sum, n = sum+e, n+1
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return sum / time.Duration(n)
	}
	// The machine's load can change between the two measurements (other
	// packages' tests run beside this one): a pass in any of three tries
	// shows the Pacer works; failing all three does not happen by chance.
	p := &Pacer{}
	measure(func() { p.Wait(d, nil, nil) }) // learn
	for try := 1; ; try++ {
		plain := measure(func() { time.Sleep(d) })
		paced := measure(func() { p.Wait(d, nil, nil) })
		t.Logf("mean error: time.Sleep %v, Pacer %v (lead %v)", plain, paced, p.Lead())
		if abs(paced) <= 150*time.Microsecond || abs(paced) <= abs(plain)/2 {
			return
		}
		if try == 3 {
			t.Fatalf("paced waits are off by %v on average, want within ±150µs or half the plain sleeps' %v", paced, plain)
		}
	}
}

func TestLeadIsBounded(t *testing.T) {
	p := &Pacer{}
	for range 1000 {
		p.Fired(time.Now().Add(-time.Second), p.Lead()) // a second late, every time
	}
	if p.Lead() != maxLead {
		t.Errorf("lead %v after huge lateness, want the bound %v", p.Lead(), maxLead)
	}
	for range 1000 {
		p.Fired(time.Now().Add(time.Second), p.Lead()) // early
	}
	if p.Lead() != 0 {
		t.Errorf("lead %v after early firings, want 0", p.Lead())
	}
}

func TestWaitStops(t *testing.T) {
	stop := make(chan struct{})
	close(stop)
	start := time.Now()
	if (&Pacer{}).Wait(time.Hour, nil, stop) {
		t.Fatal("Wait passed although its channel was closed")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Wait did not return at once")
	}
	if !(&Pacer{}).Wait(0, nil, nil) {
		t.Fatal("a zero wait did not pass")
	}
}

func abs(d time.Duration) time.Duration { return max(d, -d) }
