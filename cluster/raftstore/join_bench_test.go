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
// commands, four in flight; it returns the entries a second. A write that
// fails (leadership moved under load) is proposed again to the leader of
// the moment, with the ones after it: adding cards is idempotent.
func loadCards(tb testing.TB, c *cluster, n int) float64 {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	chunk := func(from int) *state.Command {
		k := min(state.MaxCardsPerCommand, n-from)
		cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Reason: "bench", By: "bench", Cards: make([]state.CardSerial, k)}
		for i := range cmd.Cards {
			x := uint64(from+i+1) * 0x9e3779b97f4a7c15
			binary.BigEndian.PutUint64(cmd.Cards[i][:], x|1)
		}
		return cmd
	}
	type inFlight struct {
		p    state.Pending
		from int
	}
	retries := 0
	l := c.leader().s
	var queue []inFlight
	confirmed := 0 // cards confirmed, in order
	failed := func(err error) {
		if retries < 3 {
			tb.Logf("loading: %v (proposing again)", err)
		}
		for _, q := range queue {
			q.p.Wait()
		}
		queue = nil
		if retries++; retries > 10 {
			tb.Fatalf("loading the cards: %d failures", retries)
		}
		l = c.leader().s
	}
	for next := 0; confirmed < n; {
		if len(queue) == 4 || (next >= n && len(queue) > 0) {
			if _, err := queue[0].p.Wait(); err != nil {
				failed(err)
				next = confirmed
				continue
			}
			confirmed = min(queue[0].from+state.MaxCardsPerCommand, n)
			queue = queue[1:]
			continue
		}
		p, err := l.Propose(ctx, chunk(next))
		if err != nil {
			failed(err)
			next = confirmed
			continue
		}
		queue = append(queue, inFlight{p, next})
		next += state.MaxCardsPerCommand
	}
	if retries > 0 {
		tb.Logf("loading: %d chunk(s) proposed again after a failure", retries)
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
		// Four nodes of 100 M cards in one process on a shared machine:
		// lenient timeouts, or GC and merges cost the leadership.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 5*time.Second, 5*time.Second, 2500*time.Millisecond
	})
	rate := loadCards(b, c, n)
	l := c.leader()
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
		nd := &node{id: fmt.Sprintf("j%d", i+1), dir: filepath.Join(b.TempDir(), "join"), tls: c.ca.TLS(b, fmt.Sprintf("j%d", i+1), NodeURI(fmt.Sprintf("j%d", i+1)))}
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
