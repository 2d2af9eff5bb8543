//go:build linux

package serial_test

import (
	"context"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
)

// TestConformance runs the driver conformance suite on the serial driver
// over a real pty, with a virtual SAM serving the master (sim.NewPTY).
func TestConformance(t *testing.T) {
	to := samhost.Timeouts{
		Control: 100 * time.Millisecond,
		Find:    150 * time.Millisecond,
		Select:  150 * time.Millisecond,
		Read:    200 * time.Millisecond,
	}
	// open serves s on a new pty and opens the driver on its slave; both
	// close at the end of t, the driver first.
	open := func(t *testing.T, s *sim.SAM) *serial.Module {
		t.Helper()
		p, err := sim.NewPTY(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() }) // ErrVanished after a removal: expected
		m, err := serial.Open(context.Background(), p.Path(), serial.Options{Timeouts: to})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	samtest.Conformance(t, samtest.Harness{
		Open: func(t *testing.T) (sam.SAM, samtest.Module) {
			s := sim.NewSAM(1, sim.SAMOptions{Timing: instantSAM})
			m := open(t, s)
			t.Cleanup(s.ClearFaults) // runs first: a hung SAM is closed unhung
			return m, &samtest.SimModule{SAM: s}
		},
		// A vanished SAM hangs up its pty, whose slave path goes away; the
		// replugged SAM comes back on a new pty, as a USB-serial adapter
		// plugged in again may come back as another tty.
		Reopen: func(t *testing.T, old sam.SAM, m samtest.Module) sam.SAM {
			old.Close()
			return open(t, m.(*samtest.SimModule).SAM)
		},
		Timeouts: to,
		Caps:     samtest.Caps{SeesRemoval: true},
	})
}
