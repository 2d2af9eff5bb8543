package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/samrack/samrack/cluster/state"
)

// Files in the data directory.
const (
	logFile     = "raft.db"   // raft-boltdb: log and stable store
	snapDir     = "snapshots" // raft.FileSnapshotStore
	retainSnaps = 2
)

// DefaultApplyTimeout bounds a write without a context deadline.
const DefaultApplyTimeout = 10 * time.Second

// Config of a raft store.
type Config struct {
	Dir string // data directory of the raft state (created)
	ID  string // this node's raft server ID (the node ID of its certificate)

	// Transport to the other nodes (NewTLSTransport). Nil: a cluster of
	// one without network, on an in-memory transport; the data directory
	// is the same, so the node can later be given a network transport.
	Transport raft.Transport

	// Bootstrap forms a new cluster of this node alone when Dir holds no
	// raft state. Without it a fresh node waits to be added by a leader.
	Bootstrap bool

	Clock        func() time.Time // fills in Command.At; default time.Now
	ApplyTimeout time.Duration    // default DefaultApplyTimeout
	Logger       hclog.Logger     // default: warnings to stderr

	// Tune adjusts the raft configuration (timeouts and snapshot
	// thresholds for tests) before raft starts.
	Tune func(*raft.Config)
	// TuneVoters, if set, is called after Tune with the number of voters
	// of the configuration stored in Dir (0 for a new node), to pick
	// timeouts for a cluster of one or of several before raft starts.
	TuneVoters func(c *raft.Config, voters int)
}

// Store is a state.Store on hashicorp/raft. Reads come from the local FSM
// (the embedded *state.FSM); writes go through the leader.
type Store struct {
	*state.FSM
	raft  *raft.Raft
	fsm   *fsm
	logs  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	trans raft.Transport
	cfg   Config
	log   hclog.Logger

	halt      chan error // the FSM met a newer command
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // the halt watcher, the leadership watcher and verifier

	lease     time.Duration // raft's LeaderLeaseTimeout
	notify    chan bool     // raft's NotifyCh, read by watchLeader
	leaderOut chan bool     // Leadership.LeaderCh
	lmu       sync.Mutex    // lmu guards ldr
	ldr       *Leadership

	// reflected is an index up to which the FSM is known to reflect the
	// log (AppliedIndex), so that the next call starts its look there.
	reflected atomic.Uint64
}

var _ state.Store = (*Store)(nil)

// Open opens (creating if needed) the raft state in cfg.Dir and starts the
// node. With cfg.Bootstrap and no state yet, it forms a cluster of one.
func Open(cfg Config) (s *Store, err error) {
	if cfg.ID == "" {
		return nil, errors.New("raftstore: no node ID")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	st := &Store{FSM: state.NewFSM(), cfg: cfg, log: cfg.Logger, halt: make(chan error, 1), done: make(chan struct{}),
		notify: make(chan bool, 8), leaderOut: make(chan bool)}
	s = st
	defer func() {
		if err != nil {
			st.closeParts() // not s: "return nil, err" has set it to nil
		}
	}()
	if err := checkLogStore(cfg, filepath.Join(cfg.Dir, logFile)); err != nil {
		return nil, err
	}
	if s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, logFile)}); err != nil {
		return nil, fmt.Errorf("raftstore: log store: %w", err)
	}
	if s.snaps, err = raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, snapDir), retainSnaps, cfg.Logger.Named("snapshot")); err != nil {
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}
	s.trans = cfg.Transport
	if s.trans == nil {
		_, s.trans = raft.NewInmemTransport(raft.ServerAddress("local:" + cfg.ID))
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = cfg.Logger
	rc.NoSnapshotRestoreOnStart = false
	if cfg.Tune != nil {
		cfg.Tune(rc)
	}
	if cfg.TuneVoters != nil {
		cfg.TuneVoters(rc, storedVoters(s.logs, s.snaps))
	}
	rc.NotifyCh = s.notify // read at once by watchLeader (raft blocks on it)
	s.lease = rc.LeaderLeaseTimeout
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	existing, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	if !existing && cfg.Bootstrap {
		conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: s.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, s.logs, s.logs, s.snaps, s.trans, conf); err != nil {
			return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
		}
	}
	f := &fsm{f: s.FSM, onHalt: func(err error) {
		select {
		case s.halt <- err:
		default:
		}
	}}
	s.fsm = f
	if s.raft, err = raft.NewRaft(rc, f, s.logs, s.logs, s.snaps, s.trans); err != nil {
		if strings.Contains(err.Error(), "snapshot") { // raft found snapshots and could load none
			return nil, damaged(cfg, "no snapshot in "+filepath.Join(cfg.Dir, snapDir)+" can be loaded", err)
		}
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	s.wg.Add(2)
	go s.watchHalt()
	go s.watchLeader()
	return s, nil
}

// watchHalt stops raft when the FSM meets a command from a newer version:
// the node stays out of the cluster (reads answer the last state it
// applied) until it is upgraded.
func (s *Store) watchHalt() {
	defer s.wg.Done()
	select {
	case err := <-s.halt:
		s.log.Error("state machine stopped; this node left raft until it is upgraded", "error", err)
		s.raft.Shutdown().Error()
	case <-s.done:
	}
}

// Close stops raft and closes the stores and the transport.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.lmu.Lock() // no verifier starts after this
		close(s.done)
		s.lmu.Unlock()
		s.wg.Wait()
		s.closeErr = s.closeParts()
	})
	return s.closeErr
}

func (s *Store) closeParts() error {
	var errs []error
	// Shut raft down, then close the transport, then wait for raft's
	// goroutines: one blocked in an RPC to a peer that stopped answering
	// (stopped, cut off) returns only when its connection closes, and
	// raft's shutdown waits for it (as Consul shuts raft down).
	var down raft.Future
	if s.raft != nil {
		down = s.raft.Shutdown()
	}
	if c, ok := s.trans.(interface{ CloseStreams() }); ok {
		c.CloseStreams() // pooled connections: their handlers on the peers end
	}
	if c, ok := s.trans.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if down != nil {
		errs = append(errs, down.Error())
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	s.FSM.Close()
	return errors.Join(errs...)
}

// Apply implements state.Store.
func (s *Store) Apply(ctx context.Context, cmd *state.Command) error {
	_, err := s.Exec(ctx, cmd)
	return err
}

// Exec implements state.Store: validate, encode, propose through raft and
// return the FSM's result once the command is committed and applied here
// (on the leader). On a follower it returns a *NotLeaderError naming the
// leader.
func (s *Store) Exec(ctx context.Context, cmd *state.Command) (state.Result, error) {
	c, err := state.Prepare(ctx, cmd, s.cfg.Clock)
	if err != nil {
		return state.Result{}, err
	}
	b, err := c.Encode()
	if err != nil {
		return state.Result{}, err
	}
	f := s.raft.Apply(b, s.timeout(ctx))
	if err := f.Error(); err != nil {
		return state.Result{}, s.mapErr(err)
	}
	r, _ := f.Response().(applyResponse)
	return r.res, r.err
}

func (s *Store) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return s.cfg.ApplyTimeout
}

// mapErr turns raft's errors into the store's.
func (s *Store) mapErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		// Proposed, maybe replicated: a NotLeaderError would invite a
		// retry that applies the command twice.
		return ErrOutcomeUnknown
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrNotVoter):
		addr, id := s.raft.LeaderWithID()
		return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
	case errors.Is(err, raft.ErrRaftShutdown):
		if h := s.FSM.Halted(); h != nil {
			return h
		}
		return state.ErrClosed
	}
	return fmt.Errorf("raftstore: %w", err)
}

// Raft is the underlying raft node, for what this package does not wrap.
func (s *Store) Raft() *raft.Raft { return s.raft }

// Snapshot writes this node's applied state to w (a backup; see
// state.FSM.Snapshot).
func (s *Store) Snapshot(w io.Writer) error { return s.FSM.Snapshot(w) }

// Restore replaces the cluster's state with a snapshot, through raft
// (raft.Restore on the leader, then replicated as a snapshot). The
// snapshot is checked completely first: a corrupt or truncated one is
// refused with state.ErrBadSnapshot and nothing changes.
func (s *Store) Restore(r io.Reader) error {
	tmp, err := os.CreateTemp(s.cfg.Dir, "restore-*.snap")
	if err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, r)
	if err != nil {
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := state.VerifySnapshot(tmp); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: n}
	if err := s.raft.Restore(meta, tmp, s.cfg.ApplyTimeout); err != nil {
		return s.mapErr(err)
	}
	return nil
}
