package raftstore

import (
	"context"

	"github.com/hashicorp/raft"
	"github.com/samrack/samrack/cluster/state"
)

var _ state.Proposer = (*Store)(nil)

// Propose implements state.Proposer: validate, encode and hand the command
// to raft (raft.Apply) without waiting for it to commit. Errors are those
// of Exec, from Propose or from Wait.
func (s *Store) Propose(ctx context.Context, cmd *state.Command) (state.Pending, error) {
	c, err := state.Prepare(ctx, cmd, s.cfg.Clock)
	if err != nil {
		return nil, err
	}
	b, err := c.Encode()
	if err != nil {
		return nil, err
	}
	return pending{s: s, f: s.raft.Apply(b, s.timeout(ctx))}, nil
}

type pending struct {
	s *Store
	f raft.ApplyFuture
}

// Wait implements state.Pending.
func (p pending) Wait() (state.Result, error) {
	if err := p.f.Error(); err != nil {
		return state.Result{}, p.s.mapErr(err)
	}
	r, _ := p.f.Response().(applyResponse)
	return r.res, r.err
}
