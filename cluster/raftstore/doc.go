// Package raftstore is samrack's state.Store on hashicorp/raft: every
// appliance is a raft node, a single appliance a cluster of one, with the
// same code path.
//
// The state machine is cluster/state's FSM, in memory; it is made durable
// by the raft log and stable store (raft-boltdb, raft.db in the data
// directory) and by file snapshots (snapshots/). Apply encodes a validated
// command and proposes it through raft.Apply; the FSM's Result comes back
// through the apply future. Reads answer from the local applied state.
//
// Between appliances raft runs over mutual TLS 1.3 (TLSStreamLayer): both
// ends present a node certificate of the installation's CA carrying the
// URI SAN samrack:node:<node-id> (see NodeURI); a peer without one is cut
// off during the handshake, before raft reads a byte.
//
// One file per concept, as in hashicorp/raft: store.go (Open, Apply,
// Close), fsm.go (the raft.FSM adapter), transport.go (the TLS stream
// layer), identity.go (node certificates), membership.go (AddVoter,
// RemoveServer, TransferLeadership, Barrier), leadership.go (raft's
// leadership as cluster/vip's Manager needs it: NotifyCh, VerifyLeader
// rounds for the quorum contact), errors.go, migrate.go (a data
// directory from before raft), check.go (a damaged raft.db or snapshot is
// refused with ErrDamaged), faults.go (FaultLayer: cut links to peers, for
// tests and chaos drills only).
package raftstore
