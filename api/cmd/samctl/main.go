// Command samctl is the operator CLI of a samrack appliance: the rack's
// slots, the card and reader blacklists, the reader registry, operator
// identities, the audit trail, and `samctl ga467 decode` for a hardware
// team's captured frames. It talks to the admin API over HTTPS with the
// client certificate of an admin credentials file, found in this order:
//
//	--creds FILE                                   an operator's credentials file
//	--profile NAME                                 ~/.config/samrack/profiles/NAME.json (a workstation)
//	--data DIR or $SAMRACK_DATA                    DIR/admin.json, the daemon's bootstrap admin credentials
//	/var/lib/samrack/admin.json, then /var/lib/samrack-dev/admin.json (`make run`)
//
// --admin (or $SAMRACK_ADMIN) overrides the address in the file.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/ga467"
)

// DefaultDataDirs are where samctl looks for the bootstrap admin
// credentials when neither --creds, --profile nor --data says: the
// production data directory, then the one of `make run`.
var DefaultDataDirs = []string{"/var/lib/samrack", "/var/lib/samrack-dev"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.shown {
			fmt.Fprintln(os.Stderr, "samctl:", err)
		}
		if ee != nil {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError is an error with a process exit code; shown if the command
// has printed it already.
type exitError struct {
	code  int
	err   error
	shown bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

type app struct {
	adminURL   string
	creds      string
	profile    string
	dataDir    string
	asJSON     bool
	consistent bool
}

// credsPath finds the credentials file (see the package comment).
func (a *app) credsPath() (string, error) {
	if a.creds == "" && a.profile != "" {
		if strings.ContainsAny(a.profile, `/\`) || strings.HasPrefix(a.profile, ".") {
			return "", fmt.Errorf("profile %q: a name, not a path (use --creds for a file)", a.profile)
		}
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, "samrack", "profiles", a.profile+".json"), nil
	}
	return admin.FindCredentials(a.creds, a.dataDir, DefaultDataDirs...)
}

func (a *app) client() (*admin.Client, error) {
	path, err := a.credsPath()
	if err != nil {
		return nil, err
	}
	c, err := admin.LoadCredentials(path)
	if err != nil {
		return nil, err
	}
	cl, err := admin.NewClient(c, a.adminURL)
	if err != nil {
		return nil, err
	}
	cl.Consistent = a.consistent
	return cl, nil
}

// do calls the admin API (admin.Client.Do).
func (a *app) do(ctx context.Context, method, path string, body, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, body, out)
}

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
	root := &cobra.Command{
		Use:           "samctl",
		Short:         "Operate a samrack appliance: slots, blacklists, readers, operators, audit, GA 467 frames",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.adminURL, "admin", os.Getenv("SAMRACK_ADMIN"), "admin API address, host:port or https://host:port; default the credentials file's ($SAMRACK_ADMIN)")
	pf.StringVar(&a.creds, "creds", os.Getenv("SAMRACK_CREDS"), "admin credentials file ($SAMRACK_CREDS)")
	pf.StringVar(&a.profile, "profile", os.Getenv("SAMRACK_PROFILE"), "credentials in ~/.config/samrack/profiles/NAME.json ($SAMRACK_PROFILE)")
	pf.StringVar(&a.dataDir, "data", os.Getenv("SAMRACK_DATA"), "the appliance's data directory, for its admin.json ($SAMRACK_DATA; default /var/lib/samrack, then /var/lib/samrack-dev)")
	pf.BoolVar(&a.asJSON, "json", false, "print JSON")
	pf.BoolVar(&a.consistent, "consistent", false, "read through the leader after a raft barrier (default: the answering node's applied state)")
	root.AddCommand(a.health(), a.slots(), a.slot(), a.blacklist(), a.reader(), a.operator(), a.stats(), a.audit(), ga467Cmd(a), a.probe(), a.rackCmd(), a.clusterCmd())
	return root
}

func (a *app) health() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check the appliance: exit 0 healthy, 1 degraded, 2 unreachable, the reason on one line",
		Long: `Asks /healthz and prints one line. Exit status, for a monitoring check:
  0  ok
  1  degraded: no SAM in service, or a quarantined slot (the reason says which)
  2  unreachable: no answer, no usable credentials, or an unexpected answer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// One line on stdout whatever happens, for a monitoring check.
			unreachable := func(err error) error {
				err = fmt.Errorf("unreachable: %w", err)
				a.show(cmd, admin.Health{Status: "unreachable", Reason: err.Error()}, func(w io.Writer) { fmt.Fprintln(w, oneLine(err.Error())) })
				return &exitError{2, err, true}
			}
			c, err := a.client()
			if err != nil {
				return unreachable(err)
			}
			h, err := c.Health(cmd.Context())
			switch {
			case errors.Is(err, admin.ErrUnhealthy):
				a.show(cmd, h, func(w io.Writer) { fmt.Fprintln(w, oneLine("degraded: "+h.Reason)) })
				return &exitError{1, err, true}
			case err != nil:
				return unreachable(err)
			}
			return a.show(cmd, h, func(w io.Writer) { fmt.Fprintln(w, "ok") })
		},
	}
}

func (a *app) slots() *cobra.Command {
	var all, local bool
	c := &cobra.Command{
		Use:   "slots",
		Short: "Show the slots as a table: in a cluster every appliance's (from the replicated inventory), else this rack's in detail (--local)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all && local {
				return fmt.Errorf("--all and --local: choose one")
			}
			if !local && !all {
				var ms []admin.Member
				all = a.do(cmd.Context(), "GET", "/v1/cluster/members", nil, &ms) == nil && len(ms) > 1
			}
			if all {
				var inv []state.Slot
				if err := a.do(cmd.Context(), "GET", "/v1/inventory", nil, &inv); err != nil {
					return err
				}
				return a.show(cmd, inv, func(w io.Writer) { printInventory(w, inv) })
			}
			var slots []admin.Slot
			if err := a.do(cmd.Context(), "GET", "/v1/slots", nil, &slots); err != nil {
				return err
			}
			return a.show(cmd, slots, func(w io.Writer) { printSlots(w, slots) })
		},
	}
	c.Flags().BoolVar(&all, "all", false, "every appliance of the cluster (the default with more than one): state, health, SAM ID and admin state per slot")
	c.Flags().BoolVar(&local, "local", false, "only the appliance asked, in detail: driver, device, busy, LEDs, reads, errors, check latency")
	return c
}

func printInventory(w io.Writer, inv []state.Slot) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLIANCE\tSLOT\tSTATE\tHEALTH\tSAM ID\tADMIN")
	for _, s := range inv {
		sam := "-"
		if !s.SAM.IsZero() {
			sam = s.SAM.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Node, s.Node+"/"+s.Name, orDash(s.State), orDash(s.Health), sam, orDash(s.Admin))
	}
	tw.Flush()
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
		Long: `Hardware team actions on a slot: drain, enable, power-off, power-on, power-cycle, locate-on, locate-off, clear-quarantine.

SLOT is N (a slot of the appliance asked), NODE/N (slot N of appliance NODE, as
samctl slots lists it) or a SAM ID (the slot holding that SAM). Any appliance of
the cluster takes the action and forwards it to the one that owns the slot; that
appliance checks your role and audits the action under your name.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s admin.Slot
			if err := a.do(cmd.Context(), "POST", "/v1/slots/"+url.PathEscape(args[1])+"/"+url.PathEscape(args[0]), nil, &s); err != nil {
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
			if err := a.do(cmd.Context(), "POST", "/v1/blacklist/cards", admin.AddCards{Cards: args, Reason: reason}, &out); err != nil {
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
				if err := a.do(cmd.Context(), "DELETE", "/v1/blacklist/cards/"+url.PathEscape(s), nil, nil); err != nil {
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
			if err := a.do(cmd.Context(), "GET", "/v1/blacklist/cards?"+q.Encode(), nil, &out); err != nil {
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
	bl.AddCommand(add, remove, list, a.importCmd(), a.readerBlacklist())
	return bl
}

func (a *app) readerBlacklist() *cobra.Command {
	rb := &cobra.Command{Use: "reader", Short: "The reader blacklist"}
	var reason string
	add := &cobra.Command{
		Use: "add SERIAL", Short: "Blacklist a reader", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), "POST", "/v1/blacklist/readers", admin.ReaderBlacklistEntry{Serial: args[0], Reason: reason}, nil)
		},
	}
	add.Flags().StringVar(&reason, "reason", "", "why")
	remove := &cobra.Command{
		Use: "remove SERIAL", Short: "Take a reader off the blacklist", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.do(cmd.Context(), "DELETE", "/v1/blacklist/readers/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List blacklisted readers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out []admin.ReaderBlacklistEntry
			if err := a.do(cmd.Context(), "GET", "/v1/blacklist/readers", nil, &out); err != nil {
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
			if err := a.do(cmd.Context(), "POST", "/v1/readers", admin.AddReader{Serial: args[0], Cipher: cipher, Note: note}, &b); err != nil {
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
			if err := a.do(cmd.Context(), "GET", "/v1/readers", nil, &rs); err != nil {
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
			return a.do(cmd.Context(), "DELETE", "/v1/readers/"+url.PathEscape(args[0]), nil, nil)
		},
	}
	status := &cobra.Command{
		Use: "status SERIAL active|suspended|blacklisted", Short: "Set a reader's status (active also clears its failure count)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ri admin.ReaderInfo
			if err := a.do(cmd.Context(), "POST", "/v1/readers/"+url.PathEscape(args[0])+"/status", admin.ReaderStatus{Status: args[1]}, &ri); err != nil {
				return err
			}
			return a.show(cmd, ri, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", ri.Serial, ri.Status) })
		},
	}
	affinity := &cobra.Command{
		Use: "sams SERIAL [SAM-ID...]", Short: "Set the terminal→SAM table entry of a reader (no SAM IDs clears it)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ri json.RawMessage
			return a.do(cmd.Context(), "PUT", "/v1/readers/"+url.PathEscape(args[0])+"/affinity", admin.Affinity{SAMs: args[1:]}, &ri)
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
			if err := a.do(cmd.Context(), "GET", "/v1/stats", nil, &out); err != nil {
				return err
			}
			_, err := cmd.OutOrStdout().Write(out)
			return err
		},
	}
}

func (a *app) audit() *cobra.Command {
	var (
		n            int
		kind, actor  string
		since, until string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit events, newest first (card serials appear only as keyed hashes)",
		Long: `Audit events, newest first, filtered:
  --kind blacklist             a family (blacklist.card.add, blacklist.reader.remove, ...) or one kind
  --actor alice                changes made by one operator identity
  --since 24h --until 1h       durations back from now, or RFC 3339 times (2026-01-02T15:04:05Z)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"n": {fmt.Sprint(n)}}
			if kind != "" {
				q.Set("kind", kind)
			}
			if actor != "" {
				q.Set("actor", actor)
			}
			for _, t := range []struct{ name, v string }{{"since", since}, {"until", until}} {
				if t.v == "" {
					continue
				}
				tm, err := parseWhen(t.v, time.Now())
				if err != nil {
					return fmt.Errorf("--%s: %w", t.name, err)
				}
				q.Set(t.name, tm.UTC().Format(time.RFC3339Nano))
			}
			var evs []audit.Event
			if err := a.do(cmd.Context(), "GET", "/v1/audit?"+q.Encode(), nil, &evs); err != nil {
				return err
			}
			return a.show(cmd, evs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tKIND\tACTOR\tREADER\tCARD\tSLOT\tCODE\tCOUNT\tDETAIL")
				for _, e := range evs {
					code, count, slot := "-", "-", "-"
					if e.Code != 0 {
						code = fmt.Sprint(e.Code)
					}
					if e.Count != 0 {
						count = fmt.Sprint(e.Count)
					}
					if e.Slot != audit.NoSlot {
						slot = fmt.Sprint(e.Slot)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Kind,
						orDash(e.Actor), orDash(e.Reader), orDash(e.Card), slot, code, count, e.Detail)
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&n, "n", 20, "at most this many")
	cmd.Flags().StringVar(&kind, "kind", "", "only this kind or family of kinds")
	cmd.Flags().StringVar(&actor, "actor", "", "only changes by this operator identity")
	cmd.Flags().StringVar(&since, "since", "", "only events at or after: a duration back (24h) or an RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "only events before: a duration back or an RFC 3339 time")
	return cmd
}

// parseWhen reads "90m" (that long before now) or an RFC 3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration (24h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
	}
	return t, nil
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

// oneLine folds s onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
