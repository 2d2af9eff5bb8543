package raftstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openSolo opens a single-node store on dir and waits for it to lead.
func openSolo(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "leadership", s.IsLeader)
	return s
}

// TestOpenRefusesUnreadableSnapshot: with its only snapshot damaged after
// a power cut, a node does not start (raft cannot rebuild the state the
// compacted log no longer holds): Open returns an error, it does not
// crash.
func TestOpenRefusesUnreadableSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openSolo(t, dir)
	addCards(t, s, "a", 1, 2, 3)
	if err := s.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "snapshots", "*", "state.bin"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
	fi, _ := os.Stat(snaps[0])
	if err := os.Truncate(snaps[0], fi.Size()-20); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir, ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "move "+dir+" aside") {
		t.Fatalf("open with a damaged snapshot: %v", err)
	}
}
