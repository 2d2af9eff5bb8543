package rack

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkLeaseRelease measures the pool's overhead: Lease + Release of one
// of 64 slots, from parallel goroutines, on the real clock (with a MaxLease
// watchdog timer per lease, as in production).
func BenchmarkLeaseRelease(b *testing.B) {
	for _, par := range []int{1, 64} { // goroutines per GOMAXPROCS: 64 oversubscribes the slots
		b.Run(fmt.Sprintf("slots=64/par=%d", par), func(b *testing.B) {
			hw := &hardware{modules: map[string]*fakeSAM{}, opens: map[string]int{}, pins: map[string]*fakePin{}}
			var cfg Config
			for i := range 64 {
				dev := fmt.Sprint("dev", i)
				cfg.Slots = append(cfg.Slots, SlotConfig{ID: i, Driver: "fake", Device: dev})
				hw.modules[dev] = newFakeSAM(uint32(i + 1))
			}
			cfg.CheckInterval = time.Hour
			cfg.MaxWait = time.Minute
			cfg.MaxWaiters = 1 << 16
			r, err := New(cfg, Options{Open: hw.open})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			for _, s := range cfg.Slots {
				if _, err := r.WaitState(wctx, s.ID, StateEnabled); err != nil {
					b.Fatal(err)
				}
			}
			wcancel()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l, err := r.Lease(ctx, nil)
					if err != nil {
						b.Error(err)
						return
					}
					l.Release(nil)
				}
			})
			b.StopTimer()
			cancel()
			<-done
		})
	}
}
