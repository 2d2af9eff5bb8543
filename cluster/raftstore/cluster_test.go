package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/cluster/testca"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Error, Output: io.Discard})
}

// fastRaft shortens raft's timeouts for loopback, with margins for a
// loaded machine.
func fastRaft(threshold, trailing uint64) func(*raft.Config) {
	return func(c *raft.Config) {
		c.HeartbeatTimeout = 400 * time.Millisecond
		c.ElectionTimeout = 400 * time.Millisecond
		c.LeaderLeaseTimeout = 200 * time.Millisecond
		if threshold > 0 {
			c.SnapshotThreshold = threshold
			c.TrailingLogs = trailing
		}
	}
}

// node is one member of a test cluster over TCP and mutual TLS.
type node struct {
	id, addr, dir string
	tls           *tls.Config
	s             *Store
}

type cluster struct {
	t     testing.TB
	ca    *testca.CA
	nodes []*node
	tune  func(*raft.Config)
}

// newCluster starts n nodes over TCP+mTLS on loopback; the first
// bootstraps and adds the others.
func newCluster(t testing.TB, n int, tune func(*raft.Config)) *cluster {
	c := &cluster{t: t, ca: testca.New(t, "samrack test CA"), tune: tune}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		nd := &node{id: id, dir: filepath.Join(t.TempDir(), id), tls: c.ca.TLS(t, id, NodeURI(id))}
		c.start(nd, "127.0.0.1:0", i == 0)
		c.nodes = append(c.nodes, nd)
	}
	ctx := ctxT(t, 20*time.Second)
	leader := c.nodes[0].s
	if err := leader.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes[1:] {
		if err := leader.AddVoter(ctx, nd.id, nd.addr); err != nil {
			t.Fatalf("add %s: %v", nd.id, err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.s != nil {
				nd.s.Close()
			}
		}
	})
	return c
}

func (c *cluster) start(nd *node, addr string, bootstrap bool) {
	t := c.t
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nd.addr = ln.Addr().String()
	trans, err := NewTLSTransport(ln, nd.tls, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	clock := t0
	s, err := Open(Config{Dir: nd.dir, ID: nd.id, Transport: trans, Bootstrap: bootstrap, Logger: testLogger(t), Tune: c.tune,
		Clock: func() time.Time { clock = clock.Add(time.Millisecond); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	nd.s = s
}

func (c *cluster) stop(nd *node) {
	if err := nd.s.Close(); err != nil {
		c.t.Fatal(err)
	}
	nd.s = nil
}

func (c *cluster) leader() *node {
	c.t.Helper()
	var found *node
	eventually(c.t, 20*time.Second, "a leader", func() bool {
		for _, nd := range c.nodes {
			if nd.s != nil && nd.s.IsLeader() {
				found = nd
				return true
			}
		}
		return false
	})
	return found
}

// converged waits until every running node has applied what the leader
// has and compares their FSM digests.
func (c *cluster) converged() {
	c.t.Helper()
	l := c.leader()
	if err := l.s.Barrier(ctxT(c.t, 10*time.Second)); err != nil {
		c.t.Fatal(err)
	}
	want := l.s.AppliedIndex()
	d0, _ := l.s.Digest()
	for _, nd := range c.nodes {
		if nd.s == nil {
			continue
		}
		eventually(c.t, 20*time.Second, nd.id+" catching up", func() bool { return nd.s.AppliedIndex() >= want })
		// raft counts an entry applied when it hands it to the FSM
		// goroutine, a moment before the FSM has applied it.
		var d [32]byte
		var err error
		eventually(c.t, 5*time.Second, nd.id+" digest equal to the leader's", func() bool {
			d, err = nd.s.Digest()
			return err == nil && d == d0
		})
	}
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func addCards(t testing.TB, s state.Store, reason string, keys ...uint64) {
	t.Helper()
	c := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Reason: reason, By: "test"}
	for _, k := range keys {
		var cs state.CardSerial
		cs[0], cs[7] = byte(k>>8), byte(k)
		cs[6] = byte(k >> 16)
		c.Cards = append(c.Cards, cs)
	}
	if err := s.Apply(context.Background(), c); err != nil {
		t.Fatalf("add cards: %v", err)
	}
}

func putReader(t testing.TB, s state.Store, serial string) {
	t.Helper()
	r := &state.Reader{Serial: serial, Cipher: state.CipherSM4, Key: bytes.Repeat([]byte{7}, 16)}
	if err := s.Apply(context.Background(), &state.Command{Version: state.CommandVersion, Op: state.OpPutReader, Reader: r}); err != nil {
		t.Fatal(err)
	}
}

func TestClusterReplicationAndLeaderTransfer(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	addCards(t, l.s, "stolen", 1, 2, 3)
	putReader(t, l.s, "R1")
	res, err := l.s.Exec(context.Background(), &state.Command{Version: 1, Op: state.OpRecordAuthFailure, Serial: "R1", Threshold: 1})
	if err != nil || !res.Suspended {
		t.Fatalf("result through the apply future: %+v %v", res, err)
	}
	c.converged()

	// A follower refuses writes, naming the leader.
	var f *node
	for _, nd := range c.nodes {
		if nd != l {
			f = nd
			break
		}
	}
	err = f.s.Apply(context.Background(), &state.Command{Version: 1, Op: state.OpDeleteReader, Serial: "R1"})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) || nl.LeaderAddr != l.addr || nl.LeaderID != l.id {
		t.Fatalf("write on a follower: %v", err)
	}
	if r, ok := f.s.Reader("R1"); !ok || r.Status != state.ReaderSuspended {
		t.Fatalf("follower read: %+v %v", r, ok)
	}

	// Leader transfer to a chosen node; writes go on there.
	if err := l.s.TransferLeadership(f.id, f.addr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the new leader", func() bool { return f.s.IsLeader() })
	addCards(t, f.s, "lost", 4)
	c.converged()
	ms, err := f.s.Members()
	if err != nil || len(ms) != 3 {
		t.Fatalf("members %+v %v", ms, err)
	}
	for _, nd := range c.nodes {
		if nd.s.CardCount() != 4 {
			t.Fatalf("%s: %d cards", nd.id, nd.s.CardCount())
		}
	}
}

// TestCatchUpFromLog: a follower down during writes catches up from the
// leader's log when it comes back.
func TestCatchUpFromLog(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	var down *node
	for _, nd := range c.nodes {
		if nd != l {
			down = nd
		}
	}
	c.stop(down)
	for i := range 20 {
		addCards(t, l.s, fmt.Sprint("r", i), uint64(100+i))
	}
	c.start(down, down.addr, false)
	c.converged()
	if down.s.CardCount() != 20 {
		t.Fatalf("%d cards after catching up", down.s.CardCount())
	}
}

// TestAppliedIndexIsTheFSMs: a follower restarted with a long log replays
// it into an empty FSM; once its AppliedIndex reaches the leader's, its
// reads answer the leader's state — not the state of a replay raft has
// handed to the FSM goroutine but the FSM has not applied yet (what raft's
// own AppliedIndex counts; samrackd's start read an empty state on that
// count and exited).
func TestAppliedIndexIsTheFSMs(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	var down *node
	for _, nd := range c.nodes {
		if nd != l {
			down = nd
		}
	}
	const commands, per = 40, 500
	for i := range commands {
		keys := make([]uint64, per)
		for j := range keys {
			keys[j] = uint64(1 + i*per + j)
		}
		addCards(t, l.s, fmt.Sprint("r", i), keys...)
	}
	c.converged()
	want := l.s.AppliedIndex()
	c.stop(down)
	c.start(down, down.addr, false)
	deadline := time.Now().Add(20 * time.Second)
	for down.s.AppliedIndex() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s applied %d of %d after 20 s", down.id, down.s.AppliedIndex(), want)
		}
		runtime.Gosched() // polls as fast as it can: the window is the FSM goroutine's backlog
	}
	if n := down.s.CardCount(); n != commands*per {
		t.Fatalf("%s: AppliedIndex %d (the leader's %d) but its FSM holds %d of %d cards", down.id, down.s.AppliedIndex(), want, n, commands*per)
	}
}

// TestCatchUpFromSnapshot: the leader compacted its log past what a
// follower has, so the follower is sent a snapshot.
func TestCatchUpFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, fastRaft(1<<20, 4))
	l := c.leader()
	var down *node
	for _, nd := range c.nodes {
		if nd != l {
			down = nd
		}
	}
	c.stop(down)
	for i := range 40 {
		addCards(t, l.s, fmt.Sprint("r", i), uint64(1000+i), uint64(5000+i))
	}
	if err := l.s.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	first, _ := l.s.logs.FirstIndex()
	last, _ := down.s0LastIndex(t)
	if first <= last+1 {
		t.Fatalf("leader's log starts at %d, the follower has up to %d: no snapshot needed", first, last)
	}
	c.start(down, down.addr, false)
	c.converged()
	if down.s.CardCount() != 80 {
		t.Fatalf("%d cards", down.s.CardCount())
	}
	if idx := down.s.Raft().Stats()["last_snapshot_index"]; idx == "0" {
		t.Fatal("the follower installed no snapshot")
	}
}

// s0LastIndex reads the last log index of a stopped node's raft.db.
func (nd *node) s0LastIndex(t *testing.T) (uint64, error) {
	s, err := Open(Config{Dir: nd.dir, ID: nd.id, Logger: testLogger(t), Tune: func(c *raft.Config) {
		c.HeartbeatTimeout, c.ElectionTimeout = time.Hour, time.Hour
		c.LeaderLeaseTimeout = time.Hour
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.logs.LastIndex()
}

func TestSingleNodeRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		s, err := Open(Config{Dir: dir, ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.WaitLeader(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "leadership", s.IsLeader)
		return s
	}
	s := open()
	addCards(t, s, "a", 1, 2)
	putReader(t, s, "R1")
	d1, _ := s.Digest()
	s.Close()

	s = open() // from the log
	if err := s.Barrier(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Digest(); d != d1 {
		t.Fatal("state differs after a restart (log replay)")
	}
	if err := s.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	addCards(t, s, "b", 3)
	d2, _ := s.Digest()
	s.Close()

	s = open() // from the snapshot and the log after it
	defer s.Close()
	if err := s.Barrier(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Digest(); d != d2 || s.CardCount() != 3 {
		t.Fatal("state differs after a restart (snapshot + log)")
	}
}

// TestRestoreRefusesCorruptSnapshot: a corrupt or truncated snapshot is
// refused and the state is kept.
func TestRestoreRefusesCorruptSnapshot(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	addCards(t, l.s, "a", 1, 2, 3)
	putReader(t, l.s, "R1")
	var snap bytes.Buffer
	if err := l.s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	addCards(t, l.s, "b", 9)
	c.converged()
	d0, _ := l.s.Digest()
	good := snap.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for name, bad := range map[string][]byte{"truncated": good[:len(good)-3], "flipped": flipped, "empty": nil} {
		if err := l.s.Restore(bytes.NewReader(bad)); !errors.Is(err, state.ErrBadSnapshot) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	c.converged()
	if d, _ := l.s.Digest(); d != d0 {
		t.Fatal("a refused restore changed the state")
	}
	// A good one replaces the state on every node.
	if err := l.s.Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	c.converged()
	for _, nd := range c.nodes {
		if nd.s.CardCount() != 3 {
			t.Fatalf("%s: %d cards after restore", nd.id, nd.s.CardCount())
		}
	}
}

// TestNewerCommandStopsNode: a log entry from a newer version stops the
// node's FSM and raft, with the upgrade error.
func TestNewerCommandStopsNode(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eventually(t, 10*time.Second, "leadership", s.IsLeader)
	addCards(t, s, "a", 1)
	f := s.Raft().Apply([]byte{state.CommandVersion + 1, 1, 0}, 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	if r := f.Response().(applyResponse); !errors.Is(r.err, state.ErrNewerCommand) {
		t.Fatalf("response %v", r.err)
	}
	eventually(t, 10*time.Second, "raft to stop", func() bool { return s.Raft().State() == raft.Shutdown })
	if err := s.Apply(context.Background(), &state.Command{Version: 1, Op: state.OpDeleteReader, Serial: "R"}); !errors.Is(err, state.ErrNewerCommand) {
		t.Fatalf("apply after halting: %v", err)
	}
	if s.CardCount() != 1 {
		t.Fatal("reads lost")
	}
}
