// Package sam holds the small interfaces every SAM driver implements, the
// errors they share, and the driver registry.
//
// A SAM (GA/T 467 SAM-V security module) is reached through a Transport that
// carries GA 467 host commands: a tty for USB-serial modules, APDUs for PC/SC
// modules, a pipe for the virtual SAM. Package samhost turns any Transport
// into a SAM; drivers only provide the Transport. The card the SAM reads is
// not next to it: its frames are tunnelled to the reader through a CardLink.
//
// Layout follows periph.io: interfaces here, the registry beside them
// (registry.go), fakes in drivers/samtest, one package per driver.
package sam

import (
	"context"
	"errors"

	"github.com/samrack/samrack/drivers/ga467"
)

// Transport carries one GA 467 command to a SAM module and returns its reply.
// It honours ctx's deadline: a module that hangs makes Transact return an
// error wrapping ErrTimeout, never block past the deadline.
type Transport interface {
	Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error)
	Close() error
}

// CardLink is the far end of the card-frame tunnel: it runs card frames, in
// order, against the card held at the reader and returns the card's replies.
// It stops at the first frame the card does not answer; the replies it
// returns are then fewer than the commands.
type CardLink interface {
	Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error)
}

// Control is the housekeeping side of a SAM module.
type Control interface {
	// Reset resets the module (GA 467 10 FF), abandoning any card session.
	Reset(ctx context.Context) error
	// Status runs the module's self-test (11 FF).
	Status(ctx context.Context) error
	// ID reads the module's SAM ID (12 FF).
	ID(ctx context.Context) (ga467.SAMID, error)
}

// Card is the card side of a SAM module: one card session at a time, in the
// order Find, Select, Read. Card frames travel through link.
type Card interface {
	// Find returns the 4 bytes of management information of a found card.
	Find(ctx context.Context, link CardLink) ([]byte, error)
	// Select returns the 8-byte card serial, as authenticated later by Read.
	Select(ctx context.Context, link CardLink) (Serial, error)
	// Read authenticates the card and reads its files.
	Read(ctx context.Context, link CardLink, what ReadWhat) (*Reading, error)
}

// SAM is what every SAM driver provides.
type SAM interface {
	Control
	Card
	// Close releases the module's transport.
	Close() error
}

// Serial is the 8-byte card serial number: the key of the card blacklist.
type Serial [8]byte

// ReadWhat says which files Read fetches.
type ReadWhat int

const (
	ReadTextPhoto   ReadWhat = iota // 30 01: text + photo
	ReadFingerprint                 // 30 10: text + photo + fingerprint
)

// Reading is what a SAM read from a card. It is personal information: never
// log or store it.
type Reading struct {
	Text        []byte // 256 bytes, ga467.DecodeText
	Photo       []byte // 1024 bytes, WLT
	Fingerprint []byte // 1024 bytes or nil
}

// Errors shared by every driver. Driver errors wrap one of these (or a
// *ga467.StatusError for a SAM that answered with an error code) so the rack
// can tell a sick module from a card or reader problem.
var (
	// ErrTimeout: the module did not answer before the deadline. The module
	// is suspect; the operation was abandoned.
	ErrTimeout = errors.New("sam: timed out")
	// ErrGone: the module or its transport disappeared (unplugged, device
	// node removed, reader removed from pcscd).
	ErrGone = errors.New("sam: module gone")
	// ErrTransport: the transport failed (I/O error, corrupt frame).
	ErrTransport = errors.New("sam: transport error")
	// ErrProtocol: the module answered something GA 467 does not allow.
	ErrProtocol = errors.New("sam: protocol violation")
	// ErrCardLink: the tunnel to the card failed (reader gone, card
	// removed). The module is not at fault but must be reset.
	ErrCardLink = errors.New("sam: card link failed")
	// ErrClosed: the SAM was closed.
	ErrClosed = errors.New("sam: closed")
)

// ModuleFault reports whether err says the module itself is sick (timeout,
// transport, protocol, gone, or a status code that blames the module), as
// opposed to the card or the reader. The rack marks a slot suspect on such
// errors.
func ModuleFault(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrCardLink) {
		return false
	}
	var se *ga467.StatusError
	if errors.As(err, &se) {
		switch se.SW3 {
		case ga467.SW3HostChecksum, ga467.SW3HostLength, ga467.SW3BadCommand,
			ga467.SW3Privilege, ga467.SW3Unrecognised, ga467.SW3Random,
			ga467.SW3SelfTest, ga467.SW3NotAuthorised, ga467.SW3CommFault:
			return true
		}
		return false // card-side outcomes: auth, verify, read, find, select
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrGone) ||
		errors.Is(err, ErrTransport) || errors.Is(err, ErrProtocol)
}
