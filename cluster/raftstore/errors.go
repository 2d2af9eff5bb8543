package raftstore

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader is wrapped by NotLeaderError.
	ErrNotLeader = errors.New("raftstore: not the leader")

	// ErrOutcomeUnknown reports a write the leader proposed but lost
	// leadership before it was committed (raft.ErrLeadershipLost): the
	// next leader may still commit it, or not. Unlike a NotLeaderError
	// nothing says it did not happen, so it must not be retried blindly
	// elsewhere (a second RecordAuthFailure counts twice); read the state
	// on the leader to learn the outcome.
	ErrOutcomeUnknown = errors.New("raftstore: leadership lost while the write was in flight; it may or may not have been applied")

	// ErrNoNodeIdentity reports a peer certificate without a node
	// identity (URI SAN samrack:node:<id>).
	ErrNoNodeIdentity = errors.New("raftstore: peer certificate is not a samrack node certificate")

	// ErrOldDataDir reports a data directory from before raft that could
	// not be migrated.
	ErrOldDataDir = errors.New("raftstore: data directory from before raft")
)

// NotLeaderError is the error of a write or membership change on a node
// that is not the leader: ask the leader at LeaderAddr (empty when no
// leader is known, e.g. during an election).
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "raftstore: not the leader, and no leader is known now"
	}
	return fmt.Sprintf("raftstore: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
