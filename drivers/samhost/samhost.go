// Package samhost is the GA 467 host: it turns any sam.Transport (a tty, PC/SC
// APDUs, a pipe to the virtual SAM) into a sam.SAM. It puts every operation
// under its own deadline, runs the card-frame tunnel loop (SW3 E0 / CMD E1,
// see package ga467) against a sam.CardLink, checks reply shapes and maps
// failures onto the errors of package sam.
package samhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

var _ sam.SAM = (*Host)(nil)

// Timeouts bound each operation. Zero fields take the defaults, which follow
// public GA 467 host SDKs (find/select 100–1000 ms, read 1–2 s) with room for
// the tunnel's network round trips.
type Timeouts struct {
	Control time.Duration // reset, status, SAM ID; default 1 s
	Find    time.Duration // default 3 s
	Select  time.Duration // default 3 s
	Read    time.Duration // default 6 s
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Control, time.Second)
	def(&t.Find, 3*time.Second)
	def(&t.Select, 3*time.Second)
	def(&t.Read, 6*time.Second)
	return t
}

// maxExchanges bounds the tunnel loop of one command.
const maxExchanges = 16

// Host is a sam.SAM over a Transport. Its methods are safe for concurrent
// use but run one at a time: a SAM holds one session.
type Host struct {
	tr sam.Transport
	to Timeouts

	mu     sync.Mutex // mu serialises operations and guards closed
	closed bool
}

// New returns a Host on tr with the given timeouts.
func New(tr sam.Transport, to Timeouts) *Host {
	return &Host{tr: tr, to: to.withDefaults()}
}

// Reset implements sam.Control.
func (h *Host) Reset(ctx context.Context) error {
	_, err := h.do(ctx, h.to.Control, ga467.Reset, nil)
	return err
}

// Status implements sam.Control.
func (h *Host) Status(ctx context.Context) error {
	_, err := h.do(ctx, h.to.Control, ga467.SAMStatus, nil)
	return err
}

// ID implements sam.Control.
func (h *Host) ID(ctx context.Context) (ga467.SAMID, error) {
	r, err := h.do(ctx, h.to.Control, ga467.ReadSAMID, nil)
	if err != nil {
		return ga467.SAMID{}, err
	}
	id, err := ga467.DecodeSAMID(r.Data)
	if err != nil {
		return ga467.SAMID{}, fmt.Errorf("%w: %w", sam.ErrProtocol, err)
	}
	return id, nil
}

// Find implements sam.Card.
func (h *Host) Find(ctx context.Context, link sam.CardLink) ([]byte, error) {
	r, err := h.do(ctx, h.to.Find, ga467.FindCard, link)
	if err != nil {
		return nil, err
	}
	if r.SW3 != ga467.SW3CardFound || len(r.Data) != 4 {
		return nil, fmt.Errorf("%w: find reply %v", sam.ErrProtocol, r)
	}
	return append([]byte(nil), r.Data...), nil
}

// Select implements sam.Card.
func (h *Host) Select(ctx context.Context, link sam.CardLink) (sam.Serial, error) {
	var s sam.Serial
	r, err := h.do(ctx, h.to.Select, ga467.SelectCard, link)
	if err != nil {
		return s, err
	}
	if r.SW3 != ga467.SW3OK || len(r.Data) != len(s) {
		return s, fmt.Errorf("%w: select reply %v", sam.ErrProtocol, r)
	}
	copy(s[:], r.Data)
	return s, nil
}

// Read implements sam.Card.
func (h *Host) Read(ctx context.Context, link sam.CardLink, what sam.ReadWhat) (*sam.Reading, error) {
	cmd := ga467.ReadTextPhoto
	if what == sam.ReadFingerprint {
		cmd = ga467.ReadAll
	}
	r, err := h.do(ctx, h.to.Read, cmd, link)
	if err != nil {
		return nil, err
	}
	if r.SW3 != ga467.SW3OK {
		return nil, fmt.Errorf("%w: read reply %v", sam.ErrProtocol, r)
	}
	rd, err := ParseReading(r.Data, what == sam.ReadFingerprint)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", sam.ErrProtocol, err)
	}
	return rd, nil
}

// ParseReading splits the DATA of a read reply as a SAM-V sends it
// (ga467.DecodeReadReply: big-endian lengths of the text, photo and, for
// 30 10, fingerprint, then the data). A card without fingerprints gives a
// nil Fingerprint. The result copies data.
func ParseReading(data []byte, fingerprint bool) (*sam.Reading, error) {
	rr, err := ga467.DecodeReadReply(data, fingerprint)
	if err != nil {
		return nil, err
	}
	return &sam.Reading{Text: rr.Text, Photo: rr.Photo, Fingerprint: rr.Fingerprint}, nil
}

// Close implements sam.SAM.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	return h.tr.Close()
}

// do runs cmd under its own deadline and, while the SAM asks for card
// frames, runs them through link.
func (h *Host) do(ctx context.Context, timeout time.Duration, cmd ga467.Command, link sam.CardLink) (ga467.Reply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ga467.Reply{}, sam.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := h.transact(ctx, cmd)
	for i := 0; err == nil && isExchange(r); i++ {
		if link == nil || i == maxExchanges {
			return ga467.Reply{}, fmt.Errorf("%w: %v: unexpected card exchange %d", sam.ErrProtocol, cmd, i)
		}
		var frames, replies [][]byte
		frames, err = ga467.DecodeCardFrames(r.Data)
		if err != nil {
			return ga467.Reply{}, fmt.Errorf("%w: %v: %w", sam.ErrProtocol, cmd, err)
		}
		replies, err = link.Exchange(ctx, frames)
		if err != nil {
			if ctx.Err() != nil {
				return ga467.Reply{}, fmt.Errorf("%w: %v: card exchange: %w", sam.ErrCardLink, cmd, ctx.Err())
			}
			return ga467.Reply{}, fmt.Errorf("%w: %v: %w", sam.ErrCardLink, cmd, err)
		}
		if len(replies) > len(frames) {
			return ga467.Reply{}, fmt.Errorf("%w: %v: %d replies to %d card frames", sam.ErrCardLink, cmd, len(replies), len(frames))
		}
		var data []byte
		data, err = ga467.EncodeCardFrames(replies)
		if err != nil {
			return ga467.Reply{}, fmt.Errorf("%w: %v: %w", sam.ErrCardLink, cmd, err)
		}
		r, err = h.transact(ctx, ga467.Command{Cmd: ga467.CmdCardReply, Data: data})
	}
	if err != nil {
		return ga467.Reply{}, err
	}
	if err := r.Err(); err != nil {
		return ga467.Reply{}, fmt.Errorf("%v: %w", cmd, err)
	}
	// r.Data may alias the transport's read buffer, which the next
	// operation reuses once mu is released: the caller gets its own copy.
	r.Data = bytes.Clone(r.Data)
	return r, nil
}

// isExchange reports whether r asks for card frames (SW 00 00 E0).
func isExchange(r ga467.Reply) bool {
	return r.SW1 == 0 && r.SW2 == 0 && r.SW3 == ga467.SW3CardExchange
}

func (h *Host) transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	r, err := h.tr.Transact(ctx, cmd)
	if err == nil {
		return r, nil
	}
	return r, classify(cmd, err)
}

// classify maps transport errors onto sam's errors unless the transport
// already did.
func classify(cmd ga467.Command, err error) error {
	for _, known := range []error{sam.ErrTimeout, sam.ErrGone, sam.ErrTransport, sam.ErrProtocol, sam.ErrClosed} {
		if errors.Is(err, known) {
			return fmt.Errorf("%v: %w", cmd, err)
		}
	}
	switch {
	case errors.Is(err, ga467.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %v: %w", sam.ErrTimeout, cmd, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe), errors.Is(err, os.ErrClosed):
		return fmt.Errorf("%w: %v: %w", sam.ErrGone, cmd, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%v: %w", cmd, err)
	}
	return fmt.Errorf("%w: %v: %w", sam.ErrTransport, cmd, err)
}

// StreamTransport is a sam.Transport of GA 467 frames on a byte stream: the
// transport of USB-serial modules and of the virtual SAM on a pipe or pty.
type StreamTransport struct {
	c      *ga467.Conn
	closer io.Closer
}

var _ sam.Transport = (*StreamTransport)(nil)

// NewStreamTransport returns a Transport on s; Close closes closer (which
// may be nil).
func NewStreamTransport(s ga467.Stream, closer io.Closer) *StreamTransport {
	return &StreamTransport{c: ga467.NewConn(s), closer: closer}
}

// Conn exposes the framed stream, for statistics such as Discarded.
func (t *StreamTransport) Conn() *ga467.Conn { return t.c }

// Transact implements sam.Transport.
func (t *StreamTransport) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	return t.c.Transact(ctx, cmd)
}

// Close implements sam.Transport.
func (t *StreamTransport) Close() error {
	if t.closer == nil {
		return nil
	}
	return t.closer.Close()
}
