//go:build linux

package gpio

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
)

// The uAPI structs must match <linux/gpio.h> byte for byte.
func TestCdevLayout(t *testing.T) {
	for _, tc := range []struct {
		what      string
		got, want uintptr
	}{
		{"gpio_v2_line_attribute", unsafe.Sizeof(lineAttribute{}), 16},
		{"gpio_v2_line_config_attribute", unsafe.Sizeof(lineConfigAttribute{}), 24},
		{"gpio_v2_line_config", unsafe.Sizeof(lineConfig{}), 272},
		{"gpio_v2_line_request", unsafe.Sizeof(lineRequest{}), 592},
		{"gpio_v2_line_request.config offset", unsafe.Offsetof(lineRequest{}.config), 288},
		{"gpio_v2_line_request.fd offset", unsafe.Offsetof(lineRequest{}.fd), 588},
		{"gpio_v2_line_values", unsafe.Sizeof(lineValues{}), 16},
		{"GPIO_V2_GET_LINE_IOCTL", getLineIoctl, 0xC250B407},
		{"GPIO_V2_LINE_GET_VALUES_IOCTL", getValuesIoctl, 0xC010B40E},
		{"GPIO_V2_LINE_SET_VALUES_IOCTL", setValuesIoctl, 0xC010B40F},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.what, tc.got, tc.want)
		}
	}
	if len(consumer) == 0 || len(consumer) >= maxNameSize {
		t.Errorf("consumer %q", consumer)
	}
}

// gpioSim makes a gpio-sim chip of n lines (configfs,
// https://docs.kernel.org/admin-guide/gpio/gpio-sim.html) and returns its
// /dev path and the sysfs directory of its simulated lines, or skips.
func gpioSim(t *testing.T, n int) (dev, sim string) {
	t.Helper()
	const cfs = "/sys/kernel/config/gpio-sim"
	if _, err := os.Stat(cfs); err != nil {
		msg := ""
		if mp, lerr := exec.LookPath("modprobe"); lerr == nil {
			out, merr := exec.Command(mp, "gpio-sim").CombinedOutput()
			msg = fmt.Sprintf("; modprobe gpio-sim: %v %s", merr, strings.TrimSpace(string(out)))
		} else {
			msg = "; no modprobe"
		}
		if _, err := os.Stat(cfs); err != nil {
			t.Skipf("gpio-sim not available (%v%s): the character-device round trip needs a kernel with CONFIG_GPIO_SIM and configfs", err, msg)
		}
	}
	dir := filepath.Join(cfs, fmt.Sprintf("samrack-%d", os.Getpid()))
	bank := filepath.Join(dir, "bank0")
	write := func(p, v string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Skipf("gpio-sim: %v", err)
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("gpio-sim: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.Mkdir(bank, 0o755); err != nil {
		t.Skipf("gpio-sim: %v", err)
	}
	t.Cleanup(func() { os.Remove(bank) })
	write(filepath.Join(bank, "num_lines"), fmt.Sprint(n))
	write(filepath.Join(dir, "live"), "1")
	t.Cleanup(func() { os.WriteFile(filepath.Join(dir, "live"), []byte("0"), 0o644) })
	chipName, err1 := os.ReadFile(filepath.Join(bank, "chip_name"))
	devName, err2 := os.ReadFile(filepath.Join(dir, "dev_name"))
	if err1 != nil || err2 != nil {
		t.Fatalf("gpio-sim names: %v %v", err1, err2)
	}
	c, d := strings.TrimSpace(string(chipName)), strings.TrimSpace(string(devName))
	return "/dev/" + c, filepath.Join("/sys/devices/platform", d, c)
}

// TestCdevGPIOSim drives a real character-device line through a Lines and
// reads it back from gpio-sim's side and from the kernel.
func TestCdevGPIOSim(t *testing.T) {
	dev, sim := gpioSim(t, 4)
	simValue := func(off int) string {
		b, err := os.ReadFile(filepath.Join(sim, fmt.Sprintf("sim_gpio%d", off), "value"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	ls := newLines(nil, []chip{{
		ChipInfo:  ChipInfo{Name: filepath.Base(dev), Path: dev, Lines: 4},
		names:     make([]string, 4),
		consumers: make([]string, 4),
		open:      func(off int) backend { return newCdevLine(dev, off) },
	}})
	defer ls.Close()
	pwr, err := ls.ResolveAs(filepath.Base(dev)+"/1:active-low", RolePower)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    gpio.Level
		wire string
	}{{gpio.High, "0"}, {gpio.Low, "1"}, {gpio.High, "0"}} {
		if err := pwr.Out(tc.v); err != nil {
			t.Fatal(err)
		}
		if got := simValue(1); got != tc.wire {
			t.Errorf("Out(%s) on an active-low line: gpio-sim sees %s, want %s", tc.v, got, tc.wire)
		}
		if got, err := pwr.be.(*cdevLine).get(); err != nil || got != (tc.wire == "1") {
			t.Errorf("kernel reads %s, %v", got, err)
		}
	}
	// Another requester of a held line gets EBUSY, named as ErrBusy.
	other := newCdevLine(dev, 1)
	if err := other.out(gpio.High); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second request of a held line: %v", err)
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	// Released: requestable again.
	if err := other.out(gpio.Low); err != nil {
		t.Errorf("request after Close: %v", err)
	}
	other.release()
}
