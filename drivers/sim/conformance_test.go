package sim_test

import (
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/sim"
)

// TestConformance runs the driver conformance suite on the virtual SAM
// attached directly to a samhost.Host through an in-memory pipe (sim.Open).
func TestConformance(t *testing.T) {
	to := samhost.Timeouts{
		Control: 100 * time.Millisecond,
		Find:    150 * time.Millisecond,
		Select:  150 * time.Millisecond,
		Read:    200 * time.Millisecond,
	}
	open := func(t *testing.T, s *sim.SAM) *sim.Module {
		m := sim.Open(s, to)
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
		// A vanished SAM closes its end of the pipe; the pipe cannot be
		// re-attached, so a new Module opens on the replugged SAM.
		Reopen: func(t *testing.T, old sam.SAM, m samtest.Module) sam.SAM {
			old.Close()
			return open(t, m.(*samtest.SimModule).SAM)
		},
		Timeouts: to,
		Caps:     samtest.Caps{SeesRemoval: true},
	})
}
