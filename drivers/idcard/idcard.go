package idcard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Exchange is one card command and the card's reply.
type Exchange struct{ Cmd, Resp []byte }

// RF is a reader's RF front-end talking to the card in its field. Transceive
// sends one card frame (see the package doc) and returns the card's reply.
// It returns an error wrapping ErrNoCard when no card answers.
type RF interface {
	Transceive(ctx context.Context, cmd []byte) ([]byte, error)
}

// Errors of this package.
var (
	// ErrNoCard: the card left the field or did not answer.
	ErrNoCard = errors.New("idcard: no card answered")
	// ErrBadReply: the card's reply does not have the shape the scheme
	// gives it.
	ErrBadReply = errors.New("idcard: malformed card reply")
)

// Status words.
const (
	SWOK            = 0x9000
	SWAuthFailed    = 0x6300 // authentication failed
	SWWrongLength   = 0x6700
	SWNotAuth       = 0x6982 // security status not satisfied
	SWNoChallenge   = 0x6985 // conditions of use not satisfied
	SWFileNotFound  = 0x6A82
	SWWrongP1P2     = 0x6B00 // block beyond the end of the file
	SWWrongLe       = 0x6C00 // low byte: the right LE
	SWINSNotSupport = 0x6D00
	SWCLANotSupport = 0x6E00
)

// Files on the card.
const (
	FileText        = 0x01
	FilePhoto       = 0x02
	FileFingerprint = 0x03
)

// Sizes.
const (
	SerialLen    = 8
	ChallengeLen = 8
	ProofLen     = 16
	MACLen       = 8
	BlockLen     = 256
	ATQBLen      = 12
	TextLen      = 256
	PhotoLen     = 1024
	FingerLen    = 1024
	// MaxReply is the largest card reply of the scheme: a full block, its
	// MAC and the status word.
	MaxReply = BlockLen + MACLen + 2
)

// FileSize is the size of a file, or 0 for an unknown file.
func FileSize(file byte) int {
	switch file {
	case FileText:
		return TextLen
	case FilePhoto:
		return PhotoLen
	case FileFingerprint:
		return FingerLen
	}
	return 0
}

// Fixed frames.
var (
	// ReqB is REQB with AFI 00 (all families) and one slot.
	ReqB = []byte{0x05, 0x00, 0x00}
	// GetUID is GET UID: the card answers its 8-byte serial.
	GetUID = []byte{0x00, 0x36, 0x00, 0x00, SerialLen}
	// GetChallenge is GET CHALLENGE: the card answers a fresh 8-byte rc.
	GetChallenge = []byte{0x00, 0x84, 0x00, 0x00, ChallengeLen}
)

// attribParams are ATTRIB's param 1..4 (see the package doc).
var attribParams = [4]byte{0x00, 0x08, 0x01, 0x00}

// AppData is the application data of the ATQB of every card this package
// knows: a SAM's find management information.
var AppData = [4]byte{0x00, 0x00, 0x00, 0x00}

// ProtoInfo is the protocol info of the ATQB.
var ProtoInfo = [3]byte{0x00, 0x81, 0x81}

// ATQB is a parsed answer to REQB.
type ATQB struct {
	PUPI    [4]byte
	AppData [4]byte
	Proto   [3]byte
}

// Bytes is the wire form of a.
func (a ATQB) Bytes() []byte {
	b := make([]byte, 0, ATQBLen)
	b = append(b, 0x50)
	b = append(b, a.PUPI[:]...)
	b = append(b, a.AppData[:]...)
	return append(b, a.Proto[:]...)
}

// ParseATQB parses the answer to REQB.
func ParseATQB(b []byte) (ATQB, error) {
	var a ATQB
	if len(b) != ATQBLen || b[0] != 0x50 {
		return a, fmt.Errorf("%w: ATQB of %d bytes", ErrBadReply, len(b))
	}
	copy(a.PUPI[:], b[1:5])
	copy(a.AppData[:], b[5:9])
	copy(a.Proto[:], b[9:12])
	return a, nil
}

// Attrib returns the ATTRIB frame that selects the card with this PUPI.
func Attrib(pupi [4]byte) []byte {
	b := make([]byte, 0, 9)
	b = append(b, 0x1D)
	b = append(b, pupi[:]...)
	return append(b, attribParams[:]...)
}

// ParseAttrib returns the PUPI of an ATTRIB frame of this scheme.
func ParseAttrib(b []byte) (pupi [4]byte, ok bool) {
	if len(b) != 9 || b[0] != 0x1D || !bytes.Equal(b[5:], attribParams[:]) {
		return pupi, false
	}
	copy(pupi[:], b[1:5])
	return pupi, true
}

// AttribOK reports whether b is a good answer to ATTRIB: one byte, CID 0.
func AttribOK(b []byte) bool { return len(b) == 1 && b[0]&0x0F == 0 }

// IsTypeB reports whether cmd is an ISO 14443-3 frame (REQB/WUPB or
// ATTRIB) rather than an APDU: its reply carries no status word.
func IsTypeB(cmd []byte) bool {
	return (len(cmd) == 3 && cmd[0] == 0x05) || (len(cmd) == 9 && cmd[0] == 0x1D)
}

// MutualAuth returns the MUTUAL AUTH APDU carrying the SAM's challenge and
// proof.
func MutualAuth(rs [ChallengeLen]byte, ps [ProofLen]byte) []byte {
	b := make([]byte, 0, 5+ChallengeLen+ProofLen+1)
	b = append(b, 0x80, 0x82, 0x00, 0x00, ChallengeLen+ProofLen)
	b = append(b, rs[:]...)
	b = append(b, ps[:]...)
	return append(b, ProofLen)
}

// ReadBlock returns the READ BLOCK APDU of block n of file. It panics on
// an unknown file or a block beyond its end (a programming error).
func ReadBlock(file byte, n int) []byte {
	size := FileSize(file)
	if size == 0 || n < 0 || n*BlockLen >= size {
		panic(fmt.Sprintf("idcard: no block %d in file %02X", n, file))
	}
	return []byte{0x80, 0xB0, file, byte(n), byte(BlockPlainLen(file, n))}
}

// BlockPlainLen is the plaintext length of block n of file (0 for none).
func BlockPlainLen(file byte, n int) int {
	rest := FileSize(file) - n*BlockLen
	if n < 0 || rest <= 0 {
		return 0
	}
	return min(rest, BlockLen)
}

// Blocks is the number of blocks of file.
func Blocks(file byte) int { return (FileSize(file) + BlockLen - 1) / BlockLen }

// BlockRef names one block of one file.
type BlockRef struct {
	File  byte
	Block int
}

// ReadScript lists the blocks a SAM reads, in order: the text, the photo,
// and the fingerprint if asked.
func ReadScript(fingerprint bool) []BlockRef {
	files := []byte{FileText, FilePhoto}
	if fingerprint {
		files = append(files, FileFingerprint)
	}
	var refs []BlockRef
	for _, f := range files {
		for i := 0; i < Blocks(f); i++ {
			refs = append(refs, BlockRef{f, i})
		}
	}
	return refs
}

// SW returns the status word ending an APDU reply, or 0 if the reply is
// shorter than 2 bytes.
func SW(resp []byte) uint16 {
	if len(resp) < 2 {
		return 0
	}
	return uint16(resp[len(resp)-2])<<8 | uint16(resp[len(resp)-1])
}

// Body returns resp without its status word.
func Body(resp []byte) []byte {
	if len(resp) < 2 {
		return nil
	}
	return resp[:len(resp)-2]
}

// ParseSerial returns the serial of a GET UID reply.
func ParseSerial(resp []byte) (s [SerialLen]byte, err error) {
	if len(resp) != SerialLen+2 || SW(resp) != SWOK {
		return s, fmt.Errorf("%w: GET UID reply of %d bytes, SW %04X", ErrBadReply, len(resp), SW(resp))
	}
	copy(s[:], resp)
	return s, nil
}

// ParseChallenge returns rc from a GET CHALLENGE reply.
func ParseChallenge(resp []byte) (rc [ChallengeLen]byte, err error) {
	if len(resp) != ChallengeLen+2 || SW(resp) != SWOK {
		return rc, fmt.Errorf("%w: GET CHALLENGE reply of %d bytes, SW %04X", ErrBadReply, len(resp), SW(resp))
	}
	copy(rc[:], resp)
	return rc, nil
}
