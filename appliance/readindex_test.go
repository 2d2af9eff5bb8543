package appliance

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSharedReadIndex: callers waiting while a fetch runs share the next
// one (their index was taken after they asked); a caller that arrives
// after a fetch began never gets that fetch's index; errors are not kept.
func TestSharedReadIndex(t *testing.T) {
	var r sharedReadIndex
	var fetches atomic.Int64
	release := make(chan struct{})
	slow := func(ctx context.Context) (uint64, error) {
		n := fetches.Add(1)
		<-release
		return uint64(100 * n), nil
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]uint64, 10)
	wg.Add(1)
	go func() { defer wg.Done(); got[0], _ = r.get(ctx, slow) }() // the first fetch
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < len(got); i++ { // arrive while it runs
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = r.get(ctx, slow) }()
	}
	time.Sleep(20 * time.Millisecond) // let them queue on the lock
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches for one caller and nine that arrived during its fetch, want 2", n)
	}
	if got[0] != 100 {
		t.Errorf("first caller got %d, want 100", got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != 200 {
			t.Errorf("caller %d got %d, want the second fetch's 200", i, got[i])
		}
	}
	// Later: a new fetch; a failed fetch is not shared.
	if v, _ := r.get(ctx, slow); v != 300 {
		t.Errorf("a later caller got %d, want a fresh 300", v)
	}
	boom := errors.New("leader gone")
	if _, err := r.get(ctx, func(context.Context) (uint64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("failed fetch: %v", err)
	}
}
