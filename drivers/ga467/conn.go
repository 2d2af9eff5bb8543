package ga467

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Stream is a byte stream that frames travel on: a tty, a pty, a pipe, a TCP
// connection. Read deadlines are how an operation is abandoned at its
// deadline; *os.File (for ttys and ptys) and net.Conn both satisfy it.
type Stream interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// ErrTimeout is returned when a frame does not arrive before the deadline.
var ErrTimeout = errors.New("ga467: timed out waiting for a frame")

// Conn reads and writes whole frames on a Stream. It resynchronises after
// line noise: bytes before a preamble, and preambles followed by an
// impossible LEN, are skipped and counted. A frame with a bad checksum is
// consumed and reported as ErrChecksum.
//
// A Conn is used by one goroutine at a time.
type Conn struct {
	s         Stream
	br        *bufio.Reader
	wbuf      []byte
	dirty     bool // a Transact was abandoned: a stale reply may follow
	discarded atomic.Uint64
}

// NewConn returns a Conn on s.
func NewConn(s Stream) *Conn {
	return &Conn{s: s, br: bufio.NewReaderSize(s, MaxFrame+64)}
}

// Discarded is the number of bytes skipped while resynchronising.
func (c *Conn) Discarded() uint64 { return c.discarded.Load() }

// ReadFrame returns the next whole frame with a valid LEN. The returned slice
// is valid until the next call. If the frame's checksum is wrong the frame is
// consumed and the error wraps ErrChecksum.
func (c *Conn) ReadFrame() ([]byte, error) {
	for {
		hdr, err := c.br.Peek(headerLen)
		if err != nil {
			return nil, c.readErr(err)
		}
		if !bytes.Equal(hdr[:len(Preamble)], Preamble[:]) {
			// Skip to the next possible preamble start.
			skip := 1
			if i := bytes.IndexByte(hdr[1:], Preamble[0]); i >= 0 {
				skip = i + 1
			} else {
				skip = len(hdr)
			}
			c.br.Discard(skip)
			c.discarded.Add(uint64(skip))
			continue
		}
		n := int(hdr[5])<<8 | int(hdr[6])
		if n < 4 || n > MaxLen {
			c.br.Discard(1)
			c.discarded.Add(1)
			continue
		}
		frame, err := c.br.Peek(headerLen + n)
		if err != nil {
			return nil, c.readErr(err)
		}
		c.br.Discard(len(frame))
		if x := xor(frame[5:]); x != 0 {
			return frame, fmt.Errorf("%w (frame of %d bytes)", ErrChecksum, len(frame))
		}
		return frame, nil
	}
}

func (c *Conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrTimeout
	}
	return err
}

// WriteFrame writes one frame in a single write.
func (c *Conn) WriteFrame(frame []byte) error {
	_, err := c.s.Write(frame)
	return err
}

// Transact sends cmd and returns the SAM's reply, abandoning the wait when
// ctx is done. Reply.Data is valid until the next call. A reply that reports
// an error is returned as is; use Reply.Err. After an abandoned Transact the
// next one first drains whatever stale bytes the SAM sent late.
func (c *Conn) Transact(ctx context.Context, cmd Command) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	if c.dirty {
		c.drain()
	}
	var err error
	c.wbuf, err = cmd.AppendFrame(c.wbuf[:0])
	if err != nil {
		return Reply{}, err
	}
	dl, _ := ctx.Deadline()
	c.s.SetWriteDeadline(dl)
	c.s.SetReadDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.s.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.WriteFrame(c.wbuf); err != nil {
		c.dirty = true
		return Reply{}, c.ctxErr(ctx, fmt.Errorf("ga467: write %v: %w", cmd, err))
	}
	frame, err := c.ReadFrame()
	if err != nil {
		c.dirty = true
		return Reply{}, c.ctxErr(ctx, err)
	}
	return ParseReply(frame)
}

func (c *Conn) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded)) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return err
}

// drain drops bytes that are already buffered or arrive within a short
// grace period: the late reply of an abandoned command.
func (c *Conn) drain() {
	c.s.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	for {
		n := c.br.Buffered()
		if n == 0 {
			if _, err := c.br.Peek(1); err != nil {
				break
			}
			continue
		}
		c.br.Discard(n)
		c.discarded.Add(uint64(n))
	}
	c.s.SetReadDeadline(time.Time{})
	c.dirty = false
}
