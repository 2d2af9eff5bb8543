package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/cluster/state"
)

func (a *app) clusterCmd() *cobra.Command {
	cl := &cobra.Command{Use: "cluster", Short: "The appliance cluster: join tokens, members, remove, leader transfer, backups"}
	var ttl string
	token := &cobra.Command{
		Use:   "token",
		Short: "Issue a single-use join token for a new appliance (admin role)",
		Long: `Prints a join token for samrackd --join ADDR --token TOKEN. It is valid once, for
--ttl (default 15m, at most 24h); it pins this installation's CA, so the new
appliance checks whom it talks to before sending anything. Treat it as a secret:
whoever holds it can make a machine a member of the cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t admin.Token
			if err := a.do(cmd.Context(), "POST", "/v1/cluster/tokens", admin.TokenRequest{TTL: ttl}, &t); err != nil {
				return err
			}
			return a.show(cmd, t, func(w io.Writer) {
				fmt.Fprintln(w, t.Token)
				fmt.Fprintf(os.Stderr, "single use, valid until %s: samrackd --join <this appliance's admin host:port> --token <token>\n", t.Expires.Local().Format(time.DateTime))
			})
		},
	}
	token.Flags().StringVar(&ttl, "ttl", "", "lifetime of the token (default 15m, at most 24h)")
	members := &cobra.Command{
		Use: "members", Short: "The cluster's nodes: addresses, leader/follower/non-voter, last contact, applied index, slots in service", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ms []admin.Member
			if err := a.do(cmd.Context(), "GET", "/v1/cluster/members", nil, &ms); err != nil {
				return err
			}
			return a.show(cmd, ms, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROLE\tRAFT\tADMIN\tREADERS\tLAST CONTACT\tAPPLIED\tSLOTS UP")
				for _, m := range ms {
					id := m.ID
					if m.Local {
						id += " *"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\n", id, m.Role, m.Raft, orDash(m.Admin), orDash(m.Reader), m.LastContact, m.AppliedIndex, m.SlotsUp, m.Slots)
				}
				tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove a node from the cluster (admin role): its raft membership, registry entry and inventory", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.do(cmd.Context(), "DELETE", "/v1/cluster/members/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s removed\n", args[0])
			return nil
		},
	}
	transfer := &cobra.Command{
		Use: "transfer-leader [ID]", Short: "Hand leadership to node ID, or to the most up-to-date follower (admin role)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := admin.TransferRequest{}
			if len(args) == 1 {
				req.ID = args[0]
			}
			var out map[string]string
			start := time.Now()
			if err := a.do(cmd.Context(), "POST", "/v1/cluster/transfer-leader", req, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leader: %s (%v)\n", orDash(out["leader"]), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	snap := &cobra.Command{Use: "snapshot", Short: "The operator's backup of the replicated state: save FILE, restore FILE (admin role)"}
	save := &cobra.Command{
		Use: "save FILE", Short: "Write the state (blacklists, readers with their keys, operators, inventory) to FILE (mode 0600)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f, err := os.CreateTemp(filepath.Dir(args[0]), "."+filepath.Base(args[0])+".tmp*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := f.Chmod(0o600); err != nil {
				f.Close()
				return err
			}
			if err := c.Download(cmd.Context(), "/v1/cluster/snapshot", f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			// A truncated download is not a backup: check it before keeping it.
			if err := verifySnapshot(f.Name()); err != nil {
				return fmt.Errorf("the snapshot received is not valid, nothing written: %w", err)
			}
			if err := os.Rename(f.Name(), args[0]); err != nil {
				return err
			}
			fi, _ := os.Stat(args[0])
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot written to %s (%d bytes; it holds reader keys: keep it secret)\n", args[0], fi.Size())
			return nil
		},
	}
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole cluster's state with a snapshot (checked completely first; a bad file changes nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := verifySnapshot(args[0]); err != nil {
				return fmt.Errorf("%s: %w (nothing was changed)", args[0], err)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.Upload(cmd.Context(), "POST", "/v1/cluster/snapshot", admin.SnapshotType, f, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "state restored from %s\n", args[0])
			return nil
		},
	}
	snap.AddCommand(save, restore)
	cl.AddCommand(token, members, remove, transfer, snap)
	return cl
}

func verifySnapshot(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return state.VerifySnapshot(f)
}
