package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// buildCards returns an FSM with n random card serials in batches of
// MaxCardsPerCommand (each batch its own reason), applied in wire form.
func buildCards(b testing.TB, n int) (*FSM, []uint64) {
	f := NewFSM()
	rng := rand.New(rand.NewPCG(7, 7))
	keys := make([]uint64, 0, n)
	for len(keys) < n {
		c := &Command{Version: CommandVersion, Op: OpAddCards, At: t0, By: "bench", Reason: "batch"}
		for range min(MaxCardsPerCommand, n-len(keys)) {
			k := rng.Uint64() | 1
			keys = append(keys, k)
			c.Cards = append(c.Cards, CardSerial(cardSerial(k)))
		}
		c.Reason = fmt.Sprint("batch ", len(keys)/MaxCardsPerCommand)
		enc, err := c.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Apply(enc); err != nil {
			b.Fatal(err)
		}
	}
	return f, keys
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchCards is the blacklist size of the lookup benchmarks: 1 M, or
// SAMRACK_BENCH_CARDS (e.g. 100000000 on a machine with the memory).
func benchCards() int {
	if n, err := strconv.Atoi(os.Getenv("SAMRACK_BENCH_CARDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkCardLookup: a blacklist of benchCards() random cards, half the
// lookups hit. Reports the heap and index bytes per entry.
func BenchmarkCardLookup(b *testing.B) {
	n := benchCards()
	before := heapAlloc()
	f, keys := buildCards(b, n)
	probe := make([]uint64, 1<<16)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range probe {
		if i%2 == 0 {
			probe[i] = keys[rng.IntN(n)]
		} else {
			probe[i] = rng.Uint64() | 1
		}
	}
	keys = nil
	after := heapAlloc()
	runtime.KeepAlive(keys)
	heapPer := float64(after-before-uint64(len(probe)*8)) / float64(f.CardCount())
	indexPer := float64(f.t.cards.memBytes()) / float64(f.CardCount())
	b.ReportAllocs()
	hits := 0
	for i := 0; b.Loop(); i++ {
		if _, ok := f.CardBlacklisted(cardSerial(probe[i&(len(probe)-1)])); ok {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no hits")
	}
	b.ReportMetric(heapPer, "heap-bytes/entry")
	b.ReportMetric(indexPer, "index-bytes/entry")
}

// BenchmarkCardLookupParallel is the same lookup from all cores.
func BenchmarkCardLookupParallel(b *testing.B) {
	f, keys := buildCards(b, benchCards())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			f.CardBlacklisted(cardSerial(keys[i%len(keys)]))
			i += 7919
		}
	})
}

// blacklistN is the size of BenchmarkBlacklist100M: 1 M by default (make
// bench), SAMRACK_BLACKLIST_N=100000000 for the real thing (make
// bench-100m; about 3 GB of memory).
func blacklistN() int {
	if n, err := strconv.Atoi(os.Getenv("SAMRACK_BLACKLIST_N")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchmarkBlacklist100M: a card blacklist of blacklistN() random serials
// built through the wire form and compacted. Reports the index bytes per
// entry, the latency of single lookups (half hit) at p50 and p99, and the
// seconds to persist a snapshot and to restore one.
func BenchmarkBlacklist100M(b *testing.B) {
	n := blacklistN()
	f, keys := buildCards(b, n)
	defer f.Close()
	f.Compact()
	bytesPer := float64(f.t.cards.memBytes()) / float64(f.CardCount())

	probe := make([]uint64, 1<<16)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range probe {
		if i%2 == 0 {
			probe[i] = keys[rng.IntN(len(keys))]
		} else {
			probe[i] = rng.Uint64() | 1
		}
	}
	keys = nil
	lat := make([]time.Duration, 0, 1<<20)
	hits := 0
	for i := 0; b.Loop(); i++ {
		s := cardSerial(probe[i&(len(probe)-1)])
		t := time.Now()
		_, ok := f.CardBlacklisted(s)
		d := time.Since(t)
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
		if ok {
			hits++
		}
	}
	b.StopTimer()
	if hits == 0 {
		b.Fatal("no hits")
	}
	slices.Sort(lat)

	var snap bytes.Buffer
	t := time.Now()
	if err := f.Snapshot(&snap); err != nil {
		b.Fatal(err)
	}
	snapS := time.Since(t).Seconds()
	g := NewFSM()
	defer g.Close()
	t = time.Now()
	if err := g.Restore(&snap); err != nil {
		b.Fatal(err)
	}
	restoreS := time.Since(t).Seconds()
	if g.CardCount() != f.CardCount() {
		b.Fatal("restored count differs")
	}
	b.ReportMetric(bytesPer, "bytes/entry")
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
	b.ReportMetric(snapS, "snapshot-s")
	b.ReportMetric(restoreS, "restore-s")
}
