package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
)

// Wire form of a command, version 1: what the proposer encodes and the
// raft log holds. Integers are varints (times: unix ns, signed), strings
// and byte strings a uvarint length and the bytes; card serials are 8 raw
// bytes each, SAM IDs 16 (ga467 wire form).
//
//	version (1 byte), op (1 byte), at, by
//	add_cards:               reason, n, n × serial
//	remove_cards:            n, n × serial
//	add_reader_blacklist:    serial, reason
//	remove_reader_blacklist, delete_reader, reset_auth_failures, clear_affinity: serial
//	put_reader:              serial, cipher, key, status (1 byte), created-at, failed-auth, note
//	set_reader_status:       serial, status (1 byte)
//	record_auth_failure:     serial, threshold
//	set_affinity:            serial, n, n × SAM ID
//	put_slot:                node, name, SAM ID, state, health, admin
//	delete_slot:             node, name
//	set_config:              key, value
//	delete_config:           key
//	put_operator:            name, role, cert serial, fingerprint, created-at, created-by
//	set_operator_role:       name, role
//	revoke_operator:         name
//	use_join_token:          key, value
//
// Nothing may follow the last field. Op codes are never reused; a new
// field needs a new version, a new op a new code (an older appliance
// treats an unknown code as newer), so that an older appliance stops
// (ErrNewerCommand) instead of applying it differently.

// ErrNewerCommand reports a command encoded by a newer samrack than this
// one: the FSM stops applying (every later Apply returns it too) until the
// appliance is upgraded, rather than diverge from the cluster.
var ErrNewerCommand = errors.New("state: command from a newer samrack version: upgrade this appliance")

var opCodes = [...]Op{
	1:  OpAddCards,
	2:  OpRemoveCards,
	3:  OpAddReaderBlacklist,
	4:  OpRemoveReaderBlacklist,
	5:  OpPutReader,
	6:  OpDeleteReader,
	7:  OpSetReaderStatus,
	8:  OpRecordAuthFailure,
	9:  OpResetAuthFailures,
	10: OpSetAffinity,
	11: OpClearAffinity,
	12: OpPutSlot,
	13: OpDeleteSlot,
	14: OpSetConfig,
	15: OpDeleteConfig,
	16: OpPutOperator,
	17: OpSetOperatorRole,
	18: OpRevokeOperator,
	19: OpUseJoinToken,
}

func opCode(op Op) (byte, bool) {
	for i, o := range opCodes {
		if o == op && o != "" {
			return byte(i), true
		}
	}
	return 0, false
}

// maxWireString bounds any string of a command on decoding. Decoding is
// lenient about the proposer's limits (a leader may have accepted what
// this version's Validate would not); it only refuses what cannot be a
// command at all.
const maxWireString = 1 << 16

// maxWireRole bounds a role on decoding: leniently, above the roles this
// version knows (an unknown role authorises nothing).
const maxWireRole = 255

// Encode validates c and returns its wire form. Decode(Encode(c)) equals c
// up to time zones and monotonic readings.
func (c *Command) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	code, _ := opCode(c.Op)
	n := 32 + len(c.By) + len(c.Reason) + 8*len(c.Cards) + 16*len(c.SAMs) + len(c.Value)
	b := make([]byte, 0, n)
	b = append(b, byte(c.Version), code)
	b = binary.AppendVarint(b, timeNS(c.At))
	b = appendStr(b, c.By)
	switch c.Op {
	case OpAddCards:
		b = appendStr(b, c.Reason)
		b = appendCards(b, c.Cards)
	case OpRemoveCards:
		b = appendCards(b, c.Cards)
	case OpAddReaderBlacklist:
		b = appendStr(b, c.Serial)
		b = appendStr(b, c.Reason)
	case OpRemoveReaderBlacklist, OpDeleteReader, OpResetAuthFailures, OpClearAffinity:
		b = appendStr(b, c.Serial)
	case OpPutReader:
		r := c.Reader
		b = appendStr(b, r.Serial)
		b = appendStr(b, r.Cipher)
		b = appendStr(b, string(r.Key))
		b = append(b, byte(r.Status))
		b = binary.AppendVarint(b, timeNS(r.CreatedAt))
		b = binary.AppendUvarint(b, uint64(r.FailedAuth))
		b = appendStr(b, r.Note)
	case OpSetReaderStatus:
		b = appendStr(b, c.Serial)
		b = append(b, byte(c.Status))
	case OpRecordAuthFailure:
		b = appendStr(b, c.Serial)
		b = binary.AppendUvarint(b, uint64(c.Threshold))
	case OpSetAffinity:
		b = appendStr(b, c.Serial)
		b = binary.AppendUvarint(b, uint64(len(c.SAMs)))
		for _, id := range c.SAMs {
			b = append(b, id.Bytes()...)
		}
	case OpPutSlot:
		s := c.Slot
		b = appendStr(b, s.Node)
		b = appendStr(b, s.Name)
		b = append(b, s.SAM.Bytes()...)
		b = appendStr(b, s.State)
		b = appendStr(b, s.Health)
		b = appendStr(b, s.Admin)
	case OpDeleteSlot:
		b = appendStr(b, c.Slot.Node)
		b = appendStr(b, c.Slot.Name)
	case OpSetConfig:
		b = appendStr(b, c.Key)
		b = appendStr(b, c.Value)
	case OpDeleteConfig:
		b = appendStr(b, c.Key)
	case OpUseJoinToken:
		b = appendStr(b, c.Key)
		b = appendStr(b, c.Value)
	case OpPutOperator:
		o := c.Operator
		b = appendStr(b, o.Name)
		b = binary.AppendUvarint(b, uint64(o.Role))
		b = appendStr(b, o.CertSerial)
		b = appendStr(b, o.Fingerprint)
		b = binary.AppendVarint(b, timeNS(o.CreatedAt))
		b = appendStr(b, o.CreatedBy)
	case OpSetOperatorRole:
		b = appendStr(b, c.Operator.Name)
		b = binary.AppendUvarint(b, uint64(c.Operator.Role))
	case OpRevokeOperator:
		b = appendStr(b, c.Operator.Name)
	}
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendCards(b []byte, cs []CardSerial) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, s := range cs {
		b = append(b, s[:]...)
	}
	return b
}

// Decode parses and validates the wire form of a command: for tools and
// tests. The FSM applies with decodeLenient, which does not re-validate.
func Decode(b []byte) (*Command, error) {
	c, err := decodeLenient(b)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// wireReader reads the wire form; the first error sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: decode: %s", ErrInvalidCommand, fmt.Sprintf(format, a...))
	}
}

func (r *wireReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) uint(max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	if v > max {
		r.fail("value %d over %d", v, max)
		return 0
	}
	return v
}

func (r *wireReader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) raw(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *wireReader) str() string { return string(r.raw(int(r.uint(maxWireString)))) }

func (r *wireReader) samID() ga467.SAMID {
	b := r.raw(ga467.SAMIDLen)
	if b == nil {
		return ga467.SAMID{}
	}
	id, _ := ga467.DecodeSAMID(b)
	return id
}

// decodeLenient parses the wire form without the proposer's validation.
// It returns ErrNewerCommand for a version or op this package does not
// know and ErrInvalidCommand for bytes that are not a command.
func decodeLenient(b []byte) (*Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: decode: %d bytes", ErrInvalidCommand, len(b))
	}
	switch v := b[0]; {
	case v == 0:
		return nil, fmt.Errorf("%w: decode: version 0", ErrInvalidCommand)
	case v > CommandVersion:
		return nil, fmt.Errorf("%w (command version %d, this appliance applies %d)", ErrNewerCommand, v, CommandVersion)
	}
	if int(b[1]) >= len(opCodes) || opCodes[b[1]] == "" {
		return nil, fmt.Errorf("%w (op code %d unknown to version %d)", ErrNewerCommand, b[1], CommandVersion)
	}
	c := &Command{Version: int(b[0]), Op: opCodes[b[1]]}
	r := &wireReader{b: b[2:]}
	c.At = nsTime(r.int())
	c.By = r.str()
	cards := func() []CardSerial {
		n := int(r.uint(MaxCardsPerCommand))
		raw := r.raw(8 * n)
		if raw == nil {
			return nil
		}
		cs := make([]CardSerial, n)
		for i := range cs {
			copy(cs[i][:], raw[8*i:])
		}
		return cs
	}
	switch c.Op {
	case OpAddCards:
		c.Reason = r.str()
		c.Cards = cards()
	case OpRemoveCards:
		c.Cards = cards()
	case OpAddReaderBlacklist:
		c.Serial = r.str()
		c.Reason = r.str()
	case OpRemoveReaderBlacklist, OpDeleteReader, OpResetAuthFailures, OpClearAffinity:
		c.Serial = r.str()
	case OpPutReader:
		rd := &Reader{Serial: r.str(), Cipher: r.str(), Key: []byte(r.str()), Status: ReaderStatus(r.byte())}
		rd.CreatedAt = nsTime(r.int())
		rd.FailedAuth = int(r.uint(MaxAuthThreshold))
		rd.Note = r.str()
		c.Reader = rd
	case OpSetReaderStatus:
		c.Serial = r.str()
		c.Status = ReaderStatus(r.byte())
	case OpRecordAuthFailure:
		c.Serial = r.str()
		c.Threshold = int(r.uint(MaxAuthThreshold))
	case OpSetAffinity:
		c.Serial = r.str()
		n := int(r.uint(MaxAffinity))
		for range n {
			c.SAMs = append(c.SAMs, r.samID())
		}
	case OpPutSlot:
		c.Slot = &Slot{Node: r.str(), Name: r.str(), SAM: r.samID(), State: r.str(), Health: r.str(), Admin: r.str()}
	case OpDeleteSlot:
		c.Slot = &Slot{Node: r.str(), Name: r.str()}
	case OpSetConfig:
		c.Key = r.str()
		c.Value = r.str()
	case OpDeleteConfig:
		c.Key = r.str()
	case OpUseJoinToken:
		c.Key = r.str()
		c.Value = r.str()
	case OpPutOperator:
		o := &Operator{Name: r.str(), Role: Role(r.uint(maxWireRole))}
		o.CertSerial, o.Fingerprint = r.str(), r.str()
		o.CreatedAt = nsTime(r.int())
		o.CreatedBy = r.str()
		c.Operator = o
	case OpSetOperatorRole:
		c.Operator = &Operator{Name: r.str(), Role: Role(r.uint(maxWireRole))}
	case OpRevokeOperator:
		c.Operator = &Operator{Name: r.str()}
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail("%d bytes after the command", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

func isNewer(err error) bool { return errors.Is(err, ErrNewerCommand) }
