package wire

import (
	"fmt"
	"time"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/drivers/ga467"
)

// Type is the type byte of a message.
type Type uint8

// Message types. The high nibble is the phase: 0 session, 1 find, 2 select,
// 3 read, 4 keepalive, 7 error.
const (
	TypeOpen   Type = 0x01 // reader → appliance
	TypeAccept Type = 0x02 // appliance → reader
	// TypeKeyShareSignature follows Accept, only on connections that
	// negotiated ALPNSignedKeyShare (appliance → reader).
	TypeKeyShareSignature Type = 0x03
	TypeFindRequest       Type = 0x10 // reader → appliance
	TypeFindResponse      Type = 0x11 // appliance → reader
	TypeFindConfirm       Type = 0x12 // reader → appliance
	TypeSelectRequest     Type = 0x20 // reader → appliance
	TypeSelectResponse    Type = 0x21 // appliance → reader
	TypeSelectConfirm     Type = 0x22 // reader → appliance
	TypeReadRequest       Type = 0x30 // reader → appliance
	TypeRelay             Type = 0x31 // both directions
	TypeResult            Type = 0x32 // appliance → reader
	TypePing              Type = 0x40 // either side
	TypePong              Type = 0x41 // answer to Ping
	TypeError             Type = 0x7F // either side; ends the session
)

var typeNames = map[Type]string{
	TypeOpen:              "Open",
	TypeAccept:            "Accept",
	TypeKeyShareSignature: "KeyShareSignature",
	TypeFindRequest:       "FindRequest",
	TypeFindResponse:      "FindResponse",
	TypeFindConfirm:       "FindConfirm",
	TypeSelectRequest:     "SelectRequest",
	TypeSelectResponse:    "SelectResponse",
	TypeSelectConfirm:     "SelectConfirm",
	TypeReadRequest:       "ReadRequest",
	TypeRelay:             "Relay",
	TypeResult:            "Result",
	TypePing:              "Ping",
	TypePong:              "Pong",
	TypeError:             "Error",
}

// String returns the message type's name, or "Type(0xNN)".
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(0x%02X)", uint8(t))
}

// Message is one message of a frame: a pointer to one of the types below.
type Message interface {
	Type() Type
}

// Compile-time checks: every message type is a Message.
var (
	_ Message = (*Open)(nil)
	_ Message = (*Accept)(nil)
	_ Message = (*KeyShareSignature)(nil)
	_ Message = (*FindRequest)(nil)
	_ Message = (*FindResponse)(nil)
	_ Message = (*FindConfirm)(nil)
	_ Message = (*SelectRequest)(nil)
	_ Message = (*SelectResponse)(nil)
	_ Message = (*SelectConfirm)(nil)
	_ Message = (*ReadRequest)(nil)
	_ Message = (*Relay)(nil)
	_ Message = (*Result)(nil)
	_ Message = (*Ping)(nil)
	_ Message = (*Pong)(nil)
	_ Message = (*Error)(nil)
)

// Field bounds. Decoding a length beyond its bound fails with ErrTooLarge
// before anything is allocated.
const (
	// MaxReaderSerial bounds Open.ReaderSerial (1..32 bytes).
	MaxReaderSerial = suite.MaxReaderSerial
	// MaxKeyShares bounds Open.KeyShares (1..4, distinct suites).
	MaxKeyShares = 4
	// MaxPublic bounds a public key (1..133 bytes).
	MaxPublic = suite.MaxPublic
	// MaxOpenSealed bounds Open.Sealed, the reader-key blob.
	MaxOpenSealed = suite.MaxReaderSealed
	// MaxSealed bounds the Sealed field of the find, select and relay
	// messages: one session record of a full card-frame list.
	MaxSealed = ga467.MaxData + suite.Overhead
	// MaxResultSealed bounds Result.Sealed (8 KiB).
	MaxResultSealed = 8 << 10
	// MaxErrorMessage bounds Error.Message.
	MaxErrorMessage = 256
	// MaxRetryAfter is the largest Error.RetryAfter the wire can carry.
	MaxRetryAfter = time.Duration(0xFFFFFFFF) * time.Millisecond
)

// Open (0x01, reader → appliance) starts a session: who the reader is, one
// ephemeral public key per suite it offers (in preference order), and the
// reader-key sealed PreSession (card serial and prefetched card exchanges).
type Open struct {
	ReaderSerial string     // 1..MaxReaderSerial bytes; must equal the certificate's CommonName
	KeyShares    []KeyShare // 1..MaxKeyShares, distinct suites, most preferred first
	Sealed       []byte     // ≤ MaxOpenSealed: suite.SealWithReaderKey(MarshalPreSession(…))
	Flags        uint8      // reserved, 0
}

// KeyShare is one offered suite and the reader's ephemeral public key of it.
type KeyShare struct {
	Suite  suite.ID
	Public []byte // 1..MaxPublic bytes
}

// Accept (0x02, appliance → reader) answers Open: the session's ID, the
// chosen suite and the SAM side's ephemeral public key.
type Accept struct {
	SessionID [16]byte
	Suite     suite.ID
	Public    []byte // 1..MaxPublic bytes
}

// FindRequest (0x10, reader → appliance) starts the find phase.
type FindRequest struct{}

// FindResponse (0x11, appliance → reader) is the SAM side's answer in the
// find phase. Done=false: SW3 is 0xE0 and Sealed holds a card-frame list
// (commands) the reader runs at the card and answers with FindConfirm.
// Done=true: the phase is over with GA 467 status SW3 (0x9F found; anything
// else is a failure, followed by an Error); Sealed, if not empty, is a
// record of the SAM's reply data (the card's 4 bytes of management
// information) that the reader opens, in order, and may ignore.
type FindResponse struct {
	Done   bool
	SW3    byte
	Sealed []byte // ≤ MaxSealed
}

// FindConfirm (0x12, reader → appliance) carries the card's replies to the
// commands of the last FindResponse, as a sealed card-frame list.
type FindConfirm struct {
	Sealed []byte // ≤ MaxSealed
}

// SelectRequest (0x20, reader → appliance) starts the select phase.
type SelectRequest struct{}

// SelectResponse (0x21, appliance → reader): as FindResponse, for select.
// Done=true with SW3 0x90: selected; the record holds the 8-byte card serial
// as the SAM sees it, which the reader should compare with its own.
type SelectResponse struct {
	Done   bool
	SW3    byte
	Sealed []byte // ≤ MaxSealed
}

// SelectConfirm (0x22, reader → appliance): as FindConfirm, for select.
type SelectConfirm struct {
	Sealed []byte // ≤ MaxSealed
}

// ReadRequest (0x30, reader → appliance) starts the read phase; Fingerprint
// asks for the fingerprint file too.
type ReadRequest struct {
	Fingerprint bool
}

// Relay (0x31, both directions) carries a sealed card-frame list during the
// read phase: from the appliance, a card script (commands to run in order,
// stopping at the first command the card does not answer or answers with a
// status other than 90 00); from the reader, the card's replies.
type Relay struct {
	Sealed []byte // ≤ MaxSealed
}

// Result (0x32, appliance → reader) ends the read with the SAM's GA 467 SW3
// status and, on success (0x90), the sealed read reply data (text, photo,
// optional fingerprint).
type Result struct {
	SW3    byte
	Sealed []byte // ≤ MaxResultSealed
}

// Ping (0x40, either side) asks for a Pong with the same Nonce; it keeps an
// idle connection open.
type Ping struct {
	Nonce uint64
}

// Pong (0x41) answers Ping.
type Pong struct {
	Nonce uint64
}

// Type implements Message.
func (*Open) Type() Type { return TypeOpen }

// Type implements Message.
func (*Accept) Type() Type { return TypeAccept }

// Type implements Message.
func (*FindRequest) Type() Type { return TypeFindRequest }

// Type implements Message.
func (*FindResponse) Type() Type { return TypeFindResponse }

// Type implements Message.
func (*FindConfirm) Type() Type { return TypeFindConfirm }

// Type implements Message.
func (*SelectRequest) Type() Type { return TypeSelectRequest }

// Type implements Message.
func (*SelectResponse) Type() Type { return TypeSelectResponse }

// Type implements Message.
func (*SelectConfirm) Type() Type { return TypeSelectConfirm }

// Type implements Message.
func (*ReadRequest) Type() Type { return TypeReadRequest }

// Type implements Message.
func (*Relay) Type() Type { return TypeRelay }

// Type implements Message.
func (*Result) Type() Type { return TypeResult }

// Type implements Message.
func (*Ping) Type() Type { return TypePing }

// Type implements Message.
func (*Pong) Type() Type { return TypePong }
