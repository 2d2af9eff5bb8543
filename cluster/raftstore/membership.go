package raftstore

import (
	"context"
	"errors"
	"strconv"
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

// AppliedIndex is the index up to which this node's FSM reflects the
// log: reads answer a state with every entry up to it applied.
//
// It is not raft's AppliedIndex, which counts an entry applied once raft
// has handed it to the FSM goroutine — up to 128 batches of 64 entries
// before the FSM has applied it. A node restarted without a snapshot
// starts with an empty FSM and replays its whole log that way: "applied"
// by raft's count, it would still answer reads from an empty state (its
// start then found no bootstrap admin operator and tried to write one on
// a follower, and exited).
//
// The FSM sees only commands (raft keeps no-ops, barriers and
// configuration entries to itself), so the entries raft has handed over
// past the FSM's last command are looked up in the log: the FSM reflects
// the log up to the first command among them, or all of them if none is a
// command. Entries compacted away are in a snapshot the FSM holds.
func (s *Store) AppliedIndex() uint64 {
	handed := s.raft.AppliedIndex()
	done := max(s.fsm.applied.Load(), s.reflected.Load())
	if snap, err := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64); err == nil {
		done = max(done, snap) // raft records a snapshot once the FSM holds its state
	}
	if done >= handed {
		return handed
	}
	first, err := s.logs.FirstIndex()
	if err != nil {
		return done
	}
	out := handed
	for i := max(done+1, first); i <= handed; i++ {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted since FirstIndex: in a snapshot the FSM holds
			}
			return done
		}
		if l.Type == raft.LogCommand {
			out = i - 1 // handed to the FSM goroutine, not applied yet
			break
		}
	}
	for { // the FSM's progress only grows: keep the largest
		r := s.reflected.Load()
		if r >= out || s.reflected.CompareAndSwap(r, out) {
			return out
		}
	}
}

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
