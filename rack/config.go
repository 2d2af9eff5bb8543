package rack

import (
	"context"
	"fmt"
	"slices"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/samrack/samrack/drivers/sam"
)

// Config is the rack's configuration. Zero durations and counts take the
// defaults documented on each field.
type Config struct {
	Slots []SlotConfig

	CheckInterval time.Duration // health check of idle slots and re-probe of absent ones; default 5 s
	CheckTimeout  time.Duration // deadline of each Status, ID, Reset and open; default 1 s
	PowerOffTime  time.Duration // power line low this long in a power-cycle; default 1 s
	BootTime      time.Duration // wait after power-on before probing; default 1 s
	Backoff       time.Duration // delay before the first power-cycle, doubled after each failure; default 2 s
	MaxBackoff    time.Duration // default 1 min
	MaxFailures   int           // K: failed recoveries in a row before quarantine; default 3

	MaxWaiters    int           // bound of the Lease wait queue; default 4 × slots
	MaxWait       time.Duration // longest a Lease waits, whatever its ctx; default 2 s
	MaxLease      time.Duration // a lease held longer is taken back; default 30 s
	ShutdownGrace time.Duration // how long Run waits at shutdown for lease operations in flight; default 2 s
}

// SlotConfig configures one slot.
type SlotConfig struct {
	ID      int               // slot number, unique, ≥ 0 (the front-panel label)
	Driver  string            // registered sam driver: "sim", "serial", "pcsc"
	Device  string            // driver-specific address
	Options map[string]string // driver options

	// Names of the slot's GPIO lines, resolved by Options.Lines; "" if the
	// slot has none. Without a power line recovery can only reset and
	// re-open the module.
	Power, Locate, Fault string
}

// Options are the rack's collaborators.
type Options struct {
	// Open opens a slot's SAM. Default sam.Open (the driver registry).
	Open func(ctx context.Context, driver, dev string, opts map[string]string) (sam.SAM, error)
	// Lines resolves the GPIO line names of SlotConfig. Needed if any slot
	// names a line.
	Lines func(name string) (gpio.PinOut, error)
	// Clock defaults to RealClock.
	Clock Clock
	// Watchers report modules appearing and disappearing, by driver name
	// (the SlotConfig.Driver they serve): the PC/SC watcher for "pcsc", a
	// DevWatcher for "serial". Run runs each in a goroutine it owns, feeding
	// its reports to DevicePresence, and stops it at shutdown; Watch must
	// return when its ctx is done. A Watch that returns early is reported
	// (EventWatcherFailed) and run again after CheckInterval.
	Watchers map[string]PresenceWatcher
	// OnEvent, if set, receives every Event in order. It is called from the
	// goroutine that caused the change, never with the rack's lock held, one
	// call at a time; it may call the rack's methods but should not block.
	OnEvent func(Event)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CheckInterval, 5*time.Second)
	def(&c.CheckTimeout, time.Second)
	def(&c.PowerOffTime, time.Second)
	def(&c.BootTime, time.Second)
	def(&c.Backoff, 2*time.Second)
	def(&c.MaxBackoff, time.Minute)
	def(&c.MaxWait, 2*time.Second)
	def(&c.MaxLease, 30*time.Second)
	def(&c.ShutdownGrace, 2*time.Second)
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = 4 * len(c.Slots)
	}
	return c
}

// Devices lists the Device of every slot of driver, in config order: the
// paths a DevWatcher of the "serial" slots polls.
func (c Config) Devices(driver string) []string {
	var out []string
	for _, sc := range c.Slots {
		if sc.Driver == driver && !slices.Contains(out, sc.Device) {
			out = append(out, sc.Device)
		}
	}
	return out
}

// validate checks the slot list. known lists the registered drivers, nil if
// the opener is not the registry.
func (c Config) validate(known []string) error {
	if len(c.Slots) == 0 {
		return fmt.Errorf("rack: config has no slots")
	}
	seen := map[int]bool{}
	for _, sc := range c.Slots {
		if sc.ID < 0 {
			return fmt.Errorf("rack: slot %d: negative slot number", sc.ID)
		}
		if seen[sc.ID] {
			return fmt.Errorf("rack: slot %d: configured twice", sc.ID)
		}
		seen[sc.ID] = true
		if known != nil && !slices.Contains(known, sc.Driver) {
			return fmt.Errorf("rack: slot %d: %w %q (have %v)", sc.ID, sam.ErrUnknownDriver, sc.Driver, known)
		}
	}
	return nil
}
