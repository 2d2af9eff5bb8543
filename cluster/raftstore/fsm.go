package raftstore

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
)

// fsm adapts state.FSM to raft.FSM.
type fsm struct {
	f      *state.FSM
	onHalt func(error) // called on the FSM goroutine when the FSM halts; must not block
	// applied is the index of the last command f has applied (0 before
	// the first). raft's own applied index runs ahead of it: raft counts
	// an entry applied once it is handed to the FSM goroutine
	// (Store.AppliedIndex).
	applied atomic.Uint64
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.FSMSnapshot = snapshot{}
)

// applyResponse travels back through the apply future.
type applyResponse struct {
	res state.Result
	err error
}

// Apply implements raft.FSM.
func (a *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return applyResponse{}
	}
	res, err := a.f.Apply(l.Data)
	a.applied.Store(l.Index)
	if errors.Is(err, state.ErrNewerCommand) {
		a.onHalt(err)
	}
	return applyResponse{res: res, err: err}
}

// Snapshot implements raft.FSM: a cheap capture on the FSM goroutine; raft
// persists it on another while applies go on.
func (a *fsm) Snapshot() (raft.FSMSnapshot, error) {
	c, err := a.f.Capture()
	if err != nil {
		return nil, err
	}
	return snapshot{c}, nil
}

// Restore implements raft.FSM. A corrupt or truncated snapshot is refused
// (state.ErrBadSnapshot) and the state is unchanged.
func (a *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return a.f.Restore(rc)
}

type snapshot struct{ c *state.Capture }

// Persist implements raft.FSMSnapshot.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.c.Persist(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s snapshot) Release() { s.c.Release() }
