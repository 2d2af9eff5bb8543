package pcsc_test

import (
	"context"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/pcsc"
	"github.com/samrack/samrack/drivers/pcsc/pcsctest"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/sim"
)

// checkLeaks fails the test if it leaves goroutines behind.
func checkLeaks(t testing.TB) { t.Helper(); leaktest.Check(t) }

// slot is one reader of the rig with a virtual SAM in it.
type slot struct {
	reader pcsctest.Reader
	sam    *sim.SAM
}

// rig is a real pcscd with n vpcd readers, each holding an instant virtual
// SAM (seed = index+1) served by a goroutine the rig owns until the test
// ends.
type rig struct {
	srv   *pcsctest.Server
	slots []slot
}

func newRig(t testing.TB, n int, timing *sim.SAMTiming) *rig {
	t.Helper()
	checkLeaks(t)
	if timing == nil {
		timing = &sim.SAMTiming{}
	}
	srv := pcsctest.Start(t, n)
	r := &rig{srv: srv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, n)
	t.Cleanup(func() {
		cancel()
		for range n {
			if err := <-done; err != context.Canceled {
				t.Errorf("ServeVPCD: %v", err)
			}
		}
	})
	for i, rd := range srv.Readers {
		s := sim.NewSAM(int64(i+1), sim.SAMOptions{Timing: timing})
		r.slots = append(r.slots, slot{reader: rd, sam: s})
		go func() { done <- s.ServeVPCD(ctx, rd.Addr) }()
	}
	for _, sl := range r.slots {
		waitPresent(t, sl.reader.Name, true)
	}
	return r
}

func waitPresent(t testing.TB, reader string, present bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pcsctest.WaitPresent(ctx, reader, present); err != nil {
		t.Fatal(err)
	}
}

// open returns a samhost.Host on a pcsc.Transport to slot i, closed at the
// end of the test.
func (r *rig) open(t testing.TB, i int, to samhost.Timeouts) (*samhost.Host, *pcsc.Transport) {
	t.Helper()
	tr := pcsc.New(r.slots[i].reader.Name, pcsc.Options{})
	h := samhost.New(tr, to)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h, tr
}

// cardLink is the reader side of the tunnel: it runs every card exchange
// on a virtual card, as a reader terminal does.
func cardLink(c *sim.Card) sam.CardLink {
	return samtest.LinkFunc(func(ctx context.Context, cmds [][]byte) ([][]byte, error) {
		return idcard.Run(ctx, c, cmds)
	})
}

func newCard(seed int64, fingerprint bool) *sim.Card {
	return sim.NewCard(seed, sim.CardOptions{Timing: &sim.RFTiming{}, Fingerprint: fingerprint})
}

// eventually calls f every 10 ms until it returns nil or the deadline
// passes, and returns f's last error.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}
