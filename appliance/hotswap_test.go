package appliance

import (
	"testing"
	"time"

	"github.com/samrack/samrack/rack"
)

// TestHotSwapBackWithinOneSecond: a module pulled from its slot leaves the
// pool; plugged back, it is probed and in the pool again within 1 s — the
// bound measured from the moment it is plugged in, so it includes the OS
// noticing it (pcscd's 400 ms presence poll; the device node appearing).
// Health checks are off (1 min), so only the presence watchers can bring
// the slots back: a real pcscd with vpcd for the PC/SC slot, a real pty
// behind a by-id style link for the serial slot.
func TestHotSwapBackWithinOneSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pcscd")
	}
	h := startChaosHardware(t)
	r := startRig(t, rigOptions{hw: h.rig(), rack: func(c *rack.Config) { c.CheckInterval = time.Minute }})

	for _, tc := range []struct {
		name       string
		slot       int
		pull, plug func()
	}{
		{"pcsc", 3, func() { h.sams[3].Vanish() }, func() { h.sams[3].Replug() }},
		{"serial", chaosPCSC + 2, func() { h.unplugPTY(chaosPCSC + 2) }, func() {
			h.sams[chaosPCSC+2].Replug()
			if err := h.plugPTY(chaosPCSC + 2); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.waitSlot(tc.slot, rack.StateEnabled)
			tc.pull()
			r.waitSlot(tc.slot, rack.StateAbsent)
			start := time.Now()
			tc.plug()
			after := r.waitSlot(tc.slot, rack.StateEnabled)
			took := time.Since(start)
			t.Logf("%s slot %d back in the pool %v after the module was plugged in", tc.name, tc.slot, took.Round(time.Millisecond))
			if took > time.Second {
				t.Errorf("%s slot %d: back after %v, want within 1 s", tc.name, tc.slot, took)
			}
			if after.SAMID != before.SAMID {
				t.Errorf("SAM ID %v, want %v", after.SAMID, before.SAMID)
			}
		})
	}
	r.checkPool()
}
