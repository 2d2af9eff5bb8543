package gpio

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"
)

// DriverStatus is what periph's host.Init did with one driver.
type DriverStatus struct {
	Name   string `json:"name"`             // e.g. "ioctl-gpio", "sysfs-gpio"
	State  string `json:"state"`            // "loaded", "skipped" or "failed"
	Reason string `json:"reason,omitempty"` // why skipped or failed
}

// ChipInfo describes a GPIO character device found by host.Init.
type ChipInfo struct {
	Name  string `json:"name"`  // "gpiochip0"
	Label string `json:"label"` // "pinctrl-bcm2835"
	Path  string `json:"path"`  // "/dev/gpiochip0"
	Lines int    `json:"lines"`
}

// chip is a GPIO character device and how to drive its lines.
type chip struct {
	ChipInfo
	names     []string     // line names by offset, "" if unnamed
	consumers []string     // who held each line when the chip was read
	pins      []gpio.PinIO // periph's line objects, by offset (for gpioreg lookups)
	open      func(int) backend
}

// Lines resolves and owns the rack's GPIO lines. Make one with Open, give
// its Resolve to rack.Options.Lines, Close it after the rack has stopped.
// It is safe for concurrent use.
type Lines struct {
	drivers []DriverStatus
	chips   []chip

	mu     sync.Mutex // mu guards lines and closed; taken before Line.mu
	lines  map[any]*Line
	closed bool
}

// Open initialises periph's host drivers (host.Init: the GPIO character
// device, sysfs and board drivers; done once per process) and returns the
// lines they found. Drivers that are skipped or fail are not an error:
// see Drivers. ctx bounds only the wait to start.
func Open(ctx context.Context) (*Lines, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gpio: open: %w", err)
	}
	st, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("gpio: periph host init: %w", err)
	}
	var chips []chip
	if runtime.GOOS == "linux" { // elsewhere gpioioctl has only a dummy chip
		for _, c := range gpioioctl.Chips {
			ch := chip{ChipInfo: ChipInfo{Name: c.Name(), Label: c.Label(), Path: c.Path(), Lines: c.LineCount()}}
			for _, ln := range c.Lines() {
				ch.names = append(ch.names, ln.Name())
				ch.consumers = append(ch.consumers, ln.Consumer())
				ch.pins = append(ch.pins, ln)
			}
			path := c.Path()
			ch.open = func(off int) backend { return newCdevLine(path, off) }
			chips = append(chips, ch)
		}
	}
	return newLines(driverStatus(st), chips), nil
}

func driverStatus(st *driverreg.State) []DriverStatus {
	var ds []DriverStatus
	for _, d := range st.Loaded {
		ds = append(ds, DriverStatus{Name: d.String(), State: "loaded"})
	}
	for _, f := range st.Skipped {
		ds = append(ds, DriverStatus{Name: f.D.String(), State: "skipped", Reason: errString(f.Err)})
	}
	for _, f := range st.Failed {
		ds = append(ds, DriverStatus{Name: f.D.String(), State: "failed", Reason: errString(f.Err)})
	}
	return ds
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newLines(drivers []DriverStatus, chips []chip) *Lines {
	return &Lines{drivers: drivers, chips: chips, lines: map[any]*Line{}}
}

// Drivers reports what host.Init did with each periph driver, for the
// admin API.
func (ls *Lines) Drivers() []DriverStatus { return slices.Clone(ls.drivers) }

// Chips lists the GPIO character devices found.
func (ls *Lines) Chips() []ChipInfo {
	out := make([]ChipInfo, len(ls.chips))
	for i, c := range ls.chips {
		out[i] = c.ChipInfo
	}
	return out
}

// Resolve returns the line a spec names (syntax in the package
// documentation) as a gpio.PinOut that applies its polarity; it is what
// rack.Options.Lines calls. Resolving the same line again returns the same
// *Line. Nothing is driven or requested until the first Out.
func (ls *Lines) Resolve(spec string) (gpio.PinOut, error) {
	l, err := ls.ResolveAs(spec, RoleOther)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ResolveAs is Resolve that also declares the line's role, which decides
// its state at Close. Declare roles before or after the rack resolves the
// same specs; a line given two different roles is ErrConflict (a power line
// that is also some slot's LED is a wiring or config mistake).
func (ls *Lines) ResolveAs(s string, r Role) (*Line, error) {
	sp, err := parseSpec(s)
	if err != nil {
		return nil, err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return nil, fmt.Errorf("line %q: %w", s, ErrClosed)
	}
	key, mk, err := ls.find(sp)
	if err != nil {
		return nil, fmt.Errorf("line %q: %w", s, err)
	}
	l := ls.lines[key]
	if l == nil {
		l = mk()
		ls.lines[key] = l
	} else if l.activeLow != sp.activeLow {
		return nil, fmt.Errorf("line %q: %w: already resolved as %s", s, ErrConflict, l)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case r == RoleOther || l.role == r:
	case l.role == RoleOther:
		l.role = r
	default:
		return nil, fmt.Errorf("line %q: %w: it is already a %s line, not %s", s, ErrConflict, l.role, r)
	}
	return l, nil
}

// regKey identifies a gpioreg pin by its (unique) registered name.
type regKey struct{ name string }

// cdevKey identifies a character-device line.
type cdevKey struct {
	path   string
	offset int
}

// find locates the line of sp; mk makes its Line. Called with ls.mu held.
func (ls *Lines) find(sp spec) (key any, mk func() *Line, err error) {
	if sp.name == "" {
		c, err := ls.chipOf(sp.chip)
		if err != nil {
			return nil, nil, err
		}
		if sp.offset >= c.Lines {
			return nil, nil, fmt.Errorf("%w: %s has lines 0 to %d", ErrUnknownLine, c.Name, c.Lines-1)
		}
		return ls.cdev(c, sp)
	}
	// A character-device line name first: it is driven glitch-free.
	var hits []string
	var hc *chip
	for i := range ls.chips {
		c := &ls.chips[i]
		for off, n := range c.names {
			if n == sp.name {
				hits = append(hits, c.Name+"/"+strconv.Itoa(off))
				hc, sp.offset = c, off
			}
		}
	}
	if len(hits) > 1 {
		return nil, nil, fmt.Errorf("%w: %q is %s; name it by CHIP/OFFSET", ErrAmbiguous, sp.name, strings.Join(hits, ", "))
	}
	if len(hits) == 1 {
		return ls.cdev(hc, sp)
	}
	p := gpioreg.ByName(sp.name)
	if p == nil {
		return nil, nil, fmt.Errorf("%w (%s)", ErrUnknownLine, ls.summary())
	}
	real := p
	for {
		r, ok := real.(gpio.RealPin)
		if !ok {
			break
		}
		real = r.Real()
	}
	for i := range ls.chips { // an alias of a character-device line
		c := &ls.chips[i]
		for off, cp := range c.pins {
			if cp == real {
				sp.offset = off
				return ls.cdev(c, sp)
			}
		}
	}
	return regKey{real.Name()}, func() *Line {
		return &Line{name: sp.name, where: real.String(), number: real.Number(), activeLow: sp.activeLow, be: pinBackend{real}}
	}, nil
}

func (ls *Lines) cdev(c *chip, sp spec) (any, func() *Line, error) {
	where := c.Name + "/" + strconv.Itoa(sp.offset)
	if u := c.consumers[sp.offset]; u != "" {
		return nil, nil, fmt.Errorf("%w: %s is held by %q", ErrBusy, where, u)
	}
	name := c.names[sp.offset]
	if name == "" {
		name = where
	}
	return cdevKey{c.Path, sp.offset}, func() *Line {
		return &Line{name: name, where: where, number: sp.offset, activeLow: sp.activeLow, be: c.open(sp.offset)}
	}, nil
}

// chipOf finds a chip by name, label or path.
func (ls *Lines) chipOf(id string) (*chip, error) {
	var found *chip
	for i := range ls.chips {
		c := &ls.chips[i]
		if c.Name == id || c.Path == id || c.Label == id {
			if found != nil {
				return nil, fmt.Errorf("%w: chips %s and %s both match %q; use the chip name", ErrAmbiguous, found.Name, c.Name, id)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w %q (%s)", ErrUnknownChip, id, ls.summary())
	}
	return found, nil
}

// summary says what there is, for errors about what there is not.
func (ls *Lines) summary() string {
	var chips []string
	for _, c := range ls.chips {
		chips = append(chips, fmt.Sprintf("%s %q %d lines", c.Name, c.Label, c.Lines))
	}
	s := "GPIO chips: none"
	if len(chips) > 0 {
		s = "GPIO chips: " + strings.Join(chips, ", ")
	}
	s += fmt.Sprintf("; %d lines in gpioreg", len(gpioreg.All()))
	var loaded []string
	for _, d := range ls.drivers {
		if d.State == "loaded" {
			loaded = append(loaded, d.Name)
		}
	}
	if len(loaded) == 0 {
		s += "; no periph driver loaded"
		for _, d := range ls.drivers {
			if strings.Contains(d.Name, "gpio") {
				s += fmt.Sprintf(", %s %s: %s", d.Name, d.State, d.Reason)
			}
		}
	} else {
		s += "; drivers loaded: " + strings.Join(loaded, ", ")
	}
	return s
}

// Close puts every line in its safe state (power and fault left as they
// are, locate off; see the package documentation) and releases them.
// Call it after the rack's Run has returned. Later calls return nil.
func (ls *Lines) Close() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return nil
	}
	ls.closed = true
	var errs []error
	for _, l := range ls.lines {
		l.mu.Lock()
		errs = append(errs, l.closeLocked())
		l.mu.Unlock()
	}
	return errors.Join(errs...)
}
