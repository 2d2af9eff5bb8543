package gpio

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestHostInit runs periph's real host.Init on this machine. Without a
// /dev/gpiochip (containers, CI) the drivers are skipped, Open still
// succeeds and Resolve says what it could not find.
func TestHostInit(t *testing.T) {
	ls, err := Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	drivers := ls.Drivers()
	for _, d := range drivers {
		t.Logf("driver %-12s %-7s %s", d.Name, d.State, d.Reason)
	}
	for _, c := range ls.Chips() {
		t.Logf("chip %s %q %s, %d lines", c.Name, c.Label, c.Path, c.Lines)
	}
	var ioctl *DriverStatus
	for i := range drivers {
		if drivers[i].Name == "ioctl-gpio" {
			ioctl = &drivers[i]
		}
	}
	if ioctl == nil {
		t.Fatalf("host.Init did not run the ioctl-gpio driver: %+v", drivers)
	}
	if len(ls.Chips()) > 0 {
		t.Skipf("this machine has GPIO chips; the no-GPIO checks below do not apply")
	}
	if ioctl.State != "skipped" || ioctl.Reason != "no GPIO chips found" {
		t.Errorf("ioctl-gpio %s (%s), want skipped: no GPIO chips found", ioctl.State, ioctl.Reason)
	}
	_, err = ls.Resolve("SAM0_PWR")
	t.Logf("Resolve(SAM0_PWR): %v", err)
	if !errors.Is(err, ErrUnknownLine) || !strings.Contains(err.Error(), `line "SAM0_PWR"`) || !strings.Contains(err.Error(), "GPIO chips: none") {
		t.Errorf("Resolve(SAM0_PWR) = %v", err)
	}
	_, err = ls.Resolve("gpiochip0/17:active-low")
	t.Logf("Resolve(gpiochip0/17:active-low): %v", err)
	if !errors.Is(err, ErrUnknownChip) || !strings.Contains(err.Error(), `"gpiochip0"`) {
		t.Errorf("Resolve(gpiochip0/17) = %v", err)
	}
	// Open again: host.Init runs once per process and returns its state.
	ls2, err := Open(context.Background())
	if err != nil || len(ls2.Drivers()) != len(drivers) {
		t.Errorf("second Open: %v, %d drivers", err, len(ls2.Drivers()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(cancelled) = %v", err)
	}
}
