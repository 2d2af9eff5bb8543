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
	stale     int           // abandoned Transacts whose late replies may follow
	grace     time.Duration // how long drain waits for late replies
	discarded atomic.Uint64
}

// drainGrace is how long a Transact after an abandoned one waits for the
// late reply of the abandoned command before sending its own.
const drainGrace = 5 * time.Millisecond

// longAgo is a deadline in the past: it wakes a blocked read or write.
var longAgo = time.Unix(1, 0)

// NewConn returns a Conn on s.
func NewConn(s Stream) *Conn {
	return &Conn{s: s, br: bufio.NewReaderSize(s, MaxFrame+64), grace: drainGrace}
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
		if n < 3 || n > MaxLen { // CMD PARA CHK is the shortest frame
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
	if c.stale > 0 {
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
	// When ctx is done, wake a blocked write or read. stop waits for a
	// running wake-up to finish so that it cannot move the deadlines of
	// the next Transact.
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		c.s.SetWriteDeadline(longAgo)
		c.s.SetReadDeadline(longAgo)
	})
	defer func() {
		if !stop() {
			<-woken
		}
	}()
	if err := c.WriteFrame(c.wbuf); err != nil {
		c.stale++
		return Reply{}, c.ctxErr(ctx, fmt.Errorf("ga467: write %v: %w", cmd, err))
	}
	frame, err := c.ReadFrame()
	if err != nil {
		if !errors.Is(err, ErrChecksum) {
			c.stale++
		}
		return Reply{}, c.ctxErr(ctx, err)
	}
	return ParseReply(frame)
}

// ctxErr makes every deadline error of an operation wrap ErrTimeout, and
// the context's error when it was the context that ended the wait.
func (c *Conn) ctxErr(ctx context.Context, err error) error {
	if !errors.Is(err, ErrTimeout) && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	cerr := ctx.Err()
	if dl, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(dl) {
		cerr = context.DeadlineExceeded // the stream's timer beat the context's
	}
	if cerr != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, cerr)
	}
	if !errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// drain drops the late replies of abandoned commands: whatever is buffered
// or arrives within the grace period. It returns early once it has dropped
// one whole frame per abandoned command and nothing else is buffered.
func (c *Conn) drain() {
	c.s.SetReadDeadline(time.Now().Add(c.grace))
	for c.stale > 0 {
		frame, err := c.ReadFrame()
		if err != nil && !errors.Is(err, ErrChecksum) {
			break // grace period over, or the stream failed
		}
		c.discarded.Add(uint64(len(frame)))
		c.stale--
	}
	if n := c.br.Buffered(); n > 0 {
		c.br.Discard(n)
		c.discarded.Add(uint64(n))
	}
	c.s.SetReadDeadline(time.Time{})
	c.stale = 0
}
