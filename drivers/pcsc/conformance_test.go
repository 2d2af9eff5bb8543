package pcsc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc/pcsctest"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/sim"
)

// TestConformance runs the driver conformance suite on the "pcsc" driver
// (sam.Open, as the rack opens it) through a real pcscd: each subtest's
// virtual SAM is the card of a vpcd reader (sim.SAM.ServeVPCD).
func TestConformance(t *testing.T) {
	to := samhost.Timeouts{
		Control: 300 * time.Millisecond,
		Find:    400 * time.Millisecond,
		Select:  400 * time.Millisecond,
		Read:    500 * time.Millisecond,
	}
	opts := map[string]string{
		"control": to.Control.String(),
		"find":    to.Find.String(),
		"select":  to.Select.String(),
		"read":    to.Read.String(),
	}
	srv := pcsctest.Start(t, pcsctest.MaxReader)
	next := 0
	samtest.Conformance(t, samtest.Harness{
		Open: func(t *testing.T) (sam.SAM, samtest.Module) {
			// A reader of its own for every subtest; past the last one,
			// a reader is used again once pcscd saw its old card go.
			rd := srv.Readers[next%len(srv.Readers)]
			next++
			waitPresent(t, rd.Name, false)
			s := sim.NewSAM(int64(next), sim.SAMOptions{Timing: &sim.SAMTiming{}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.ServeVPCD(ctx, rd.Addr) }() // owned by the cleanup
			t.Cleanup(func() {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Errorf("ServeVPCD: %v", err)
				}
			})
			waitPresent(t, rd.Name, true)
			octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ocancel()
			m, err := sam.Open(octx, "pcsc", rd.Name, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := m.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			t.Cleanup(s.ClearFaults) // runs first: a hung SAM is closed unhung
			return m, &pcscModule{SimModule: samtest.SimModule{SAM: s, Power: true}, t: t, reader: rd.Name}
		},
		Timeouts: to,
		Caps: samtest.Caps{
			SeesRemoval: true,
			// pcscd polls its readers every 400 ms; a hung card is
			// ejected and inserted again once it answers.
			Settle: 5 * time.Second,
			NoSW3: map[byte]string{
				ga467.SW3HostChecksum: "APDUs carry no GA 467 frame checksum (the link layer checks instead; see package pcsc)",
				ga467.SW3HostLength:   "APDUs carry no GA 467 frame LEN (the APDU's own length fields replace it; see package pcsc)",
			},
		},
	})
}

// pcscModule is the virtual SAM of a vpcd reader. Remove and Insert switch
// its power off and on, which pcscd sees as the card pulled and put back;
// Remove returns once pcscd has seen the card go.
//
// Waiting is not cosmetic: pcscd polls its readers every 400 ms, and a card
// that is back before the poll after a failed command is never seen again
// (SCardConnect answers "No smart card inserted" for as long as we waited,
// 20 s, with the card in the reader). A module pulled and put back that
// fast is a driver issue of its own, not part of this suite.
type pcscModule struct {
	samtest.SimModule
	t      *testing.T
	reader string
}

func (m *pcscModule) Remove() {
	m.SimModule.Remove()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pcsctest.WaitPresent(ctx, m.reader, false); err != nil {
		m.t.Errorf("pcscd did not see the card go: %v", err)
	}
}
