//go:build linux

package serial_test

import (
	"context"
	"fmt"
	"time"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/serial" // also registers the "serial" driver
)

// Probe every tty that may hold a SAM module: open it through the driver
// registry and ask for its SAM ID.
func ExampleDiscover() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range serial.Discover() {
		m, err := sam.Open(ctx, "serial", c.Path, map[string]string{"baud": "115200"})
		if err != nil {
			fmt.Printf("%s: %v\n", c.Path, err)
			continue
		}
		id, err := m.ID(ctx)
		m.Close()
		if err != nil {
			fmt.Printf("%s (%s): no module: %v\n", c.Path, c.Device, err)
			continue
		}
		fmt.Printf("%s (%s): SAM %v\n", c.Path, c.Device, id)
	}
}
