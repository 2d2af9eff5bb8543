package ga467

import (
	"bytes"
	"fmt"
)

// Preamble starts every frame in both directions.
var Preamble = [5]byte{0xAA, 0xAA, 0xAA, 0x96, 0x69}

const (
	// headerLen is the preamble plus the 2-byte LEN field.
	headerLen = len(Preamble) + 2
	// MaxLen bounds the LEN field of frames this package reads or writes.
	// The largest reply of a real SAM (text+photo+fingerprint) has LEN 2314;
	// the bound leaves room for tunnelled card scripts and refuses anything
	// that would make a reader buffer more than a few KiB of line noise.
	MaxLen = 8192
	// MaxData is the largest DATA part of a command or reply.
	MaxData = MaxLen - 4 // CMD PARA CHK (command) or SW1 SW2 SW3 CHK (reply) minus one
	// MaxFrame is the largest whole frame on the wire.
	MaxFrame = headerLen + MaxLen
)

// Commands (CMD, PARA) of GA 467.
const (
	CmdReset        = 0x10 // PARA FF
	CmdStatus       = 0x11 // PARA FF
	CmdSAMID        = 0x12 // PARA FF
	CmdCard         = 0x20 // PARA ParaFind / ParaSelect
	CmdRead         = 0x30 // PARA ParaReadTextPhoto / ParaReadAddress / ParaReadAll
	CmdSetBaud      = 0x60 // PARA 00..04
	CmdSetMaxRF     = 0x61 // PARA FF, DATA one byte
	ParaFF          = 0xFF
	ParaFind        = 0x01
	ParaSelect      = 0x02
	ParaReadText    = 0x01 // text + photo
	ParaReadAddress = 0x03 // newest appended address
	ParaReadAll     = 0x10 // text + photo + fingerprint

	// CmdCardReply is samrack's tunnel extension: DATA carries the card's
	// replies (EncodeCardFrames) to the frames of the last SW3CardExchange.
	CmdCardReply = 0xE1
)

// Well-known commands.
var (
	Reset         = Command{Cmd: CmdReset, Para: ParaFF}
	SAMStatus     = Command{Cmd: CmdStatus, Para: ParaFF}
	ReadSAMID     = Command{Cmd: CmdSAMID, Para: ParaFF}
	FindCard      = Command{Cmd: CmdCard, Para: ParaFind}
	SelectCard    = Command{Cmd: CmdCard, Para: ParaSelect}
	ReadTextPhoto = Command{Cmd: CmdRead, Para: ParaReadText}
	ReadAll       = Command{Cmd: CmdRead, Para: ParaReadAll}
)

// Command is one host → SAM frame.
type Command struct {
	Cmd, Para byte
	Data      []byte
}

// Reply is one SAM → host frame.
type Reply struct {
	SW1, SW2, SW3 byte
	Data          []byte
}

func (c Command) String() string {
	return fmt.Sprintf("cmd %02X %02X (%d data bytes)", c.Cmd, c.Para, len(c.Data))
}

func (r Reply) String() string {
	return fmt.Sprintf("reply %02X %02X %02X (%d data bytes)", r.SW1, r.SW2, r.SW3, len(r.Data))
}

// AppendFrame appends the frame of c to dst. It fails only if Data is larger
// than MaxData.
func (c Command) AppendFrame(dst []byte) ([]byte, error) {
	return appendFrame(dst, []byte{c.Cmd, c.Para}, c.Data)
}

// AppendFrame appends the frame of r to dst. It fails only if Data is larger
// than MaxData.
func (r Reply) AppendFrame(dst []byte) ([]byte, error) {
	return appendFrame(dst, []byte{r.SW1, r.SW2, r.SW3}, r.Data)
}

// Frame returns the wire bytes of c, or an error if c is too large.
func (c Command) Frame() ([]byte, error) { return c.AppendFrame(nil) }

// Frame returns the wire bytes of r, or an error if r is too large.
func (r Reply) Frame() ([]byte, error) { return r.AppendFrame(nil) }

func appendFrame(dst, head, data []byte) ([]byte, error) {
	n := len(head) + len(data) + 1
	if n > MaxLen {
		return dst, fmt.Errorf("%w: LEN %d > %d", ErrFrameTooLong, n, MaxLen)
	}
	dst = append(dst, Preamble[:]...)
	start := len(dst)
	dst = append(dst, byte(n>>8), byte(n))
	dst = append(dst, head...)
	dst = append(dst, data...)
	dst = append(dst, xor(dst[start:]))
	return dst, nil
}

func xor(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// splitFrame checks the preamble, LEN and CHK of one whole frame and returns
// the bytes between LEN and CHK.
func splitFrame(frame []byte, minBody int) ([]byte, error) {
	if len(frame) < headerLen+1 {
		return nil, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(frame))
	}
	if !bytes.Equal(frame[:len(Preamble)], Preamble[:]) {
		return nil, ErrNoPreamble
	}
	n := int(frame[5])<<8 | int(frame[6])
	if n > MaxLen {
		return nil, fmt.Errorf("%w: LEN %d > %d", ErrFrameTooLong, n, MaxLen)
	}
	if n < minBody+1 {
		return nil, fmt.Errorf("%w: LEN %d < %d", ErrShortFrame, n, minBody+1)
	}
	if len(frame) != headerLen+n {
		return nil, fmt.Errorf("%w: LEN %d but %d bytes follow it", ErrLength, n, len(frame)-headerLen)
	}
	if x := xor(frame[5:]); x != 0 {
		return nil, fmt.Errorf("%w: got %02X, want %02X", ErrChecksum, frame[len(frame)-1], x^frame[len(frame)-1])
	}
	return frame[headerLen : len(frame)-1], nil
}

// ParseCommand decodes one whole host → SAM frame. Data aliases frame.
func ParseCommand(frame []byte) (Command, error) {
	body, err := splitFrame(frame, 2)
	if err != nil {
		return Command{}, err
	}
	return Command{Cmd: body[0], Para: body[1], Data: body[2:]}, nil
}

// ParseReply decodes one whole SAM → host frame. Data aliases frame.
func ParseReply(frame []byte) (Reply, error) {
	body, err := splitFrame(frame, 3)
	if err != nil {
		return Reply{}, err
	}
	return Reply{SW1: body[0], SW2: body[1], SW3: body[2], Data: body[3:]}, nil
}
