package ga467

import (
	"errors"
	"fmt"
)

// Framing errors: the bytes on the line are not a valid frame.
var (
	ErrNoPreamble   = errors.New("ga467: frame does not start with AA AA AA 96 69")
	ErrShortFrame   = errors.New("ga467: frame too short")
	ErrFrameTooLong = errors.New("ga467: frame too long")
	ErrLength       = errors.New("ga467: frame length does not match LEN")
	ErrChecksum     = errors.New("ga467: frame checksum mismatch")
)

// SW3 status codes of GA 467 and the samrack tunnel extension.
const (
	SW3OK            = 0x90 // success
	SW3CardFound     = 0x9F // card found (reply to find)
	SW3NoItem        = 0x91 // no such item on the card
	SW3HostChecksum  = 0x10 // checksum error in host frame
	SW3HostLength    = 0x11 // length error in host frame
	SW3BadCommand    = 0x21 // bad command or parameter
	SW3Privilege     = 0x23 // privilege violation
	SW3Unrecognised  = 0x24 // unrecognised error
	SW3CardAuthSAM   = 0x31 // card failed to authenticate the SAM
	SW3SAMAuthCard   = 0x32 // SAM failed to authenticate the card
	SW3Verify        = 0x33 // information verification failed
	SW3Fingerprint   = 0x37 // fingerprint verification error
	SW3InfoLength    = 0x3F // information length error
	SW3CardType      = 0x40 // unknown card type
	SW3ReadFailed    = 0x41 // read failed
	SW3Random        = 0x47 // get-random failed
	SW3SelfTest      = 0x60 // SAM self-test failed, accepts no commands
	SW3NotAuthorised = 0x66 // SAM not authorised
	SW3FindFailed    = 0x80 // find card failed
	SW3SelectFailed  = 0x81 // select card failed
	SW3CommFault     = 0xFF // communication fault

	// SW3CardExchange is samrack's tunnel extension: the SAM needs the card
	// frames in DATA (EncodeCardFrames) run at the reader before it can
	// continue; the host answers with CmdCardReply.
	SW3CardExchange = 0xE0
)

// Named errors that StatusError unwraps to, one per SW3 code.
var (
	ErrNoItem        = errors.New("no such item on the card")
	ErrHostChecksum  = errors.New("checksum error in host frame")
	ErrHostLength    = errors.New("length error in host frame")
	ErrBadCommand    = errors.New("bad command or parameter")
	ErrPrivilege     = errors.New("privilege violation")
	ErrUnrecognised  = errors.New("unrecognised error")
	ErrCardAuthSAM   = errors.New("card failed to authenticate the SAM")
	ErrSAMAuthCard   = errors.New("SAM failed to authenticate the card")
	ErrVerify        = errors.New("information verification failed")
	ErrFingerprint   = errors.New("fingerprint verification error")
	ErrInfoLength    = errors.New("information length error")
	ErrCardType      = errors.New("unknown card type")
	ErrReadFailed    = errors.New("read failed")
	ErrRandom        = errors.New("get-random failed")
	ErrSelfTest      = errors.New("SAM self-test failed")
	ErrNotAuthorised = errors.New("SAM not authorised")
	ErrFindFailed    = errors.New("find card failed")
	ErrSelectFailed  = errors.New("select card failed")
	ErrCommFault     = errors.New("communication fault")
	ErrUnknownStatus = errors.New("unknown SW3 status")
)

var sw3Errors = map[byte]error{
	SW3NoItem:        ErrNoItem,
	SW3HostChecksum:  ErrHostChecksum,
	SW3HostLength:    ErrHostLength,
	SW3BadCommand:    ErrBadCommand,
	SW3Privilege:     ErrPrivilege,
	SW3Unrecognised:  ErrUnrecognised,
	SW3CardAuthSAM:   ErrCardAuthSAM,
	SW3SAMAuthCard:   ErrSAMAuthCard,
	SW3Verify:        ErrVerify,
	SW3Fingerprint:   ErrFingerprint,
	SW3InfoLength:    ErrInfoLength,
	SW3CardType:      ErrCardType,
	SW3ReadFailed:    ErrReadFailed,
	SW3Random:        ErrRandom,
	SW3SelfTest:      ErrSelfTest,
	SW3NotAuthorised: ErrNotAuthorised,
	SW3FindFailed:    ErrFindFailed,
	SW3SelectFailed:  ErrSelectFailed,
	SW3CommFault:     ErrCommFault,
}

// ErrorCodes lists every SW3 code that is an error, in ascending order.
func ErrorCodes() []byte {
	return []byte{0x10, 0x11, 0x21, 0x23, 0x24, 0x31, 0x32, 0x33, 0x37, 0x3F,
		0x40, 0x41, 0x47, 0x60, 0x66, 0x80, 0x81, 0x91, 0xFF}
}

// StatusError is a SAM reply whose SW3 is not a success. It unwraps to the
// named error of its code (ErrCardAuthSAM for 31, …) so callers can use
// errors.Is, and to ErrUnknownStatus for codes GA 467 does not list.
type StatusError struct {
	SW1, SW2, SW3 byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ga467: SW %02X %02X %02X: %v", e.SW1, e.SW2, e.SW3, e.Unwrap())
}

// Unwrap returns the named error of the code.
func (e *StatusError) Unwrap() error {
	if err, ok := sw3Errors[e.SW3]; ok {
		return err
	}
	return ErrUnknownStatus
}

// StatusText is the meaning of an SW3 code, for people.
func StatusText(sw3 byte) string {
	switch sw3 {
	case SW3OK:
		return "success"
	case SW3CardFound:
		return "card found"
	case SW3CardExchange:
		return "card exchange needed (samrack tunnel)"
	}
	if err, ok := sw3Errors[sw3]; ok {
		return err.Error()
	}
	return "unknown status"
}

// Err returns nil if r reports success (SW1 SW2 = 00 00 and SW3 90 or 9F),
// else a *StatusError. A tunnel request (SW3CardExchange) is not an error.
func (r Reply) Err() error {
	if r.SW1 == 0 && r.SW2 == 0 {
		switch r.SW3 {
		case SW3OK, SW3CardFound, SW3CardExchange:
			return nil
		}
	}
	return &StatusError{SW1: r.SW1, SW2: r.SW2, SW3: r.SW3}
}

// Status returns a reply carrying only the given SW3 code.
func Status(sw3 byte) Reply { return Reply{SW3: sw3} }
