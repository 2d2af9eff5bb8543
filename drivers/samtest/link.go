package samtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/samrack/samrack/drivers/sam"
)

// LinkFunc is a sam.CardLink backed by a function.
type LinkFunc func(ctx context.Context, cmds [][]byte) ([][]byte, error)

var _ sam.CardLink = LinkFunc(nil)

// Exchange implements sam.CardLink.
func (f LinkFunc) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	return f(ctx, cmds)
}

// LinkStep is one step of a Link's script.
type LinkStep struct {
	Cmds    [][]byte // the card frames expected; nil accepts any
	Replies [][]byte // the card's replies
	Err     error    // returned instead of the replies
}

// Link is a scripted fake sam.CardLink: each Exchange takes the next step
// of its script. Frames that differ from the step's get an error wrapping
// ErrUnexpected, reported again by Verify. A Link is safe for concurrent
// use.
type Link struct {
	mu     sync.Mutex // mu guards everything below
	script []LinkStep
	next   int
	calls  [][][]byte
	errs   []error
}

var _ sam.CardLink = (*Link)(nil)

// NewLink returns a Link with the given script.
func NewLink(script ...LinkStep) *Link { return &Link{script: script} }

// Exchange implements sam.CardLink. The replies are copies.
func (l *Link) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, cloneFrames(cmds))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var err error
	switch {
	case l.next == len(l.script):
		err = fmt.Errorf("%w: card exchange %d after the end of the script", ErrUnexpected, l.next)
	case l.script[l.next].Cmds != nil && !sameFrames(l.script[l.next].Cmds, cmds):
		err = fmt.Errorf("%w: card exchange %d: got %d frames % X, want %d frames % X",
			ErrUnexpected, l.next, len(cmds), cmds, len(l.script[l.next].Cmds), l.script[l.next].Cmds)
	default:
		s := l.script[l.next]
		l.next++
		if s.Err != nil {
			return nil, s.Err
		}
		return cloneFrames(s.Replies), nil
	}
	l.errs = append(l.errs, err)
	return nil, err
}

// Calls returns the card frames of every Exchange, in order.
func (l *Link) Calls() [][][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][][]byte(nil), l.calls...)
}

// Verify returns nil if every step was taken and no exchange was
// unexpected.
func (l *Link) Verify() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := append([]error(nil), l.errs...)
	if left := len(l.script) - l.next; left > 0 {
		errs = append(errs, fmt.Errorf("%w: %d card exchanges not taken", ErrUnmet, left))
	}
	return errors.Join(errs...)
}

func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func cloneFrames(f [][]byte) [][]byte {
	if f == nil {
		return nil
	}
	c := make([][]byte, len(f))
	for i := range f {
		c[i] = bytes.Clone(f[i])
	}
	return c
}
