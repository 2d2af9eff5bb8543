// Package state is samrack's replicated state as a deterministic state
// machine: the card blacklist, the reader blacklist, the reader registry and
// the terminal→SAM affinity table.
//
// Every change is a Command. A command is validated (Command.Validate) and
// encoded (Command.Encode) by the proposer; FSM.Apply decodes and applies the
// bytes. The same bytes are what a raft cluster replicates through
// raft.Apply, and FSM is shaped like hashicorp/raft's FSM (Apply, Snapshot,
// Restore) so the raft-backed store wraps it unchanged.
//
// The appliance talks to a Store: reads answered from in-memory indexes and
// Apply(ctx, *Command). Local is the single-node Store: the FSM plus a bbolt
// database with one bucket per table, loaded into memory at open. Memory is
// an FSM-only Store for tests.
//
// The card blacklist is built for 100 M entries: serials are uint64 keys in a
// sorted array with a range directory, per-card metadata is an index into a
// small table of interned (reason, added-at, added-by) batches, and recent
// changes sit in a small overflow that is folded into the array in bulk.
// A lookup is allocation-free and takes a few cache misses.
package state
