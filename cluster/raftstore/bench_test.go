package raftstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/state"
)

// BenchmarkReplicatedWrite: one small write (a reader's auth failure) at a
// time through a three-node cluster over TCP+mTLS on loopback, from
// proposal to applied on the leader after a quorum stored it. Reports the
// latency percentiles in milliseconds.
func BenchmarkReplicatedWrite(b *testing.B) {
	c := newCluster(b, 3, fastRaft(0, 0))
	l := c.leader()
	putReader(b, l.s, "R1")
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRecordAuthFailure, Serial: "R1", Threshold: state.MaxAuthThreshold}
	reset := &state.Command{Version: state.CommandVersion, Op: state.OpResetAuthFailures, Serial: "R1"}
	var lat []time.Duration
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		c := cmd
		if i%500 == 499 {
			c = reset
		}
		start := time.Now()
		if err := l.s.Apply(ctx, c); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
