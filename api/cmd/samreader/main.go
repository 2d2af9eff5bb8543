// Command samreader is a reader terminal simulator: a reader with an RF
// front-end and a virtual ID card in its field, but no SAM. It reads cards
// through a samrack appliance with the Go SDK (api/client), for demos, load
// tests and reader makers who want to see the protocol work.
//
//	samreader read --creds reader.json --seed 7
//	samreader read --creds reader.json --card card.json --json
//	samreader load --creds reader.json --count 2000 --concurrency 32
//	samreader card --seed 7 --type J --out card.json
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/loadgen"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "samreader:", err)
		var we *wire.Error
		if errors.As(err, &we) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// cardFlags pick the virtual card in the field.
type cardFlags struct {
	seed        int64
	file        string
	typ         string
	fingerprint bool
	instant     bool
}

func (f *cardFlags) add(cmd *cobra.Command) {
	cmd.Flags().Int64Var(&f.seed, "seed", 1, "generate the virtual card from this seed")
	cmd.Flags().StringVar(&f.file, "card", "", "load the virtual card from this card file instead (samreader card --out)")
	cmd.Flags().StringVar(&f.typ, "type", "resident", "card type: resident, J (HK/Macao/Taiwan permit), I or Y (foreign permanent resident)")
	cmd.Flags().BoolVar(&f.fingerprint, "with-fingerprint", false, "put a fingerprint file on a generated card")
	cmd.Flags().BoolVar(&f.instant, "instant-rf", false, "no RF air time (default: ISO 14443 B at 106 kbit/s)")
}

func (f *cardFlags) options() (sim.CardOptions, error) {
	opts := sim.CardOptions{Fingerprint: f.fingerprint}
	switch strings.ToLower(f.typ) {
	case "resident", "":
		opts.Type = ga467.Resident
	case "j":
		opts.Type = ga467.HKMacaoTaiwan
	case "i":
		opts.Type = ga467.ForeignPerm
	case "y":
		opts.Type = ga467.ForeignPerm2023
	default:
		return opts, fmt.Errorf("unknown card type %q (resident, J, I, Y)", f.typ)
	}
	if f.instant {
		opts.Timing = &sim.RFTiming{}
	}
	return opts, nil
}

func (f *cardFlags) card(seed int64) (*sim.Card, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	if f.file != "" {
		return sim.LoadCard(f.file, opts)
	}
	return sim.NewCard(seed, opts), nil
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "samreader",
		Short:         "A reader terminal simulator for samrack: virtual ID cards read through the appliance",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRead(), newLoad(), newCard())
	return root
}

func newRead() *cobra.Command {
	var (
		creds    string
		cf       cardFlags
		asJSON   bool
		noBatch  bool
		fp       bool
		retries  int
		timeout  time.Duration
		unsigned bool
	)
	cmd := &cobra.Command{
		Use:   "read",
		Short: "Read one virtual card and print its information",
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := credentials.Load(creds)
			if err != nil {
				return err
			}
			card, err := cf.card(cf.seed)
			if err != nil {
				return err
			}
			c, err := client.New(b, client.WithBatching(!noBatch), client.WithRetries(retries), client.WithUnsignedKeyShares(unsigned))
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := c.Read(ctx, card, client.ReadOptions{Fingerprint: fp})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(toJSON(res))
			}
			printResult(cmd, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&creds, "creds", "reader.json", "reader credential bundle (samctl reader add --out)")
	cf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&noBatch, "no-batch", false, "send one message per frame (more round trips)")
	cmd.Flags().BoolVar(&fp, "fingerprint", false, "ask for the fingerprint file too (30 10)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up after this long")
	cmd.Flags().IntVar(&retries, "retries", 2, "retry busy / SAM-fault / broken-connection reads this many times")
	cmd.Flags().BoolVar(&unsigned, "allow-unsigned-key-share", false, "read from an appliance that does not sign its key shares (older than PROTOCOL.md §8.1)")
	return cmd
}

func newLoad() *cobra.Command {
	var (
		creds       string
		cf          cardFlags
		count, conc int
		asJSON      bool
		noBatch     bool
		retries     int
		rtt         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Read many virtual cards from many concurrent readers and report reads/s, latency and errors",
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := credentials.Load(creds)
			if err != nil {
				return err
			}
			opts, err := cf.options()
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			sum, err := loadgen.Run(cmd.Context(), loadgen.Config{
				Bundles: []*credentials.Bundle{b}, Count: count, Concurrency: conc,
				// Every read gets its own card in the field.
				Card:    func(i int) idcard.RF { return sim.NewCard(cf.seed+int64(i), opts) },
				Options: []client.Option{client.WithBatching(!noBatch), client.WithRetries(retries)},
				RTT:     rtt,
				Progress: func(p loadgen.Progress) {
					rate := float64(p.Done-p.Errors) / max(p.Elapsed.Seconds(), 1e-9)
					fmt.Fprintf(stderr, "\r%6d/%d reads, %d errors, %.1f reads/s, %.1fs ", p.Done, p.Count, p.Errors, rate, p.Elapsed.Seconds())
				},
			})
			fmt.Fprintln(stderr)
			if err != nil && sum == nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"reads": sum.Reads, "errors": sum.Errors, "errors_by_code": sum.ByCode,
					"seconds": sum.Elapsed.Seconds(), "reads_per_sec": sum.ReadsPerSec, "steady_reads_per_sec": sum.SteadyReadsPerSec,
					"p50_ms": sum.P50.Seconds() * 1000, "p99_ms": sum.P99.Seconds() * 1000,
					"max_ms": sum.Max.Seconds() * 1000, "round_trips_per_read": sum.RoundTrips,
				})
			}
			fmt.Fprintln(cmd.OutOrStdout(), sum)
			return err
		},
	}
	cmd.Flags().StringVar(&creds, "creds", "reader.json", "reader credential bundle")
	cf.add(cmd)
	cmd.Flags().IntVar(&count, "count", 1000, "reads in all")
	cmd.Flags().IntVar(&conc, "concurrency", 16, "readers reading at once (one connection each)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().BoolVar(&noBatch, "no-batch", false, "send one message per frame")
	cmd.Flags().IntVar(&retries, "retries", 0, "retry busy / SAM-fault / broken-connection reads this many times (0: count them as errors)")
	cmd.Flags().DurationVar(&rtt, "rtt", 0, "add this WAN round trip to every exchange, on the readers' side: what they send goes out this much later")
	return cmd
}

func newCard() *cobra.Command {
	var (
		cf     cardFlags
		out    string
		serial bool
	)
	cmd := &cobra.Command{
		Use:   "card",
		Short: "Generate a virtual card: print its serial (--serial) or write a card file (--out) — test data only",
		RunE: func(cmd *cobra.Command, _ []string) error {
			card, err := cf.card(cf.seed)
			if err != nil {
				return err
			}
			if out != "" {
				if err := sim.SaveCard(out, card); err != nil {
					return err
				}
			}
			if serial || out == "" {
				s := card.Serial()
				fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(s[:]))
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the card file here")
	cmd.Flags().BoolVar(&serial, "serial", false, "print the card serial (16 hex digits, the blacklist key)")
	return cmd
}

var typeNames = map[ga467.CardType]string{
	ga467.Resident:        "resident ID card",
	ga467.HKMacaoTaiwan:   "HK/Macao/Taiwan residence permit (J)",
	ga467.ForeignPerm:     "foreign permanent resident ID card (I)",
	ga467.ForeignPerm2023: "foreign permanent resident ID card 2023 (Y)",
}

func printResult(cmd *cobra.Command, r *client.Result) {
	w := cmd.OutOrStdout()
	id := r.Identity
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-14s %s\n", k, v)
		}
	}
	fmt.Fprintf(w, "card %x — %s\n", r.Serial, typeNames[id.Type])
	row("name", id.Name)
	row("english name", id.EnglishName)
	row("sex", map[string]string{"1": "male", "2": "female"}[id.Sex])
	row("nation", id.Nation)
	row("nationality", id.Nationality)
	row("birth", id.Birth)
	row("address", id.Address)
	row("number", id.Number)
	row("pass number", id.PassNumber)
	row("authority", id.Authority)
	row("valid", id.ValidFrom+" – "+id.ValidTo)
	row("photo", fmt.Sprintf("%d bytes (WLT)", len(r.Photo)))
	if r.Fingerprint != nil {
		row("fingerprint", fmt.Sprintf("%d bytes", len(r.Fingerprint)))
	}
	fmt.Fprintf(w, "  %-14s %d round trips, suite %v, %.1f ms\n", "read", r.RoundTrips, r.Suite, float64(r.Duration.Microseconds())/1000)
	if r.Host != "" {
		row("session host", r.Host+" (signed its key share; the appliance whose SAM read the card)")
	}
}

func toJSON(r *client.Result) map[string]any {
	id := r.Identity
	m := map[string]any{
		"serial": hex.EncodeToString(r.Serial[:]), "type": string(rune(id.Type)),
		"name": id.Name, "english_name": id.EnglishName, "sex": id.Sex, "nation": id.Nation,
		"birth": id.Birth, "address": id.Address, "number": id.Number, "authority": id.Authority,
		"valid_from": id.ValidFrom, "valid_to": id.ValidTo, "pass_number": id.PassNumber,
		"issue_count": id.IssueCount, "nationality": id.Nationality,
		"photo_bytes": len(r.Photo), "fingerprint_bytes": len(r.Fingerprint),
		"round_trips": r.RoundTrips, "suite": r.Suite.String(), "duration_ms": float64(r.Duration.Microseconds()) / 1000,
		"session_host": r.Host,
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}
