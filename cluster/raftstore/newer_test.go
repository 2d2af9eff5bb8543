package raftstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
)

// TestNewerCommandInCluster: a command from a newer samrack reaches the
// log of a cluster of this version. The decided behaviour: a node that
// applies it stops applying and leaves raft with the "upgrade this
// appliance" error, rather than apply it differently or skip it, and its
// reads keep answering the state before it. The leader stops first; the
// next leader commits it in its term and stops too; the last node, now
// without a quorum, never learns it is committed: it applies nothing more
// and refuses writes as a follower. So no node applies anything
// after the command, and all keep the same state. (A newer appliance
// proposes such commands only once every member runs its version.)
func TestNewerCommandInCluster(t *testing.T) {
	c := newCluster(t, 3, fastRaft(0, 0))
	l := c.leader()
	addCards(t, l.s, "before", 1, 2, 3)
	c.converged()
	f := l.s.Raft().Apply([]byte{state.CommandVersion + 1, 1, 0}, 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	halted := func() (n int) {
		for _, nd := range c.nodes {
			if h := nd.s.Halted(); h != nil {
				if !errors.Is(h, state.ErrNewerCommand) || !strings.Contains(h.Error(), "upgrade this appliance") {
					t.Fatalf("%s: halted with %v", nd.id, h)
				}
				n++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, "a majority to stop", func() bool { return halted() >= 2 })
	if l.s.Halted() == nil {
		t.Fatal("the leader that applied it goes on")
	}
	for _, nd := range c.nodes {
		if nd.s.Halted() != nil {
			eventually(t, 20*time.Second, nd.id+" to leave raft", func() bool { return nd.s.Raft().State() == raft.Shutdown })
		}
		err := nd.s.Apply(context.Background(), &state.Command{Version: state.CommandVersion, Op: state.OpSetConfig, Key: "k", Value: "v"})
		var nl *NotLeaderError
		switch {
		case nd.s.Halted() != nil && errors.Is(err, state.ErrNewerCommand):
		case nd.s.Halted() == nil && errors.As(err, &nl): // it may still name a leader that has stopped
		default:
			t.Fatalf("%s (halted: %v): a write after the newer command: %v", nd.id, nd.s.Halted(), err)
		}
		if n := nd.s.CardCount(); n != 3 {
			t.Fatalf("%s: %d cards readable", nd.id, n)
		}
		if _, ok := nd.s.Config("k"); ok {
			t.Fatalf("%s applied a write after the newer command", nd.id)
		}
	}
}
