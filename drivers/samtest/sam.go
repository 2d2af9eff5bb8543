package samtest

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// Method names a method of sam.SAM, for SAM's per-method errors and counts.
type Method string

// The methods of sam.SAM.
const (
	MethodReset  Method = "Reset"
	MethodStatus Method = "Status"
	MethodID     Method = "ID"
	MethodFind   Method = "Find"
	MethodSelect Method = "Select"
	MethodRead   Method = "Read"
	MethodClose  Method = "Close"
)

// Card is what SAM reads from its card.
type Card struct {
	Info    []byte      // 4 bytes of management information (Find)
	Serial  sam.Serial  // card serial (Select)
	Reading sam.Reading // files (Read); Fingerprint is returned only for sam.ReadFingerprint
}

// SAM is an in-memory fake sam.SAM for tests of the rack and the pool. It
// never touches its CardLink. Errors are set per method (SetErr) or a
// method made to hang until its context is done (SetHang); every call is
// counted, including failed ones. Without a card (SetCard) Find fails like
// a module that found none. After Close every method but Close fails with
// an error wrapping sam.ErrClosed. A SAM is safe for concurrent use.
type SAM struct {
	mu    sync.Mutex // mu guards everything below
	id    ga467.SAMID
	card  *Card
	errs  map[Method]error
	hang  map[Method]bool
	calls map[Method]int
	shut  bool
}

var _ sam.SAM = (*SAM)(nil)

// NewSAM returns a healthy fake SAM with the given ID and no card.
func NewSAM(id ga467.SAMID) *SAM {
	return &SAM{id: id, errs: map[Method]error{}, hang: map[Method]bool{}, calls: map[Method]int{}}
}

// SetErr makes m fail with err from now on; a nil err makes it succeed.
func (s *SAM) SetErr(m Method, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[m] = err
}

// SetHang makes m block until its context is done and then fail with an
// error wrapping sam.ErrTimeout, like a module that stopped answering.
func (s *SAM) SetHang(m Method, hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[m] = hang
}

// SetCard puts c in front of the SAM; nil takes the card away.
func (s *SAM) SetCard(c *Card) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.card = c
}

// Calls is how many times m was called.
func (s *SAM) Calls(m Method) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

// Closed reports whether Close was called.
func (s *SAM) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shut
}

// enter counts a call of m and returns the card, or the error m must fail
// with.
func (s *SAM) enter(ctx context.Context, m Method) (*Card, error) {
	s.mu.Lock()
	s.calls[m]++
	hang, err, card, shut := s.hang[m], s.errs[m], s.card, s.shut
	s.mu.Unlock()
	switch {
	case shut:
		return nil, fmt.Errorf("samtest: %s: %w", m, sam.ErrClosed)
	case hang:
		<-ctx.Done()
		return nil, fmt.Errorf("%w: samtest: %s hung: %w", sam.ErrTimeout, m, ctx.Err())
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, err
	}
	return card, nil
}

// Reset implements sam.Control.
func (s *SAM) Reset(ctx context.Context) error {
	_, err := s.enter(ctx, MethodReset)
	return err
}

// Status implements sam.Control.
func (s *SAM) Status(ctx context.Context) error {
	_, err := s.enter(ctx, MethodStatus)
	return err
}

// ID implements sam.Control.
func (s *SAM) ID(ctx context.Context) (ga467.SAMID, error) {
	if _, err := s.enter(ctx, MethodID); err != nil {
		return ga467.SAMID{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, nil
}

// Find implements sam.Card. Without a card it fails with a
// *ga467.StatusError of SW3 80 (find card failed).
func (s *SAM) Find(ctx context.Context, link sam.CardLink) ([]byte, error) {
	c, err := s.enter(ctx, MethodFind)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ga467.Status(ga467.SW3FindFailed).Err()
	}
	return bytes.Clone(c.Info), nil
}

// Select implements sam.Card. Without a card it fails with a
// *ga467.StatusError of SW3 81 (select card failed).
func (s *SAM) Select(ctx context.Context, link sam.CardLink) (sam.Serial, error) {
	c, err := s.enter(ctx, MethodSelect)
	if err != nil {
		return sam.Serial{}, err
	}
	if c == nil {
		return sam.Serial{}, ga467.Status(ga467.SW3SelectFailed).Err()
	}
	return c.Serial, nil
}

// Read implements sam.Card. Without a card it fails with a
// *ga467.StatusError of SW3 41 (read failed).
func (s *SAM) Read(ctx context.Context, link sam.CardLink, what sam.ReadWhat) (*sam.Reading, error) {
	c, err := s.enter(ctx, MethodRead)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ga467.Status(ga467.SW3ReadFailed).Err()
	}
	r := &sam.Reading{Text: bytes.Clone(c.Reading.Text), Photo: bytes.Clone(c.Reading.Photo)}
	if what == sam.ReadFingerprint {
		r.Fingerprint = bytes.Clone(c.Reading.Fingerprint)
	}
	return r, nil
}

// Close implements sam.SAM. It returns the error set for MethodClose, and
// closes the SAM even then.
func (s *SAM) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[MethodClose]++
	s.shut = true
	return s.errs[MethodClose]
}
