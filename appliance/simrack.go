package appliance

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// SimRack is the embedded default rack: virtual SAMs behind the same GA 467
// transport and host code as real modules, each with a virtual power line
// and locate/fault LEDs.
type SimRack struct {
	SAMs  []*sim.SAM
	lines map[string]*sim.Line
}

// NewSimRack returns n virtual SAMs (SAM IDs from seeds 1..n) with the given
// timing, and the rack configuration and options that drive them.
func NewSimRack(n int, timing sim.SAMTiming, to samhost.Timeouts) (*SimRack, rack.Config, rack.Options) {
	return newSimRack(0, n, timing, to)
}

// simSeedBase is the first seed of the simulated rack of appliance node:
// SAM IDs are cluster-wide (the terminal→SAM table, slot actions by SAM
// ID), so every appliance's virtual SAMs differ. Seeds base+1..base+n.
func simSeedBase(node string) int64 {
	h := fnv.New32a()
	h.Write([]byte(node))
	return int64(h.Sum32()) << 10
}

func newSimRack(base int64, n int, timing sim.SAMTiming, to samhost.Timeouts) (*SimRack, rack.Config, rack.Options) {
	sr := &SimRack{lines: map[string]*sim.Line{}}
	var cfg rack.Config
	for i := range n {
		s := sim.NewSAM(base+int64(i+1), sim.SAMOptions{Timing: &timing})
		sr.SAMs = append(sr.SAMs, s)
		power, locate, fault := fmt.Sprintf("sim-power-%d", i), fmt.Sprintf("sim-locate-%d", i), fmt.Sprintf("sim-fault-%d", i)
		sr.lines[power] = sim.PowerLine(power, i, s)
		sr.lines[locate] = sim.NewLine(locate, 100+i, gpio.Low)
		sr.lines[fault] = sim.NewLine(fault, 200+i, gpio.Low)
		cfg.Slots = append(cfg.Slots, rack.SlotConfig{ID: i, Driver: "sim", Device: strconv.Itoa(i + 1), Power: power, Locate: locate, Fault: fault})
	}
	opts := rack.Options{
		Open: func(ctx context.Context, driver, dev string, _ map[string]string) (sam.SAM, error) {
			i, err := strconv.Atoi(dev)
			if driver != "sim" || err != nil || i < 1 || i > len(sr.SAMs) {
				return nil, fmt.Errorf("simulated rack: no module %s %q", driver, dev)
			}
			return sim.Open(sr.SAMs[i-1], to), nil
		},
		Lines: func(name string) (gpio.PinOut, error) {
			l, ok := sr.lines[name]
			if !ok {
				return nil, fmt.Errorf("simulated rack: no line %q", name)
			}
			return l, nil
		},
	}
	// Virtual modules boot quickly; keep the rack's waits in proportion.
	cfg.BootTime = timing.Boot + 50*time.Millisecond
	cfg.PowerOffTime = 100 * time.Millisecond
	return sr, cfg, opts
}
