package state

import "context"

// Proposer is an optional capability of a Store, found by type assertion:
// Propose validates and encodes cmd like Exec and starts applying it
// without waiting; Pending.Wait returns what Exec would have. Commands are
// applied in the order they were proposed. A bulk import keeps a few
// commands in flight this way, so the log can batch them.
type Proposer interface {
	Propose(ctx context.Context, cmd *Command) (Pending, error)
}

// Pending is a proposed command.
type Pending interface {
	Wait() (Result, error)
}

// Propose proposes cmd through s's Proposer if it has one; otherwise it
// executes cmd before returning (Exec's error is Propose's).
func Propose(ctx context.Context, s Store, cmd *Command) (Pending, error) {
	if p, ok := s.(Proposer); ok {
		return p.Propose(ctx, cmd)
	}
	res, err := s.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return done(res), nil
}

type done Result

func (d done) Wait() (Result, error) { return Result(d), nil }
