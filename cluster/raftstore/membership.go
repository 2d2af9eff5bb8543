package raftstore

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// Member is one server of the raft configuration.
type Member struct {
	ID      string
	Addr    string
	Voter   bool
	Leader  bool
	IsLocal bool
}

// AddVoter adds (or updates the address of) a voting member. Leader only.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	return s.wait(s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx)))
}

// RemoveServer removes a member. Leader only.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	return s.wait(s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)))
}

// TransferLeadership hands leadership to the most up-to-date follower, or
// to id at addr when id is not empty. Leader only.
func (s *Store) TransferLeadership(id, addr string) error {
	if id == "" {
		return s.wait(s.raft.LeadershipTransfer())
	}
	return s.wait(s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr)))
}

// Barrier returns once every command committed before it is applied to
// this node's FSM: a leader's reads after Barrier are linearizable.
// Leader only.
func (s *Store) Barrier(ctx context.Context) error {
	return s.wait(s.raft.Barrier(s.timeout(ctx)))
}

// Leader returns the leader's ID and address, empty when none is known.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Members returns the raft configuration.
func (s *Store) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.mapErr(err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []Member
	for _, sv := range f.Configuration().Servers {
		out = append(out, Member{ID: string(sv.ID), Addr: string(sv.Address), Voter: sv.Suffrage == raft.Voter,
			Leader: sv.ID == leader, IsLocal: string(sv.ID) == s.cfg.ID})
	}
	return out, nil
}

// AppliedIndex is the index of the last log entry applied to the FSM.
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// TakeSnapshot makes raft take a snapshot now (and compact its log).
func (s *Store) TakeSnapshot() error {
	return s.wait(s.raft.Snapshot())
}

// WaitLeader waits until some node is known as the leader, polling every
// 10 ms, or until ctx ends.
func (s *Store) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := s.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Store) wait(f raft.Future) error {
	if err := f.Error(); err != nil {
		return s.mapErr(err)
	}
	return nil
}
