package appliance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/raftstore"
)

// openStore opens the appliance's replicated state: a raft node in
// dataDir/raft, bootstrapped on first start as a cluster of one (no raft
// listener yet: forming a cluster of several appliances is a later step).
// A state.db from before raft is migrated into it once (then renamed
// state.db.migrated); raftstore.MigrateLocal refuses, with what to do,
// when both hold state.
func openStore(dataDir string) (*raftstore.Store, error) {
	dir := filepath.Join(dataDir, "raft")
	id, err := raftstore.LoadOrCreateNodeID(dir)
	if err != nil {
		return nil, err
	}
	s, err := raftstore.Open(raftstore.Config{Dir: dir, ID: id, Bootstrap: true,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr}),
		Tune:   singleNodeTimeouts})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("no raft leader: %w", err)
	}
	// A restarted node replays its log after the election: until a barrier
	// returns, reads see an old state (a revoked operator not yet revoked).
	if err := s.Barrier(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("raft barrier: %w", err)
	}
	if err := s.MigrateLocal(ctx, filepath.Join(dataDir, "state.db")); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// singleNodeTimeouts: a cluster of one on an in-memory transport elects
// itself within a tenth of a second instead of raft's default of ~2 s.
// Revisit when appliances join over the network.
func singleNodeTimeouts(c *raft.Config) {
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
}
