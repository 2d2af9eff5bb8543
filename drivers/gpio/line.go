package gpio

import (
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

var _ gpio.PinOut = (*Line)(nil)

// Role is what a line does in its slot; it decides the line's state at
// Close (see the package documentation).
type Role int

// Roles. The zero Role is for lines resolved without one; they are left as
// they are at Close, like power lines.
const (
	RoleOther  Role = iota // left as is at Close
	RolePower              // left as is at Close
	RoleLocate             // turned off at Close
	RoleFault              // left as is at Close
)

var roleNames = [...]string{"other", "power", "locate", "fault"}

func (r Role) String() string {
	if r >= 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// backend drives one physical line.
type backend interface {
	out(v gpio.Level) error // physical level
	release() error         // give the line back; the level is left as is
}

// pinBackend drives a periph pin (sysfs, a board driver, a test pin).
type pinBackend struct{ p gpio.PinOut }

func (b pinBackend) out(v gpio.Level) error { return b.p.Out(v) }
func (b pinBackend) release() error         { return nil }

// Line is a slot's power line or LED, as Lines.Resolve returns it: a
// gpio.PinOut whose High is "on" (power on, LED lit) whatever the wire's
// polarity. It never reads the hardware: Function reports the level it
// last drove. It is safe for concurrent use.
type Line struct {
	name      string // line name, or chip/offset
	where     string // chip/offset or driver pin, for String
	number    int    // offset on its chip, or the driver's pin number
	activeLow bool
	be        backend

	mu     sync.Mutex // mu guards the fields below
	role   Role
	driven bool       // Out succeeded at least once
	level  gpio.Level // logical level last driven
	closed bool
}

// String implements conn.Resource: the name, where the line is, its
// polarity.
func (l *Line) String() string {
	s := l.name
	switch {
	case l.where == "" || l.where == l.name:
	case strings.HasPrefix(l.where, l.name+"("): // a periph pin's own String
		s = l.where
	default:
		s += "(" + l.where + ")"
	}
	if l.activeLow {
		s += ":active-low"
	}
	return s
}

// Halt implements conn.Resource; it does nothing (see Lines.Close for the
// safe state).
func (l *Line) Halt() error { return nil }

// Name implements pin.Pin: the line's name, or CHIP/OFFSET for an unnamed
// character-device line.
func (l *Line) Name() string { return l.name }

// Number implements pin.Pin: the offset on its chip, or the driver's pin
// number.
func (l *Line) Number() int { return l.number }

// Function implements pin.Pin: "Out/High" or "Out/Low" (logical, after
// polarity) once driven, "Unclaimed" before.
func (l *Line) Function() string {
	v, ok := l.Driven()
	if !ok {
		return "Unclaimed"
	}
	return "Out/" + v.String()
}

// ActiveLow reports whether High drives the wire low.
func (l *Line) ActiveLow() bool { return l.activeLow }

// Role is the role the line was declared with (RoleOther if none).
func (l *Line) Role() Role {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.role
}

// Driven returns the logical level last driven, and false if the line was
// never driven.
func (l *Line) Driven() (gpio.Level, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level, l.driven
}

// Out implements gpio.PinOut: High is on (power on, LED lit); an
// active-low line drives the wire low for it. The first Out claims the
// line as an output at that level in one step.
func (l *Line) Out(v gpio.Level) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("line %s: %w", l, ErrClosed)
	}
	return l.outLocked(v)
}

func (l *Line) outLocked(v gpio.Level) error {
	if err := l.be.out(v != gpio.Level(l.activeLow)); err != nil {
		return fmt.Errorf("line %s: out %s: %w", l, v, err)
	}
	l.driven, l.level = true, v
	return nil
}

// PWM implements gpio.PinOut; slot lines have none.
func (l *Line) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("line %s: %w", l, ErrNoPWM)
}

// closeLocked puts the line in its safe state and releases it.
func (l *Line) closeLocked() error {
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.role == RoleLocate && l.driven && l.level == gpio.High {
		err = l.outLocked(gpio.Low)
	}
	if rerr := l.be.release(); rerr != nil && err == nil {
		err = fmt.Errorf("line %s: release: %w", l, rerr)
	}
	return err
}
