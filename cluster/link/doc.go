// Package link is the transport between appliances: one mutual TLS 1.3
// connection per pair of cluster members, authenticated with node
// certificates (the URI SAN samrack:node:<id>, see raftstore.NodeURI, of a
// current member), carrying many streams multiplexed by hashicorp/yamux.
//
// Exactly one connection per pair: the member with the smaller node ID
// dials (and redials with backoff when the connection breaks), the other
// accepts; either end opens streams on it. A connection accepted from a
// peer that already has one replaces it (the old one was half-dead).
//
// Streams carry frames (frame.go): a version byte, a type byte and a
// length-prefixed payload bounded by MaxFrame. What the frames mean is the
// caller's business (appliance/dispatch/host carries the session host
// interface on them); every stream a caller opens gets the deadline of the
// caller's context.
//
// The link listens on a port of its own (DefaultPort, 7469) rather than
// sharing raft's: raft's stream layer hands whole connections to raft, a
// first-byte mux in front of it would put a second protocol's bugs in
// raft's accept path, and a separate port can be firewalled and measured
// on its own. Reader (7467), admin and raft ports stay separate as well.
//
// Every goroutine belongs to the Link: the accept loop, one handshake per
// accepted connection (bounded by HandshakeTimeout), one dialer per peer
// with a smaller ID here, one stream-accept loop per connection and one per
// accepted stream (the Handler's). Close ends them all and waits.
package link
