package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
)

// ResultOrder is the byte order of the length fields in the plaintext of a
// successful version-1 Result (PROTOCOL.md, appendix A): little-endian.
//
// It is not the order of the GA 467 read reply the SAM sends, whose
// lengths are big-endian (ga467.ReplyOrder). Version-1 appliances have
// always sent little-endian lengths here and the readers in the field,
// which are never updated in lockstep with the appliances, parse them so:
// the appliance decodes the SAM's reply and re-encodes it in this order,
// both times through the one read-reply codec of package ga467.
var ResultOrder binary.ByteOrder = binary.LittleEndian

// EncodeResult is the plaintext of a successful Result: r's lengths in
// ResultOrder, then the text, photo and fingerprint.
func EncodeResult(r *ga467.ReadReply) ([]byte, error) {
	return ga467.EncodeReadReplyOrder(r, ResultOrder)
}

// DecodeResult decodes the plaintext of a successful Result; fingerprint
// says whether the ReadRequest asked for the fingerprint (three lengths).
// Lengths in ResultOrder are the norm; big-endian lengths (the GA 467
// order) are accepted too, told apart by the text length, which is always
// 256 (`00 01` against `01 00`). The result copies plain.
func DecodeResult(plain []byte, fingerprint bool) (*ga467.ReadReply, error) {
	r, err := ga467.DecodeReadReplyOrder(plain, fingerprint, ResultOrder)
	if err == nil {
		return r, nil
	}
	if r, err2 := ga467.DecodeReadReplyOrder(plain, fingerprint, ga467.ReplyOrder); err2 == nil {
		return r, nil
	}
	return nil, fmt.Errorf("wire: result: %w", err)
}
