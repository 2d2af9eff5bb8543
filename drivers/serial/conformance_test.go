//go:build linux

package serial_test

import (
	"context"
	"testing"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
)

// TestConformance runs the driver conformance suite on the serial driver
// over a real pty, with a virtual SAM serving the master (sim.NewPTY).
func TestConformance(t *testing.T) {
	// Each module is a new pty with the driver opened on its slave; both
	// close at the end of t, the driver first.
	samtest.Conformance(t, samtest.SimHarness(samtest.StreamTimeouts, func(t *testing.T, s *sim.SAM) sam.SAM {
		t.Helper()
		p, err := sim.NewPTY(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() }) // ErrVanished after a removal: expected
		m, err := serial.Open(context.Background(), p.Path(), serial.Options{Timeouts: samtest.StreamTimeouts})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}))
}
