package gpio

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// regPin registers a gpiotest pin at level in gpioreg for the test.
func regPin(t *testing.T, name string, num int, level gpio.Level) *gpiotest.Pin {
	t.Helper()
	p := &gpiotest.Pin{N: name, Num: num, L: level}
	if err := gpioreg.Register(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gpioreg.Unregister(name) })
	return p
}

func level(p *gpiotest.Pin) gpio.Level {
	p.Lock()
	defer p.Unlock()
	return p.L
}

// fakeLine stands in for a character-device line: a gpiotest pin behind
// LogPinIO, counting writes and releases.
type fakeLine struct {
	pin *gpiotest.Pin
	log gpio.PinIO

	mu       sync.Mutex // mu guards the counts
	outs     int
	released int
}

func (f *fakeLine) out(v gpio.Level) error {
	f.mu.Lock()
	f.outs++
	f.mu.Unlock()
	return f.log.Out(v)
}

func (f *fakeLine) release() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released++
	return nil
}

func (f *fakeLine) counts() (outs, released int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.outs, f.released
}

// fakeChip is a chip whose lines start at the levels given.
func fakeChip(name, label string, names []string, levels ...gpio.Level) (chip, []*fakeLine) {
	c := chip{ChipInfo: ChipInfo{Name: name, Label: label, Path: "/dev/" + name, Lines: len(names)}, names: names}
	var fl []*fakeLine
	for i := range names {
		p := &gpiotest.Pin{N: fmt.Sprintf("%s/%d", name, i), Num: i}
		if i < len(levels) {
			p.L = levels[i]
		}
		fl = append(fl, &fakeLine{pin: p, log: &gpiotest.LogPinIO{PinIO: p}})
		c.consumers = append(c.consumers, "")
		c.pins = append(c.pins, p)
	}
	c.open = func(off int) backend { return fl[off] }
	return c, fl
}

// testLines: gpiochip0 "pinctrl-test" with four lines (the third unnamed),
// gpiochip1 "expander" with two, one of them a name gpiochip0 also has.
func testLines(t *testing.T) (*Lines, []*fakeLine, []*fakeLine) {
	c0, l0 := fakeChip("gpiochip0", "pinctrl-test", []string{"SAM0_PWR", "SAM0_LOC", "", "SAM0_FLT"}, gpio.High, gpio.Low, gpio.Low, gpio.Low)
	c1, l1 := fakeChip("gpiochip1", "expander", []string{"DUP", "SAM1_PWR"})
	c1.consumers[1] = "other-daemon@42"
	// A third chip with a line named like one of gpiochip1's: ambiguous.
	c2, _ := fakeChip("gpiochip2", "expander2", []string{"DUP"})
	ls := newLines([]DriverStatus{{Name: "test-gpio", State: "loaded"}}, []chip{c0, c1, c2})
	t.Cleanup(func() { ls.Close() })
	return ls, l0, l1
}

func TestResolve(t *testing.T) {
	ls, l0, _ := testLines(t)
	reg := regPin(t, "TEST_GPIO17", 17, gpio.Low)
	regLow := regPin(t, "TEST_GPIO18", 18, gpio.High)
	if err := gpioreg.RegisterAlias("TEST_ALIAS17", "TEST_GPIO17"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gpioreg.Unregister("TEST_ALIAS17") })

	for _, tc := range []struct {
		spec      string
		name      string // Line.Name
		str       string // Line.String
		level     func() gpio.Level
		activeLow bool
	}{
		{"SAM0_LOC", "SAM0_LOC", "SAM0_LOC(gpiochip0/1)", func() gpio.Level { return level(l0[1].pin) }, false},
		{"gpiochip0/2", "gpiochip0/2", "gpiochip0/2", func() gpio.Level { return level(l0[2].pin) }, false},
		{"pinctrl-test/3:active-low", "SAM0_FLT", "SAM0_FLT(gpiochip0/3):active-low", func() gpio.Level { return level(l0[3].pin) }, true},
		{"/dev/gpiochip0/0", "SAM0_PWR", "SAM0_PWR(gpiochip0/0)", func() gpio.Level { return level(l0[0].pin) }, false},
		{"TEST_GPIO17", "TEST_GPIO17", "TEST_GPIO17(17)", func() gpio.Level { return level(reg) }, false},
		{"!TEST_GPIO18", "TEST_GPIO18", "TEST_GPIO18(18):active-low", func() gpio.Level { return level(regLow) }, true},
	} {
		p, err := ls.Resolve(tc.spec)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", tc.spec, err)
		}
		//lint:ignore SA1019 Function is what periph v3's PinOut offers; the test checks our implementation of it
		fn := p.Function()
		if p.Name() != tc.name || p.String() != tc.str || fn != "Unclaimed" {
			t.Errorf("Resolve(%q) = %s %s %s, want %s %s Unclaimed", tc.spec, p.Name(), p, fn, tc.name, tc.str)
		}
		for _, v := range []gpio.Level{gpio.High, gpio.Low, gpio.High} {
			if err := p.Out(v); err != nil {
				t.Fatal(err)
			}
			if want := gpio.Level(v != gpio.Level(tc.activeLow)); tc.level() != want {
				t.Errorf("%s: Out(%s): wire %s, want %s", tc.spec, v, tc.level(), want)
			}
		}
		//lint:ignore SA1019 as above
		if fn := p.Function(); fn != "Out/High" {
			t.Errorf("%s: Function %q after Out(High)", tc.spec, fn)
		}
	}

	// The same line by another spec is the same *Line.
	a, _ := ls.Resolve("gpiochip0/1")
	b, _ := ls.Resolve("SAM0_LOC")
	c, _ := ls.Resolve("TEST_ALIAS17")
	d, _ := ls.Resolve("TEST_GPIO17")
	if a != b || c != d {
		t.Errorf("same line resolved to different Lines: %p %p, %p %p", a, b, c, d)
	}
	if a.Number() != 1 || d.Number() != 17 {
		t.Errorf("Number: %d %d", a.Number(), d.Number())
	}
	if err := a.PWM(gpio.DutyHalf, 0); !errors.Is(err, ErrNoPWM) {
		t.Errorf("PWM: %v", err)
	}
}

// Resolving a line does not touch it: nothing is requested or driven
// before the rack's first Out, so starting the daemon moves no line.
func TestResolveDoesNotDrive(t *testing.T) {
	ls, l0, _ := testLines(t)
	if _, err := ls.ResolveAs("SAM0_PWR", RolePower); err != nil {
		t.Fatal(err)
	}
	if outs, _ := l0[0].counts(); outs != 0 || level(l0[0].pin) != gpio.High {
		t.Errorf("after Resolve: %d writes, level %s; want none, High", outs, level(l0[0].pin))
	}
}

func TestResolveErrors(t *testing.T) {
	ls, _, _ := testLines(t)
	if _, err := ls.ResolveAs("SAM0_PWR", RolePower); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec string
		err  error
		msg  string // part of the message
	}{
		{"NO_SUCH_LINE", ErrUnknownLine, `line "NO_SUCH_LINE": gpio: no such line (GPIO chips: gpiochip0 "pinctrl-test" 4 lines`},
		{"gpiochip9/1", ErrUnknownChip, `line "gpiochip9/1": gpio: no such GPIO chip "gpiochip9"`},
		{"gpiochip0/4", ErrUnknownLine, "gpiochip0 has lines 0 to 3"},
		{"DUP", ErrAmbiguous, `"DUP" is gpiochip1/0, gpiochip2/0; name it by CHIP/OFFSET`},
		{"SAM1_PWR", ErrBusy, `gpiochip1/1 is held by "other-daemon@42"`},
		{"!SAM0_PWR", ErrConflict, "already resolved as SAM0_PWR(gpiochip0/0)"},
		{"pinctrl-test:0", ErrBadSpec, "CHIP/OFFSET"},
	} {
		_, err := ls.Resolve(tc.spec)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Resolve(%q) = %v; want %v containing %q", tc.spec, err, tc.err, tc.msg)
		}
	}
	// One line cannot be two slots' power and locate.
	if _, err := ls.ResolveAs("gpiochip0/0", RoleLocate); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already a power line, not locate") {
		t.Errorf("ResolveAs(locate) of a power line = %v", err)
	}
	// A role can be declared after a plain Resolve, and Resolve keeps it.
	l, _ := ls.Resolve("SAM0_LOC")
	if _, err := ls.ResolveAs("SAM0_LOC", RoleLocate); err != nil {
		t.Fatal(err)
	}
	ls.Resolve("SAM0_LOC")
	if r := l.(*Line).Role(); r != RoleLocate {
		t.Errorf("role %s, want locate", r)
	}
}

// TestCloseSafeState: power and fault lines are left as they are, locate
// LEDs turned off, every line released, nothing driven after.
func TestCloseSafeState(t *testing.T) {
	c, fl := fakeChip("gpiochip0", "pinctrl-test",
		[]string{"PWR_ON", "PWR_OFF", "PWR_AL", "LOC_ON", "LOC_AL", "FLT_ON", "OTHER", "LOC_OFF", "NEVER"})
	ls := newLines(nil, []chip{c})
	for _, tc := range []struct {
		spec  string
		role  Role
		drive gpio.Level // logical level the rack left
	}{
		{"PWR_ON", RolePower, gpio.High},
		{"PWR_OFF", RolePower, gpio.Low}, // an operator powered it off
		{"!PWR_AL", RolePower, gpio.High},
		{"LOC_ON", RoleLocate, gpio.High},
		{"!LOC_AL", RoleLocate, gpio.High},
		{"FLT_ON", RoleFault, gpio.High},
		{"OTHER", RoleOther, gpio.High},
		{"LOC_OFF", RoleLocate, gpio.Low},
	} {
		l, err := ls.ResolveAs(tc.spec, tc.role)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Out(tc.drive); err != nil {
			t.Fatal(err)
		}
	}
	never, _ := ls.ResolveAs("NEVER", RoleLocate) // resolved, never driven
	var before []int
	for _, f := range fl {
		n, _ := f.counts()
		before = append(before, n)
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	// Wire levels after Close, and whether Close wrote the line.
	want := []struct {
		wire  gpio.Level
		wrote bool
	}{
		{gpio.High, false}, // PWR_ON: stays powered
		{gpio.Low, false},  // PWR_OFF: stays off
		{gpio.Low, false},  // PWR_AL: active-low, powered
		{gpio.Low, true},   // LOC_ON: off
		{gpio.High, true},  // LOC_AL: active-low, off
		{gpio.High, false}, // FLT_ON: stays lit
		{gpio.High, false}, // OTHER: as is
		{gpio.Low, false},  // LOC_OFF: already off, not written
		{gpio.Low, false},  // NEVER: untouched
	}
	for i, w := range want {
		outs, released := fl[i].counts()
		if level(fl[i].pin) != w.wire || (outs > before[i]) != w.wrote {
			t.Errorf("%s after Close: wire %s, written %t; want %s, %t", c.names[i], level(fl[i].pin), outs > before[i], w.wire, w.wrote)
		}
		if released != 1 && i != 8 {
			t.Errorf("%s released %d times, want 1", c.names[i], released)
		}
	}
	if outs, _ := fl[8].counts(); outs != 0 {
		t.Errorf("never-driven line written %d times", outs)
	}
	if err := never.Out(gpio.High); !errors.Is(err, ErrClosed) {
		t.Errorf("Out after Close = %v, want ErrClosed", err)
	}
	if _, err := ls.Resolve("PWR_ON"); !errors.Is(err, ErrClosed) {
		t.Errorf("Resolve after Close = %v, want ErrClosed", err)
	}
	if err := ls.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// Outs racing Close: each Out either lands before Close or fails with
// ErrClosed, and a locate LED always ends off.
func TestConcurrentOutClose(t *testing.T) {
	c, fl := fakeChip("gpiochip0", "pinctrl-test", []string{"LOC"})
	ls := newLines(nil, []chip{c})
	l, err := ls.ResolveAs("LOC", RoleLocate)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if err := l.Out(gpio.High); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		if err := ls.Close(); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if level(fl[0].pin) != gpio.Low {
		t.Errorf("locate LED %s after Close, want off", level(fl[0].pin))
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleOther: "other", RolePower: "power", RoleLocate: "locate", RoleFault: "fault", Role(9): "Role(9)"} {
		if r.String() != want {
			t.Errorf("%d: %q", int(r), r.String())
		}
	}
}
