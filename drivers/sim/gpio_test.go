package sim_test

import (
	"errors"
	"testing"

	"github.com/samrack/samrack/drivers/sim"
	"periph.io/x/conn/v3/gpio"
)

func TestLine(t *testing.T) {
	var p gpio.PinIO = sim.NewLine("locate-led", 4, gpio.Low)
	if p.Name() != "locate-led" || p.Number() != 4 || p.String() != "locate-led(4)" {
		t.Errorf("names: %s %d %s", p.Name(), p.Number(), p)
	}
	l := p.(*sim.Line)
	for _, v := range []gpio.Level{gpio.High, gpio.High, gpio.Low, gpio.High} {
		if err := p.Out(v); err != nil {
			t.Fatal(err)
		}
		if p.Read() != v {
			t.Errorf("Read = %v after Out(%v)", p.Read(), v)
		}
	}
	if l.Transitions() != 3 {
		t.Errorf("%d transitions, want 3", l.Transitions())
	}
	if err := p.PWM(gpio.DutyHalf, 0); !errors.Is(err, sim.ErrNoPWM) {
		t.Errorf("PWM: %v", err)
	}

	// An input line sees edges driven from outside.
	in := sim.NewLine("presence", 5, gpio.Low)
	if err := in.In(gpio.PullDown, gpio.RisingEdge); err != nil {
		t.Fatal(err)
	}
	if in.WaitForEdge(0) {
		t.Error("edge before any change")
	}
	in.Set(gpio.High)
	if !in.WaitForEdge(0) || in.Read() != gpio.High || in.Pull() != gpio.PullDown {
		t.Error("rising edge not seen")
	}
	in.Set(gpio.Low)
	if in.WaitForEdge(0) {
		t.Error("falling edge seen on a rising-edge line")
	}
}

func TestPowerLineStartsOff(t *testing.T) {
	s := newSAM()
	s.PowerOff()
	pwr := sim.PowerLine("p", 1, s)
	if !s.Powered() || pwr.Read() != gpio.High {
		t.Error("PowerLine does not power its SAM")
	}
	pwr.Out(gpio.Low)
	if s.Powered() {
		t.Error("Low does not cut the power")
	}
}
