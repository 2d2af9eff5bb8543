package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/samrack/samrack/drivers/pcsc"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/serial"
	_ "github.com/samrack/samrack/drivers/sim" // the "sim" driver, for trying probe without hardware
	"github.com/samrack/samrack/rack/rackfile"
)

// Probe is what `samctl probe` reports of one module.
type Probe struct {
	Driver     string  `json:"driver"`
	Device     string  `json:"device"`
	SAMID      string  `json:"sam_id,omitempty"`
	Status     string  `json:"status"`
	RoundTrip  float64 `json:"round_trip_ms"` // median of the status commands
	OpenTime   float64 `json:"open_ms"`
	Error      string  `json:"error,omitempty"`
	Iterations int     `json:"status_commands"`
}

// parseTarget splits "serial:/dev/ttyUSB0" or `pcsc:"ACS ACR39U 00 00"`.
func parseTarget(s string) (driver, dev string, err error) {
	driver, dev, ok := strings.Cut(s, ":")
	if !ok || driver == "" || dev == "" {
		return "", "", fmt.Errorf("%q: want DRIVER:DEVICE, e.g. serial:/dev/ttyUSB0 or pcsc:\"reader name\" (drivers %v)", s, sam.Drivers())
	}
	return driver, strings.Trim(dev, `"'`), nil
}

func (a *app) probe() *cobra.Command {
	var (
		n       int
		timeout time.Duration
		baud    string
	)
	cmd := &cobra.Command{
		Use:   "probe DRIVER:DEVICE",
		Short: "Probe one SAM module without a running appliance: SAM ID, status, round-trip time",
		Long: `Opens the module directly (the appliance must not be using it), resets nothing,
and runs the GA 467 status (11 FF) and SAM ID (12 FF) commands:
what a hardware team runs when a module goes in.

  samctl probe serial:/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10KZ0QX-if00-port0
  samctl probe pcsc:"ACS ACR39U ICC Reader 00 00"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			driver, dev, err := parseTarget(args[0])
			if err != nil {
				return err
			}
			var opts map[string]string
			if baud != "" {
				opts = map[string]string{"baud": baud}
			}
			p := Probe{Driver: driver, Device: dev, Status: "unreachable"}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			t0 := time.Now()
			m, err := sam.Open(ctx, driver, dev, opts)
			p.OpenTime = ms(time.Since(t0))
			if err == nil {
				defer m.Close()
				err = probeModule(ctx, m, n, &p)
			}
			if err != nil {
				p.Error = err.Error()
			}
			if perr := a.show(cmd, p, func(w io.Writer) { printProbe(w, p) }); perr != nil {
				return perr
			}
			if err != nil {
				return fmt.Errorf("probe failed")
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "n", 5, "status commands to time")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().StringVar(&baud, "baud", "", "serial: line speed (default 115200)")
	return cmd
}

func probeModule(ctx context.Context, m sam.SAM, n int, p *Probe) error {
	id, err := m.ID(ctx)
	if err != nil {
		return fmt.Errorf("read SAM ID: %w", err)
	}
	p.SAMID = id.String()
	var rtts []time.Duration
	for range max(n, 1) {
		t := time.Now()
		if err := m.Status(ctx); err != nil {
			p.Status = "failed"
			return fmt.Errorf("status: %w", err)
		}
		rtts = append(rtts, time.Since(t))
		p.Iterations++
	}
	p.Status = "OK"
	sortDurations(rtts)
	p.RoundTrip = ms(rtts[len(rtts)/2])
	return nil
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printProbe(w io.Writer, p Probe) {
	fmt.Fprintf(w, "%s %s\n", p.Driver, p.Device)
	if p.SAMID != "" {
		fmt.Fprintf(w, "  SAM ID      %s\n", p.SAMID)
	}
	fmt.Fprintf(w, "  status      %s\n", p.Status)
	if p.Iterations > 0 {
		fmt.Fprintf(w, "  round trip  %.2f ms (median of %d status commands)\n", p.RoundTrip, p.Iterations)
	}
	fmt.Fprintf(w, "  open        %.2f ms\n", p.OpenTime)
	if p.Error != "" {
		fmt.Fprintf(w, "  error       %s\n", p.Error)
	}
}

func (a *app) rackCmd() *cobra.Command {
	r := &cobra.Command{Use: "rack", Short: "Bringing up a rack: discover modules, check a rack file"}
	var probeAll bool
	discover := &cobra.Command{
		Use:   "discover",
		Short: "List PC/SC readers and serial devices (stable by-id paths) and print a rack file to start from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			f := rackfile.File{}
			id := 0
			for _, c := range serial.Discover() {
				f.Slots = append(f.Slots, rackfile.Slot{ID: id, Driver: "serial", Device: c.Path})
				id++
			}
			readers, perr := pcsc.ListReaders(ctx)
			for _, name := range readers {
				f.Slots = append(f.Slots, rackfile.Slot{ID: id, Driver: "pcsc", Device: name})
				id++
			}
			w := cmd.OutOrStdout()
			if perr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "# PC/SC: %v\n", perr)
			}
			if probeAll {
				for _, s := range f.Slots {
					p := Probe{Driver: s.Driver, Device: s.Device}
					m, err := sam.Open(ctx, s.Driver, s.Device, nil)
					if err == nil {
						err = probeModule(ctx, m, 1, &p)
						m.Close()
					}
					if err != nil {
						fmt.Fprintf(w, "# slot %d %s %s: %v\n", s.ID, s.Driver, s.Device, err)
					} else {
						fmt.Fprintf(w, "# slot %d %s %s: SAM %s, %.2f ms\n", s.ID, s.Driver, s.Device, p.SAMID, p.RoundTrip)
					}
				}
			}
			if len(f.Slots) == 0 {
				fmt.Fprintln(w, "# no serial devices or PC/SC readers found")
				return nil
			}
			fmt.Fprintln(w, "# rack.yaml — generated by samctl rack discover; add power/locate/fault GPIO lines per slot")
			return yaml.NewEncoder(w).Encode(f)
		},
	}
	discover.Flags().BoolVar(&probeAll, "probe", false, "also probe every module found (the appliance must not be using them)")
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a rack file: every slot's problem is named, the usable slots are listed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, slotErrs, err := rackfile.Load(args[0])
			for _, e := range slotErrs {
				fmt.Fprintln(cmd.ErrOrStderr(), e)
			}
			if err != nil {
				return err
			}
			for _, s := range cfg.Slots {
				fmt.Fprintf(cmd.OutOrStdout(), "slot %d: %s %s\n", s.ID, s.Driver, s.Device)
			}
			if len(slotErrs) > 0 {
				return fmt.Errorf("%d slot(s) left out", len(slotErrs))
			}
			return nil
		},
	}
	r.AddCommand(discover, check)
	return r
}
