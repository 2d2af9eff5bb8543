package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/appliance"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// TestSlotsAcrossCluster: two appliances in one cluster. `samctl slots`
// on either lists both appliances' slots with an appliance column
// (--local: the one asked, in detail); `samctl slot drain NODE/N` sent to
// the first drains the second's slot, audited there under the caller.
func TestSlotsAcrossCluster(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	d1, d2 := filepath.Join(dir, "n1"), filepath.Join(dir, "n2")
	a1, _ := startAppliance(t, d1)
	tok := strings.TrimSpace(must(t, 0, "--data", d1, "cluster", "token", "--ttl", "5m"))
	a2, err := appliance.New(appliance.Config{
		DataDir: d2, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		Join: strings.TrimPrefix(a1.AdminURL(), "https://"), Token: tok,
		SimSAMs: 2, SimTiming: &sim.SAMTiming{Boot: time.Millisecond},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a2.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("n2: %v", err)
		}
	})
	n1, n2 := a1.NodeID(), a2.NodeID()
	var out string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); ; <-tick.C {
		out, _ = samctl(t, "--data", d1, "slots")
		if strings.Count(out, "Enabled") == 4 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{"APPLIANCE", n1 + "/0", n1 + "/1", n2 + "/0", n2 + "/1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("slots on n1 lacks %q:\n%s", want, out)
		}
	}
	if out := must(t, 0, "--data", d1, "slots", "--local"); strings.Contains(out, n2) || !strings.Contains(out, "DRIVER") {
		t.Fatalf("slots --local:\n%s", out)
	}
	out = must(t, 0, "--data", d1, "slot", "drain", n2+"/1")
	if !strings.Contains(out, "StandbyOffline") && !strings.Contains(out, "Draining") {
		t.Fatalf("drain %s/1 through n1:\n%s", n2, out)
	}
	if si, err := a2.Rack().Slot(1); err != nil || (si.State != rack.StateStandbyOffline && si.State != rack.StateDraining) {
		t.Fatalf("n2's slot 1 after the drain through n1: %v %v", si.State, err)
	}
	if si, _ := a1.Rack().Slot(1); si.State != rack.StateEnabled {
		t.Fatalf("n1's own slot 1 drained: %v", si.State)
	}
	if out := must(t, 0, "--data", d2, "audit", "--kind", "slot.drain"); !strings.Contains(out, appliance.BootstrapAdmin) {
		t.Fatalf("n2's audit of the drain:\n%s", out)
	}
	if out, code := samctl(t, "--data", d1, "slot", "drain", "node-nope/1"); code == 0 || !strings.Contains(out, "not a member") {
		t.Fatalf("unknown node: %d %s", code, out)
	}
}
