package sim

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

var _ gpio.PinIO = (*Line)(nil)

// ErrNoPWM: virtual lines have no PWM.
var ErrNoPWM = errors.New("sim: line has no PWM")

// Line is a virtual GPIO line (slot power, LEDs) behind periph.io's
// gpio.PinIO. Out drives it; Read reads back the level; a line made by
// PowerLine powers a virtual SAM. It counts level transitions for tests.
// It is safe for concurrent use.
type Line struct {
	name   string
	number int
	onSet  func(gpio.Level) // called with mu held, on every transition

	mu          sync.Mutex // mu guards the fields below
	level       gpio.Level
	out         bool
	pull        gpio.Pull
	edge        gpio.Edge
	transitions int
	edges       chan struct{} // one pending edge notification
}

// NewLine returns a line at level.
func NewLine(name string, number int, level gpio.Level) *Line {
	return &Line{name: name, number: number, level: level, edges: make(chan struct{}, 1)}
}

// PowerLine returns a line that powers s: High (its initial level, s
// starts powered) powers it on — it answers after its boot time — and Low
// powers it off.
func PowerLine(name string, number int, s *SAM) *Line {
	l := NewLine(name, number, gpio.High)
	l.out = true
	l.onSet = func(v gpio.Level) {
		if v == gpio.High {
			s.PowerOn()
		} else {
			s.PowerOff()
		}
	}
	if !s.Powered() {
		s.PowerOn()
	}
	return l
}

// String implements conn.Resource.
func (l *Line) String() string { return fmt.Sprintf("%s(%d)", l.name, l.number) }

// Halt implements conn.Resource; it does nothing.
func (l *Line) Halt() error { return nil }

// Name implements pin.Pin.
func (l *Line) Name() string { return l.name }

// Number implements pin.Pin.
func (l *Line) Number() int { return l.number }

// Function implements pin.Pin.
func (l *Line) Function() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out {
		return "Out/" + l.level.String()
	}
	return "In/" + l.level.String()
}

// Out implements gpio.PinOut.
func (l *Line) Out(v gpio.Level) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = true
	l.setLocked(v)
	return nil
}

// Set drives the level from outside, as the other end of an input line
// would (a button, a presence switch).
func (l *Line) Set(v gpio.Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(v)
}

func (l *Line) setLocked(v gpio.Level) {
	if v == l.level {
		return
	}
	l.level = v
	l.transitions++
	if l.onSet != nil {
		l.onSet(v)
	}
	if l.edge == gpio.BothEdges || (l.edge == gpio.RisingEdge && v == gpio.High) || (l.edge == gpio.FallingEdge && v == gpio.Low) {
		select {
		case l.edges <- struct{}{}:
		default:
		}
	}
}

// PWM implements gpio.PinOut; virtual lines have none.
func (l *Line) PWM(gpio.Duty, physic.Frequency) error { return ErrNoPWM }

// In implements gpio.PinIn.
func (l *Line) In(pull gpio.Pull, edge gpio.Edge) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out, l.pull, l.edge = false, pull, edge
	select {
	case <-l.edges:
	default:
	}
	return nil
}

// Read implements gpio.PinIn: the current level.
func (l *Line) Read() gpio.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level
}

// WaitForEdge implements gpio.PinIn. A negative timeout waits forever.
func (l *Line) WaitForEdge(timeout time.Duration) bool {
	select {
	case <-l.edges:
		return true
	default:
	}
	if timeout < 0 {
		<-l.edges
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.edges:
		return true
	case <-t.C:
		return false
	}
}

// Pull implements gpio.PinIn.
func (l *Line) Pull() gpio.Pull {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pull
}

// DefaultPull implements gpio.PinIn.
func (l *Line) DefaultPull() gpio.Pull { return gpio.Float }

// Transitions is the number of level changes since the line was made.
func (l *Line) Transitions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.transitions
}
