package appliance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestSharedReadIndex: a caller only ever gets the index of a fetch that
// began after it asked (so the index covers every write acknowledged
// before its call); callers that wait while a fetch runs share the next
// one instead of fetching one each; errors are not kept.
func TestSharedReadIndex(t *testing.T) {
	var r sharedReadIndex
	var (
		mu     sync.Mutex
		begins []time.Time // when fetch n (index 100·(n+1)) began
	)
	release := make(chan struct{})
	slow := func(ctx context.Context) (uint64, error) {
		mu.Lock()
		begins = append(begins, time.Now())
		n := len(begins)
		mu.Unlock()
		<-release
		return uint64(100 * n), nil
	}
	beganAt := func(idx uint64) time.Time {
		mu.Lock()
		defer mu.Unlock()
		return begins[idx/100-1]
	}
	ctx := context.Background()
	const callers = 10
	type call struct {
		start time.Time
		idx   uint64
	}
	calls := make([]call, callers)
	var wg sync.WaitGroup
	run := func(i int) {
		defer wg.Done()
		calls[i].start = time.Now()
		calls[i].idx, _ = r.get(ctx, slow)
	}
	wg.Add(1)
	go run(0) // the first fetch, held until release
	for {
		mu.Lock()
		n := len(begins)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i < callers; i++ { // they ask while it runs
		wg.Add(1)
		go run(i)
	}
	time.Sleep(100 * time.Millisecond) // let them queue behind it
	close(release)
	wg.Wait()
	for i, c := range calls {
		if b := beganAt(c.idx); b.Before(c.start) {
			t.Errorf("caller %d asked at %v and got index %d of a fetch begun %v earlier", i, c.start, c.idx, c.start.Sub(b))
		}
	}
	mu.Lock()
	fetches := len(begins)
	mu.Unlock()
	if fetches > callers/2 {
		t.Errorf("%d fetches for %d callers, nine of which waited behind the first: not shared", fetches, callers)
	}
	t.Logf("%d fetches for %d callers", fetches, callers)
	boom := errors.New("leader gone")
	if _, err := r.get(ctx, func(context.Context) (uint64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("failed fetch: %v", err)
	}
	if v, err := r.get(ctx, func(context.Context) (uint64, error) { return 7, nil }); err != nil || v != 7 {
		t.Errorf("after a failed fetch: %d %v, want a fresh 7", v, err)
	}
}
