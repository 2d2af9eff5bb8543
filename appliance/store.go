package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/raftstore"
)

// Raft timeouts.
//
// A cluster of several uses LAN timeouts: a follower that hears no leader
// for 500–1000 ms (the heartbeat timeout, randomised up to twice) stands
// for election; a leader that has not reached a quorum for 250 ms (the
// lease) steps down; the leader sends heartbeats every 50 ms (a tenth of
// the heartbeat timeout). Failover is thus ~0.5–1 s of detection plus an
// election round trip, within the < 2 s target (measured: see README).
//
// A cluster of one has nobody to wait for: its heartbeat and election
// timeouts are 250 ms, so it elects itself within 0.25–0.5 s of a start.
// Its lease is the LAN one already (raft cannot change a lease while
// running), so when it gets its first joiner its leader only switches
// heartbeat and election timeouts to the LAN ones (raft.ReloadConfig).
// The timeouts are chosen when raft starts from the configuration the
// node holds (raftstore.Config.TuneVoters).
const (
	singleNodeTimeout = 250 * time.Millisecond
	lanHeartbeat      = 500 * time.Millisecond
	lanElection       = 500 * time.Millisecond
	lanLease          = 250 * time.Millisecond
)

func tuneVoters(c *raft.Config, voters int) {
	if voters <= 1 {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = singleNodeTimeout, singleNodeTimeout, lanLease
		return
	}
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = lanHeartbeat, lanElection, lanLease
}

// openStore opens the appliance's replicated state: a raft node in
// dataDir/raft over trans (raft over mutual TLS). With bootstrap, a node
// without raft state forms a cluster of one; without, it waits to be added
// by the leader (a joining node: the caller then asks to be a voter).
//
// A node that holds state waits for a leader: a leader then runs a barrier
// (a restarted node replays its log after the election: until then reads
// see an old state, a revoked operator not yet revoked), corrects its own
// address in the configuration if the raft address changed (a data
// directory from before the raft listener holds "local:<id>"), and
// migrates a state.db from before raft once (then renamed
// state.db.migrated; raftstore.MigrateLocal refuses, with what to do, when
// both hold state). A follower waits until it has applied what the leader
// had committed when it first heard from it; without a quorum it starts
// anyway after 15 s and serves its last applied state.
//
// readIndex, if set, asks the leader for its read index: a follower that
// was away long only learns the leader's commit index in steps (raft caps
// it at the follower's own last entry), so it also waits until it has
// applied what the leader had committed when asked.
func openStore(dataDir, id string, trans raft.Transport, bootstrap bool, log *slog.Logger, readIndex func(context.Context, *raftstore.Store) (uint64, error)) (*raftstore.Store, error) {
	dir := filepath.Join(dataDir, "raft")
	fresh := !hasRaftState(dir)
	s, err := raftstore.Open(raftstore.Config{Dir: dir, ID: id, Bootstrap: bootstrap, Transport: trans,
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr}),
		TuneVoters: tuneVoters})
	if err != nil {
		return nil, err
	}
	if fresh && !bootstrap {
		return s, nil // a joining node: not a member yet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	members, _ := s.Members()
	if len(members) > 1 {
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		err := waitCaughtUp(wctx, s)
		if err == nil && readIndex != nil && !s.IsLeader() {
			if rerr := waitReadIndex(wctx, s, readIndex); rerr != nil {
				log.Warn("could not catch up with the leader's read index: serving what this node has applied", "node", id, "err", rerr)
			}
		}
		wcancel()
		if err != nil {
			log.Warn("no raft quorum yet: serving the last applied state until the cluster is back", "node", id, "err", err)
			return s, nil
		}
		if !s.IsLeader() {
			return s, nil
		}
	} else if err := s.WaitLeader(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("no raft leader: %w", err)
	}
	if !s.IsLeader() {
		return s, nil
	}
	if err := s.Barrier(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("raft barrier: %w", err)
	}
	for _, m := range members {
		if m.ID == id && m.Addr != s.LocalAddr() {
			if err := s.AddVoter(ctx, id, s.LocalAddr()); err != nil {
				s.Close()
				return nil, fmt.Errorf("raft: update this node's address from %s to %s: %w", m.Addr, s.LocalAddr(), err)
			}
			log.Info("raft address of this node updated", "node", id, "from", m.Addr, "to", s.LocalAddr())
		}
	}
	if err := s.MigrateLocal(ctx, filepath.Join(dataDir, "state.db")); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// waitReadIndex waits until s has applied the leader's read index.
func waitReadIndex(ctx context.Context, s *raftstore.Store, readIndex func(context.Context, *raftstore.Store) (uint64, error)) error {
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	target, err := readIndex(actx, s)
	cancel()
	if err != nil {
		return err
	}
	return waitApplied(ctx, s, target)
}

// waitCaughtUp waits for a leader and, on a follower, until the log the
// leader had committed when this node heard from it is applied here.
func waitCaughtUp(ctx context.Context, s *raftstore.Store) error {
	if err := s.WaitLeader(ctx); err != nil {
		return err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.IsLeader() {
			// A restarted leader replays its log after the election:
			// until a barrier returns, reads see an old state (a revoked
			// operator not yet revoked).
			return s.Barrier(ctx)
		}
		st := s.Raft().Stats()
		var commit uint64
		fmt.Sscan(st["commit_index"], &commit)
		if commit > 0 && s.AppliedIndex() >= commit {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func hasRaftState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "raft.db"))
	return !errors.Is(err, os.ErrNotExist)
}
