package raftstore

import (
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/state/statetest"
)

// The state conformance suite over raft: a cluster of one, and the leader
// of three nodes over TCP+mTLS (whose followers must converge).
func TestConformanceSingleNode(t *testing.T) {
	statetest.Run(t, func(t *testing.T) statetest.Store {
		s, err := Open(Config{Dir: t.TempDir(), ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		eventually(t, 10*time.Second, "leadership", s.IsLeader)
		return s
	})
}

func TestConformanceThreeNodes(t *testing.T) {
	statetest.Run(t, func(t *testing.T) statetest.Store {
		c := newCluster(t, 3, fastRaft(64, 16))
		t.Cleanup(c.converged)
		return c.leader().s
	})
}
