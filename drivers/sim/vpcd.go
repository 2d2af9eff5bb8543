package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/pcsc/apdu"
)

// vpcd mode: the virtual SAM as a card in a vsmartcard vpcd reader of a real
// pcscd (see shared/hil.md and package pcsc for the APDU mapping).
//
// vpcd wire protocol, card side: every message is a 2-byte big-endian
// length and the data; vpcd speaks first. One-byte messages are control:
// 00 power off, 01 power on, 02 reset (no reply), 04 get ATR (reply: the
// ATR). Anything longer is a C-APDU; the card replies with the R-APDU.

const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04

	// vpcdMinBackoff and vpcdMaxBackoff bound the wait between attempts to
	// reach vpcd (pcscd not running yet, or restarting).
	vpcdMinBackoff = 10 * time.Millisecond
	vpcdMaxBackoff = 500 * time.Millisecond
	// vpcdPoll is how often a removed card checks whether it may be
	// inserted again, and a mute card whether it answers again.
	vpcdPoll = 5 * time.Millisecond
	// vpcdMuteLimit is how long a card stays mute on one APDU before its
	// reader gives up on it (the card is ejected and inserted again).
	vpcdMuteLimit = 30 * time.Second
)

// ServeVPCD makes s the card of the vpcd reader listening at addr
// ("127.0.0.1:35963"): it connects to vpcd, answers vpcd's messages, and
// runs every C-APDU of the GA 467 mapping (package pcsc/apdu) through
// Handle. It returns ctx's error when ctx is done, or an error at once if
// addr is not a host:port; everything else is retried.
//
// The card is "in the reader" while the connection lives. It is removed —
// the connection is closed, which pcscd sees as a card removal — when the
// SAM loses power (PowerOff, a PowerLine set Low) or vanishes (Vanish), and
// inserted again — reconnected, with backoff — once it is powered, booted
// and not vanished. pcscd going away (stopped, restarted) is retried the
// same way, so the card reappears in a restarted pcscd.
//
// vpcd's power off, power on and reset messages reset the SAM's card
// session (like its RST line); they do not touch the SAM's power, which
// belongs to its power line. A C-APDU the SAM does not answer (hung,
// booting) leaves the card mute, as on a real reader: vpcd gets no reply
// until the SAM answers again (SetHang(false)), loses power or vanishes, or
// vpcdMuteLimit passes; then the card is ejected and inserted again, which
// ends pcscd's wait with an empty response.
//
// Latency: vpcd writes a message's length and body in two writes with
// Nagle's algorithm on, so the card acknowledges every read at once
// (TCP_QUICKACK) and writes each reply in one write.
//
// ServeVPCD owns no goroutine past its return.
func (s *SAM) ServeVPCD(ctx context.Context, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("sim: vpcd address %q: %w", addr, err)
	}
	var d net.Dialer
	backoff := vpcdMinBackoff
	for {
		if err := s.waitInsertable(ctx); err != nil {
			return err
		}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			if s.serveVPCDConn(ctx, c) {
				backoff = vpcdMinBackoff
				continue
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, vpcdMaxBackoff)
	}
}

// insertable reports whether the SAM may sit in a reader: powered, booted
// and not vanished. It returns the channel closed at its next power-off.
func (s *SAM) insertable() (off <-chan struct{}, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.off, s.powered && !s.vanished && !s.clock.Now().Before(s.bootAt)
}

// answering reports whether a card that went mute would answer again.
func (s *SAM) answering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.powered && !s.vanished && !s.faults.hang && !s.clock.Now().Before(s.bootAt)
}

// waitInsertable waits until the SAM may be inserted or ctx is done.
func (s *SAM) waitInsertable(ctx context.Context) error {
	if _, ok := s.insertable(); ok {
		return ctx.Err()
	}
	tick := time.NewTicker(vpcdPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if _, ok := s.insertable(); ok {
				return nil
			}
		}
	}
}

// cardReset resets the card session, as the reader's RST line would.
func (s *SAM) cardReset() {
	s.op.Lock()
	defer s.op.Unlock()
	s.sess = session{epoch: s.sess.epoch}
	s.baud, s.maxRF = 0, 0
}

// serveVPCDConn serves one connection to vpcd until it ends, the SAM is
// removed or ctx is done; it closes c. It reports whether vpcd talked to
// the card at all (so a refused or dropped connection backs off).
func (s *SAM) serveVPCDConn(ctx context.Context, c net.Conn) (talked bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	off, ok := s.insertable()
	var remove func()
	if ok {
		remove, ok = s.addServe(cancel)
	}
	if !ok {
		cancel(nil)
		c.Close()
		return false
	}
	defer remove()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by serveVPCDConn: ends when ctx is done or power goes
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-off:
		}
		c.Close()
	}()
	defer func() {
		cancel(nil)
		wg.Wait()
	}()

	ack := quickAcker(c)
	var hdr [2]byte
	var wbuf []byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return talked
		}
		ack()
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return talked
		}
		ack()
		talked = true
		wbuf = wbuf[:0]
		switch {
		case len(msg) == 0:
			continue
		case len(msg) == 1:
			switch msg[0] {
			case vpcdPowerOff, vpcdPowerOn, vpcdReset:
				s.cardReset()
				continue
			case vpcdGetATR:
				wbuf = appendVPCD(wbuf, apdu.ATR())
			default:
				continue // unknown control message: vpcd expects no reply
			}
		default:
			cmd, err := apdu.ParseCommand(msg)
			var se *apdu.StatusError
			switch {
			case errors.As(err, &se):
				wbuf = appendVPCD(wbuf, apdu.AppendStatus(nil, se.SW))
			case err != nil:
				wbuf = appendVPCD(wbuf, apdu.AppendStatus(nil, apdu.SWNoInfo))
			default:
				r, ok := s.Handle(ctx, cmd)
				if !ok {
					s.mute(ctx, off)
					return talked
				}
				wbuf = appendVPCD(wbuf, apdu.AppendReply(nil, r))
			}
		}
		if _, err := c.Write(wbuf); err != nil {
			return talked
		}
	}
}

// mute holds an unanswered APDU until the SAM would answer again, loses
// power, vanishes or vpcdMuteLimit passes, or ctx is done.
func (s *SAM) mute(ctx context.Context, off <-chan struct{}) {
	limit := time.NewTimer(vpcdMuteLimit)
	defer limit.Stop()
	tick := time.NewTicker(vpcdPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-off:
			return
		case <-limit.C:
			return
		case <-tick.C:
			if s.answering() {
				return
			}
		}
	}
}

// appendVPCD appends one vpcd message: 2-byte big-endian length, data.
func appendVPCD(dst, data []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	return append(dst, data...)
}
