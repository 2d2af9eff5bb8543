// Package wire is the codec of the samrack reader wire protocol, the protocol
// between a reader terminal (an RF front-end without a SAM) and the appliance,
// specified for reader makers in api/PROTOCOL.md.
//
// A connection (TLS 1.3 with a reader client certificate) carries frames in
// both directions. A frame is an 8-byte header and a body of 1 to MaxMessages
// messages:
//
//	frame   = 'S' 'R' | version u8 (=1) | flags u8 (=0) | body length u32 BE | body
//	message = type u8 | payload length u32 BE | payload
//
// Several messages per frame let a warm read take two round trips; one
// message per frame is the same protocol with batch size one.
//
// The package is pure: Marshal and Unmarshal work on bytes, WriteFrame and
// ReadFrame add one io.Writer / io.Reader call each. Every length is checked
// against its bound before it is used, so hostile input costs at most one
// MaxFrame buffer and never panics. Decoding is strict and canonical (no
// unknown types, no trailing bytes, booleans 0 or 1, reserved fields zero):
// whatever decodes re-encodes to the same bytes.
//
// The Sealed fields are opaque here: records of a suite.Session (whose
// plaintexts are ga467.EncodeCardFrames lists, or the read reply for
// Result), or for Open a reader-key blob (suite.SealWithReaderKey) whose
// plaintext is a PreSession.
package wire
