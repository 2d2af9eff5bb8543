package raftstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/samrack/samrack/cluster/state"
)

// MigrateLocal moves the state of a data directory from before raft (the
// bbolt database at oldDB, see state.OpenLocal) into the raft store, as a
// user snapshot restored through raft; the old file is then renamed to
// oldDB + ".migrated". It does nothing when oldDB does not exist.
//
// It refuses (ErrOldDataDir) when the raft store already holds state, as
// both cannot be right: the operator moves one of them away.
func (s *Store) MigrateLocal(ctx context.Context, oldDB string) error {
	if _, err := os.Stat(oldDB); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	empty := state.NewFSM()
	defer empty.Close()
	d0, err := empty.Digest()
	if err != nil {
		return err
	}
	if d, err := s.Digest(); err != nil || d != d0 {
		return fmt.Errorf("%w: %s exists next to raft state in %s; move %s away (or the raft directory, to migrate it again)",
			ErrOldDataDir, oldDB, s.cfg.Dir, oldDB)
	}
	l, err := state.OpenLocal(oldDB)
	if err != nil {
		return fmt.Errorf("%w: cannot read %s (%v); move it away to start empty, or restore a backup", ErrOldDataDir, oldDB, err)
	}
	var b bytes.Buffer
	err = l.Snapshot(&b)
	l.Close()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrOldDataDir, oldDB, err)
	}
	if err := s.WaitLeader(ctx); err != nil {
		return fmt.Errorf("raftstore: migrate: no leader: %w", err)
	}
	// raft refuses a user restore until the bootstrap configuration entry
	// is applied.
	if err := s.Barrier(ctx); err != nil {
		return fmt.Errorf("raftstore: migrate: %w", err)
	}
	if err := s.Restore(&b); err != nil {
		return fmt.Errorf("raftstore: migrate %s: %w", oldDB, err)
	}
	if err := os.Rename(oldDB, oldDB+".migrated"); err != nil {
		return fmt.Errorf("raftstore: migrate: %w", err)
	}
	return nil
}

// LoadOrCreateNodeID returns the node ID kept in dir/node-id, creating a
// random one ("node-" and 8 hex digits) on first use.
func LoadOrCreateNodeID(dir string) (string, error) {
	p := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(p); err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("raftstore: %s is empty", p)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("raftstore: %w", err)
	}
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := "node-" + hex.EncodeToString(r[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("raftstore: %w", err)
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("raftstore: %w", err)
	}
	return id, nil
}
