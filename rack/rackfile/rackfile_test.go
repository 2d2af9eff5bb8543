package rackfile_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/samrack/samrack/drivers/sim" // the "sim" driver the files name
	"github.com/samrack/samrack/rack/rackfile"
)

func TestParse(t *testing.T) {
	const good = `
check_interval: 2s
boot_time: 500ms
slots:
  - id: 0
    driver: sim
    device: "1"
    power: "!SAM0_PWR"
  - id: 1
    driver: nosuch
    device: x
  - id: 0
    driver: sim
    device: "2"
  - id: 3
    driver: sim
  - id: 4
    driver: sim
    device: "4"
    options: {proc: 10ms}
`
	cfg, slotErrs, err := rackfile.Parse("rack.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CheckInterval != 2*time.Second || cfg.BootTime != 500*time.Millisecond {
		t.Errorf("durations: %v %v", cfg.CheckInterval, cfg.BootTime)
	}
	if len(cfg.Slots) != 2 || cfg.Slots[0].ID != 0 || cfg.Slots[0].Power != "!SAM0_PWR" || cfg.Slots[1].Options["proc"] != "10ms" {
		t.Errorf("slots: %+v", cfg.Slots)
	}
	want := []string{"slot 1 (entry 2): unknown driver \"nosuch\"", "slot 0 (entry 3): id used twice", "slot 3 (entry 4): no device"}
	if len(slotErrs) != len(want) {
		t.Fatalf("slot errors: %v", slotErrs)
	}
	for i, w := range want {
		if !strings.Contains(slotErrs[i].Error(), w) {
			t.Errorf("error %d = %v, want it to contain %q", i, slotErrs[i], w)
		}
	}

	for _, bad := range []string{
		"slots: [",                          // syntax
		"check_interval: soon\nslots: []",   // bad duration
		"slots:\n  - id: 0\n    drive: sim", // unknown field
		"slots: []",                         // nothing usable
	} {
		if _, _, err := rackfile.Parse("rack.yaml", []byte(bad)); !errors.Is(err, rackfile.ErrUnusable) {
			t.Errorf("%q: err = %v, want ErrUnusable", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("slots:\n  - id: 0\n    driver: sim\n    device: \"1\"\n"))
	f.Add([]byte("check_interval: 1s\nslots: [{id: 1, driver: sim, device: x}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := rackfile.Parse("fuzz", data)
		if err == nil && len(cfg.Slots) == 0 {
			t.Fatal("no error but no slots")
		}
	})
}
