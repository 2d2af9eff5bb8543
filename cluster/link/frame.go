package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame layout: version u8 | type u8 | length u32 BE | payload (length
// bytes, at most MaxFrame).
const (
	// FrameVersion is the version of the frame layout.
	FrameVersion = 1
	// FrameHeader is the size of a frame's header.
	FrameHeader = 6
	// MaxFrame bounds a frame's payload (1 MiB: a card read's sealed
	// result with photo and fingerprints is under 64 KiB).
	MaxFrame = 1 << 20
)

// Frame errors.
var (
	ErrFrameVersion = errors.New("link: unknown frame version")
	ErrFrameTooBig  = errors.New("link: frame too large")
	ErrFrameShort   = errors.New("link: frame cut short")
)

// AppendFrame appends one frame of type typ and payload p to b.
func AppendFrame(b []byte, typ uint8, p []byte) ([]byte, error) {
	if len(p) > MaxFrame {
		return b, fmt.Errorf("%w: %d bytes", ErrFrameTooBig, len(p))
	}
	b = append(b, FrameVersion, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...), nil
}

// WriteFrame writes one frame with a single Write.
func WriteFrame(w io.Writer, typ uint8, p []byte) error {
	b, err := AppendFrame(make([]byte, 0, FrameHeader+len(p)), typ, p)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ReadFrame reads one frame whose payload is at most max bytes (max ≤ 0 or
// above MaxFrame: MaxFrame). Nothing beyond the header is read, nor
// allocated, when the header is refused.
func ReadFrame(r io.Reader, max int) (typ uint8, p []byte, err error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	var h [FrameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("%w: header: %w", ErrFrameShort, err)
	}
	if h[0] != FrameVersion {
		return 0, nil, fmt.Errorf("%w: %d", ErrFrameVersion, h[0])
	}
	n := binary.BigEndian.Uint32(h[2:])
	if uint64(n) > uint64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFrameTooBig, n, max)
	}
	p = make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, fmt.Errorf("%w: payload: %w", ErrFrameShort, err)
	}
	return h[1], p, nil
}
