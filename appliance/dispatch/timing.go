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
	SAM        time.Duration // inside SAM operations, as the session host timed them
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
	sam     time.Duration // the session host's SAM time since
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

// samTime takes d, spent in SAM operations on the session host, out of
// the overhead and adds it to the SAM's time.
func (w *stopwatch) samTime(d time.Duration) { w.total -= d; w.sam += d }

func (w *stopwatch) timing() ReadTiming {
	t := ReadTiming{Overhead: w.total, Total: time.Since(w.started), Hold: time.Since(w.leased), ReaderWait: w.wait, SAM: w.sam}
	if !w.since.IsZero() {
		t.Overhead += time.Since(w.since)
	}
	return t
}
