package state

import (
	"context"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

// Reads is the read side of the state, answered from memory.
type Reads interface {
	CardBlacklisted(serial [8]byte) (Entry, bool)
	CardCount() int
	Cards(after [8]byte, limit int) []CardEntry
	ReaderBlacklisted(serial string) bool
	Reader(serial string) (Reader, bool)
	Readers() []Reader
	Affinity(reader string) []ga467.SAMID
	Slots() []Slot
	Config(key string) (string, bool)
}

// Store is what the appliance uses: reads from the local applied state and
// Apply, which validates the command (fills in At from the store's clock
// when zero) and applies it durably. Local is the single-node Store; the
// raft store implements the same interface by encoding the command and
// proposing it through raft.Apply.
//
// Apply errors: ErrInvalidCommand (validation, wrapped with the reason),
// ErrUnknownReader (deterministic outcome, nothing changed), ErrClosed,
// ErrNewerCommand (this appliance must be upgraded), or the storage's
// error (the raft store's not-leader error among them).
//
// Exec is Apply returning what the command did (Result), as computed by
// the FSM when it applied the command: "this reader is now suspended"
// without reading the state before and after.
type Store interface {
	Reads
	Apply(ctx context.Context, cmd *Command) error
	Exec(ctx context.Context, cmd *Command) (Result, error)
}

var (
	_ Reads = (*FSM)(nil)
	_ Store = (*Local)(nil)
	_ Store = (*Memory)(nil)
)

// Option configures a Store.
type Option func(*options)

type options struct {
	now func() time.Time
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// WithClock sets the clock that fills in Command.At when it is zero.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// prepare copies cmd, fills in At and validates.
func prepare(ctx context.Context, cmd *Command, now func() time.Time) (*Command, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cmd == nil {
		return nil, invalid("nil command")
	}
	c := *cmd
	if c.At.IsZero() {
		c.At = now()
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Memory is a Store on a bare FSM, with nothing persisted: for tests and
// tools, not for production. Apply goes through the wire form
// (Command.Encode, FSM.Apply) exactly as a raft log entry would.
type Memory struct {
	*FSM
	now func() time.Time
}

// NewMemory returns an empty in-memory Store.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{FSM: NewFSM(), now: o.now}
}

// Apply implements Store.
func (m *Memory) Apply(ctx context.Context, cmd *Command) error {
	_, err := m.Exec(ctx, cmd)
	return err
}

// Exec implements Store.
func (m *Memory) Exec(ctx context.Context, cmd *Command) (Result, error) {
	c, err := prepare(ctx, cmd, m.now)
	if err != nil {
		return Result{}, err
	}
	b, err := c.Encode()
	if err != nil {
		return Result{}, err
	}
	return m.FSM.Apply(b)
}

// Close stops the FSM's background work (see FSM.Close).
func (m *Memory) Close() error {
	m.FSM.Close()
	return nil
}

// Prepare copies cmd, fills in At from now when zero and validates it: what
// every Store does before encoding a command.
func Prepare(ctx context.Context, cmd *Command, now func() time.Time) (*Command, error) {
	return prepare(ctx, cmd, now)
}
