package raftstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/state"
)

// TestMigrateLocal: a data directory from before raft (state.db) is moved
// into the raft store once; with raft state already there it is refused.
func TestMigrateLocal(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "state.db")
	l, err := state.OpenLocal(old)
	if err != nil {
		t.Fatal(err)
	}
	addCards(t, l, "legacy", 1, 2, 3)
	putReader(t, l, "R1")
	want, _ := digestOf(t, l)
	l.Close()

	open := func() *Store {
		s, err := Open(Config{Dir: filepath.Join(dir, "raft"), ID: "solo", Bootstrap: true, Logger: testLogger(t), Tune: fastRaft(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "leadership", s.IsLeader)
		return s
	}
	s := open()
	if err := s.MigrateLocal(ctxT(t, 20*time.Second), old); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Digest(); d != want || s.CardCount() != 3 {
		t.Fatal("migrated state differs")
	}
	if _, err := os.Stat(old + ".migrated"); err != nil {
		t.Fatal(err)
	}
	addCards(t, s, "new", 4)
	s.Close()

	s = open() // the migrated state is in raft now
	if err := s.Barrier(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.CardCount() != 4 {
		t.Fatalf("%d cards after restart", s.CardCount())
	}
	// A state.db next to raft state that is not empty: refused, not merged.
	if err := os.Rename(old+".migrated", old); err != nil {
		t.Fatal(err)
	}
	err = s.MigrateLocal(context.Background(), old)
	if !errors.Is(err, ErrOldDataDir) {
		t.Fatalf("second migration: %v", err)
	}
	t.Log(err)
	s.Close()
}

func digestOf(t *testing.T, l *state.Local) ([32]byte, error) {
	f := state.NewFSM()
	defer f.Close()
	r, w, _ := os.Pipe()
	go func() { l.Snapshot(w); w.Close() }()
	if err := f.Restore(r); err != nil {
		t.Fatal(err)
	}
	return f.Digest()
}
