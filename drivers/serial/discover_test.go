package serial

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDiscover(t *testing.T) {
	dev := t.TempDir()
	byID := filepath.Join(dev, "serial", "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ttyUSB0", "ttyUSB1", "ttyUSB10", "ttyUSB2", "ttyACM0", "ttyS0", "tty0"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o600)
	}
	links := map[string]string{
		"usb-FTDI_FT232R_A1-if00-port0": "../../ttyUSB1",
		"usb-SAM_Module_0042-if00":      "../../ttyACM0",
		"usb-Gone_Adapter_9-if00-port0": "../../ttyUSB7", // dangling
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(byID, name)); err != nil {
			t.Fatal(err)
		}
	}
	p := func(s ...string) string { return filepath.Join(append([]string{dev}, s...)...) }
	want := []Candidate{
		{p("serial", "by-id", "usb-FTDI_FT232R_A1-if00-port0"), p("ttyUSB1")},
		{p("serial", "by-id", "usb-SAM_Module_0042-if00"), p("ttyACM0")},
		{p("ttyUSB0"), p("ttyUSB0")},
		{p("ttyUSB2"), p("ttyUSB2")},
		{p("ttyUSB10"), p("ttyUSB10")},
	}
	if got := discover(dev); !reflect.DeepEqual(got, want) {
		t.Errorf("discover:\n got %v\nwant %v", got, want)
	}
	if got := discover(filepath.Join(dev, "none")); len(got) != 0 {
		t.Errorf("discover of an empty /dev: %v", got)
	}
}
