// Package loadgen drives many simulated readers against an appliance: the
// load mode of samreader and the rack benchmarks. Each worker is one reader
// connection (a client.Client) reading cards back to back.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/idcard"
)

// Config of a load run.
type Config struct {
	// Bundles are the reader credentials; worker i uses Bundles[i%len].
	Bundles []*credentials.Bundle
	// Clients, if set, are connected readers to use instead (worker i
	// uses Clients[i%len]); Run does not close them. Benchmarks warm them
	// first so handshakes stay out of the figures.
	Clients []*client.Client
	// Count is the number of reads in all; Concurrency the number of
	// readers reading at once.
	Count, Concurrency int
	// Card returns the card for read number i (each read gets its own
	// card in the field).
	Card func(i int) idcard.RF
	// Client options (batching, suites) and what to read.
	Options []client.Option
	Read    client.ReadOptions
	// Timeout of one read (default 10 s).
	Timeout time.Duration
	// Ramp spreads the readers' first reads evenly over this long, as
	// readers in the field arrive at random rather than in lockstep (and
	// as load tools ramp up). Zero starts them all at once.
	Ramp time.Duration
	// RTT is a WAN round trip added to every exchange on the readers'
	// side (WithRTT) when Run connects them from Bundles; readers given as
	// Clients carry their own.
	RTT time.Duration
	// Progress, if set, is called every Interval (default 500 ms) and once
	// at the end, from the Run goroutine.
	Progress func(Progress)
	Interval time.Duration
}

// Progress is the state of a run in flight.
type Progress struct {
	Done, Errors, Count int
	Elapsed             time.Duration
}

// Summary is the outcome of a run.
type Summary struct {
	Reads       int            // reads that returned card info
	Errors      int            // reads that failed
	ByCode      map[string]int // failures by wire code name, or "connect"/"other"
	Elapsed     time.Duration
	ReadsPerSec float64 // successful reads per second of wall time
	// SteadyReadsPerSec is the rate between the 10th and the 90th
	// percentile of completion times: the run's steady state, without the
	// ramp-up and the drain at the end.
	SteadyReadsPerSec float64
	P50, P99          time.Duration
	Max               time.Duration
	RoundTrips        float64 // mean round trips per successful read
	// Turns is the mean time a successful read's reader spent on its own
	// turns (client.Result.Turns): the simulator's share of a SAM's hold.
	Turns time.Duration
}

func (s *Summary) String() string {
	codes := make([]string, 0, len(s.ByCode))
	for c, n := range s.ByCode {
		codes = append(codes, fmt.Sprintf("%s=%d", c, n))
	}
	slices.Sort(codes)
	return fmt.Sprintf("%d reads, %d errors in %.2fs: %.1f reads/s (%.1f in the steady state), p50 %.1f ms, p99 %.1f ms, max %.1f ms, %.2f round trips/read; errors by code: %v",
		s.Reads, s.Errors, s.Elapsed.Seconds(), s.ReadsPerSec, s.SteadyReadsPerSec, ms(s.P50), ms(s.P99), ms(s.Max), s.RoundTrips, codes)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Run performs the reads and returns their summary. It stops early when
// ctx is done.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Count <= 0 || cfg.Concurrency <= 0 || len(cfg.Bundles)+len(cfg.Clients) == 0 || cfg.Card == nil {
		return nil, errors.New("loadgen: need Count, Concurrency, Bundles or Clients, and Card")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	conc := min(cfg.Concurrency, cfg.Count)
	lat := make([]time.Duration, cfg.Count)
	rtts := make([]int, cfg.Count)
	turns := make([]time.Duration, cfg.Count)
	ends := make([]time.Duration, cfg.Count) // completion, since start
	var (
		next, done, failed atomic.Int64
		mu                 sync.Mutex // mu guards byCode
		byCode             = map[string]int{}
		wg                 sync.WaitGroup
	)
	fail := func(err error) {
		failed.Add(1)
		name := "other"
		var we *wire.Error
		if errors.As(err, &we) {
			name = fmt.Sprintf("%d-%s", we.Code, we.Code)
		} else if errors.Is(err, context.DeadlineExceeded) {
			name = "timeout"
		}
		mu.Lock()
		byCode[name]++
		mu.Unlock()
	}
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *client.Client
			if len(cfg.Clients) > 0 {
				c = cfg.Clients[w%len(cfg.Clients)]
			} else {
				var err error
				opts := cfg.Options
				if cfg.RTT > 0 {
					opts = append(slices.Clip(opts), WithRTT(cfg.RTT))
				}
				c, err = client.New(cfg.Bundles[w%len(cfg.Bundles)], opts...)
				if err != nil {
					for next.Add(1) <= int64(cfg.Count) {
						fail(err)
					}
					return
				}
				defer c.Close()
			}
			if cfg.Ramp > 0 && w > 0 {
				t := time.NewTimer(cfg.Ramp * time.Duration(w) / time.Duration(conc))
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Count {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
				t0 := time.Now()
				res, err := c.Read(rctx, cfg.Card(i), cfg.Read)
				cancel()
				if err != nil {
					lat[i] = -1
					fail(err)
				} else {
					lat[i] = time.Since(t0)
					rtts[i] = res.RoundTrips
					turns[i] = res.Turns
					ends[i] = time.Since(start)
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	report := func() {
		if cfg.Progress != nil {
			cfg.Progress(Progress{Done: int(done.Load()), Errors: int(failed.Load()), Count: cfg.Count, Elapsed: time.Since(start)})
		}
	}
loop:
	for {
		select {
		case <-finished:
			break loop
		case <-tick.C:
			report()
		}
	}
	elapsed := time.Since(start)
	report()
	s := &Summary{Errors: int(failed.Load()), ByCode: byCode, Elapsed: elapsed}
	ok := make([]time.Duration, 0, len(lat))
	total := 0
	var turned time.Duration
	for i, d := range lat { // reads finish out of order: look at every slot
		if d > 0 {
			ok = append(ok, d)
			total += rtts[i]
			turned += turns[i]
		}
	}
	s.Reads = len(ok)
	if s.Reads > 0 {
		slices.Sort(ok)
		s.P50 = ok[len(ok)/2]
		s.P99 = ok[min(len(ok)-1, len(ok)*99/100)]
		s.Max = ok[len(ok)-1]
		s.RoundTrips = float64(total) / float64(s.Reads)
		s.Turns = turned / time.Duration(s.Reads)
	}
	s.ReadsPerSec = float64(s.Reads) / elapsed.Seconds()
	var completed []time.Duration
	for i, d := range lat {
		if d > 0 {
			completed = append(completed, ends[i])
		}
	}
	if len(completed) >= 10 {
		slices.Sort(completed)
		lo, hi := len(completed)/10, len(completed)*9/10
		if span := completed[hi] - completed[lo]; span > 0 {
			s.SteadyReadsPerSec = float64(hi-lo) / span.Seconds()
		}
	}
	return s, ctx.Err()
}
