package samtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
)

// DefaultSlack is how late past its deadline an operation of a hung module
// may return when Caps.Slack is zero.
const DefaultSlack = 300 * time.Millisecond

// Harness is what Conformance needs of one driver: a way to open the driver
// on a fresh module, the fault knobs of that module, the deadlines it was
// opened with, and what its transport can and cannot do.
type Harness struct {
	// Open opens the driver on a new module: powered, healthy, idle, with
	// instant (zero-time) processing unless timing is what the driver
	// needs. It closes the SAM and everything behind it at the end of t
	// (t.Cleanup); the suite may have closed the SAM already. Every subtest
	// opens its own.
	Open func(t *testing.T) (sam.SAM, Module)
	// Reopen makes the driver usable again after m.Insert, for drivers that
	// cannot recover by themselves (a tty that was hung up, a pipe that was
	// closed): it closes old and returns a new SAM on the same module,
	// closed at the end of t. nil means the driver recovers by itself and
	// old is used again.
	Reopen func(t *testing.T, old sam.SAM, m Module) sam.SAM
	// Timeouts are the deadlines Open gave the driver. Control, Find,
	// Select and Read must be set: the hang subtests wait them out, so keep
	// them short (100 ms – 1 s).
	Timeouts samhost.Timeouts
	// Caps says what the transport can and cannot do.
	Caps Caps
}

// Caps are the differences between transports that the suite allows.
type Caps struct {
	// SeesRemoval says the transport tells a module that went away (an
	// error wrapping sam.ErrGone) from one that stopped answering
	// (sam.ErrTimeout). Without it, a removed module only times out.
	SeesRemoval bool
	// Settle bounds how long the transport may take to notice a module
	// removed, inserted, or answering again after a hang (pcscd polls its
	// readers every 400 ms). Operations in that window may fail, with
	// module faults only. Zero means at once: the first operation after the
	// event must give the final result.
	Settle time.Duration
	// Slack is how late past its deadline an operation may return;
	// zero means DefaultSlack.
	Slack time.Duration
	// NoSW3 lists the GA 467 SW3 error codes that cannot occur on the
	// transport, each with the reason; their subtests are skipped with it.
	NoSW3 map[byte]string
}

// Module is the module behind a driver under test, as the harness controls
// it: a virtual SAM (SimModule), or real hardware on a test bench with a
// power line. Its methods take effect from the next frame the module
// receives.
type Module interface {
	// SAMID is the module's SAM ID, as it reports it (12 FF).
	SAMID() ga467.SAMID
	// Hang makes the module stop answering (on) or answer again (off).
	Hang(on bool)
	// FailNext makes the module answer the next n frames with the GA 467
	// error code sw3.
	FailNext(sw3 byte, n int)
	// Remove takes the module away: unplugged, vanished, or powered off.
	Remove()
	// Insert brings a removed module back, powered and booted.
	Insert()
}

// SimModule is a Module over a virtual SAM of package sim. Remove and
// Insert vanish and replug it, or with Power switch it off and on (which a
// PC/SC reader sees as the card pulled and put back).
type SimModule struct {
	SAM   *sim.SAM
	Power bool
}

var _ Module = (*SimModule)(nil)

// SAMID implements Module.
func (m *SimModule) SAMID() ga467.SAMID { return m.SAM.ID() }

// Hang implements Module.
func (m *SimModule) Hang(on bool) { m.SAM.SetHang(on) }

// FailNext implements Module.
func (m *SimModule) FailNext(sw3 byte, n int) { m.SAM.FailNext(sw3, n) }

// Remove implements Module.
func (m *SimModule) Remove() {
	if m.Power {
		m.SAM.PowerOff()
		return
	}
	m.SAM.Vanish()
}

// Insert implements Module.
func (m *SimModule) Insert() {
	if m.Power {
		m.SAM.PowerOn()
		return
	}
	m.SAM.Replug()
}

// StreamTimeouts are deadlines that suit a virtual SAM behind a pipe or a
// pty: short, so the hang subtests run quickly.
var StreamTimeouts = samhost.Timeouts{
	Control: 100 * time.Millisecond,
	Find:    150 * time.Millisecond,
	Select:  150 * time.Millisecond,
	Read:    200 * time.Millisecond,
}

// SimHarness is the Harness of a driver whose module is a zero-time
// virtual SAM reached through a fresh transport that open attaches to it
// (a pipe, a pty): Open makes the SAM and attaches it; Reopen, after a
// removal, closes the old SAM and attaches the replugged one anew, since a
// vanished module's transport cannot be re-attached (a USB-serial adapter
// plugged in again may come back as another tty). Removal is seen.
func SimHarness(to samhost.Timeouts, open func(t *testing.T, s *sim.SAM) sam.SAM) Harness {
	return Harness{
		Open: func(t *testing.T) (sam.SAM, Module) {
			s := sim.NewSAM(1, sim.SAMOptions{Timing: &sim.SAMTiming{}})
			m := open(t, s)
			t.Cleanup(s.ClearFaults) // runs first: a hung SAM is closed unhung
			return m, &SimModule{SAM: s}
		},
		Reopen: func(t *testing.T, old sam.SAM, m Module) sam.SAM {
			old.Close()
			return open(t, m.(*SimModule).SAM)
		},
		Timeouts: to,
		Caps:     Caps{SeesRemoval: true},
	}
}

// Conformance is the one test body every SAM driver must pass (NATS runs
// one body over its memory and file stores; this is that for SAM drivers).
// Each driver's package runs it from a test with a Harness that opens the
// driver on a virtual SAM behind its real transport: a pipe (sim.Open), a
// pty (sim.NewPTY and serial.Open), a vpcd reader of a real pcscd
// (pcsctest, sim.SAM.ServeVPCD and the pcsc driver). Hardware benches can
// run it too, with a Module over a real module and its power line.
//
// The contract, one subtest each:
//
//   - Status: Status of a healthy module succeeds.
//   - ID: ID returns the module's SAM ID (Module.SAMID).
//   - Reset: Reset succeeds, and the module works after it.
//   - Read: Find, Select and Read of a card behind a sam.CardLink (a
//     virtual card of package sim run with idcard.Run) give 4 bytes of
//     management information, the card's serial, and its files: the text
//     decodes (ga467.DecodeText) to the card's identity, for every card
//     type; the photo is the card's; ReadFingerprint also gives the
//     fingerprint, or none for a card without one.
//   - ErrorCodes: every SW3 error code of ga467.ErrorCodes, answered by
//     the module (Module.FailNext), comes back as a *ga467.StatusError with
//     that SW3 that errors.Is the code's named error and is a module fault
//     exactly when the bare status error is (the driver adds no wrapping
//     that changes sam.ModuleFault); the module works at the next call.
//     Codes the transport cannot carry (Caps.NoSW3) are skipped. Every
//     method passes status errors through.
//   - CardLink: a card link that fails (no card at Find, the card pulled
//     in the middle of Read) gives an error wrapping sam.ErrCardLink that is
//     not a module fault; after a Reset the module reads cards again.
//   - Hang: a module that stops answering makes the operation fail with an
//     error wrapping sam.ErrTimeout, not before the operation's deadline
//     (Harness.Timeouts) and not later than the deadline plus Caps.Slack,
//     for a control command and in the middle of a read's card-frame
//     tunnel. Once the module answers again, Reset succeeds (at once, or
//     within Caps.Settle; failures before are module faults), and the
//     module works: Status, ID, a whole read.
//   - Removal: once the module is removed, operations fail with an error
//     wrapping sam.ErrGone (sam.ErrTimeout if !Caps.SeesRemoval): the
//     first one, or within Caps.Settle with only module faults before; it
//     never succeeds. Once it is inserted again (and Harness.Reopen ran, if
//     set) it works: at once, or within Caps.Settle.
//   - Close: Close returns nil, and again nil when called again; after it
//     every method fails with an error wrapping sam.ErrClosed, at once.
//   - Concurrent: calls from two goroutines, one reading cards and one
//     running Status and ID, all succeed with the right results: a driver
//     runs calls one at a time. (A card session spans three calls; keeping
//     it whole is the caller's job, so only one goroutine reads cards.)
//
// No call may hang: every call must return within its deadline plus slack,
// or the suite fails it (leaking the stuck goroutine). No subtest may leave
// a goroutine behind once the harness's cleanups have run.
func Conformance(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("samtest: Harness.Open is nil")
	}
	to := h.Timeouts
	if to.Control <= 0 || to.Find <= 0 || to.Select <= 0 || to.Read <= 0 {
		t.Fatalf("samtest: Harness.Timeouts %+v: set every deadline, and keep them short", to)
	}
	c := &suite{h: h, slack: h.Caps.Slack}
	if c.slack <= 0 {
		c.slack = DefaultSlack
	}
	for _, st := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Status", c.testStatus},
		{"ID", c.testID},
		{"Reset", c.testReset},
		{"Read", c.testRead},
		{"ErrorCodes", c.testErrorCodes},
		{"CardLink", c.testCardLink},
		{"Hang", c.testHang},
		{"Removal", c.testRemoval},
		{"Close", c.testClose},
		{"Concurrent", c.testConcurrent},
	} {
		t.Run(st.name, st.run)
	}
}

type suite struct {
	h     Harness
	slack time.Duration
}

var bg = context.Background()

// open opens the driver for one subtest, after arranging that the subtest
// fails if goroutines remain once every cleanup has run.
func (c *suite) open(t *testing.T) (sam.SAM, Module) {
	t.Helper()
	checkLeaks(t)
	s, m := c.h.Open(t)
	if s == nil || m == nil {
		t.Fatal("samtest: Harness.Open returned nil")
	}
	return s, m
}

func (c *suite) testStatus(t *testing.T) {
	s, _ := c.open(t)
	if err := s.Status(bg); err != nil {
		t.Fatalf("status: %v", err)
	}
}

func (c *suite) testID(t *testing.T) {
	s, m := c.open(t)
	c.checkID(t, s, m)
}

func (c *suite) testReset(t *testing.T) {
	s, m := c.open(t)
	if err := s.Reset(bg); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if err := s.Status(bg); err != nil {
		t.Fatalf("status after reset: %v", err)
	}
	c.checkID(t, s, m)
	if err := ReadCard(bg, s, 1, sam.ReadTextPhoto); err != nil {
		t.Fatalf("read after reset: %v", err)
	}
}

func (c *suite) checkID(t *testing.T, s sam.SAM, m Module) {
	t.Helper()
	id, err := s.ID(bg)
	if err != nil {
		t.Fatalf("ID: %v", err)
	}
	if want := m.SAMID(); id != want {
		t.Fatalf("ID = %v, want %v", id, want)
	}
}

func (c *suite) testRead(t *testing.T) {
	s, _ := c.open(t)
	for i, typ := range []ga467.CardType{ga467.Resident, ga467.HKMacaoTaiwan, ga467.ForeignPerm, ga467.ForeignPerm2023} {
		card := sim.NewCard(int64(10+i), sim.CardOptions{Type: typ, Timing: &sim.RFTiming{}})
		if err := readCard(bg, s, card, sam.ReadTextPhoto); err != nil {
			t.Errorf("text+photo, %v: %v", typ, err)
		}
	}
	if err := ReadCard(bg, s, 20, sam.ReadFingerprint); err != nil {
		t.Errorf("text+photo+fingerprint: %v", err)
	}
	// A card without a fingerprint file reads with an empty fingerprint.
	card := sim.NewCard(21, sim.CardOptions{Timing: &sim.RFTiming{}})
	if err := readCard(bg, s, card, sam.ReadFingerprint); err != nil {
		t.Errorf("text+photo+fingerprint of a card without one: %v", err)
	}
}

func (c *suite) testErrorCodes(t *testing.T) {
	s, m := c.open(t)
	for _, code := range ga467.ErrorCodes() {
		t.Run(fmt.Sprintf("SW3_%02X", code), func(t *testing.T) {
			if why, ok := c.h.Caps.NoSW3[code]; ok {
				t.Skipf("SW3 %02X cannot occur on this transport: %s", code, why)
			}
			m.FailNext(code, 1)
			checkStatusError(t, "status", s.Status(bg), code)
			if err := s.Status(bg); err != nil {
				t.Fatalf("status after SW3 %02X: %v", code, err)
			}
		})
	}
	// Every method passes a status error through, the card ones included
	// (injected as the card session reaches them).
	const code = ga467.SW3Unrecognised
	t.Run("EveryMethod", func(t *testing.T) {
		card := sim.NewCard(30, sim.CardOptions{Timing: &sim.RFTiming{}})
		link := CardLink(card)
		m.FailNext(code, 1)
		checkStatusError(t, "reset", s.Reset(bg), code)
		m.FailNext(code, 1)
		_, err := s.ID(bg)
		checkStatusError(t, "ID", err, code)
		m.FailNext(code, 1)
		_, err = s.Find(bg, link)
		checkStatusError(t, "find", err, code)
		if _, err := s.Find(bg, link); err != nil {
			t.Fatalf("find: %v", err)
		}
		m.FailNext(code, 1)
		_, err = s.Select(bg, link)
		checkStatusError(t, "select", err, code)
		if _, err := s.Find(bg, link); err != nil {
			t.Fatalf("find: %v", err)
		}
		if _, err := s.Select(bg, link); err != nil {
			t.Fatalf("select: %v", err)
		}
		m.FailNext(code, 1)
		_, err = s.Read(bg, link, sam.ReadTextPhoto)
		checkStatusError(t, "read", err, code)
		if err := readCard(bg, s, card, sam.ReadTextPhoto); err != nil {
			t.Fatalf("read after the injected errors: %v", err)
		}
	})
}

// checkStatusError checks that err is the module's answer SW3 code.
func checkStatusError(t *testing.T, op string, err error, code byte) {
	t.Helper()
	bare := &ga467.StatusError{SW3: code}
	var se *ga467.StatusError
	switch {
	case !errors.As(err, &se):
		t.Errorf("%s with SW3 %02X injected: %v, want a *ga467.StatusError", op, code, err)
		return
	case se.SW3 != code:
		t.Errorf("%s with SW3 %02X injected: SW3 %02X (%v)", op, code, se.SW3, err)
	case !errors.Is(err, bare.Unwrap()):
		t.Errorf("%s with SW3 %02X injected: %v does not wrap %q", op, code, err, bare.Unwrap())
	}
	if got, want := sam.ModuleFault(err), sam.ModuleFault(bare); got != want {
		t.Errorf("%s with SW3 %02X injected: ModuleFault(%v) = %v, want %v as for the bare status",
			op, code, err, got, want)
	}
}

func (c *suite) testCardLink(t *testing.T) {
	s, _ := c.open(t)
	checkLinkErr := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, sam.ErrCardLink) {
			t.Fatalf("%s: %v, want sam.ErrCardLink", op, err)
		}
		if sam.ModuleFault(err) {
			t.Errorf("%s: ModuleFault(%v) = true, want false: the card failed, not the module", op, err)
		}
	}

	// No card in the field at all.
	card := sim.NewCard(40, sim.CardOptions{Timing: &sim.RFTiming{}})
	card.Remove()
	_, err := s.Find(bg, CardLink(card))
	checkLinkErr("find without a card", err)
	if err := s.Reset(bg); err != nil {
		t.Fatalf("reset after the link failed: %v", err)
	}

	// The card leaves in the middle of Read: the first card exchange
	// (the challenge) goes through, the second (authenticate and read)
	// finds no card.
	card.Insert()
	link := CardLink(card)
	if _, err := s.Find(bg, link); err != nil {
		t.Fatalf("find: %v", err)
	}
	if _, err := s.Select(bg, link); err != nil {
		t.Fatalf("select: %v", err)
	}
	n := 0
	pull := LinkFunc(func(ctx context.Context, cmds [][]byte) ([][]byte, error) {
		if n++; n == 2 {
			card.Remove()
		}
		return link.Exchange(ctx, cmds)
	})
	_, err = s.Read(bg, pull, sam.ReadTextPhoto)
	checkLinkErr("read with the card pulled", err)
	if n != 2 {
		t.Errorf("read ran %d card exchanges, want 2: it must stop at the failed one", n)
	}

	// The module is not at fault, but its card session is in an unknown
	// state: after a reset it reads again.
	if err := s.Reset(bg); err != nil {
		t.Fatalf("reset after the link failed: %v", err)
	}
	card.Insert()
	if err := readCard(bg, s, card, sam.ReadTextPhoto); err != nil {
		t.Fatalf("read after the reset: %v", err)
	}
}

func (c *suite) testHang(t *testing.T) {
	t.Run("Control", func(t *testing.T) {
		s, m := c.open(t)
		if err := s.Status(bg); err != nil {
			t.Fatalf("status: %v", err)
		}
		m.Hang(true)
		t.Cleanup(func() { m.Hang(false) }) // before the harness closes
		c.checkTimeout(t, "status of a hung module", c.h.Timeouts.Control, func() error { return s.Status(bg) })
		m.Hang(false)
		c.recover(t, s, m)
	})
	t.Run("MidRead", func(t *testing.T) {
		s, m := c.open(t)
		card := sim.NewCard(50, sim.CardOptions{Timing: &sim.RFTiming{}})
		link := CardLink(card)
		if _, err := s.Find(bg, link); err != nil {
			t.Fatalf("find: %v", err)
		}
		if _, err := s.Select(bg, link); err != nil {
			t.Fatalf("select: %v", err)
		}
		t.Cleanup(func() { m.Hang(false) })
		// The module hangs while the reader runs its first card exchange:
		// the card's replies get no answer.
		hang := LinkFunc(func(ctx context.Context, cmds [][]byte) ([][]byte, error) {
			m.Hang(true)
			return link.Exchange(ctx, cmds)
		})
		c.checkTimeout(t, "read with the module hung in the tunnel", c.h.Timeouts.Read, func() error {
			_, err := s.Read(bg, hang, sam.ReadTextPhoto)
			return err
		})
		m.Hang(false)
		c.recover(t, s, m)
	})
}

// checkTimeout runs op, which must fail with sam.ErrTimeout at its deadline.
func (c *suite) checkTimeout(t *testing.T, what string, deadline time.Duration, op func() error) {
	t.Helper()
	start := time.Now()
	err := c.within(t, what, deadline, op)
	took := time.Since(start)
	if !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("%s: %v, want sam.ErrTimeout", what, err)
	}
	if !sam.ModuleFault(err) {
		t.Errorf("%s: ModuleFault(%v) = false", what, err)
	}
	if took < deadline {
		t.Errorf("%s: gave up after %v, before its deadline %v", what, took, deadline)
	}
	if took > deadline+c.slack {
		t.Errorf("%s: gave up after %v, want its deadline %v (+ %v slack)", what, took, deadline, c.slack)
	}
}

// recover checks what the suite expects after a hang ends: Reset succeeds
// once the module answers again, and then the module works.
func (c *suite) recover(t *testing.T, s sam.SAM, m Module) {
	t.Helper()
	if err := c.settle(t, "reset after the hang", func() error { return s.Reset(bg) }); err != nil {
		t.Fatalf("reset after the hang: %v", err)
	}
	if err := s.Status(bg); err != nil {
		t.Fatalf("status after the hang: %v", err)
	}
	c.checkID(t, s, m)
	if err := ReadCard(bg, s, 51, sam.ReadTextPhoto); err != nil {
		t.Fatalf("read after the hang: %v", err)
	}
}

func (c *suite) testRemoval(t *testing.T) {
	s, m := c.open(t)
	if err := s.Status(bg); err != nil {
		t.Fatalf("status: %v", err)
	}
	want, wantTo := sam.ErrGone, c.h.Timeouts.Control
	if !c.h.Caps.SeesRemoval {
		want = sam.ErrTimeout
	}
	m.Remove()
	inserted := false
	t.Cleanup(func() {
		if !inserted {
			m.Insert() // let the harness close a module that is there
		}
	})

	err := c.poll(c.h.Caps.Settle, func() (bool, error) {
		err := c.within(t, "status of a removed module", wantTo, func() error { return s.Status(bg) })
		switch {
		case err == nil:
			t.Fatal("status of a removed module succeeded")
		case errors.Is(err, want):
			return true, err
		case !sam.ModuleFault(err):
			t.Errorf("status of a removed module: %v is not a module fault", err)
		}
		return false, err
	})
	if !errors.Is(err, want) {
		t.Fatalf("status of a removed module: %v, want %v", err, want)
	}
	if !sam.ModuleFault(err) {
		t.Errorf("ModuleFault(%v) = false", err)
	}
	// Once seen, it stays so for every method.
	_, err = c.withinID(t, s)
	if !errors.Is(err, want) {
		t.Errorf("ID of a removed module: %v, want %v", err, want)
	}
	err = c.within(t, "find with the module removed", c.h.Timeouts.Find, func() error {
		_, err := s.Find(bg, CardLink(sim.NewCard(60, sim.CardOptions{Timing: &sim.RFTiming{}})))
		return err
	})
	if !errors.Is(err, want) {
		t.Errorf("find of a removed module: %v, want %v", err, want)
	}

	m.Insert()
	inserted = true
	if c.h.Reopen != nil {
		s = c.h.Reopen(t, s, m)
	}
	if err := c.settle(t, "status after reinsertion", func() error { return s.Status(bg) }); err != nil {
		t.Fatalf("status after reinsertion: %v", err)
	}
	c.checkID(t, s, m)
	if err := ReadCard(bg, s, 61, sam.ReadFingerprint); err != nil {
		t.Fatalf("read after reinsertion: %v", err)
	}
}

func (c *suite) withinID(t *testing.T, s sam.SAM) (ga467.SAMID, error) {
	var id ga467.SAMID
	err := c.within(t, "ID", c.h.Timeouts.Control, func() (err error) {
		id, err = s.ID(bg)
		return err
	})
	return id, err
}

func (c *suite) testClose(t *testing.T) {
	s, _ := c.open(t)
	if err := s.Status(bg); err != nil {
		t.Fatalf("status: %v", err)
	}
	for i := range 2 {
		if err := c.within(t, "close", c.slack, s.Close); err != nil {
			t.Errorf("close #%d: %v", i+1, err)
		}
	}
	link := CardLink(sim.NewCard(70, sim.CardOptions{Timing: &sim.RFTiming{}}))
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"status", func() error { return s.Status(bg) }},
		{"reset", func() error { return s.Reset(bg) }},
		{"ID", func() error { _, err := s.ID(bg); return err }},
		{"find", func() error { _, err := s.Find(bg, link); return err }},
		{"select", func() error { _, err := s.Select(bg, link); return err }},
		{"read", func() error { _, err := s.Read(bg, link, sam.ReadTextPhoto); return err }},
	} {
		// "At once": well before any deadline of the driver.
		if err := c.within(t, op.name+" after close", c.slack, op.call); !errors.Is(err, sam.ErrClosed) {
			t.Errorf("%s after close: %v, want sam.ErrClosed", op.name, err)
		}
	}
}

func (c *suite) testConcurrent(t *testing.T) {
	s, m := c.open(t)
	const reads, controls = 8, 40
	want := m.SAMID()
	var wg sync.WaitGroup
	var readErr, ctlErr error
	wg.Go(func() {
		for i := range reads {
			what := sam.ReadTextPhoto
			if i%2 == 1 {
				what = sam.ReadFingerprint
			}
			if err := ReadCard(bg, s, int64(80+i), what); err != nil {
				readErr = fmt.Errorf("read %d: %w", i, err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range controls {
			if err := s.Status(bg); err != nil {
				ctlErr = fmt.Errorf("status %d: %w", i, err)
				return
			}
			id, err := s.ID(bg)
			if err == nil && id != want {
				err = fmt.Errorf("SAM ID %v, want %v", id, want)
			}
			if err != nil {
				ctlErr = fmt.Errorf("ID %d: %w", i, err)
				return
			}
		}
	})
	wg.Wait()
	if err := errors.Join(readErr, ctlErr); err != nil {
		t.Fatal(err)
	}
}

// within runs op and returns its error, failing the test if op has not
// returned after deadline plus slack: a driver that hangs fails the suite
// instead of blocking it. op's goroutine then leaks; nothing can stop it.
func (c *suite) within(t *testing.T, what string, deadline time.Duration, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }() // ends with op
	limit := time.NewTimer(deadline + c.slack)
	defer limit.Stop()
	select {
	case err := <-done:
		return err
	case <-limit.C:
		t.Fatalf("%s: still running after %v: the driver hangs", what, deadline+c.slack)
		return nil
	}
}

// settle calls op until it succeeds, for up to Caps.Settle (just once if
// that is zero); failures on the way must be module faults. It returns
// op's last error.
func (c *suite) settle(t *testing.T, what string, op func() error) error {
	t.Helper()
	return c.poll(c.h.Caps.Settle, func() (bool, error) {
		err := c.within(t, what, c.h.Timeouts.Control, op)
		if err != nil && !sam.ModuleFault(err) {
			t.Errorf("%s: %v is not a module fault", what, err)
		}
		return err == nil, err
	})
}

// poll calls try every 10 ms until it reports done or wait has passed, at
// least once, and returns its last error.
func (c *suite) poll(wait time.Duration, try func() (done bool, err error)) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := try()
		if done || !time.Now().Before(deadline) {
			return err
		}
		<-tick.C
	}
}

// CardLink is the reader side of the card-frame tunnel for a virtual card:
// it runs the SAM's card frames on card with idcard.Run, as a reader
// terminal does.
func CardLink(card *sim.Card) sam.CardLink {
	return LinkFunc(func(ctx context.Context, cmds [][]byte) ([][]byte, error) {
		return idcard.Run(ctx, card, cmds)
	})
}

// ReadCard runs a whole card session (Find, Select, Read) on s with a new
// virtual card of the given seed, instant on the air, with a fingerprint
// file when what is sam.ReadFingerprint, and checks what s read against the
// card.
func ReadCard(ctx context.Context, s sam.SAM, seed int64, what sam.ReadWhat) error {
	card := sim.NewCard(seed, sim.CardOptions{Timing: &sim.RFTiming{}, Fingerprint: what == sam.ReadFingerprint})
	return readCard(ctx, s, card, what)
}

func readCard(ctx context.Context, s sam.SAM, card *sim.Card, what sam.ReadWhat) error {
	link := CardLink(card)
	info, err := s.Find(ctx, link)
	if err != nil {
		return fmt.Errorf("find: %w", err)
	}
	if len(info) != 4 {
		return fmt.Errorf("find: %d bytes of management information, want 4", len(info))
	}
	serial, err := s.Select(ctx, link)
	if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if serial != sam.Serial(card.Serial()) {
		return fmt.Errorf("select: serial % X, want % X", serial, card.Serial())
	}
	rd, err := s.Read(ctx, link, what)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	id, err := ga467.DecodeText(rd.Text)
	if err != nil {
		return fmt.Errorf("read: text: %w", err)
	}
	if want := card.Identity(); *id != want {
		// Identities are shaped like personal data: say which, not what.
		return fmt.Errorf("read: text decodes to %s, want %s", id.Redacted(), want.Redacted())
	}
	if !bytes.Equal(rd.Photo, card.Photo()) {
		return errors.New("read: photo differs from the card's")
	}
	if what == sam.ReadFingerprint && !bytes.Equal(rd.Fingerprint, card.Fingerprint()) {
		return fmt.Errorf("read: fingerprint of %d bytes differs from the card's %d", len(rd.Fingerprint), len(card.Fingerprint()))
	}
	if what != sam.ReadFingerprint && rd.Fingerprint != nil {
		return errors.New("read: fingerprint returned for a text+photo read")
	}
	return nil
}

// checkLeaks fails t if, once its cleanups have run, it has more goroutines
// than it started with. Goroutines that are finishing get up to 3 s.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			<-tick.C
		}
	})
}
