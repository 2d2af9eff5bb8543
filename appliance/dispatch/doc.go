// Package dispatch is the appliance's scheduling server of the seeds: it
// accepts readers on TLS 1.3 with client certificates, authenticates each
// reader, decrypts the card serial the reader sealed under its key, checks
// the reader and card blacklists before any SAM work, leases a SAM (the
// terminal→SAM table first, else any idle healthy SAM), agrees a session key
// between the reader and the SAM side, relays the find / select / read card
// frames between the SAM and the card at the reader, checks the
// SAM-authenticated card serial against the blacklist again, releases the SAM
// and only then sends the card's information to the reader.
//
// Every exception of the design's table ends in a wire error code, an audit
// event and a counter. The protocol is documented in api/PROTOCOL.md.
//
// A connection is served by one goroutine, which also runs the SAM
// operations of its session: a card exchange the SAM asks for is answered
// from the reader's prefetched exchanges when it can be, or written to the
// reader and waited for under a deadline. No other goroutine is involved, so
// a session's state needs no lock.
package dispatch
