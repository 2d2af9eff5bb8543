// Command samctl is the operator CLI of a samrack appliance: the rack's
// slots, the card and reader blacklists, the reader registry, and
// `samctl ga467 decode` for a hardware team's captured frames. It talks to
// the appliance's admin API on loopback (--admin, or $SAMRACK_ADMIN).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance/audit"
	"github.com/samrack/samrack/drivers/ga467"
)

// DefaultAdmin is where samrackd serves the admin API by default.
const DefaultAdmin = "http://127.0.0.1:7480"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "samctl:", err)
		os.Exit(1)
	}
}

type app struct {
	adminURL string
	asJSON   bool
}

func (a *app) client() *admin.Client { return admin.NewClient(a.adminURL) }

// show prints v as JSON with --json, else calls human.
func (a *app) show(cmd *cobra.Command, v any, human func(w io.Writer)) error {
	if a.asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(cmd.OutOrStdout())
	return nil
}

func newRoot() *cobra.Command {
	a := &app{}
	def := os.Getenv("SAMRACK_ADMIN")
	if def == "" {
		def = DefaultAdmin
	}
	root := &cobra.Command{
		Use:           "samctl",
		Short:         "Operate a samrack appliance: slots, blacklists, readers, GA 467 frames",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.adminURL, "admin", def, "admin API of the appliance ($SAMRACK_ADMIN)")
	root.PersistentFlags().BoolVar(&a.asJSON, "json", false, "print JSON")
	root.AddCommand(a.health(), a.slots(), a.slot(), a.blacklist(), a.reader(), a.stats(), a.audit(), ga467Cmd(a), a.probe(), a.rackCmd())
	return root
}

func (a *app) health() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check the appliance answers and has SAMs in service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h struct {
				Status string         `json:"status"`
				Rack   map[string]int `json:"rack"`
			}
			if err := a.client().Do(cmd.Context(), "GET", "/v1/health", nil, &h); err != nil {
				return err
			}
			return a.show(cmd, h, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d slots, %d enabled (%d idle, %d busy), %d offline, %d quarantined\n",
					h.Status, h.Rack["Total"], h.Rack["Enabled"], h.Rack["Idle"], h.Rack["Busy"], h.Rack["Offline"], h.Rack["Quarantined"])
			})
		},
	}
}

func (a *app) slots() *cobra.Command {
	return &cobra.Command{
		Use:   "slots",
		Short: "Show the rack's slots as a table",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var slots []admin.Slot
			if err := a.client().Do(cmd.Context(), "GET", "/v1/slots", nil, &slots); err != nil {
				return err
			}
			return a.show(cmd, slots, func(w io.Writer) { printSlots(w, slots) })
		},
	}
}

func printSlots(w io.Writer, slots []admin.Slot) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tDRIVER\tDEVICE\tSTATE\tHEALTH\tSAM ID\tBUSY\tLEDS\tREADS\tERRORS\tCHECK\tLAST ERROR")
	for _, s := range slots {
		leds := ""
		if s.Locate {
			leds += "locate "
		}
		if s.Fault {
			leds += "fault"
		}
		if leds == "" {
			leds = "-"
		}
		busy := "-"
		if s.Busy {
			busy = "busy"
		}
		last := s.LastError
		if len(last) > 50 {
			last = last[:50] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.1f ms\t%s\n", s.ID, s.Driver, s.Device, s.State, s.Health,
			orDash(s.SAMID), busy, strings.TrimSpace(leds), s.Reads, s.Errors, s.LastCheckLatency, last)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) slot() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slot ACTION SLOT",
		Short: "Hardware team actions on a slot: drain, enable, power-off, power-on, power-cycle, locate-on, locate-off, clear-quarantine",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s admin.Slot
			if err := a.client().Do(cmd.Context(), "POST", "/v1/slots/"+url.PathEscape(args[1])+"/"+url.PathEscape(args[0]), nil, &s); err != nil {
				return err
			}
			return a.show(cmd, s, func(w io.Writer) { printSlots(w, []admin.Slot{s}) })
		},
	}
	return cmd
}

func (a *app) blacklist() *cobra.Command {
	bl := &cobra.Command{Use: "blacklist", Short: "The card blacklist (and `blacklist reader` for readers)"}
	var reason string
	add := &cobra.Command{
		Use:   "add SERIAL...",
		Short: "Blacklist cards by serial (16 hex digits: samreader card --serial)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]int
			if err := a.client().Do(cmd.Context(), "POST", "/v1/blacklist/cards", admin.AddCards{Cards: args, Reason: reason}, &out); err != nil {
				return err
			}
			return a.show(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "blacklisted %d card(s); %d on the list\n", out["added"], out["count"])
			})
		},
	}
	add.Flags().StringVar(&reason, "reason", "", "why (shown in the list and the audit trail)")
	remove := &cobra.Command{
		Use:   "remove SERIAL...",
		Short: "Take cards off the blacklist",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range args {
				if err := a.client().Do(cmd.Context(), "DELETE", "/v1/blacklist/cards/"+url.PathEscape(s), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", s)
			}
			return nil
		},
	}
	var after string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List blacklisted cards (paged: --after, --limit)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out admin.CardList
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if after != "" {
				q.Set("after", after)
			}
			if err := a.client().Do(cmd.Context(), "GET", "/v1/blacklist/cards?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return a.show(cmd, out, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SERIAL\tADDED\tBY\tREASON")
				for _, c := range out.Cards {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Serial, c.AddedAt.Local().Format(time.DateTime), c.AddedBy, c.Reason)
				}
				tw.Flush()
				fmt.Fprintf(w, "%d card(s) on the blacklist", out.Count)
				if out.Next != "" {
					fmt.Fprintf(w, "; more after %s (--after %s)", out.Next, out.Next)
				}
				fmt.Fprintln(w)
			})
		},
	}
	list.Flags().StringVar(&after, "after", "", "list serials after this one")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")
	var importReason string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Bulk-import a card list: one serial per line, optional ',reason', '#' comments ('-' reads stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			var out map[string]int
			q := url.Values{"reason": {importReason}}
			if err := a.client().Do(cmd.Context(), "POST", "/v1/blacklist/cards/import?"+q.Encode(), r, &out); err != nil {
				return err
			}
			return a.show(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "imported %d card(s); %d on the list\n", out["added"], out["count"])
			})
		},
	}
	imp.Flags().StringVar(&importReason, "reason", "imported", "reason for lines that carry none")
	bl.AddCommand(add, remove, list, imp, a.readerBlacklist())
	return bl
}

func (a *app) readerBlacklist() *cobra.Command {
	rb := &cobra.Command{Use: "reader", Short: "The reader blacklist"}
	var reason string
	add := &cobra.Command{
		Use: "add SERIAL", Short: "Blacklist a reader", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.client().Do(cmd.Context(), "POST", "/v1/blacklist/readers", admin.ReaderBlacklistEntry{Serial: args[0], Reason: reason}, nil)
		},
	}
	add.Flags().StringVar(&reason, "reason", "", "why")
	remove := &cobra.Command{
		Use: "remove SERIAL", Short: "Take a reader off the blacklist", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.client().Do(cmd.Context(), "DELETE", "/v1/blacklist/readers/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List blacklisted readers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out []admin.ReaderBlacklistEntry
			if err := a.client().Do(cmd.Context(), "GET", "/v1/blacklist/readers", nil, &out); err != nil {
				return err
			}
			return a.show(cmd, out, func(w io.Writer) {
				for _, e := range out {
					fmt.Fprintf(w, "%s\t%s\n", e.Serial, e.Reason)
				}
			})
		},
	}
	rb.AddCommand(add, remove, list)
	return rb
}

func (a *app) reader() *cobra.Command {
	rd := &cobra.Command{Use: "reader", Short: "The reader registry"}
	var out, cipher, note string
	add := &cobra.Command{
		Use:   "add SERIAL",
		Short: "Register a reader and write its credential bundle (key, client certificate, CA) for samreader",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b credentials.Bundle
			if err := a.client().Do(cmd.Context(), "POST", "/v1/readers", admin.AddReader{Serial: args[0], Cipher: cipher, Note: note}, &b); err != nil {
				return err
			}
			if out == "" {
				out = args[0] + ".json"
			}
			if err := b.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reader %s registered (%s key); credentials written to %s (keep it secret)\n", b.ReaderSerial, b.Cipher, out)
			return nil
		},
	}
	add.Flags().StringVar(&out, "out", "", "credential bundle file (default SERIAL.json)")
	add.Flags().StringVar(&cipher, "cipher", "sm4", "reader key cipher: sm4 or aes")
	add.Flags().StringVar(&note, "note", "", "free text: site, owner")
	list := &cobra.Command{
		Use: "list", Short: "List registered readers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rs []admin.ReaderInfo
			if err := a.client().Do(cmd.Context(), "GET", "/v1/readers", nil, &rs); err != nil {
				return err
			}
			return a.show(cmd, rs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SERIAL\tSTATUS\tCIPHER\tFAILED AUTH\tSAMS\tNOTE")
				for _, r := range rs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Serial, r.Status, r.Cipher, r.FailedAuth, orDash(strings.Join(r.SAMs, ",")), r.Note)
				}
				tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove SERIAL", Short: "Delete a reader from the registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.client().Do(cmd.Context(), "DELETE", "/v1/readers/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	status := &cobra.Command{
		Use: "status SERIAL active|suspended|blacklisted", Short: "Set a reader's status (active also clears its failure count)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ri admin.ReaderInfo
			if err := a.client().Do(cmd.Context(), "POST", "/v1/readers/"+url.PathEscape(args[0])+"/status", admin.ReaderStatus{Status: args[1]}, &ri); err != nil {
				return err
			}
			return a.show(cmd, ri, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", ri.Serial, ri.Status) })
		},
	}
	affinity := &cobra.Command{
		Use: "sams SERIAL [SAM-ID...]", Short: "Set the terminal→SAM table entry of a reader (no SAM IDs clears it)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ri json.RawMessage
			return a.client().Do(cmd.Context(), "PUT", "/v1/readers/"+url.PathEscape(args[0])+"/affinity", admin.Affinity{SAMs: args[1:]}, &ri)
		},
	}
	rd.AddCommand(add, list, remove, status, affinity)
	return rd
}

func (a *app) stats() *cobra.Command {
	return &cobra.Command{
		Use: "stats", Short: "Counters: reads, errors by code, rack", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out json.RawMessage
			if err := a.client().Do(cmd.Context(), "GET", "/v1/stats", nil, &out); err != nil {
				return err
			}
			_, err := cmd.OutOrStdout().Write(out)
			return err
		},
	}
}

func (a *app) audit() *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use: "audit", Short: "Recent audit events (card serials appear only as keyed hashes)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var evs []audit.Event
			if err := a.client().Do(cmd.Context(), "GET", fmt.Sprintf("/v1/audit?n=%d", n), nil, &evs); err != nil {
				return err
			}
			return a.show(cmd, evs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tKIND\tREADER\tCARD\tSLOT\tCODE\tDETAIL")
				for _, e := range evs {
					code := "-"
					if e.Code != 0 {
						code = fmt.Sprint(e.Code)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Time.Local().Format("15:04:05.000"), e.Kind, orDash(e.Reader), orDash(e.Card), e.Slot, code, e.Detail)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&n, "n", 20, "how many")
	return cmd
}

func ga467Cmd(a *app) *cobra.Command {
	g := &cobra.Command{Use: "ga467", Short: "GA 467 frame tools for hardware teams (no appliance needed)"}
	var reply, command, personal bool
	decode := &cobra.Command{
		Use:   "decode HEX...",
		Short: "Decode a captured GA 467 frame (spaces allowed; garbage before the preamble is skipped)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := strings.NewReplacer(" ", "", ":", "", "-", "", "\n", "").Replace(strings.Join(args, ""))
			b, err := hex.DecodeString(s)
			if err != nil {
				return fmt.Errorf("not hex: %w", err)
			}
			d, err := ga467.DescribeWith(b, ga467.DescribeOptions{Reply: reply, Command: command, Personal: personal})
			if err != nil {
				return err
			}
			return a.show(cmd, d, func(w io.Writer) {
				fmt.Fprintf(w, "%s frame, LEN %d, checksum %s\n", d.Direction, d.Len, d.Checksum)
				if d.Garbage > 0 {
					fmt.Fprintf(w, "skipped %d bytes before the preamble\n", d.Garbage)
				}
				if d.SW != "" {
					fmt.Fprintf(w, "SW %s: %s\n", d.SW, d.Meaning)
				} else {
					fmt.Fprintf(w, "CMD %s PARA %s: %s\n", d.Cmd, d.Para, d.Meaning)
				}
				fmt.Fprintf(w, "data: %d bytes", d.DataLen)
				if d.DataLen > 0 && d.DataLen <= 32 {
					fmt.Fprintf(w, " %s", d.Data)
				}
				fmt.Fprintln(w)
				for _, l := range d.Details {
					fmt.Fprintln(w, l)
				}
			})
		},
	}
	decode.Flags().BoolVar(&reply, "reply", false, "read it as a SAM→host reply")
	decode.Flags().BoolVar(&command, "command", false, "read it as a host→SAM command")
	decode.Flags().BoolVar(&personal, "personal", false, "show the decoded text fields of a read reply (personal data: your own test cards only)")
	g.AddCommand(decode)
	return g
}
