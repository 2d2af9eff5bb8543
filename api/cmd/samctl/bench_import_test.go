package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/samrack/samrack/cluster/raftstore/raftstoretest"
)

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

// BenchmarkBulkImport: samctl blacklist import's importer sends a list of
// SAMRACK_IMPORT_N lines (default 200,000; make bench-import: 10 M) to the
// admin API over TLS of the leader of three raft store nodes over TCP+mTLS
// on loopback, each with its log on disk. Reports entries/s (lines
// imported a second, end to end), bytes/entry of the leader's raft.db, and
// the heap peak of the process (the three nodes' state included) with the
// heap after the import for comparison. SAMRACK_IMPORT_PROGRESS=1 draws
// samctl's progress on stderr.
func BenchmarkBulkImport(b *testing.B) {
	n := envInt(b, "SAMRACK_IMPORT_N", 200_000)
	opts := raftstoretest.Options{}
	if v := os.Getenv("SAMRACK_IMPORT_MAXAPPEND"); v != "" { // raft's MaxAppendEntries, to measure
		m, _ := strconv.Atoi(v)
		opts.Tune = func(rc *raft.Config) { rc.MaxAppendEntries = m }
	}
	c := raftstoretest.New(b, 3, opts)
	leader := c.Leader()
	e := newImportEnv(b, leader.Store, nil)
	client := e.client(b)
	opt := importOptions{Retries: 3} // samctl's default
	if os.Getenv("SAMRACK_IMPORT_PROGRESS") != "" {
		opt.Progress, opt.Bar = os.Stderr, isTerminal(os.Stderr)
	}
	var elapsed time.Duration
	var lines, retries int64
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path, size := writeList(b, &listGen{seed: uint64(100 + i), n: uint64(n)})
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		stop := heapPeak()
		b.StartTimer()
		start := time.Now()
		sum, err := importList(context.Background(), client, f, size, opt)
		elapsed += time.Since(start)
		b.StopTimer()
		peak = max(peak, stop())
		f.Close()
		os.Remove(path)
		if err != nil {
			b.Fatal(err)
		}
		if sum.New+sum.Present != int64(n) || sum.Bad != 0 || sum.Count != (i+1)*n {
			b.Fatalf("%+v", sum)
		}
		lines += sum.Lines
		retries += int64(sum.Retries)
		b.StartTimer()
	}
	b.StopTimer()
	fi, err := os.Stat(filepath.Join(leader.Dir, "raft.db"))
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(lines)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(fi.Size())/float64(leader.Store.CardCount()), "bytes/entry")
	b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-after-MB")
	b.ReportMetric(float64(retries), "retries")
	b.ReportMetric(0, "ns/op")
}
