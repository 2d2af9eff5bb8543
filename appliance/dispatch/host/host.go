package host

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// This file is the contract between a front end and a session host. Every
// type in it is plain data (no channels, no callbacks) so that a call can
// travel as one request message and one reply message over a multiplexed
// link between appliances; Local is the in-process implementation.

// Host places sessions on the SAMs of one appliance.
type Host interface {
	// Place leases a SAM for a new session and runs the host's half of
	// the key agreement. The ctx deadline bounds the wait for a free SAM
	// (the queue); with none free by then the error is a *BusyError. A
	// refusal that is the reader's or the handshake's fault is a
	// *Refusal. On success the front end owns the Session and must end
	// it with Release (or see it end in an Output).
	Place(ctx context.Context, p *Placement) (Session, *Placed, error)
}

// Session is one placed session, seen from the front end.
type Session interface {
	// Step hands the host the reader's next input and returns the host's
	// next output: what to send to the reader, up to the point where the
	// host waits for the reader again or the session ended. The ctx
	// deadline bounds the host's turn; when it passes, Step returns the
	// ctx's error and the front end must Release the session.
	Step(ctx context.Context, in *Input) (*Output, error)
	// Release ends the session if it has not ended: the host releases
	// the SAM's lease with outcome (wrapped in sam.ErrCardLink, so the
	// rack resets the SAM) and reports nothing more. It returns once the
	// lease is released or when ctx is done, whichever is first; the
	// release happens either way. It may be called any number of times,
	// also after the session ended. A host also releases the lease of a
	// session whose front end stays silent past its idle timeout, so a
	// front end that goes away never holds a SAM.
	Release(ctx context.Context, outcome error)
}

// Placement asks for a session. The front end has authenticated the reader,
// opened its sealed pre-session data and checked the declared card serial
// against the blacklist.
type Placement struct {
	Reader    string          // the reader serial (its certificate's CommonName)
	KeyShares []wire.KeyShare // the Open's key shares, in the reader's order
	Declared  sam.Serial      // the card serial the reader declared
	Prefetch  []wire.Exchange // the card exchanges the reader prefetched
	Prefer    []ga467.SAMID   // the terminal→SAM table's SAMs for this reader, most preferred first
	// Sign asks for a KeyShareSignature (the reader negotiated
	// wire.ALPNSignedKeyShare). The host signs while its SAM works, and
	// its first Output starts with the signature: the front end sends it
	// in the frame of the Accept, asking for it with an empty Input when
	// that frame has no phase request.
	Sign bool
	// First, if set, are the phase requests that came in the Open's
	// frame, for the session's first Step, bounded by FirstWithin from
	// the moment the session is placed. A host reached over a link runs
	// them with the Place, which saves a round trip between appliances,
	// and answers in Placed.First; a Local host leaves them to the front
	// end's first Step.
	First       []wire.Message
	FirstWithin time.Duration
}

// Placed is a placed session's start: what the front end sends the reader.
type Placed struct {
	Accept wire.Accept
	Slot   int
	SAMID  ga467.SAMID
	// First is the Output of the first Step when the host ran it with the
	// Place (Placement.First); else FirstErr says why that Step failed
	// (the session was placed: the front end takes it as its first
	// Step's error). Both nil: the host did not run it.
	First    *Output
	FirstErr error
}

// Input is what the front end hands the host in a Step: at most one of its
// fields is set. An empty Input runs nothing: the host answers with what it
// has ready (the KeyShareSignature after Place).
type Input struct {
	// Requests are the reader's phase requests (*wire.FindRequest,
	// *wire.SelectRequest, *wire.ReadRequest), in order; the front end
	// has checked the order (Find, Select, Read, each once). They are
	// valid only when the host is not waiting for an answer.
	Requests []wire.Message
	// Answer is the reader's answer (*wire.FindConfirm,
	// *wire.SelectConfirm or *wire.Relay) to the last message of an
	// Output with Await set; the front end has checked its type.
	Answer wire.Message
	// Fail ends the session from the reader's side: the reader's turn
	// failed (it stalled, went away, or sent a bad frame).
	Fail *Failure
}

// Failure is the reader-side end of a session.
type Failure struct {
	Code   wire.Code // the code the reader is told (CardGone, Timeout, Malformed, …)
	Detail string
}

// Output is the host's answer to a Step.
type Output struct {
	// Messages go to the reader in this order: phase responses, Relay,
	// Result, Error. Their records are sealed under the session key,
	// which the front end does not hold.
	Messages []wire.Message
	// Await: the host waits for the reader's answer to the last message.
	Await bool
	// AnswerWithin, when Await is set and it is not 0, is how long the SAM
	// waits for that answer: the front end waits no longer for the reader.
	AnswerWithin time.Duration
	// End is set when the session ended (its last message is the Result
	// or the Error); the lease has been released.
	End *Outcome
	// SAMTime is the time spent inside SAM operations during the Step:
	// not the appliance's overhead.
	SAMTime time.Duration
}

// Outcome is the cleartext end of a session, for the front end's audit
// trail and counters. It never holds card data.
type Outcome struct {
	Code   wire.Code // 0: the card was read (the last message is a Result)
	Closes bool      // the front end closes the connection after the Error
	// Card is the keyed hash of the SAM-authenticated card serial (for
	// the clone check), empty when none was authenticated.
	Card     string
	Slot     int
	SAMID    ga467.SAMID
	Hold     time.Duration // the last lease: leased → released
	Attempts int           // SAMs the session ran on
}

// Refusal is a Place refused before any SAM work, with the code, audit
// kind and detail the front end reports.
type Refusal struct {
	Code   wire.Code
	Kind   string
	Detail string
}

func (r *Refusal) Error() string { return fmt.Sprintf("session refused (%v): %s", r.Code, r.Detail) }

// Named errors.
var (
	// ErrSessionGone reports a Step on a session that has ended (released,
	// or timed out waiting for its front end).
	ErrSessionGone = errors.New("host: session gone")
	// ErrNoSigner reports a Placement that asks for a signed key share
	// from a host without a node key.
	ErrNoSigner = errors.New("host: no node key to sign key shares")
	// ErrClosed reports a Place on a closed host.
	ErrClosed = errors.New("host: closed")
)

// Pool leases SAMs. Lease blocks until a SAM is free or ctx is done; when
// none can be had it returns a *BusyError.
type Pool interface {
	Lease(ctx context.Context, prefer []ga467.SAMID) (Lease, error)
}

// Lease is one SAM leased to one session. Release must be called exactly
// once; outcome is nil for a clean session, else what went wrong.
type Lease interface {
	Slot() int
	SAMID() ga467.SAMID
	SAM() sam.SAM
	Release(outcome error)
}

// BusyError is returned by a Pool that has no SAM for a session.
type BusyError struct{ RetryAfter time.Duration }

func (e *BusyError) Error() string { return fmt.Sprintf("no idle SAM, retry after %v", e.RetryAfter) }

// Blacklist is what the host needs of the replicated state: the card
// blacklist, checked against the SAM-authenticated serial.
type Blacklist interface {
	CardBlacklisted(serial sam.Serial) bool
}

// Signer is an appliance's node identity: the key that signs its session
// hosts' key shares and the certificate chain that names it, the signer's
// DER certificate first, then any intermediates up to (not including) the
// installation CA.
type Signer interface {
	crypto.Signer
	Chain() [][]byte
}
