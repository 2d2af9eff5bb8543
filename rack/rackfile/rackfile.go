// Package rackfile reads the rack file a hardware team writes: a YAML file
// naming, per slot, the driver, device, driver options and GPIO lines (see
// File), and the rack's timings. Load turns it into a rack.Config; a slot
// with a problem is left out and reported by name so the other slots still
// come up. samrackd --rack loads it through the appliance, `samctl rack
// check` checks it and `samctl rack discover` prints a File to start from.
//
// A slot's driver must be registered with drivers/sam in the running
// binary: the program links the drivers it supports (samrackd and samctl
// link serial, pcsc and sim).
package rackfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/rack"
)

// File is the rack configuration file a hardware team writes: one entry
// per slot naming its driver, device and GPIO lines. `samctl rack discover`
// prints a starting point.
//
//	# rack.yaml
//	check_interval: 5s
//	slots:
//	  - id: 0
//	    driver: serial
//	    device: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KZ0QX-if00-port0
//	    options: {baud: "115200"}
//	    power: SAM0_PWR          # GPIO line name; "!NAME" for active-low
//	    locate: gpiochip0/17
//	    fault: gpiochip0/18
//	  - id: 1
//	    driver: pcsc
//	    device: "ACS ACR39U ICC Reader 00 00"
type File struct {
	CheckInterval Duration `yaml:"check_interval"`
	CheckTimeout  Duration `yaml:"check_timeout"`
	PowerOffTime  Duration `yaml:"power_off_time"`
	BootTime      Duration `yaml:"boot_time"`
	Backoff       Duration `yaml:"backoff"`
	MaxBackoff    Duration `yaml:"max_backoff"`
	MaxFailures   int      `yaml:"max_failures"`
	MaxWait       Duration `yaml:"max_wait"`
	MaxLease      Duration `yaml:"max_lease"`
	Slots         []Slot   `yaml:"slots"`
}

// Slot is one slot of a File.
type Slot struct {
	ID      int               `yaml:"id"`
	Driver  string            `yaml:"driver"`
	Device  string            `yaml:"device"`
	Options map[string]string `yaml:"options,omitempty"`
	Power   string            `yaml:"power,omitempty"`
	Locate  string            `yaml:"locate,omitempty"`
	Fault   string            `yaml:"fault,omitempty"`
}

// Duration is a time.Duration written as "5s", "250ms".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 5s or 250ms)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ErrUnusable reports a rack file that cannot be used at all: unreadable,
// too large, not valid YAML, or without a usable slot.
var ErrUnusable = errors.New("rack file")

// maxSize bounds the size of a rack file.
const maxSize = 1 << 20

// Load reads a rack file. A slot with a problem (unknown driver, no
// device, duplicate ID) is left out and reported in slotErrs, each naming
// the slot, so the other slots still come up; err is set only when the
// file cannot be read or parsed, or no slot is usable.
func Load(path string) (cfg *rack.Config, slotErrs []error, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnusable, err)
	}
	if len(data) > maxSize {
		return nil, nil, fmt.Errorf("%w %s: larger than %d bytes", ErrUnusable, path, maxSize)
	}
	return Parse(path, data)
}

// Parse is Load on the file's bytes; name is used in errors.
func Parse(name string, data []byte) (cfg *rack.Config, slotErrs []error, err error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w %s: %v", ErrUnusable, name, err)
	}
	cfg = &rack.Config{
		CheckInterval: time.Duration(f.CheckInterval), CheckTimeout: time.Duration(f.CheckTimeout),
		PowerOffTime: time.Duration(f.PowerOffTime), BootTime: time.Duration(f.BootTime),
		Backoff: time.Duration(f.Backoff), MaxBackoff: time.Duration(f.MaxBackoff), MaxFailures: f.MaxFailures,
		MaxWait: time.Duration(f.MaxWait), MaxLease: time.Duration(f.MaxLease),
	}
	drivers := sam.Drivers()
	seen := map[int]bool{}
	for i, s := range f.Slots {
		bad := func(format string, a ...any) {
			slotErrs = append(slotErrs, fmt.Errorf("%s: slot %d (entry %d): %s", name, s.ID, i+1, fmt.Sprintf(format, a...)))
		}
		switch {
		case s.ID < 0:
			bad("id must be ≥ 0")
		case seen[s.ID]:
			bad("id used twice; this entry is left out")
		case s.Driver == "":
			bad("no driver (one of %v)", drivers)
		case !slices.Contains(drivers, s.Driver):
			bad("unknown driver %q (have %v)", s.Driver, drivers)
		case s.Device == "":
			bad("no device")
		default:
			seen[s.ID] = true
			cfg.Slots = append(cfg.Slots, rack.SlotConfig{ID: s.ID, Driver: s.Driver, Device: s.Device, Options: s.Options,
				Power: s.Power, Locate: s.Locate, Fault: s.Fault})
		}
	}
	if len(cfg.Slots) == 0 {
		return nil, slotErrs, fmt.Errorf("%w %s: no usable slot", ErrUnusable, name)
	}
	return cfg, slotErrs, nil
}
