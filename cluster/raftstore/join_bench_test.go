package raftstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
)

// loadCards blacklists n generated cards through the leader in full
// commands, four in flight; it returns the entries a second.
func loadCards(tb testing.TB, s *Store, n int) float64 {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	var queue []state.Pending
	for done := 0; done < n; {
		k := min(state.MaxCardsPerCommand, n-done)
		cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Reason: "bench", By: "bench", Cards: make([]state.CardSerial, k)}
		for i := range cmd.Cards {
			x := uint64(done+i+1) * 0x9e3779b97f4a7c15
			binary.BigEndian.PutUint64(cmd.Cards[i][:], x|1)
		}
		if len(queue) == 4 {
			if _, err := queue[0].Wait(); err != nil {
				tb.Fatal(err)
			}
			queue = queue[1:]
		}
		p, err := s.Propose(ctx, cmd)
		if err != nil {
			tb.Fatal(err)
		}
		queue = append(queue, p)
		done += k
	}
	for _, p := range queue {
		if _, err := p.Wait(); err != nil {
			tb.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkJoinCatchUp: a three-node cluster over TCP+mTLS holds
// SAMRACK_JOIN_N cards (default 1 M; make bench-join-100m: 100 M) and has
// compacted its log to a snapshot (TrailingLogs 4); a new node is added as
// a voter and catches up by snapshot install. join-catchup-s is the time
// from AddVoter to the new node having applied the leader's last index
// (its FSM digest is then checked equal to the leader's); snapshot-MB is
// the snapshot's size, load-entries/s the rate the cards went in through
// the leader (full commands, four in flight).
func BenchmarkJoinCatchUp(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("SAMRACK_JOIN_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("SAMRACK_JOIN_N=%q", v)
		}
	}
	c := newCluster(b, 3, func(rc *raft.Config) {
		rc.SnapshotThreshold = 1 << 40 // only the snapshot taken below
		rc.TrailingLogs = 4
	})
	l := c.leader()
	rate := loadCards(b, l.s, n)
	if err := l.s.TakeSnapshot(); err != nil {
		b.Fatal(err)
	}
	snapMB := 0.0
	if dirs, _ := filepath.Glob(filepath.Join(l.dir, snapDir, "snapshots", "*", "state.bin")); len(dirs) > 0 {
		if fi, err := os.Stat(dirs[len(dirs)-1]); err == nil {
			snapMB = float64(fi.Size()) / (1 << 20)
		}
	}
	d0, err := l.s.Digest()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nd := &node{id: fmt.Sprintf("j%d", i+1), dir: filepath.Join(b.TempDir(), "join"), tls: c.ca.issue(b, fmt.Sprintf("j%d", i+1), NodeURI(fmt.Sprintf("j%d", i+1)))}
		c.start(nd, "127.0.0.1:0", false)
		b.Cleanup(func() {
			if nd.s != nil {
				nd.s.Close()
			}
		})
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		if err := l.s.AddVoter(ctx, nd.id, nd.addr); err != nil {
			b.Fatal(err)
		}
		cancel()
		want := l.s.AppliedIndex()
		tick := time.NewTicker(5 * time.Millisecond)
		for nd.s.AppliedIndex() < want {
			<-tick.C
		}
		tick.Stop()
		total += time.Since(start)
		b.StopTimer()
		if d, err := nd.s.Digest(); err != nil || d != d0 {
			b.Fatalf("%s: digest %x, leader %x (%v)", nd.id, d[:6], d0[:6], err)
		}
		if snaps, _ := filepath.Glob(filepath.Join(nd.dir, snapDir, "snapshots", "*", "state.bin")); len(snaps) == 0 {
			b.Fatalf("%s caught up without a snapshot", nd.id)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		if err := l.s.RemoveServer(ctx, nd.id); err != nil {
			b.Fatal(err)
		}
		cancel()
		c.stop(nd)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "join-catchup-s")
	b.ReportMetric(snapMB, "snapshot-MB")
	b.ReportMetric(rate, "load-entries/s")
	b.ReportMetric(0, "ns/op")
}
