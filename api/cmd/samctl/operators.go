package main

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/admin"
)

func (a *app) operator() *cobra.Command {
	op := &cobra.Command{Use: "operator", Short: "Operator identities of the admin API: add (issues a credentials file), list, role, revoke (admin role)"}
	var role, out string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create an operator identity and write its credentials file (client certificate and key: keep it secret)",
		Long: `Creates an operator identity with a role — viewer (reads everything but secrets),
operator (slots, drain, power, locate, blacklists) or admin (readers, operator
identities, roles) — and writes its credentials file. On a workstation, put the
file in ~/.config/samrack/profiles/NAME.json and use samctl --profile NAME.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out FILE: where to write the credentials")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var creds admin.Credentials
			if err := c.Do(cmd.Context(), "POST", "/v1/operators", admin.AddOperator{Name: args[0], Role: role}, &creds); err != nil {
				return err
			}
			creds.URL = c.Base // the address this samctl reached: valid for the new operator too
			if err := creds.Save(out); err != nil {
				return fmt.Errorf("operator %s was created but its credentials could not be written (revoke it and add another): %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "operator %s (%s) created; credentials written to %s (keep it secret)\n", creds.Operator, creds.Role, out)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "viewer", "viewer, operator or admin")
	add.Flags().StringVar(&out, "out", "", "credentials file to write (mode 0600)")
	list := &cobra.Command{
		Use: "list", Short: "List operator identities (revoked ones too)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ops []admin.OperatorInfo
			if err := a.do(cmd.Context(), "GET", "/v1/operators", nil, &ops); err != nil {
				return err
			}
			return a.show(cmd, ops, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tCREATED\tBY\tCERT SERIAL")
				for _, o := range ops {
					status := "active"
					if o.Revoked {
						status = "revoked " + o.RevokedAt.Local().Format(time.DateTime) + " by " + o.RevokedBy
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Name, o.Role, status, o.CreatedAt.Local().Format(time.DateTime), orDash(o.CreatedBy), o.CertSerial)
				}
				tw.Flush()
			})
		},
	}
	setRole := &cobra.Command{
		Use: "role NAME viewer|operator|admin", Short: "Change an operator's role (effective on its next request)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o admin.OperatorInfo
			if err := a.do(cmd.Context(), "POST", "/v1/operators/"+url.PathEscape(args[0])+"/role", admin.OperatorRole{Role: args[1]}, &o); err != nil {
				return err
			}
			return a.show(cmd, o, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", o.Name, o.Role) })
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke an operator identity: its certificate is refused from the next request on, for good", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o admin.OperatorInfo
			if err := a.do(cmd.Context(), "DELETE", "/v1/operators/"+url.PathEscape(args[0]), nil, &o); err != nil {
				return err
			}
			return a.show(cmd, o, func(w io.Writer) { fmt.Fprintf(w, "operator %s revoked\n", o.Name) })
		},
	}
	whoami := &cobra.Command{
		Use: "whoami", Short: "The identity and role of the credentials in use", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var m map[string]string
			if err := a.do(cmd.Context(), "GET", "/v1/whoami", nil, &m); err != nil {
				return err
			}
			return a.show(cmd, m, func(w io.Writer) { fmt.Fprintf(w, "%s (%s)\n", m["operator"], m["role"]) })
		},
	}
	op.AddCommand(add, list, setRole, revoke, whoami)
	return op
}
