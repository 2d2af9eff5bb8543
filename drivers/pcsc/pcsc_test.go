package pcsc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/sim"
)

var bg = context.Background()

// readCard runs a whole read (find, select, read) of c on h and checks
// what came back.
func readCard(h sam.SAM, seed int64, what sam.ReadWhat) error {
	c := newCard(seed, what == sam.ReadFingerprint)
	link := cardLink(c)
	if _, err := h.Find(bg, link); err != nil {
		return fmt.Errorf("find: %w", err)
	}
	serial, err := h.Select(bg, link)
	if err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if serial != sam.Serial(c.Serial()) {
		return fmt.Errorf("select: serial % X, want % X", serial, c.Serial())
	}
	rd, err := h.Read(bg, link, what)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(rd.Text, c.Text()) || !bytes.Equal(rd.Photo, c.Photo()) {
		return errors.New("read: text or photo differ from the card's")
	}
	if what == sam.ReadFingerprint && !bytes.Equal(rd.Fingerprint, c.Fingerprint()) {
		return errors.New("read: fingerprint differs from the card's")
	}
	return nil
}

func TestSAMOverPCSC(t *testing.T) {
	r := newRig(t, 2, nil)
	h, _ := r.open(t, 1, samhost.Timeouts{})
	if err := h.Status(bg); err != nil {
		t.Fatalf("status: %v", err)
	}
	id, err := h.ID(bg)
	if err != nil || id != r.slots[1].sam.ID() {
		t.Fatalf("ID %v %v, want %v", id, err, r.slots[1].sam.ID())
	}
	if err := h.Reset(bg); err != nil {
		t.Fatalf("reset: %v", err)
	}
	for seed := int64(1); seed <= 3; seed++ {
		if err := readCard(h, seed, sam.ReadTextPhoto); err != nil {
			t.Fatalf("card %d: %v", seed, err)
		}
	}
	if err := readCard(h, 9, sam.ReadFingerprint); err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
}

func TestSAMErrorCodesPassThrough(t *testing.T) {
	r := newRig(t, 1, nil)
	h, _ := r.open(t, 0, samhost.Timeouts{})
	r.slots[0].sam.FailNext(ga467.SW3SelfTest, 1)
	err := h.Status(bg)
	var se *ga467.StatusError
	if !errors.As(err, &se) || se.SW3 != ga467.SW3SelfTest {
		t.Fatalf("status: %v, want SW3 60", err)
	}
	if err := h.Status(bg); err != nil {
		t.Fatalf("status after the fault: %v", err)
	}
}

func TestRawAPDUErrors(t *testing.T) {
	r := newRig(t, 1, nil)
	tr := pcsc.New(r.slots[0].reader.Name, pcsc.Options{})
	defer tr.Close()
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	// A command that does not fit an APDU is refused before it is sent.
	_, err := tr.Transact(ctx, ga467.Command{Cmd: 0x11, Para: 0xFF, Data: make([]byte, 0x10000)})
	if !errors.Is(err, sam.ErrProtocol) {
		t.Errorf("64 KiB command: %v, want ErrProtocol", err)
	}
	rep, err := tr.Transact(ctx, ga467.Command{Cmd: 0x42})
	if err != nil || rep.SW3 != ga467.SW3BadCommand {
		t.Errorf("unknown command: %v %v, want SW3 21", rep, err)
	}
}

// TestCardRemovedAndReinserted: the SAM loses power (its connection to
// vpcd closes, as pcscd sees a card removal): ErrGone; power comes back: it
// works again through the same transport.
func TestCardRemovedAndReinserted(t *testing.T) {
	r := newRig(t, 2, nil)
	h, _ := r.open(t, 0, samhost.Timeouts{Control: 1500 * time.Millisecond})
	s := r.slots[0].sam
	if err := h.Status(bg); err != nil {
		t.Fatal(err)
	}
	for _, how := range []struct {
		name      string
		out, back func()
	}{
		{"power", s.PowerOff, s.PowerOn},
		{"vanish", s.Vanish, s.Replug},
	} {
		how.out()
		// Every failure on the way must be a module fault; it must end in
		// ErrGone (the first commands may see pcscd still think the card
		// is there).
		err := eventually(5*time.Second, func() error {
			err := h.Status(bg)
			switch {
			case err == nil:
				return errors.New("status works without a card")
			case errors.Is(err, sam.ErrGone):
				return nil
			case !sam.ModuleFault(err):
				t.Errorf("%s: status: %v is not a module fault", how.name, err)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: no ErrGone after removal: %v", how.name, err)
		}
		how.back()
		if err := eventually(5*time.Second, func() error { return h.Status(bg) }); err != nil {
			t.Fatalf("%s: status after reinsertion: %v", how.name, err)
		}
		if err := readCard(h, 5, sam.ReadTextPhoto); err != nil {
			t.Fatalf("%s: read after reinsertion: %v", how.name, err)
		}
	}
	// The other reader never noticed.
	h1, _ := r.open(t, 1, samhost.Timeouts{})
	if err := h1.Status(bg); err != nil {
		t.Fatal(err)
	}
}

// TestRemovedMidCommand: power goes while the SAM works on a read (it takes
// 300 ms): pcscd answers with an empty response; the driver finds the card
// gone.
func TestRemovedMidCommand(t *testing.T) {
	r := newRig(t, 1, &sim.SAMTiming{Read: 300 * time.Millisecond})
	h, _ := r.open(t, 0, samhost.Timeouts{})
	s := r.slots[0].sam
	c := newCard(1, false)
	link := cardLink(c)
	if _, err := h.Find(bg, link); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Select(bg, link); err != nil {
		t.Fatal(err)
	}
	// Cut the power while the SAM works on the read proper: 100 ms after
	// the card's replies to the authenticated read script went to it.
	var cut *time.Timer
	readLink := samtest.LinkFunc(func(ctx context.Context, cmds [][]byte) ([][]byte, error) {
		replies, err := link.Exchange(ctx, cmds)
		if len(cmds) > 1 && cut == nil {
			cut = time.AfterFunc(100*time.Millisecond, s.PowerOff)
		}
		return replies, err
	})
	_, err := h.Read(bg, readLink, sam.ReadTextPhoto)
	if !errors.Is(err, sam.ErrGone) {
		t.Fatalf("read with power gone: %v, want ErrGone", err)
	}
	s.PowerOn()
	if err := eventually(5*time.Second, func() error { return h.Status(bg) }); err != nil {
		t.Fatalf("status after power back: %v", err)
	}
}

// TestPCSCDRestart: pcscd stops and starts again; the transport re-creates
// its context and carries on.
func TestPCSCDRestart(t *testing.T) {
	r := newRig(t, 2, nil)
	h, _ := r.open(t, 0, samhost.Timeouts{})
	if err := h.Status(bg); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	err := h.Status(bg)
	if err == nil || !sam.ModuleFault(err) {
		t.Fatalf("status with pcscd stopped: %v, want a module fault", err)
	}
	if err := r.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := eventually(10*time.Second, func() error { return h.Status(bg) }); err != nil {
		t.Fatalf("status after pcscd restart: %v", err)
	}
	if err := readCard(h, 2, sam.ReadTextPhoto); err != nil {
		t.Fatalf("read after pcscd restart: %v", err)
	}
}

// TestHungSAM: a SAM that stops answering makes the command time out at its
// deadline; once it answers again, the transport recovers.
func TestHungSAM(t *testing.T) {
	r := newRig(t, 1, nil)
	const deadline = 400 * time.Millisecond
	h, _ := r.open(t, 0, samhost.Timeouts{Control: deadline})
	s := r.slots[0].sam
	if err := h.Status(bg); err != nil {
		t.Fatal(err)
	}
	s.SetHang(true)
	start := time.Now()
	err := h.Status(bg)
	took := time.Since(start)
	if !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("status of a hung SAM: %v, want ErrTimeout", err)
	}
	if took < deadline || took > deadline+200*time.Millisecond {
		t.Errorf("timed out after %v, want %v", took, deadline)
	}
	// Still hung, and the first command still stuck in pcscd: time out
	// again, at the deadline.
	start = time.Now()
	if err := h.Status(bg); !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("second status of a hung SAM: %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > deadline+200*time.Millisecond {
		t.Errorf("second timeout after %v", took)
	}
	s.SetHang(false)
	if err := eventually(5*time.Second, func() error { return h.Status(bg) }); err != nil {
		t.Fatalf("status after the hang: %v", err)
	}
	if err := readCard(h, 3, sam.ReadTextPhoto); err != nil {
		t.Fatalf("read after the hang: %v", err)
	}
}

// TestSixteenReaders: 16 SAMs in 16 readers of one pcscd, read in parallel.
func TestSixteenReaders(t *testing.T) {
	const n = 16
	r := newRig(t, n, nil)
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		h, _ := r.open(t, i, samhost.Timeouts{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 5 {
				if err := readCard(h, int64(100*i+k), sam.ReadTextPhoto); err != nil {
					errs[i] = fmt.Errorf("reader %d read %d: %w", i, k, err)
					return
				}
			}
			id, err := h.ID(bg)
			if err == nil && id != r.slots[i].sam.ID() {
				err = fmt.Errorf("reader %d: SAM ID %v, want %v", i, id, r.slots[i].sam.ID())
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	t.Logf("%d readers × 5 reads in %v", n, time.Since(start))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestListReadersAndWatch(t *testing.T) {
	r := newRig(t, 2, nil)
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	names, err := pcsc.ListReaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range r.slots {
		if !slices.Contains(names, sl.reader.Name) {
			t.Errorf("ListReaders %q lacks %q", names, sl.reader.Name)
		}
	}

	type event struct {
		reader  string
		present bool
	}
	events := make(chan event, 64)
	wctx, wcancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() {
		done <- pcsc.Watch(wctx, func(reader string, present bool) { events <- event{reader, present} })
	}()
	defer func() {
		wcancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Watch: %v", err)
		}
	}()
	want := func(ev event) {
		t.Helper()
		timeout := time.NewTimer(5 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case got := <-events:
				if got == ev {
					return
				}
				if got.reader == ev.reader {
					t.Fatalf("event %+v, want %+v", got, ev)
				}
			case <-timeout.C:
				t.Fatalf("no event %+v", ev)
			}
		}
	}
	name := r.slots[0].reader.Name
	want(event{name, true})
	r.slots[0].sam.PowerOff()
	want(event{name, false})
	r.slots[0].sam.PowerOn()
	want(event{name, true})
}

func TestDriverRegistry(t *testing.T) {
	r := newRig(t, 2, nil)
	ctx, cancel := context.WithTimeout(bg, 3*time.Second)
	defer cancel()
	m, err := sam.Open(ctx, "pcsc", r.slots[0].reader.Name, map[string]string{"control": "2s", "share": "exclusive"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if err := readCard(m, 7, sam.ReadTextPhoto); err != nil {
		t.Fatal(err)
	}
	if _, err := sam.Open(ctx, "pcsc", r.slots[1].reader.Name, map[string]string{"bogus": "1"}); err == nil {
		t.Error("unknown option accepted")
	}
	r.slots[1].sam.PowerOff()
	waitPresent(t, r.slots[1].reader.Name, false)
	if _, err := sam.Open(ctx, "pcsc", r.slots[1].reader.Name, nil); !errors.Is(err, sam.ErrGone) {
		t.Errorf("open of an empty reader: %v, want ErrGone", err)
	}
	if _, err := sam.Open(ctx, "pcsc", "no such reader", nil); !errors.Is(err, sam.ErrGone) {
		t.Errorf("open of an unknown reader: %v, want ErrGone", err)
	}
}
