package ga467

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Bounds of the card-frame tunnel.
const (
	// MaxCardFrames is the most card frames one exchange may carry.
	MaxCardFrames = 32
	// MaxCardFrame is the largest single card frame (command or reply); an
	// ISO 14443 frame is at most 4 KiB, the cards this serves use ≤ 266.
	MaxCardFrame = 1024
)

// ErrCardFrames reports a malformed tunnel payload.
var ErrCardFrames = errors.New("ga467: malformed card-frame list")

// EncodeCardFrames encodes the DATA of a SW3CardExchange reply or of a
// CmdCardReply command: a count byte, then for each frame a 2-byte
// little-endian length and the frame.
func EncodeCardFrames(frames [][]byte) ([]byte, error) {
	if len(frames) > MaxCardFrames {
		return nil, fmt.Errorf("%w: %d frames > %d", ErrCardFrames, len(frames), MaxCardFrames)
	}
	n := 1
	for _, f := range frames {
		if len(f) > MaxCardFrame {
			return nil, fmt.Errorf("%w: frame of %d bytes > %d", ErrCardFrames, len(f), MaxCardFrame)
		}
		n += 2 + len(f)
	}
	if n > MaxData {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrCardFrames, n, MaxData)
	}
	b := make([]byte, 1, n)
	b[0] = byte(len(frames))
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// DecodeCardFrames decodes what EncodeCardFrames encoded, under the same
// bounds, so that whatever decodes re-encodes to b. The frames alias b.
func DecodeCardFrames(b []byte) ([][]byte, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrCardFrames)
	}
	if len(b) > MaxData {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrCardFrames, len(b), MaxData)
	}
	count := int(b[0])
	if count > MaxCardFrames {
		return nil, fmt.Errorf("%w: %d frames > %d", ErrCardFrames, count, MaxCardFrames)
	}
	b = b[1:]
	frames := make([][]byte, 0, count)
	for i := 0; i < count; i++ {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: frame %d: truncated length", ErrCardFrames, i)
		}
		n := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if n > MaxCardFrame || n > len(b) {
			return nil, fmt.Errorf("%w: frame %d: length %d", ErrCardFrames, i, n)
		}
		frames = append(frames, b[:n:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCardFrames, len(b))
	}
	return frames, nil
}
