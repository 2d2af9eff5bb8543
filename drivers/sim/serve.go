package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

// Serve answers GA 467 host frames read from st until ctx is done (it
// returns ctx's error), the stream ends (nil) or fails (the error), or the
// SAM vanishes (ErrVanished, after closing st if it is an io.Closer). A frame
// with a bad checksum is answered with SW3 10; line noise, including
// preambles followed by an impossible LEN, is skipped (ga467.Conn). A
// command whose DATA has the wrong length for it is answered with SW3 11.
// Serve owns no goroutine past its return.
//
// st is a tty or pty (*os.File), a net.Conn, or anything with deadlines:
// Serve unblocks its reads and writes through them when it must stop.
func (s *SAM) Serve(ctx context.Context, st ga467.Stream) error {
	ctx, cancel := context.WithCancelCause(ctx)
	remove, ok := s.addServe(cancel)
	if !ok {
		cancel(nil)
		closeStream(st)
		return ErrVanished
	}
	defer remove()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by Serve: ends when ctx is done, which Serve ensures
		defer wg.Done()
		<-ctx.Done()
		past := time.Unix(1, 0)
		st.SetReadDeadline(past)
		st.SetWriteDeadline(past)
		if errors.Is(context.Cause(ctx), ErrVanished) {
			closeStream(st)
		}
	}()
	defer func() {
		cancel(nil)
		wg.Wait()
	}()

	st.SetReadDeadline(time.Time{})
	st.SetWriteDeadline(time.Time{})
	rd := ga467.NewConn(st)
	var wbuf []byte
	stopped := func(err error) error {
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, ErrVanished) {
				return ErrVanished
			}
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return nil
		}
		return err
	}
	for {
		frame, err := rd.ReadFrame()
		var cmd ga467.Command
		if err == nil {
			cmd, err = ga467.ParseCommand(frame)
		}
		var (
			r  ga467.Reply
			ok bool
		)
		switch {
		case err == nil:
			cmd.Data = bytes.Clone(cmd.Data) // frame is only valid until the next read
			r, ok = s.answer(ctx, &cmd, 0)
		case errors.Is(err, ga467.ErrChecksum):
			r, ok = s.answer(ctx, nil, ga467.SW3HostChecksum)
		case errors.Is(err, ga467.ErrShortFrame), errors.Is(err, ga467.ErrLength), errors.Is(err, ga467.ErrFrameTooLong):
			r, ok = s.answer(ctx, nil, ga467.SW3HostLength)
		default:
			return stopped(err)
		}
		if !ok {
			continue
		}
		wbuf, err = r.AppendFrame(wbuf[:0])
		if err != nil {
			return fmt.Errorf("sim: encode %v: %w", r, err) // replies are bounded: a bug
		}
		if _, err := st.Write(wbuf); err != nil {
			return stopped(err)
		}
	}
}

func closeStream(st ga467.Stream) {
	if c, ok := st.(io.Closer); ok {
		c.Close()
	}
}
