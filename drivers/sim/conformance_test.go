package sim_test

import (
	"testing"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/sim"
)

// TestConformance runs the driver conformance suite on the virtual SAM
// attached directly to a samhost.Host through an in-memory pipe (sim.Open).
func TestConformance(t *testing.T) {
	samtest.Conformance(t, samtest.SimHarness(samtest.StreamTimeouts, func(t *testing.T, s *sim.SAM) sam.SAM {
		m := sim.Open(s, samtest.StreamTimeouts)
		t.Cleanup(func() { m.Close() })
		return m
	}))
}
