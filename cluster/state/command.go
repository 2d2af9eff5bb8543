package state

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/samrack/samrack/drivers/ga467"
)

// CommandVersion is the encoding version this package writes and applies
// (the first byte of the wire form, see wire.go). An FSM that meets a
// command of a higher version stops applying with ErrNewerCommand.
const CommandVersion = 1

// Limits enforced by Command.Validate.
const (
	MaxCardsPerCommand = 100_000 // chunk bigger imports (see CardCommands)
	MaxReaderSerialLen = 32      // as in the reader credential bundle
	MaxReasonLen       = 256     // bytes of UTF-8
	MaxByLen           = 64
	MaxNoteLen         = 256
	MaxAffinity        = 16 // SAMs per reader
	MaxAuthThreshold   = 1000
	ReaderKeyLen       = 16
)

// Reader ciphers (as in api/credentials).
const (
	CipherSM4 = "sm4"
	CipherAES = "aes"
)

// Op names a command. The string is the wire form.
type Op string

// Ops.
const (
	OpAddCards              Op = "add_cards"               // Cards, Reason
	OpRemoveCards           Op = "remove_cards"            // Cards
	OpAddReaderBlacklist    Op = "add_reader_blacklist"    // Serial, Reason
	OpRemoveReaderBlacklist Op = "remove_reader_blacklist" // Serial
	OpPutReader             Op = "put_reader"              // Reader
	OpDeleteReader          Op = "delete_reader"           // Serial
	OpSetReaderStatus       Op = "set_reader_status"       // Serial, Status
	OpRecordAuthFailure     Op = "record_auth_failure"     // Serial, Threshold
	OpResetAuthFailures     Op = "reset_auth_failures"     // Serial
	OpSetAffinity           Op = "set_affinity"            // Serial, SAMs
	OpClearAffinity         Op = "clear_affinity"          // Serial
	OpPutSlot               Op = "put_slot"                // Slot
	OpDeleteSlot            Op = "delete_slot"             // Slot (Node and Name only)
	OpSetConfig             Op = "set_config"              // Key, Value
	OpDeleteConfig          Op = "delete_config"           // Key
	OpUseJoinToken          Op = "use_join_token"          // Key ("join.<id>"), Value (secret hash, node): jointoken.go
)

// ReaderStatus is the registry status of a reader.
type ReaderStatus uint8

// Reader statuses. The zero value means "unset": PutReader keeps the
// existing status (Active for a new reader); SetReaderStatus rejects it.
const (
	ReaderActive      ReaderStatus = 1
	ReaderSuspended   ReaderStatus = 2
	ReaderBlacklisted ReaderStatus = 3
)

var statusNames = [...]string{"", "active", "suspended", "blacklisted"}

func (s ReaderStatus) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s ReaderStatus) MarshalText() ([]byte, error) {
	if s == 0 {
		return []byte{}, nil
	}
	if int(s) >= len(statusNames) {
		return nil, fmt.Errorf("state: reader status %d", uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ReaderStatus) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if string(b) == n {
			*s = ReaderStatus(i)
			return nil
		}
	}
	return fmt.Errorf("state: unknown reader status %q", b)
}

// Reader is a registered reader terminal.
type Reader struct {
	Serial     string       `json:"serial"`
	Cipher     string       `json:"cipher"` // CipherSM4 or CipherAES
	Key        []byte       `json:"key"`    // ReaderKeyLen bytes
	Status     ReaderStatus `json:"status,omitempty"`
	CreatedAt  time.Time    `json:"created_at,omitzero"`
	FailedAuth int          `json:"failed_auth,omitempty"`
	Note       string       `json:"note,omitempty"`
}

func (r Reader) clone() Reader {
	r.Key = bytes.Clone(r.Key)
	return r
}

// CardSerial is an 8-byte card serial; its text form is 16 hex digits.
type CardSerial [8]byte

func (s CardSerial) String() string { return hex.EncodeToString(s[:]) }

// MarshalText implements encoding.TextMarshaler.
func (s CardSerial) MarshalText() ([]byte, error) {
	b := make([]byte, 16)
	hex.Encode(b, s[:])
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *CardSerial) UnmarshalText(b []byte) error {
	if len(b) != 16 {
		return fmt.Errorf("card serial %q: want 16 hex digits", b)
	}
	if _, err := hex.Decode(s[:], b); err != nil {
		return fmt.Errorf("card serial %q: want 16 hex digits", b)
	}
	return nil
}

// Command is one change to the state. Which fields are used depends on Op
// (see the Op constants); the others must be zero. At is the proposer's
// clock: the FSM never reads a clock, so added-at and created-at times come
// from the command and every replica computes the same state.
type Command struct {
	Version   int           `json:"v"`
	Op        Op            `json:"op"`
	At        time.Time     `json:"at"`
	By        string        `json:"by,omitempty"` // who asked (operator, "appliance"); audit only
	Cards     []CardSerial  `json:"cards,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Serial    string        `json:"serial,omitempty"` // reader serial
	Reader    *Reader       `json:"reader,omitempty"`
	Status    ReaderStatus  `json:"status,omitempty"`
	Threshold int           `json:"threshold,omitempty"`
	SAMs      []ga467.SAMID `json:"sams,omitempty"`
	Operator  *Operator     `json:"operator,omitempty"` // operator ops (operators.go)
	Slot      *Slot         `json:"slot,omitempty"`
	Key       string        `json:"key,omitempty"`   // cluster config key
	Value     string        `json:"value,omitempty"` // cluster config value
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCommand, fmt.Sprintf(format, a...))
}

// Validate checks the command is well-formed, so that applying it can fail
// only through a bug or a deterministic ErrUnknownReader outcome. Errors wrap
// ErrInvalidCommand.
func (c *Command) Validate() error {
	if c == nil {
		return invalid("nil command")
	}
	if c.Version != CommandVersion {
		return invalid("version %d, want %d", c.Version, CommandVersion)
	}
	if c.At.IsZero() {
		return invalid("%s: no time", c.Op)
	}
	if y := c.At.Year(); y < 2000 || y > 9999 {
		return invalid("%s: time %v out of range", c.Op, c.At)
	}
	if err := checkText("by", c.By, MaxByLen); err != nil {
		return err
	}
	if isOperatorOp(c.Op) {
		return c.validateOperatorCommand()
	}
	if c.Op == OpUseJoinToken {
		if c.Cards != nil || c.Reason != "" || c.Serial != "" || c.Reader != nil || c.Status != 0 || c.Threshold != 0 ||
			c.SAMs != nil || c.Operator != nil || c.Slot != nil {
			return invalid("%s: unexpected fields", c.Op)
		}
		return c.validateUseJoinToken()
	}
	if c.Operator != nil {
		return invalid("%s: unexpected operator", c.Op)
	}
	// Fields each op uses; everything else must be zero.
	var cards, reason, serial, reader, status, threshold, sams, slot, slotID, key, value bool
	switch c.Op {
	case OpAddCards:
		cards, reason = true, true
	case OpRemoveCards:
		cards = true
	case OpAddReaderBlacklist:
		serial, reason = true, true
	case OpRemoveReaderBlacklist, OpDeleteReader, OpResetAuthFailures, OpClearAffinity:
		serial = true
	case OpPutReader:
		reader = true
	case OpSetReaderStatus:
		serial, status = true, true
	case OpRecordAuthFailure:
		serial, threshold = true, true
	case OpSetAffinity:
		serial, sams = true, true
	case OpPutSlot:
		slot = true
	case OpDeleteSlot:
		slotID = true
	case OpSetConfig:
		key, value = true, true
	case OpDeleteConfig:
		key = true
	default:
		return invalid("unknown op %q", c.Op)
	}
	switch {
	case !cards && c.Cards != nil:
		return invalid("%s: unexpected cards", c.Op)
	case !reason && c.Reason != "":
		return invalid("%s: unexpected reason", c.Op)
	case !serial && c.Serial != "":
		return invalid("%s: unexpected serial", c.Op)
	case !reader && c.Reader != nil:
		return invalid("%s: unexpected reader", c.Op)
	case !status && c.Status != 0:
		return invalid("%s: unexpected status", c.Op)
	case !threshold && c.Threshold != 0:
		return invalid("%s: unexpected threshold", c.Op)
	case !sams && c.SAMs != nil:
		return invalid("%s: unexpected SAMs", c.Op)
	case !slot && !slotID && c.Slot != nil:
		return invalid("%s: unexpected slot", c.Op)
	case !key && c.Key != "":
		return invalid("%s: unexpected key", c.Op)
	case !value && c.Value != "":
		return invalid("%s: unexpected value", c.Op)
	}
	if slot || slotID {
		if err := c.Slot.validate(slotID); err != nil {
			return invalid("%s: %v", c.Op, err)
		}
	}
	if key {
		if err := CheckConfigKey(c.Key); err != nil {
			return invalid("%s: %v", c.Op, err)
		}
	}
	if value {
		if err := checkText("value", c.Value, MaxConfigValueLen); err != nil {
			return err
		}
	}
	if cards {
		if len(c.Cards) == 0 || len(c.Cards) > MaxCardsPerCommand {
			return invalid("%s: %d cards (want 1–%d)", c.Op, len(c.Cards), MaxCardsPerCommand)
		}
		for _, s := range c.Cards {
			if s == (CardSerial{}) {
				return invalid("%s: zero card serial", c.Op)
			}
		}
	}
	if reason {
		if c.Reason == "" {
			return invalid("%s: no reason", c.Op)
		}
		if err := checkText("reason", c.Reason, MaxReasonLen); err != nil {
			return err
		}
	}
	if serial {
		if err := CheckReaderSerial(c.Serial); err != nil {
			return invalid("%s: %v", c.Op, err)
		}
	}
	if reader {
		if err := c.Reader.validate(); err != nil {
			return invalid("%s: %v", c.Op, err)
		}
	}
	if status && (c.Status < ReaderActive || c.Status > ReaderBlacklisted) {
		return invalid("%s: status %d", c.Op, c.Status)
	}
	if threshold && (c.Threshold < 1 || c.Threshold > MaxAuthThreshold) {
		return invalid("%s: threshold %d (want 1–%d)", c.Op, c.Threshold, MaxAuthThreshold)
	}
	if sams {
		if len(c.SAMs) == 0 || len(c.SAMs) > MaxAffinity {
			return invalid("%s: %d SAMs (want 1–%d)", c.Op, len(c.SAMs), MaxAffinity)
		}
		for i, id := range c.SAMs {
			if id.IsZero() {
				return invalid("%s: zero SAM ID", c.Op)
			}
			for _, prev := range c.SAMs[:i] {
				if prev == id {
					return invalid("%s: SAM %v twice", c.Op, id)
				}
			}
		}
	}
	return nil
}

func (r *Reader) validate() error {
	if r == nil {
		return fmt.Errorf("no reader")
	}
	if err := CheckReaderSerial(r.Serial); err != nil {
		return err
	}
	if r.Cipher != CipherSM4 && r.Cipher != CipherAES {
		return fmt.Errorf("cipher %q (want sm4 or aes)", r.Cipher)
	}
	if len(r.Key) != ReaderKeyLen {
		return fmt.Errorf("key of %d bytes (want %d)", len(r.Key), ReaderKeyLen)
	}
	if r.Status > ReaderBlacklisted {
		return fmt.Errorf("status %d", r.Status)
	}
	if !r.CreatedAt.IsZero() {
		if y := r.CreatedAt.Year(); y < 2000 || y > 9999 {
			return fmt.Errorf("created-at %v out of range", r.CreatedAt)
		}
	}
	if r.FailedAuth < 0 || r.FailedAuth > MaxAuthThreshold {
		return fmt.Errorf("failed-auth count %d", r.FailedAuth)
	}
	if err := checkText("note", r.Note, MaxNoteLen); err != nil {
		return err
	}
	return nil
}

// CheckReaderSerial reports whether s is a valid reader serial: 1–32
// printable ASCII characters, no spaces.
func CheckReaderSerial(s string) error {
	if s == "" || len(s) > MaxReaderSerialLen {
		return fmt.Errorf("reader serial must be 1–%d characters", MaxReaderSerialLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("reader serial %q: printable ASCII without spaces only", s)
		}
	}
	return nil
}

// checkText accepts UTF-8 text of at most max bytes without control
// characters; errors wrap ErrInvalidCommand.
func checkText(what, s string, max int) error {
	if err := textProblem(what, s, max); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	return nil
}

func textProblem(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s has control characters", what)
		}
	}
	return nil
}

// normTime drops the monotonic reading and the location, keeping the
// instant at nanosecond precision: the form stored in every table.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

// CardCommands chunks a card list into AddCards commands of at most
// MaxCardsPerCommand serials, one reason per command; entries without a
// reason get defaultReason. At is left zero for the Store to fill.
func CardCommands(entries []CardListEntry, defaultReason, by string) []*Command {
	var cmds []*Command
	cur := map[string]*Command{}
	for _, e := range entries {
		reason := e.Reason
		if reason == "" {
			reason = defaultReason
		}
		c := cur[reason]
		if c == nil || len(c.Cards) == MaxCardsPerCommand {
			c = &Command{Version: CommandVersion, Op: OpAddCards, Reason: reason, By: by}
			cur[reason] = c
			cmds = append(cmds, c)
		}
		c.Cards = append(c.Cards, CardSerial(e.Serial))
	}
	return cmds
}
