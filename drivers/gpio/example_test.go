package gpio_test

import (
	"context"
	"fmt"
	"log"

	samgpio "github.com/samrack/samrack/drivers/gpio"
	"github.com/samrack/samrack/rack"
)

// Wiring a rack to real GPIO lines: declare each slot's line roles (they
// decide the safe state at Close), hand Resolve to the rack, Close after
// the rack has stopped.
func Example() {
	lines, err := samgpio.Open(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer lines.Close() // after rack.Run has returned: power as is, locate off

	for _, d := range lines.Drivers() {
		if d.Name == "ioctl-gpio" {
			fmt.Println("driver", d.Name, d.State)
		}
	}

	slots := []rack.SlotConfig{{
		ID: 0, Driver: "serial", Device: "/dev/ttyUSB0",
		Power:  "!SAM0_PWR",    // line name, active-low load switch
		Locate: "gpiochip0/20", // chip and offset
		Fault:  "pinctrl-bcm2835/21:active-low",
	}}
	for _, sc := range slots {
		for _, l := range []struct {
			spec string
			role samgpio.Role
		}{{sc.Power, samgpio.RolePower}, {sc.Locate, samgpio.RoleLocate}, {sc.Fault, samgpio.RoleFault}} {
			if l.spec == "" {
				continue
			}
			if _, err := lines.ResolveAs(l.spec, l.role); err != nil {
				fmt.Println(err) // this machine has no GPIO; show why once
				return
			}
		}
	}
	r, err := rack.New(rack.Config{Slots: slots}, rack.Options{Lines: lines.Resolve})
	if err != nil {
		log.Fatal(err)
	}
	_ = r // r.Run(ctx) until shutdown, then lines.Close()
}
