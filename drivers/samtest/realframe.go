package samtest

import (
	"unicode/utf16"
)

// Byte-exact read replies as a real SAM-V sends them, assembled by hand
// from the published layout (shared facts sheet on GA 467 and public host
// code; see drivers/ga467 ReplyOrder), not from samrack's own encoder: a
// mistake samrack's encoder and decoder share cannot hide here.
//
//	AA AA AA 96 69 | LEN 05 08 | SW 00 00 90 | 01 00 (text 256) | 04 00 (photo 1024) | TEXT | PHOTO | CHK
//	30 10 answer:    LEN 09 08 | SW 00 00 90 | 01 00 04 00 04 00 | TEXT | PHOTO | FINGERPRINT | CHK

// The personal fields of RealText: a made-up resident card (the ID number
// is the published example of GB 11643 with a valid check digit).
const (
	RealName      = "张三"
	RealSex       = "1"
	RealNation    = "01"
	RealBirth     = "19491231"
	RealAddress   = "北京市东城区正义路1号"
	RealNumber    = "11010519491231002X"
	RealAuthority = "北京市公安局东城分局"
	RealValidFrom = "20150101"
	RealValidTo   = "20350101"
)

// RealText is the 256-byte text block of the made-up resident card, laid
// out by the published table: UTF-16LE, space-padded, name 0/30, sex 30/2,
// nation 32/4, birth 36/16, address 52/70, ID number 122/36, authority
// 158/30, valid from 188/16, valid to 204/16, reserved 220/36.
func RealText() []byte {
	b := make([]byte, 0, 256)
	field := func(s string, n int) {
		start := len(b)
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		for len(b) < start+n {
			b = append(b, 0x20, 0x00) // U+0020
		}
		if len(b) != start+n {
			panic("samtest: RealText field overflows")
		}
	}
	field(RealName, 30)
	field(RealSex, 2)
	field(RealNation, 4)
	field(RealBirth, 16)
	field(RealAddress, 70)
	field(RealNumber, 36)
	field(RealAuthority, 30)
	field(RealValidFrom, 16)
	field(RealValidTo, 16)
	field("", 36)
	return b
}

// RealPhoto is a 1024-byte stand-in for the WLT photo (its content is
// opaque to samrack).
func RealPhoto() []byte { return pattern(1024, 0x57) }

// RealFingerprint is a 1024-byte stand-in for the fingerprint data.
func RealFingerprint() []byte { return pattern(1024, 0x46) }

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// RealReadFrame is the whole reply frame of a real SAM-V to 30 01 (read
// text + photo): 1295 bytes.
func RealReadFrame() []byte {
	b := []byte{
		0xAA, 0xAA, 0xAA, 0x96, 0x69, // preamble
		0x05, 0x08, // LEN 1288: SW(3) + lengths(4) + 256 + 1024 + CHK(1)
		0x00, 0x00, 0x90, // SW1 SW2 SW3: success
		0x01, 0x00, // text length 256, big-endian
		0x04, 0x00, // photo length 1024, big-endian
	}
	b = append(b, RealText()...)
	b = append(b, RealPhoto()...)
	return appendXOR(b)
}

// RealReadAllFrame is the whole reply frame of a real SAM-V to 30 10 (read
// text + photo + fingerprint): 2321 bytes.
func RealReadAllFrame() []byte {
	b := []byte{
		0xAA, 0xAA, 0xAA, 0x96, 0x69,
		0x09, 0x0A, // LEN 2314: SW(3) + lengths(6) + 256 + 1024 + 1024 + CHK(1)
		0x00, 0x00, 0x90,
		0x01, 0x00, // text 256
		0x04, 0x00, // photo 1024
		0x04, 0x00, // fingerprint 1024
	}
	b = append(b, RealText()...)
	b = append(b, RealPhoto()...)
	b = append(b, RealFingerprint()...)
	return appendXOR(b)
}

// RealReadNoFingerprintFrame is the reply to 30 10 for a card without
// fingerprints: success, fingerprint length 0 (1297 bytes).
func RealReadNoFingerprintFrame() []byte {
	b := []byte{
		0xAA, 0xAA, 0xAA, 0x96, 0x69,
		0x05, 0x0A, // LEN 1290
		0x00, 0x00, 0x90,
		0x01, 0x00, 0x04, 0x00, 0x00, 0x00,
	}
	b = append(b, RealText()...)
	b = append(b, RealPhoto()...)
	return appendXOR(b)
}

// Host commands for the replies above, byte-exact from the facts sheet.
var (
	RealReadCommand    = []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x03, 0x30, 0x01, 0x32}
	RealReadAllCommand = []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x03, 0x30, 0x10, 0x23}
)

// appendXOR appends CHK: the XOR of every byte after the 5-byte preamble.
func appendXOR(b []byte) []byte {
	var x byte
	for _, c := range b[5:] {
		x ^= c
	}
	return append(b, x)
}
