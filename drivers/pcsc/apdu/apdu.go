// Package apdu is the codec of GA 467 host commands in ISO/IEC 7816-4
// APDUs: how a SAM-V module on PC/SC (package pcsc, the host) and the
// virtual SAM on vpcd (sim.SAM.ServeVPCD, the card) carry one GA 467 command
// and its reply. It is pure Go, without cgo, so the virtual SAM can use it
// without linking pcsc-lite. The mapping is documented in package pcsc.
//
//	C-APDU: CLA 80 | INS 46 | P1 = CMD | P2 = PARA | 00 Lc(2, BE) DATA | Le 00 00
//	R-APDU: SW1 SW2 SW3 | DATA | 90 00
package apdu

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
)

// The command header of every GA 467 command APDU.
const (
	// CLA is proprietary class 8X (ISO 7816-4 §5.4.1), no secure
	// messaging, logical channel 0.
	CLA = 0x80
	// INS is "run one GA 467 host command". It is even and outside 6X/9X,
	// so it is valid for T=0 as well as T=1.
	INS = 0x46
)

// ISO 7816-4 status words used by the mapping.
const (
	SWOK            = 0x9000 // the SAM ran the command; its GA 467 reply is in the data
	SWWrongLength   = 0x6700 // the APDU's Lc/Le encoding is malformed
	SWNoInfo        = 0x6F00 // the SAM failed without a GA 467 reply
	SWINSNotSupport = 0x6D00 // INS is not 46
	SWCLANotSupport = 0x6E00 // CLA is not 80
)

// Errors of the codec.
var (
	// ErrMalformed: the bytes are not an APDU of this mapping (bad length
	// encoding, short response, 90 00 without SW1 SW2 SW3).
	ErrMalformed = errors.New("apdu: malformed")
	// ErrTooLong: the command's DATA does not fit an extended APDU.
	ErrTooLong = errors.New("apdu: command data too long")
)

// StatusError is an ISO status word other than 90 00: the APDU did not
// reach the SAM's GA 467 layer, or the SAM failed below it. It is a
// transport-level failure, not a GA 467 SW3 code.
type StatusError struct {
	SW uint16
}

func (e *StatusError) Error() string {
	var what string
	switch e.SW {
	case SWWrongLength:
		what = "wrong length"
	case SWNoInfo:
		what = "no precise diagnosis"
	case SWINSNotSupport:
		what = "instruction not supported"
	case SWCLANotSupport:
		what = "class not supported"
	default:
		what = "unexpected status"
	}
	return fmt.Sprintf("apdu: status %04X (%s)", e.SW, what)
}

// maxExtended is the largest Lc of an extended APDU.
const maxExtended = 0xFFFF

// AppendCommand appends the C-APDU of cmd to dst. Every command is an
// extended-length APDU (case 2E without DATA, 4E with it) with Le = 00 00,
// "up to 65536 bytes": a GA 467 reply may carry up to 8 KiB (a read with
// fingerprint, or a tunnel script), more than a short Le allows, and one
// form for every command keeps the host free of GET RESPONSE chaining.
func AppendCommand(dst []byte, cmd ga467.Command) ([]byte, error) {
	if len(cmd.Data) > maxExtended {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLong, len(cmd.Data))
	}
	dst = append(dst, CLA, INS, cmd.Cmd, cmd.Para, 0)
	if len(cmd.Data) > 0 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(cmd.Data)))
		dst = append(dst, cmd.Data...)
	}
	return append(dst, 0, 0), nil
}

// ParseCommand decodes a C-APDU of any ISO 7816-3 case (short or
// extended) into a GA 467 command; Data aliases b. A failure carries the
// status word the card answers with (SWWrongLength, SWCLANotSupport,
// SWINSNotSupport) as a *StatusError.
func ParseCommand(b []byte) (ga467.Command, error) {
	if len(b) < 4 {
		return ga467.Command{}, &StatusError{SW: SWWrongLength}
	}
	if b[0] != CLA {
		return ga467.Command{}, &StatusError{SW: SWCLANotSupport}
	}
	if b[1] != INS {
		return ga467.Command{}, &StatusError{SW: SWINSNotSupport}
	}
	cmd := ga467.Command{Cmd: b[2], Para: b[3]}
	body := b[4:]
	var ok bool
	cmd.Data, ok = commandData(body)
	if !ok {
		return ga467.Command{}, &StatusError{SW: SWWrongLength}
	}
	return cmd, nil
}

// commandData returns the data field of the body (everything after the
// header) of a C-APDU, checking the length encoding of ISO 7816-3 §12.1.
func commandData(body []byte) ([]byte, bool) {
	n := len(body)
	switch {
	case n == 0: // case 1
		return nil, true
	case n == 1: // case 2S
		return nil, true
	case body[0] != 0: // short Lc: case 3S or 4S
		lc := int(body[0])
		if n == 1+lc || n == 2+lc {
			return body[1 : 1+lc], true
		}
		return nil, false
	case n == 3: // case 2E: 00 Le Le
		return nil, true
	case n < 3:
		return nil, false
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return nil, false
	}
	if n == 3+lc || n == 5+lc { // case 3E, 4E
		return body[3 : 3+lc], true
	}
	return nil, false
}

// AppendReply appends the R-APDU of r to dst: SW1 SW2 SW3, DATA, 90 00.
func AppendReply(dst []byte, r ga467.Reply) []byte {
	dst = append(dst, r.SW1, r.SW2, r.SW3)
	dst = append(dst, r.Data...)
	return append(dst, 0x90, 0x00)
}

// AppendStatus appends a response of the status word sw alone.
func AppendStatus(dst []byte, sw uint16) []byte {
	return binary.BigEndian.AppendUint16(dst, sw)
}

// ParseReply decodes an R-APDU into a GA 467 reply; Data aliases b. A
// response shorter than a status word, or 90 00 without SW1 SW2 SW3, wraps
// ErrMalformed; any other status word is a *StatusError.
func ParseReply(b []byte) (ga467.Reply, error) {
	if len(b) < 2 {
		return ga467.Reply{}, fmt.Errorf("%w: response of %d bytes", ErrMalformed, len(b))
	}
	sw := binary.BigEndian.Uint16(b[len(b)-2:])
	if sw != SWOK {
		return ga467.Reply{}, &StatusError{SW: sw}
	}
	body := b[:len(b)-2]
	if len(body) < 3 {
		return ga467.Reply{}, fmt.Errorf("%w: 90 00 with %d bytes, want SW1 SW2 SW3", ErrMalformed, len(body))
	}
	return ga467.Reply{SW1: body[0], SW2: body[1], SW3: body[2], Data: body[3:]}, nil
}

// ATR returns the answer-to-reset of the virtual SAM on vpcd:
//
//	3B        TS, direct convention
//	88        T0: TD1 follows, 8 historical bytes
//	80        TD1: TD2 follows, T=0 offered
//	01        TD2: T=1 offered
//	"GA467SAM" historical bytes
//	TCK       XOR of T0 … last historical byte (required when T=1 is offered)
//
// pcscd picks T=1. A real SAM-V module on a PC/SC reader has its vendor's
// ATR; the driver does not look at it.
func ATR() []byte {
	atr := []byte{0x3B, 0x88, 0x80, 0x01, 'G', 'A', '4', '6', '7', 'S', 'A', 'M'}
	var tck byte
	for _, c := range atr[1:] {
		tck ^= c
	}
	return append(atr, tck)
}
