package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of the codec. Every decoding error wraps exactly one of them.
var (
	// ErrMagic: the frame does not start with "SR". Not a samrack peer.
	ErrMagic = errors.New("wire: bad magic")
	// ErrVersion: the frame has a version this package does not speak; the
	// error is a *VersionError carrying the version seen.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrTooLarge: a frame, a field or the message count exceeds its bound.
	ErrTooLarge = errors.New("wire: too large")
	// ErrMalformed: anything else that is not a valid frame: truncation,
	// trailing bytes, unknown message types, nonzero reserved bits,
	// non-canonical values.
	ErrMalformed = errors.New("wire: malformed")
)

// VersionError reports a frame of another protocol version. It matches
// ErrVersion with errors.Is. The header was read, the body was not: answer
// with an Error (Code UnsupportedVersion) in a version-1 frame and close.
type VersionError struct {
	Version uint8 // the version byte seen
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("wire: unsupported version %d (speak %d)", e.Version, Version)
}

// Is makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

// CodeFor maps an error onto the code a peer should be told: the Code of a
// *Error, UnsupportedVersion, TooLarge or Malformed for codec errors, and
// Internal for anything else. CodeFor(nil) is 0.
func CodeFor(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrVersion):
		return UnsupportedVersion
	case errors.Is(err, ErrTooLarge):
		return TooLarge
	case errors.Is(err, ErrMagic), errors.Is(err, ErrMalformed):
		return Malformed
	}
	return Internal
}

// Code is the error code of an Error message. The hundreds say who is at
// fault: 1xx the reader's identity, 2xx the card, 3xx the appliance's
// capacity, 4xx the protocol, 5xx the appliance. Codes this package does not
// know still decode (a new code is not a new message type).
type Code uint16

// The error catalogue. api/PROTOCOL.md says what a reader does for each.
const (
	UnknownReader      Code = 101 // reader serial not registered: give up, fix provisioning
	ReaderBlacklisted  Code = 102 // reader blacklisted: give up
	ReaderSuspended    Code = 103 // reader suspended (repeated failures): give up until an operator lifts it
	BadCredentials     Code = 104 // certificate and declared serial disagree, or the reader key is wrong: give up
	BadCardSerial      Code = 105 // Open.Sealed fails to authenticate or decode under the reader key
	CardBlacklisted    Code = 201 // card is blacklisted: no data; do not retry this card
	SerialMismatch     Code = 202 // declared card serial ≠ SAM-authenticated serial: reader tampering
	CardGone           Code = 203 // card removed or card link failed: re-present the card
	CardAuthFailed     Code = 204 // card and SAM failed mutual authentication
	CardReadFailed     Code = 205 // the card's files could not be read: re-present the card
	PossibleClone      Code = 206 // same card read too fast at distant readers: no data
	Busy               Code = 301 // no SAM free: retry after RetryAfter (retryable)
	SAMFault           Code = 302 // the SAM failed mid-read: retry now (retryable)
	Malformed          Code = 401 // a frame failed to decode: fix the reader
	TooLarge           Code = 402 // a frame or field exceeded its bound: fix the reader
	UnexpectedMessage  Code = 403 // a message out of order: fix the reader
	UnsupportedVersion Code = 404 // frame version not spoken: the Message lists the versions
	NoCommonSuite      Code = 405 // no offered key share is of a supported suite
	Timeout            Code = 406 // the reader stalled (e.g. a Relay unanswered for 5 s)
	SessionAuth        Code = 407 // a session record failed authentication
	Internal           Code = 500 // appliance bug: report it
	ShuttingDown       Code = 503 // appliance is stopping: reconnect (through the VIP) and retry (retryable)
)

var codeNames = map[Code]string{
	UnknownReader:      "unknown reader",
	ReaderBlacklisted:  "reader blacklisted",
	ReaderSuspended:    "reader suspended",
	BadCredentials:     "bad credentials",
	BadCardSerial:      "bad card serial",
	CardBlacklisted:    "card blacklisted",
	SerialMismatch:     "serial mismatch",
	CardGone:           "card gone",
	CardAuthFailed:     "card auth failed",
	CardReadFailed:     "card read failed",
	PossibleClone:      "possible clone",
	Busy:               "busy",
	SAMFault:           "SAM fault",
	Malformed:          "malformed",
	TooLarge:           "too large",
	UnexpectedMessage:  "unexpected message",
	UnsupportedVersion: "unsupported version",
	NoCommonSuite:      "no common suite",
	Timeout:            "timeout",
	SessionAuth:        "session auth",
	Internal:           "internal",
	ShuttingDown:       "shutting down",
}

// String returns the code's name ("busy"), or "code N" for unknown codes.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Retryable reports whether the same read may simply be tried again (after
// RetryAfter): Busy, SAMFault and ShuttingDown.
func (c Code) Retryable() bool {
	switch c {
	case Busy, SAMFault, ShuttingDown:
		return true
	}
	return false
}

// Error is the 0x7F message: the appliance (or a reader) ends the exchange
// with a code. It is also a Go error, so the SDK can return it as is:
//
//	samrack: 301 busy, retry after 50ms: no idle SAM
//
// errors.Is(err, &Error{Code: Busy}) matches any *Error of the same code.
type Error struct {
	Code       Code
	RetryAfter time.Duration // whole milliseconds on the wire; 0 = none
	Message    string        // at most MaxErrorMessage bytes; safe to show an operator
}

// Type implements Message.
func (*Error) Type() Type { return TypeError }

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("samrack: %d %v", uint16(e.Code), e.Code)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	if e.Message != "" {
		s += ": " + printable(e.Message)
	}
	return s
}

// printable keeps a peer's message from forging log lines: control
// characters and invalid UTF-8 become U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// Versions lists the protocol versions this package speaks.
var Versions = []uint8{Version}

// versionsPrefix starts the message of every UnsupportedVersion Error.
const versionsPrefix = "versions: "

// VersionsMessage is the message of an UnsupportedVersion (404) Error:
// exactly "versions: " and the versions spoken, in decimal, separated by
// commas ("versions: 1", "versions: 1,2"). PROTOCOL.md §11 specifies it so
// that a reader can parse it; ParseVersions does.
func VersionsMessage() string {
	s := make([]string, len(Versions))
	for i, v := range Versions {
		s[i] = fmt.Sprint(v)
	}
	return versionsPrefix + strings.Join(s, ",")
}

// ParseVersions reads the versions out of the message of a 404 Error. It
// tolerates spaces around the commas; ok is false if msg does not start
// with "versions: " or lists no valid version (1..255).
func ParseVersions(msg string) (versions []uint8, ok bool) {
	rest, found := strings.CutPrefix(msg, versionsPrefix)
	if !found {
		return nil, false
	}
	for _, f := range strings.Split(rest, ",") {
		var v uint8
		f = strings.TrimSpace(f)
		if _, err := fmt.Sscanf(f, "%d", &v); err != nil || v == 0 || fmt.Sprint(v) != f {
			return nil, false
		}
		versions = append(versions, v)
	}
	return versions, len(versions) > 0
}
