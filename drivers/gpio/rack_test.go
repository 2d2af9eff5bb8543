package gpio

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/rack"
)

// Resolve is what rack.Options.Lines wants, and its errors reach the
// operator with the slot and the line named.
func TestRackLines(t *testing.T) {
	ls, _, _ := testLines(t)
	open := func(context.Context, string, string, map[string]string) (sam.SAM, error) {
		return nil, sam.ErrGone
	}
	cfg := rack.Config{Slots: []rack.SlotConfig{{ID: 0, Driver: "sim", Power: "SAM0_PWR", Locate: "gpiochip0/1", Fault: "!SAM0_FLT"}}}
	if _, err := rack.New(cfg, rack.Options{Open: open, Lines: ls.Resolve}); err != nil {
		t.Fatal(err)
	}
	cfg.Slots = append(cfg.Slots, rack.SlotConfig{ID: 1, Driver: "sim", Power: "SAM1_PWRX"})
	_, err := rack.New(cfg, rack.Options{Open: open, Lines: ls.Resolve})
	if !errors.Is(err, ErrUnknownLine) || !strings.Contains(err.Error(), `rack: slot 1: line "SAM1_PWRX"`) {
		t.Errorf("rack.New with an unknown line: %v", err)
	}
}
