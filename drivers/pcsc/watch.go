package pcsc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ebfe/scard"

	"github.com/samrack/samrack/drivers/sam"
)

// pnpReader is pcsc-lite's pseudo reader whose state changes when readers
// come and go.
const pnpReader = `\\?PnP?\Notification`

// watchWait bounds one SCardGetStatusChange of Watch, so that Watch also
// notices a pcscd that went away without a word.
const watchWait = 2 * time.Second

// maxStatusStates is the most reader states pcsc-lite takes in one
// SCardGetStatusChange (PCSCLITE_MAX_READERS_CONTEXTS), the PnP pseudo
// reader included; more fail with SCARD_E_INVALID_VALUE.
const maxStatusStates = 16

// ListReaders returns the names of pcscd's readers (none, not an error,
// when it has none). It gives up when ctx ends, with an error wrapping
// sam.ErrTimeout; the PC/SC call it started then ends on its own when pcscd
// answers or goes away.
func ListReaders(ctx context.Context) ([]string, error) {
	type result struct {
		names []string
		err   error
	}
	ch := make(chan result, 1)
	go func() { // ends when pcscd answers; see above
		names, err := listReaders()
		ch <- result{names, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("pcsc: list readers: %w", r.err)
		}
		return r.names, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pcsc: list readers: %w", ctxError(ctx, "no answer from pcscd"))
	}
}

func listReaders() ([]string, error) {
	sc, err := scard.EstablishContext()
	if err != nil {
		return nil, mapServiceError(err)
	}
	defer sc.Release()
	names, err := sc.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		return nil, mapServiceError(err)
	}
	return names, nil
}

func mapServiceError(err error) error {
	return fmt.Errorf("%w: %w", sam.ErrTransport, err)
}

// Watch reports cards (SAM modules) inserted into and removed from pcscd's
// readers until ctx is done, then returns ctx's error. It calls onChange
// once for every reader when it starts (present or not), then on every
// change: a reader added or removed, a card inserted or removed. A card
// swapped faster than pcscd's poll shows up as a removal then an insertion.
// When pcscd stops, every present card is reported removed; Watch keeps
// trying to reach pcscd (with backoff) and reports the readers again when
// it is back.
//
// onChange runs on Watch's goroutine, one call at a time; it must not
// block for long. Watch uses its own PC/SC context and stops its blocking
// SCardGetStatusChange with SCardCancel when ctx ends.
func Watch(ctx context.Context, onChange func(reader string, present bool)) error {
	w := watcher{seen: map[string]readerSeen{}, onChange: onChange}
	backoff := 20 * time.Millisecond
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			backoff = 20 * time.Millisecond
		}
		w.forgetAll()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

type readerSeen struct {
	present bool
	events  uint32 // pcsc-lite's event counter (upper 16 bits of the state)
}

type watcher struct {
	seen     map[string]readerSeen
	onChange func(string, bool)
}

func (w *watcher) forgetAll() {
	names := make([]string, 0, len(w.seen))
	for r := range w.seen {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		if w.seen[r].present {
			w.onChange(r, false)
		}
		delete(w.seen, r)
	}
}

// session watches with one PC/SC context until pcscd fails or ctx ends. It
// returns nil if it got as far as listing the readers.
func (w *watcher) session(ctx context.Context) error {
	sc, err := scard.EstablishContext()
	if err != nil {
		return err
	}
	defer sc.Release()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by session: ends at session's return
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-stop:
			return
		}
		// A cancel that arrives while no GetStatusChange waits is lost:
		// repeat it until session has noticed.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			sc.Cancel()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	for {
		readers, err := sc.ListReaders()
		if errors.Is(err, scard.ErrNoReadersAvailable) {
			readers, err = nil, nil
		}
		if err != nil {
			return err
		}
		slices.Sort(readers)
		for r, s := range w.seen {
			if !slices.Contains(readers, r) {
				delete(w.seen, r)
				if s.present {
					w.onChange(r, false)
				}
			}
		}
		rs := make([]scard.ReaderState, 0, len(readers)+1)
		for _, r := range readers {
			rs = append(rs, scard.ReaderState{Reader: r, CurrentState: scard.StateUnaware})
		}
		// A full pcscd (16 readers, all pcscd 1.9 serves) leaves no room
		// for the PnP reader: no reader can come then, and readers that
		// go are seen by listing them again after each timeout.
		withPnP := len(readers) < maxStatusStates
		if withPnP {
			rs = append(rs, scard.ReaderState{Reader: pnpReader, CurrentState: scard.StateUnaware})
		}
		first := true
		for {
			if ctx.Err() != nil {
				return nil
			}
			err := sc.GetStatusChange(rs, watchWait)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, scard.ErrTimeout) {
				if !withPnP {
					break
				}
				continue
			}
			if err != nil {
				return err
			}
			for i := range readers {
				w.update(rs[i], first)
				// Carry the event state forward, or the next call
				// returns at once.
				rs[i].CurrentState = rs[i].EventState &^ scard.StateChanged
			}
			changed := false
			if withPnP {
				pnp := &rs[len(rs)-1]
				changed = !first && pnp.EventState&scard.StateChanged != 0
				pnp.CurrentState = pnp.EventState &^ scard.StateChanged
			}
			first = false
			if changed {
				break // readers came or went: list them again
			}
		}
	}
}

// update reports what changed about one reader.
func (w *watcher) update(rs scard.ReaderState, first bool) {
	present := rs.EventState&scard.StatePresent != 0
	events := uint32(rs.EventState) >> 16
	old, ok := w.seen[rs.Reader]
	w.seen[rs.Reader] = readerSeen{present: present, events: events}
	switch {
	case !ok:
		w.onChange(rs.Reader, present)
	case old.present != present:
		w.onChange(rs.Reader, present)
	case present && old.events != events && !first:
		// Removed and inserted again between two looks.
		w.onChange(rs.Reader, false)
		w.onChange(rs.Reader, true)
	}
}
