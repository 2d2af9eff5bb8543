package ga467

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the parts of a read reply.
const (
	// PhotoLen is the size of the WLT photo every card carries.
	PhotoLen = 1024
	// MaxFingerprintLen bounds the fingerprint data (two 512-byte
	// templates); a card without fingerprints has length 0.
	MaxFingerprintLen = 1024
	// ReadReplyLen and ReadAllReplyLen are the DATA sizes of the usual
	// replies to 30 01 and 30 10 (frames of 1295 and 2321 bytes).
	ReadReplyLen    = 4 + TextLen + PhotoLen
	ReadAllReplyLen = 6 + TextLen + PhotoLen + MaxFingerprintLen
)

// ReplyOrder is the byte order of the lengths in a GA 467 read reply:
// big-endian, like LEN. A real SAM-V answers 30 01 with `01 00 04 00`
// (256, 1024); public host code reads them as (b[10]<<8)|b[11] and
// (b[12]<<8)|b[13] (DKCloudID's IDCardData.java,
// github.com/lochyhuang/DKCloudID_UART_Andoird), b[10] being the first
// byte after SW1 SW2 SW3. The fingerprint length of 30 10 follows the
// first two in the same order (`01 00 04 00 04 00`).
var ReplyOrder binary.ByteOrder = binary.BigEndian

// ErrReadReply reports the DATA of a read reply whose lengths are out of
// bounds or do not add up.
var ErrReadReply = errors.New("ga467: malformed read reply")

// ReadReply is the DATA of a successful reply to ReadTextPhoto (30 01) or
// ReadAll (30 10): the lengths of the text, the photo (and, for 30 10, the
// fingerprint), then the data itself:
//
//	30 01: LEN_TEXT(2) LEN_PHOTO(2) TEXT PHOTO
//	30 10: LEN_TEXT(2) LEN_PHOTO(2) LEN_FP(2) TEXT PHOTO FP
//
// The text is TextLen bytes, the photo at most PhotoLen, the fingerprint
// at most MaxFingerprintLen (0 for a card without fingerprints). It is
// personal information: never log or store it.
type ReadReply struct {
	Text            []byte
	Photo           []byte
	Fingerprint     []byte
	WithFingerprint bool // the 30 10 form, with three lengths
}

// nLens is the number of length fields of r's form.
func nLens(withFingerprint bool) int {
	if withFingerprint {
		return 3
	}
	return 2
}

func checkReadLens(lens []int) error {
	if lens[0] != TextLen || lens[1] > PhotoLen || (len(lens) == 3 && lens[2] > MaxFingerprintLen) {
		return fmt.Errorf("%w: lengths %v (text must be %d, photo ≤ %d, fingerprint ≤ %d)", ErrReadReply, lens, TextLen, PhotoLen, MaxFingerprintLen)
	}
	return nil
}

// EncodeReadReply encodes r as a SAM-V sends it (lengths in ReplyOrder).
func EncodeReadReply(r *ReadReply) ([]byte, error) {
	return EncodeReadReplyOrder(r, ReplyOrder)
}

// EncodeReadReplyOrder encodes r with its lengths in the given order. Only
// ReplyOrder is GA 467; the other order serves the samrack reader wire
// (api/wire, whose version-1 Result carries little-endian lengths).
func EncodeReadReplyOrder(r *ReadReply, order binary.ByteOrder) ([]byte, error) {
	if !r.WithFingerprint && len(r.Fingerprint) > 0 {
		return nil, fmt.Errorf("%w: fingerprint data in the 30 01 form", ErrReadReply)
	}
	lens := []int{len(r.Text), len(r.Photo)}
	if r.WithFingerprint {
		lens = append(lens, len(r.Fingerprint))
	}
	if err := checkReadLens(lens); err != nil {
		return nil, err
	}
	b := make([]byte, 2*len(lens), 2*len(lens)+len(r.Text)+len(r.Photo)+len(r.Fingerprint))
	for i, n := range lens {
		order.PutUint16(b[2*i:], uint16(n))
	}
	b = append(b, r.Text...)
	b = append(b, r.Photo...)
	return append(b, r.Fingerprint...), nil
}

// DecodeReadReply decodes the DATA of a read reply as a SAM-V sends it:
// withFingerprint selects the 30 10 form. The result copies data.
func DecodeReadReply(data []byte, withFingerprint bool) (*ReadReply, error) {
	return DecodeReadReplyOrder(data, withFingerprint, ReplyOrder)
}

// DecodeReadReplyOrder is DecodeReadReply with the lengths in the given
// order.
func DecodeReadReplyOrder(data []byte, withFingerprint bool, order binary.ByteOrder) (*ReadReply, error) {
	n := nLens(withFingerprint)
	if len(data) < 2*n {
		return nil, fmt.Errorf("%w: %d bytes, shorter than its %d lengths", ErrReadReply, len(data), n)
	}
	lens := make([]int, n)
	total := 2 * n
	for i := range lens {
		lens[i] = int(order.Uint16(data[2*i:]))
		total += lens[i]
	}
	if err := checkReadLens(lens); err != nil {
		return nil, err
	}
	if total != len(data) {
		return nil, fmt.Errorf("%w: lengths %v do not add up to %d bytes", ErrReadReply, lens, len(data))
	}
	body := append([]byte(nil), data[2*n:]...)
	r := &ReadReply{WithFingerprint: withFingerprint}
	r.Text = body[:lens[0]:lens[0]]
	r.Photo = body[lens[0] : lens[0]+lens[1] : lens[0]+lens[1]]
	if withFingerprint && lens[2] > 0 {
		r.Fingerprint = body[lens[0]+lens[1]:]
	}
	return r, nil
}

// SniffReadReply decodes data of a read reply whose command and byte order
// are unknown (a capture, a peer of unknown age): it tries both forms, the
// big-endian order of GA 467 first, then little-endian. The text length,
// always 256, tells the orders apart (`01 00` against `00 01`), and the
// lengths must add up to len(data), which tells the forms apart.
func SniffReadReply(data []byte) (*ReadReply, binary.ByteOrder, error) {
	var first error
	for _, order := range []binary.ByteOrder{ReplyOrder, binary.LittleEndian} {
		for _, fp := range []bool{false, true} {
			r, err := DecodeReadReplyOrder(data, fp, order)
			if err == nil {
				return r, order, nil
			}
			if first == nil {
				first = err
			}
		}
	}
	return nil, nil, first
}
