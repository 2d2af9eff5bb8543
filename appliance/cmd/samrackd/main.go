// Command samrackd is the samrack appliance daemon. With no rack
// configuration it runs the embedded default: a simulated rack of virtual
// SAMs, embedded storage and a self-generated dev CA in --data.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/appliance"
	"github.com/samrack/samrack/appliance/dispatch"
	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/drivers/sim"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "samrackd:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var (
		cfg       appliance.Config
		dev       bool
		rackFile  string
		simRead   time.Duration
		logLevel  string
		auditSize = byteSize(appliance.DefaultAuditMaxSize)
		bootstrap bool
		config    string
	)
	cmd := &cobra.Command{
		Use:           "samrackd",
		Short:         "The samrack appliance: serves ID-card readers from a rack of SAMs",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config != "" {
				if err := applyConfigFile(cmd.Flags(), config); err != nil {
					return err
				}
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			if bootstrap && cfg.Join != "" {
				return fmt.Errorf("--bootstrap and --join: a node either starts a cluster or joins one")
			}
			if !dev {
				return fmt.Errorf("only the self-generated dev CA exists so far: run with --dev")
			}
			cfg.AuditMaxSize = int64(auditSize)
			if cfg.AuditMaxAge == 0 {
				cfg.AuditMaxAge = -1 // the flag's 0 means no limit
			}
			t := sim.DefaultSAMTiming
			t.Read = simRead
			cfg.SimTiming = &t
			cfg.Dispatch.OnRead = onRead
			return run(cfg, rackFile)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dev, "dev", true, "single-node dev mode: embedded storage, self-generated CA")
	f.StringVar(&rackFile, "rack", "", "rack file (YAML: slots, drivers, devices, GPIO lines; `samctl rack discover` writes one); default: the simulated rack")
	f.StringVar(&cfg.DataDir, "data", "/var/lib/samrack", "data directory (state, PKI, audit log)")
	f.StringVar(&cfg.Listen, "listen", ":7467", "reader TLS address")
	f.StringVar(&cfg.Admin, "admin", "127.0.0.1:7480", "admin API address: HTTPS, operator client certificates only (beyond loopback is logged at warn)")
	f.StringVar(&cfg.Advertise, "advertise", "", "reader address written into credential bundles (default: the listen address)")
	f.StringSliceVar(&cfg.Hosts, "host", nil, "extra DNS names / IPs for the server certificate")
	f.StringVar(&cfg.Raft, "raft", ":7468", "raft address between appliances (mutual TLS 1.3, node certificates only)")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "raft address other appliances dial (default: --raft, with 127.0.0.1 for an unspecified host); keep it stable")
	f.StringVar(&cfg.Link, "link", fmt.Sprintf(":%d", link.DefaultPort), "link address between appliances, over which they place reads on each other's SAMs (mutual TLS 1.3, node certificates only)")
	f.StringVar(&cfg.LinkAdvertise, "link-advertise", "", "link address other appliances dial, written into the node registry (default: --link, with 127.0.0.1 for an unspecified host)")
	f.BoolVar(&bootstrap, "bootstrap", false, "start the first node of a new cluster and its CA (what a data directory without state does anyway)")
	f.StringVar(&cfg.Join, "join", "", "join the cluster of the appliance whose admin API is at this host:port (with --token)")
	f.StringVar(&cfg.Token, "token", os.Getenv("SAMRACK_JOIN_TOKEN"), "join token from `samctl cluster token` ($SAMRACK_JOIN_TOKEN)")
	f.StringVar(&cfg.VIP, "vip", "", "the cluster's virtual IP with its prefix length (192.0.2.10/24): held by the raft leader, first in credential bundles")
	f.StringVar(&cfg.VIPInterface, "vip-interface", "", "the interface that carries --vip (eth0)")
	f.StringVar(&config, "config", "", "YAML file of flag values (keys: the flag names, e.g. vip: 192.0.2.10/24); the command line wins")
	f.IntVar(&cfg.SimSAMs, "sim-sams", 8, "virtual SAMs in the simulated rack")
	f.DurationVar(&simRead, "sim-read-time", sim.DefaultSAMTiming.Read, "a virtual SAM's own time per read")
	f.DurationVar(&cfg.SessionIdleTimeout, "session-idle-timeout", 0, "give a SAM back from a session whose front end (this appliance's or a peer's) has been silent this long; more than the reader timeout (5s) (default 30s)")
	f.BoolVar(&cfg.AuditStderr, "audit-stderr", false, "copy audit events to stderr")
	f.Var(&auditSize, "audit-max-size", "audit log files together at most this big (bytes, or with KiB, MiB, GiB, TiB)")
	f.DurationVar(&cfg.AuditMaxAge, "audit-max-age", appliance.DefaultAuditMaxAge, "delete rotated audit files whose newest event is older than this (0: no age limit)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&cfg.Dispatch.MaxPending, "max-pending", 1024, "reader connections still in their TLS handshake, in all (the oldest is reset beyond)")
	f.IntVar(&cfg.Dispatch.MaxPendingPerSource, "max-pending-per-source", 64, "reader connections still in their TLS handshake, per source address (more are reset)")
	return cmd
}

// onRead, when set, is told where each read's time went (the saturation
// benchmark's hold figures; nil in the daemon).
var onRead func(dispatch.ReadTiming)

func run(cfg appliance.Config, rackFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if rackFile != "" {
		hw, err := appliance.LoadHardware(ctx, rackFile, cfg.Logger)
		if err != nil {
			return err
		}
		defer hw.Close()
		cfg.Rack, cfg.RackOptions = hw.Config, hw.Options
	}
	a, err := appliance.New(cfg)
	if err != nil {
		return err
	}
	next := "bin/samctl reader add HOTEL-0001 --out reader.json"
	if cfg.DataDir != "/var/lib/samrack" && cfg.DataDir != "/var/lib/samrack-dev" {
		next = "bin/samctl --data " + cfg.DataDir + " reader add HOTEL-0001 --out reader.json"
	}
	fmt.Fprintf(os.Stderr, "samrackd: readers on %s, admin API on %s, data in %s\n"+
		"admin credentials (root only): %s\n"+
		"next: %s && bin/samreader read --creds reader.json --seed 7\n",
		a.ReaderAddr(), a.AdminURL(), cfg.DataDir, a.CredentialsPath(), next)
	return a.Run(ctx)
}
