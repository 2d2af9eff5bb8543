package raftstore

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// storedVoters counts the voters of the latest raft configuration this
// node holds (its log after the last snapshot, else the snapshot's), 0
// for a node without raft state: so that timeouts can be chosen before
// raft starts.
func storedVoters(logs raft.LogStore, snaps raft.SnapshotStore) int {
	var snapIndex uint64
	var snapConf *raft.Configuration
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		snapIndex, snapConf = metas[0].Index, &metas[0].Configuration
	}
	first, err1 := logs.FirstIndex()
	last, err2 := logs.LastIndex()
	if err1 == nil && err2 == nil && last > 0 {
		low := max(first, snapIndex+1)
		for i, n := last, 0; i >= low && i > 0 && n < 1<<20; i, n = i-1, n+1 {
			var l raft.Log
			if logs.GetLog(i, &l) != nil {
				continue
			}
			if l.Type == raft.LogConfiguration {
				return voters(raft.DecodeConfiguration(l.Data))
			}
		}
	}
	if snapConf != nil {
		return voters(*snapConf)
	}
	return 0
}

func voters(c raft.Configuration) int {
	n := 0
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// SetTimeouts changes the heartbeat and election timeouts of the running
// node (raft.ReloadConfig); the leader lease keeps its value from Open.
func (s *Store) SetTimeouts(heartbeat, election time.Duration) error {
	rc := s.raft.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = heartbeat, election
	return s.raft.ReloadConfig(rc)
}

// Status is what a node says about itself.
type Status struct {
	ID           string        `json:"id"`
	State        string        `json:"state"` // Leader, Follower, Candidate, Shutdown
	AppliedIndex uint64        `json:"applied_index"`
	LastIndex    uint64        `json:"last_index"`
	Term         uint64        `json:"term"`
	LastContact  time.Duration `json:"last_contact_ns"` // since the leader was last heard (0 on the leader); -1 never
	Leader       string        `json:"leader"`
}

// Status reports this node's raft state.
func (s *Store) Status() Status {
	st := s.raft.Stats()
	out := Status{ID: s.cfg.ID, State: s.raft.State().String(), AppliedIndex: s.AppliedIndex(), LastIndex: s.raft.LastIndex()}
	out.Term, _ = strconv.ParseUint(st["term"], 10, 64)
	out.Leader, _ = s.Leader()
	switch lc := st["last_contact"]; lc {
	case "never":
		out.LastContact = -1
	case "0":
	default:
		d, _ := time.ParseDuration(lc)
		out.LastContact = d
	}
	if out.State == raft.Leader.String() {
		out.LastContact = 0
	}
	return out
}

// LocalAddr is the address of this node's transport.
func (s *Store) LocalAddr() string { return string(s.trans.LocalAddr()) }

// ID is this node's raft server ID.
func (s *Store) ID() string { return s.cfg.ID }
