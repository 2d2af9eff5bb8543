package appliance

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim"
)

// "Card removed mid-read → release and reset the SAM; nothing half-sent":
// the card leaves the field after some of the SAM's commands; the reader
// gets 203, the SAM is reset (not suspected: no fault, no recovery) and
// serves the next read.
func TestCardRemovedMidRead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch bool
		after int // commands the card answers (the SDK's prefetch is 4)
	}{
		{"before mutual auth", true, 4},
		{"between block reads", true, 6},
		{"unbatched, at find", false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{})
			c := r.dial(r.addReader("R-0001", credentials.CipherSM4), client.WithBatching(tc.batch))
			card := newCard(1, sim.CardOptions{})
			hook := &rfHook{rf: card, at: func(n int, _ []byte) bool { return n == tc.after+1 }, fire: card.Remove}

			_, err := r.read(c, hook, client.ReadOptions{})
			wantCode(t, err, wire.CardGone)
			if !errors.Is(err, idcard.ErrNoCard) {
				t.Errorf("error %v does not say the card left", err)
			}
			e := r.wantEvent("read.failed", "R-0001", wire.CardGone)
			if e.Slot < 0 || e.Card != r.cardHash(card.Serial()) {
				t.Errorf("read.failed %+v, want the SAM and the card", e)
			}
			r.wantEvents(audit.KindReadOK, 0)
			r.wantEvents(audit.KindSAMFault, 0)
			r.wantEvents("slot.recovery-started", 0)
			r.wantStats(0, map[wire.Code]uint64{wire.CardGone: 1})
			r.checkPool()

			card.Insert() // presented again: read on the same connection
			r.mustRead(c, card, nil, client.ReadOptions{})
		})
	}
}

// "Reader gone mid-read → release and reset the SAM": the reader closes
// its connection while the SAM waits for the card's answers. The SAM is
// released, reset and leasable again; the read is audited as failed.
func TestReaderGoneMidRead(t *testing.T) {
	r := startRig(t, rigOptions{sams: 1})
	b := r.addReader("R-0001", credentials.CipherSM4)
	card := newCard(1, sim.CardOptions{})
	rc := r.rawDial(b)
	s := rc.open(card, rawOpen{})
	s.untilScript()
	rc.tc.Close()

	r.checkPool() // waits for the SAM: it comes back once released and reset
	r.wantEvent("read.failed", "R-0001", wire.CardGone)
	r.wantEvents(audit.KindReadOK, 0)
	r.wantEvents(audit.KindFrameMalformed, 0)
	r.wantEvents(audit.KindSAMFault, 0)
	r.wantStats(0, map[wire.Code]uint64{wire.CardGone: 1})
	r.mustRead(r.dial(b), card, nil, client.ReadOptions{})
}

// A reader that stalls — never answers the card script — gets 406 after
// ReaderTimeout and its connection closed; the SAM is released and reset.
// The same holds for a one-message-per-frame reader that stalls between
// phases while it holds a SAM: ReaderTimeout, not the idle timeout.
func TestReaderStalls(t *testing.T) {
	const readerTimeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"card script unanswered", true}, {"between phases", false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{sams: 1, dispatch: dispatch.Config{ReaderTimeout: readerTimeout, IdleTimeout: 10 * time.Second}})
			b := r.addReader("R-0001", credentials.CipherSM4)
			card := newCard(1, sim.CardOptions{})
			rc := r.rawDial(b)
			s := rc.open(card, rawOpen{unbatch: !tc.batch})
			if tc.batch {
				s.untilScript()
			} else if turn := s.next(); !turn.accept {
				t.Fatalf("want Accept, got %T", turn.msgs[0])
			}
			if st := r.a.Rack().Stats(); st.Busy != 1 {
				t.Fatalf("rack %+v, want the SAM leased", st)
			}
			start := time.Now()
			rc.wantError(wire.Timeout)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("406 after %v, want about ReaderTimeout (%v)", d, readerTimeout)
			}
			rc.wantClosed()
			r.wantEvent("read.failed", "R-0001", wire.Timeout)
			r.wantStats(0, map[wire.Code]uint64{wire.Timeout: 1})
			r.checkPool()
			r.mustRead(r.dial(b), card, nil, client.ReadOptions{})
		})
	}
}

// "Appliance fails mid-read → reader reconnects and retries": Run's
// context ends while a read waits for the reader. The reader sees an error
// or its connection closed (never data), Run returns with nothing left
// running, and an appliance started again on the same data and address
// serves the retry of the same reader.
func TestShutdownMidRead(t *testing.T) {
	r := startRig(t, rigOptions{})
	b := r.addReader("R-0001", credentials.CipherSM4)
	c := r.dial(b)
	card := newCard(1, sim.CardOptions{})
	r.mustRead(c, card, nil, client.ReadOptions{}) // a warm connection, idle at shutdown

	rc := r.rawDial(b)
	s := rc.open(card, rawOpen{})
	s.untilScript()
	r.stop() // cancels Run, waits for it, checks for leaked goroutines
	for {
		msgs, err := rc.recv()
		if err != nil {
			break // closed
		}
		for _, m := range msgs {
			if _, ok := m.(*wire.Error); !ok {
				t.Fatalf("got %T from a stopping appliance, want an Error or nothing", m)
			}
		}
	}

	// The same appliance comes back (a restart, or the VIP's next node).
	r2 := startRig(t, rigOptions{dataDir: r.a.cfg.DataDir, listen: r.a.ReaderAddr()})
	res, err := r2.read(c, card, client.ReadOptions{})
	if err != nil {
		// The SDK learns here that its connection died with the old
		// appliance; it redials on the next read.
		t.Logf("first read after the restart: %v", err)
		res, err = r2.read(c, card, client.ReadOptions{})
	}
	if err != nil {
		t.Fatalf("retry after the restart: %v", err)
	}
	checkResult(t, res, card, client.ReadOptions{})
	r2.wantEvents(audit.KindReadOK, 1)
	r2.checkPool()
}

// TestSessionIdleTimeoutBelowReaderTimeout: a session idle timeout the
// front end's wait for its reader could reach is refused before anything
// opens (the host would take the SAM back from a session that is only
// waiting for its card).
func TestSessionIdleTimeoutBelowReaderTimeout(t *testing.T) {
	for _, c := range []struct {
		idle, reader time.Duration
	}{{5 * time.Second, 0}, {time.Second, 0}, {10 * time.Second, 10 * time.Second}} {
		dir := t.TempDir()
		a, err := New(Config{DataDir: dir, SessionIdleTimeout: c.idle, Dispatch: dispatch.Config{ReaderTimeout: c.reader}})
		if err == nil || !strings.Contains(err.Error(), "must exceed the reader timeout") {
			if a != nil {
				a.close()
			}
			t.Fatalf("idle %v, reader timeout %v: %v", c.idle, c.reader, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("idle %v: refused but left %d entries in the data directory", c.idle, len(ents))
		}
	}
}
