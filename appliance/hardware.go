package appliance

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/samrack/samrack/drivers/gpio"
	"github.com/samrack/samrack/drivers/pcsc"
	_ "github.com/samrack/samrack/drivers/serial" // the "serial" driver
	"github.com/samrack/samrack/rack"
	"github.com/samrack/samrack/rack/rackfile"
)

// Hardware is a real rack: the slots of a rack file, their GPIO lines, and
// the watchers that see modules come and go.
type Hardware struct {
	Config  *rack.Config
	Options rack.Options
	lines   *gpio.Lines
}

// LoadHardware reads the rack file (package rack/rackfile), opens the GPIO lines if any slot names
// one, and sets up hot-swap watchers for the PC/SC and serial slots. Slot
// problems are logged, naming the slot; the other slots still come up.
func LoadHardware(ctx context.Context, path string, log *slog.Logger) (*Hardware, error) {
	cfg, slotErrs, err := rackfile.Load(path)
	for _, e := range slotErrs {
		log.Error("rack file: slot left out", "err", e)
	}
	if err != nil {
		return nil, err
	}
	hw := &Hardware{Config: cfg}
	needLines, drivers := false, map[string]bool{}
	for _, s := range cfg.Slots {
		needLines = needLines || s.Power != "" || s.Locate != "" || s.Fault != ""
		drivers[s.Driver] = true
	}
	if needLines {
		if hw.lines, err = gpio.Open(ctx); err != nil {
			return nil, fmt.Errorf("gpio: %w", err)
		}
		for _, d := range hw.lines.Drivers() {
			log.Info("gpio driver", "name", d.Name, "state", d.State, "reason", d.Reason)
		}
		hw.Options.Lines = hw.lines.Resolve
	}
	hw.Options.Watchers = map[string]rack.PresenceWatcher{}
	if drivers["pcsc"] {
		hw.Options.Watchers["pcsc"] = watchFunc(pcsc.Watch)
	}
	if drivers["serial"] {
		hw.Options.Watchers["serial"] = &rack.DevWatcher{Paths: cfg.Devices("serial")}
	}
	return hw, nil
}

// Close puts the GPIO lines in their safe state (package gpio): call it
// after the rack has stopped.
func (h *Hardware) Close() error {
	if h.lines == nil {
		return nil
	}
	return h.lines.Close()
}

// watchFunc adapts a watch function (pcsc.Watch) to rack.PresenceWatcher.
type watchFunc func(ctx context.Context, notify func(device string, present bool)) error

func (f watchFunc) Watch(ctx context.Context, notify func(device string, present bool)) error {
	return f(ctx, notify)
}
