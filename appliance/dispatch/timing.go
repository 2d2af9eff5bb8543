package dispatch

import "time"

// ReadTiming is where the time of one successful read went, as the
// appliance saw it. Overhead is the appliance's own work: decoding, checks,
// crypto, leasing, relaying. SAM time and the waits for the reader are not
// in it.
type ReadTiming struct {
	Total      time.Duration // Open received → Result queued
	Overhead   time.Duration
	Hold       time.Duration // the SAM's lease: leased → released
	ReaderWait time.Duration // waiting for the reader's card replies while the SAM was held
}

// stopwatch accumulates the time the connection's goroutine spends on the
// appliance's own work for the current session: it runs while a frame is
// handled and is paused inside SAM operations and while waiting for the
// reader (link exchanges resume it for their own work).
type stopwatch struct {
	total   time.Duration
	since   time.Time // zero when paused
	started time.Time
	leased  time.Time     // when the current SAM was leased
	wait    time.Duration // reader waits since
}

func (w *stopwatch) reset() {
	now := time.Now()
	*w = stopwatch{since: now, started: now}
}

func (w *stopwatch) resume() {
	if w.since.IsZero() {
		w.since = time.Now()
	}
}

func (w *stopwatch) pause() {
	if !w.since.IsZero() {
		w.total += time.Since(w.since)
		w.since = time.Time{}
	}
}

// exclude takes d, spent elsewhere (the session host's SAM time), out of
// the overhead.
func (w *stopwatch) exclude(d time.Duration) { w.total -= d }

func (w *stopwatch) timing() ReadTiming {
	t := ReadTiming{Overhead: w.total, Total: time.Since(w.started), Hold: time.Since(w.leased), ReaderWait: w.wait}
	if !w.since.IsZero() {
		t.Overhead += time.Since(w.since)
	}
	return t
}
