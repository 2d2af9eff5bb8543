package dispatch

import (
	"sync"
	"time"
)

// cloneTracker remembers which reader last read each card (by keyed hash)
// and when, to flag a card read by two readers too quickly for one card.
type cloneTracker struct {
	window time.Duration

	mu   sync.Mutex // mu guards last
	last map[string]lastRead
}

type lastRead struct {
	reader string
	at     time.Time
}

// maxTracked bounds the tracker's memory; when full, expired entries are
// dropped, and if that is not enough the map starts afresh.
const maxTracked = 1 << 20

func newCloneTracker(window time.Duration) *cloneTracker {
	return &cloneTracker{window: window, last: map[string]lastRead{}}
}

// seen records a read of card by reader at now and reports the other reader
// if a different one read the card within the window.
func (t *cloneTracker) seen(card, reader string, now time.Time) (string, bool) {
	if t.window < 0 {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, ok := t.last[card]
	if len(t.last) >= maxTracked {
		for k, v := range t.last {
			if now.Sub(v.at) > t.window {
				delete(t.last, k)
			}
		}
		if len(t.last) >= maxTracked {
			clear(t.last)
		}
	}
	t.last[card] = lastRead{reader: reader, at: now}
	if ok && prev.reader != reader && now.Sub(prev.at) <= t.window {
		return prev.reader, true
	}
	return "", false
}
