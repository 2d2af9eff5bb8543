// Package dispatch is the front end of the appliance's scheduling server of
// the seeds: it accepts readers on TLS 1.3 with client certificates (under
// the admission budgets of admission.go), authenticates each reader,
// decrypts the card serial the reader sealed under its key, checks the
// reader and card blacklists before any SAM work and places the session on
// a session host (package host: the terminal→SAM table first, else any idle
// healthy SAM, within the queue deadline). From then on it relays: the
// reader's phase requests and sealed card replies to the host, the host's
// sealed card scripts, responses and Result to the reader. It never holds
// the session key, so the host may run on another appliance.
//
// The session host does the key agreement (signing its key share with its
// appliance's node key when the reader asks, PROTOCOL.md §8.1), the
// card-frame tunnel and the checks of the SAM-authenticated card serial; it
// returns a cleartext outcome for the front end's counters and clone check.
//
// Every exception of the design's table ends in a wire error code, an audit
// event and a counter. The protocol is documented in api/PROTOCOL.md.
//
// A connection is served by one goroutine: the front end's state of a
// session needs no lock. A card exchange the SAM asks for is answered from
// the reader's prefetched exchanges by the host when it can be, or written
// to the reader and waited for under a deadline by the front end.
package dispatch
