package raftstore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/testca"
	"github.com/samrack/samrack/cluster/vip"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

var _ vip.Leadership = (*Leadership)(nil)

func TestQueueLeader(t *testing.T) {
	cases := []struct {
		in   []bool
		want []bool
	}{
		{[]bool{true}, []bool{true}},
		{[]bool{true, true}, []bool{true}},
		{[]bool{true, false}, []bool{false}},
		{[]bool{true, false, true}, []bool{false, true}},
		{[]bool{false, true, false, true}, []bool{false, true}},
		{[]bool{true, false, true, false}, []bool{false}},
	}
	for _, c := range cases {
		var p []bool
		for _, v := range c.in {
			p = queueLeader(p, v)
		}
		if !slices.Equal(p, c.want) {
			t.Errorf("%v: queued %v, want %v", c.in, p, c.want)
		}
	}
}

// holders records which nodes' effectors hold the VIP, and the longest
// time two held it together.
type holders struct {
	mu      sync.Mutex
	held    map[string]bool
	from    time.Time // start of the current double ownership
	longest time.Duration
	removes []removal
}

type removal struct {
	node    string
	at      time.Time
	contact time.Time // the leadership's QuorumContact when it removed
}

func (h *holders) set(node string, on bool, contact time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.held[node] && !on {
		h.removes = append(h.removes, removal{node, now, contact})
	}
	h.held[node] = on
	n := 0
	for _, v := range h.held {
		if v {
			n++
		}
	}
	switch {
	case n >= 2 && h.from.IsZero():
		h.from = now
	case n < 2 && !h.from.IsZero():
		h.longest = max(h.longest, now.Sub(h.from))
		h.from = time.Time{}
	}
}

func (h *holders) who() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n, v := range h.held {
		if v {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// recEffector is a node's VIP in the holders record (no network).
type recEffector struct {
	node string
	h    *holders
	l    *Leadership
}

func (e *recEffector) Add(context.Context) error {
	e.h.set(e.node, true, time.Time{})
	return nil
}

func (e *recEffector) Remove(context.Context) error {
	e.h.set(e.node, false, e.l.QuorumContact())
	return nil
}

func (e *recEffector) Announce(context.Context) error {
	e.h.mu.Lock()
	defer e.h.mu.Unlock()
	if !e.h.held[e.node] {
		return vip.ErrVanished
	}
	return nil
}

// TestLeadershipMovesVIP: three raft nodes over mTLS with fault layers,
// each with a vip.Manager over the store's Leadership and an effector that
// records who holds the VIP. The VIP is on the leader alone; a leader cut
// off from both followers drops it within its lease of its last quorum
// contact, and the majority's new leader takes it; two nodes never hold it
// together for longer than the lease; after the heal the old leader stays
// without it; a graceful stop removes it, then transfers leadership.
func TestLeadershipMovesVIP(t *testing.T) {
	leaktest.Check(t)
	ca := testca.New(t, "samrack test CA")
	tune := fastRaft(0, 0)
	type vnode struct {
		id    string
		s     *Store
		fault *FaultLayer
		m     *vip.Manager
	}
	h := &holders{held: map[string]bool{}}
	var nodes []*vnode
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		trans, fl, err := NewFaultTLSTransport(ln, ca.TLS(t, id, NodeURI(id)), nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Dir: filepath.Join(t.TempDir(), id), ID: id, Transport: trans, Bootstrap: i == 0,
			Logger: testLogger(t), Tune: tune})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, &vnode{id: id, s: s, fault: fl})
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n.m != nil {
				n.m.Close()
			}
			n.s.Close()
		}
	})
	ctx := ctxT(t, 60*time.Second)
	if err := nodes[0].s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := nodes[0].s.AddVoter(ctx, n.id, n.s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, n := range nodes {
		l := n.s.Leadership()
		if l != n.s.Leadership() {
			t.Fatal("Leadership is not the same adapter each time")
		}
		if l.LeaseTimeout() != 200*time.Millisecond {
			t.Fatalf("lease %v, want the tuned 200ms", l.LeaseTimeout())
		}
		n.m = vip.NewManager(l, &recEffector{node: n.id, h: h, l: l}, vip.Options{Logger: quiet, Retry: 100 * time.Millisecond})
		if err := n.m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	leader := func() *vnode {
		for _, n := range nodes {
			if n.s.IsLeader() {
				return n
			}
		}
		return nil
	}
	var old *vnode
	eventually(t, 20*time.Second, "the VIP on the leader alone", func() bool {
		old = leader()
		w := h.who()
		return old != nil && len(w) == 1 && w[0] == old.id
	})
	eventually(t, 5*time.Second, "the leader's quorum contact (VerifyLeader rounds)", func() bool {
		c := old.s.Leadership().QuorumContact()
		return !c.IsZero() && time.Since(c) < old.s.Leadership().LeaseTimeout()
	})

	// Partition: the leader is cut off from both followers.
	var others []string
	for _, n := range nodes {
		if n != old {
			others = append(others, n.id)
			n.fault.Cut(old.id)
		}
	}
	old.fault.Cut(others...)
	cut := time.Now()
	var next *vnode
	eventually(t, 20*time.Second, "the VIP on the majority's new leader", func() bool {
		next = leader()
		w := h.who()
		return next != nil && next != old && len(w) == 1 && w[0] == next.id
	})
	t.Logf("partition: VIP on %s %v after the cut of %s", next.id, time.Since(cut).Round(time.Millisecond), old.id)
	h.mu.Lock()
	var dropped *removal
	for i := range h.removes {
		if r := h.removes[i]; r.node == old.id && r.at.After(cut) {
			dropped = &r
		}
	}
	longest := h.longest
	h.mu.Unlock()
	if dropped == nil {
		t.Fatalf("%s never removed the VIP", old.id)
	}
	lease := old.s.Leadership().LeaseTimeout()
	held := dropped.at.Sub(dropped.contact)
	t.Logf("partitioned %s dropped the VIP %v after its last quorum contact, %v after the cut (lease %v); longest double ownership %v",
		old.id, held.Round(time.Millisecond), dropped.at.Sub(cut).Round(time.Millisecond), lease, longest)
	if dropped.contact.IsZero() || held > lease {
		t.Fatalf("partitioned leader held the VIP %v after its last quorum contact (%v), longer than the lease %v", held, dropped.contact, lease)
	}
	if longest > lease {
		t.Fatalf("two nodes held the VIP together for %v, longer than the lease %v", longest, lease)
	}

	// Heal: the old leader rejoins as a follower and stays without the VIP.
	old.fault.Heal()
	for _, n := range nodes {
		n.fault.Heal()
	}
	eventually(t, 20*time.Second, "the old leader back as a follower", func() bool {
		id, _ := old.s.Leader()
		return id == next.id && !old.s.IsLeader()
	})
	if w := h.who(); len(w) != 1 || w[0] != next.id {
		t.Fatalf("after the heal the VIP is on %v, want [%s]", w, next.id)
	}

	// Graceful stop of the leader: VIP removed first, leadership moves.
	if err := next.m.Close(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.who(), next.id) {
		t.Fatalf("%s kept the VIP after a graceful stop", next.id)
	}
	var third *vnode
	eventually(t, 20*time.Second, "the VIP on the leader after the transfer", func() bool {
		third = leader()
		w := h.who()
		return third != nil && third != next && len(w) == 1 && w[0] == third.id
	})
	h.mu.Lock()
	longest = h.longest
	h.mu.Unlock()
	if longest > lease {
		t.Fatalf("two nodes held the VIP together for %v, longer than the lease %v", longest, lease)
	}
}
