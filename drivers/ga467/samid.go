package ga467

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SAMIDLen is the size of the SAM ID in the reply to ReadSAMID.
const SAMIDLen = 16

// ErrSAMID reports a malformed SAM ID.
var ErrSAMID = errors.New("ga467: malformed SAM ID")

// SAMID is the 16-byte identity of a SAM module: two 16-bit numbers, a
// manufacturing date and two serials, all little-endian on the wire, printed
// as 05.01-20101125-0012345678-1234567890. Little-endian as public host code
// reads it: HslCommunication's SAMSerial.ExtractSafeModuleNumber
// (github.com/dathlin/HslCommunication) takes the low bytes of the two u16
// and .NET BitConverter.ToInt32, little-endian, for the three u32.
type SAMID struct {
	A, B    uint16
	Date    uint32 // YYYYMMDD as a decimal number
	Serial1 uint32
	Serial2 uint32
}

// String prints the ID in the format of GA 467 host software.
func (id SAMID) String() string {
	return fmt.Sprintf("%02d.%02d-%08d-%010d-%010d", id.A, id.B, id.Date, id.Serial1, id.Serial2)
}

// Bytes is the wire form of id.
func (id SAMID) Bytes() []byte {
	b := make([]byte, SAMIDLen)
	binary.LittleEndian.PutUint16(b[0:], id.A)
	binary.LittleEndian.PutUint16(b[2:], id.B)
	binary.LittleEndian.PutUint32(b[4:], id.Date)
	binary.LittleEndian.PutUint32(b[8:], id.Serial1)
	binary.LittleEndian.PutUint32(b[12:], id.Serial2)
	return b
}

// IsZero reports whether id is the zero ID.
func (id SAMID) IsZero() bool { return id == SAMID{} }

// DecodeSAMID decodes the data of a ReadSAMID reply.
func DecodeSAMID(b []byte) (SAMID, error) {
	if len(b) != SAMIDLen {
		return SAMID{}, fmt.Errorf("%w: %d bytes, want %d", ErrSAMID, len(b), SAMIDLen)
	}
	return SAMID{
		A:       binary.LittleEndian.Uint16(b[0:]),
		B:       binary.LittleEndian.Uint16(b[2:]),
		Date:    binary.LittleEndian.Uint32(b[4:]),
		Serial1: binary.LittleEndian.Uint32(b[8:]),
		Serial2: binary.LittleEndian.Uint32(b[12:]),
	}, nil
}

// ParseSAMID parses the printed form of a SAM ID.
func ParseSAMID(s string) (SAMID, error) {
	var id SAMID
	if len(s) != 36 {
		return id, fmt.Errorf("%w: %q", ErrSAMID, s)
	}
	n, err := fmt.Sscanf(s, "%02d.%02d-%08d-%010d-%010d", &id.A, &id.B, &id.Date, &id.Serial1, &id.Serial2)
	if err != nil || n != 5 || id.String() != s {
		return SAMID{}, fmt.Errorf("%w: %q", ErrSAMID, s)
	}
	return id, nil
}
