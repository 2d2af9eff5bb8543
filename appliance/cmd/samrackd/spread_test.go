package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// placementStats is the part of GET /v1/stats this test reads.
type placementStats struct {
	Rack      rack.Stats `json:"rack"`
	Placement struct {
		Counts     map[string]host.Count `json:"counts"`
		Peers      map[string]bool       `json:"peers"`
		PeerLeases int                   `json:"peer_leases"`
	} `json:"placement"`
}

func stats(t *testing.T, c *admin.Client) (placementStats, error) {
	var st placementStats
	err := c.Do(context.Background(), "GET", "/v1/stats", nil, &st)
	return st, err
}

// TestClusterPlacement: three samrackd processes over a real link. The
// entry appliance's slots all drained, reads through it run on the
// others' SAMs (the signed key share names the host); an affinity entry
// naming a SAM of the third places there; slot actions addressed as
// NODE/N sent to the first run on the owner, audited there with the
// caller; SIGKILL of the appliance holding a session mid-read ends the
// read retryably (or it succeeds on a retry) and the survivors keep no
// lease.
func TestClusterPlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samrackd processes")
	}
	ctx := context.Background()
	tmp := t.TempDir()
	n1 := start(t, "n1", filepath.Join(tmp, "n1"), "--bootstrap")
	c1 := n1.client()
	n2 := start(t, "n2", filepath.Join(tmp, "n2"), "--join", n1.adminAddr(), "--token", token(t, c1, ""))
	c2 := n2.client()
	// n3's SAMs are slow, so that a read there is still running when n3 is killed.
	n3 := start(t, "n3", filepath.Join(tmp, "n3"), "--join", n1.adminAddr(), "--token", token(t, c1, ""), "--sim-read-time", "1500ms")
	c3 := n3.client()
	id1, id2, id3 := nodeID(t, n1), nodeID(t, n2), nodeID(t, n3)
	waitFor(t, "three voters", 60*time.Second, func() bool { _, v := leaderOf(members(t, c1)); return v == 3 })
	var inv []state.Slot
	waitFor(t, "every appliance's SAMs in the inventory", 30*time.Second, func() bool {
		inv = nil
		c1.Do(ctx, "GET", "/v1/inventory", nil, &inv)
		n := 0
		for _, s := range inv {
			if !s.SAM.IsZero() && s.State == "Enabled" {
				n++
			}
		}
		return n == 6
	})

	sams := map[string]bool{}
	for _, s := range inv {
		sams[s.SAM.String()] = true
	}
	if len(sams) != 6 {
		t.Fatalf("SAM IDs are cluster-wide, yet the appliances' virtual SAMs share some: %+v", inv)
	}

	// Drain every slot of n1, the entry appliance.
	for _, s := range []string{"0", "1"} {
		if err := c1.Do(ctx, "POST", "/v1/slots/"+s+"/drain", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// n1 hears the peers' idle counts over the link.
	waitFor(t, "n1 links to n2 and n3 with their counts", 30*time.Second, func() bool {
		st, err := stats(t, c1)
		return err == nil && st.Placement.Peers[id2] && st.Placement.Peers[id3] &&
			st.Placement.Counts[id2].Idle == 2 && st.Placement.Counts[id3].Idle == 2 && st.Rack.Idle == 0
	})

	var b credentials.Bundle
	if err := c1.Do(ctx, "POST", "/v1/readers", admin.AddReader{Serial: "SPREAD-1"}, &b); err != nil {
		t.Fatal(err)
	}
	b.Server = n1readers(t, c1, id1) // n1 only: the entry appliance
	b.Servers = []string{b.Server}
	waitFor(t, "the reader on n1", 10*time.Second, func() bool {
		var rs []admin.ReaderInfo
		c1.Do(ctx, "GET", "/v1/readers", nil, &rs)
		return slices.ContainsFunc(rs, func(r admin.ReaderInfo) bool { return r.Serial == "SPREAD-1" })
	})
	rd, err := client.New(&b, client.WithRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	card := func(i int) *sim.Card { return sim.NewCard(int64(700+i), sim.CardOptions{Timing: &sim.RFTiming{}}) }
	hosts := map[string]int{}
	for i := range 4 {
		res, err := rd.Read(ctx, card(i), client.ReadOptions{})
		if err != nil {
			t.Fatalf("read %d through a drained n1: %v", i, err)
		}
		hosts[res.Host]++
	}
	if hosts[id1] != 0 || hosts[id2]+hosts[id3] != 4 {
		t.Fatalf("reads through the drained n1 ran on %v (n1 %s, n2 %s, n3 %s)", hosts, id1, id2, id3)
	}

	// A reader registered a moment ago reads at once through any
	// appliance: one that has not applied the registration yet catches
	// up with the leader's read index before it calls the reader unknown.
	leader, _ := leaderOf(members(t, c1))
	for i, id := range []string{id1, id2, id3} {
		if id == leader {
			continue
		}
		var nb credentials.Bundle
		if err := c1.Do(ctx, "POST", "/v1/readers", admin.AddReader{Serial: fmt.Sprintf("FRESH-%d", i)}, &nb); err != nil {
			t.Fatal(err)
		}
		nb.Server = n1readers(t, c1, id)
		nb.Servers = []string{nb.Server}
		fresh, err := client.New(&nb, client.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = fresh.Read(ctx, card(10+i), client.ReadOptions{})
		fresh.Close()
		if err != nil {
			t.Fatalf("a reader registered a moment ago, through follower %s: %v", id, err)
		}
	}

	// Slot actions anywhere: drain n3's slot 0 through n1, as an operator
	// of its own; n3 drains it and audits it under that operator.
	var opCreds admin.Credentials
	if err := c1.Do(ctx, "POST", "/v1/operators", admin.AddOperator{Name: "hw-team", Role: "operator"}, &opCreds); err != nil {
		t.Fatal(err)
	}
	op, err := admin.NewClient(&opCreds, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*admin.Client{c1, c3} {
		waitFor(t, "the operator on n1 and n3", 10*time.Second, func() bool {
			var ops []map[string]any
			c.Do(ctx, "GET", "/v1/operators", nil, &ops)
			return slices.ContainsFunc(ops, func(o map[string]any) bool { return o["name"] == "hw-team" })
		})
	}
	var drained admin.Slot
	if err := op.Do(ctx, "POST", "/v1/slots/"+url.PathEscape(id3+"/0")+"/drain", nil, &drained); err != nil {
		t.Fatalf("drain %s/0 through n1: %v", id3, err)
	}
	var s3 []admin.Slot
	if err := c3.Do(ctx, "GET", "/v1/slots", nil, &s3); err != nil || len(s3) != 2 ||
		(s3[0].State != rack.StateDraining.String() && s3[0].State != rack.StateStandbyOffline.String()) || s3[1].State != rack.StateEnabled.String() {
		t.Fatalf("n3's slots after the drain through n1: %+v %v", s3, err)
	}
	var evs []audit.Event
	waitFor(t, "n3's audit of the forwarded drain", 10*time.Second, func() bool {
		return c3.Do(ctx, "GET", "/v1/audit?kind=slot.drain", nil, &evs) == nil && len(evs) > 0
	})
	if len(evs) != 1 || evs[0].Actor != "hw-team" || evs[0].Slot != 0 {
		t.Fatalf("n3's audit of the forwarded drain: %+v", evs)
	}
	if err := c1.Do(ctx, "GET", "/v1/audit?kind=slot.drain&actor=hw-team", nil, &evs); err != nil || len(evs) != 0 {
		t.Fatalf("n1 audited n3's drain as its own: %+v %v", evs, err)
	}
	// By SAM ID: enable it again, through n1 too.
	sam30 := ""
	for _, s := range inv {
		if s.Node == id3 && s.Name == "0" {
			sam30 = s.SAM.String()
		}
	}
	var enabled admin.Slot
	if err := op.Do(ctx, "POST", "/v1/slots/"+url.PathEscape(sam30)+"/enable", nil, &enabled); err != nil {
		t.Fatalf("enable SAM %s through n1: %v", sam30, err)
	}
	if enabled.ID != 0 || enabled.SAMID != sam30 || (enabled.State != rack.StateStarting.String() && enabled.State != rack.StateEnabled.String()) {
		t.Fatalf("enable of SAM %s through n1 answered %+v", sam30, enabled)
	}
	defer func() {
		if t.Failed() {
			var all []audit.Event
			c3.Do(ctx, "GET", "/v1/audit?n=100", nil, &all)
			for _, e := range all {
				t.Logf("n3 audit: %s %s slot %d actor %q %s", e.Time.Format("15:04:05.000"), e.Kind, e.Slot, e.Actor, e.Detail)
			}
		}
	}()
	waitFor(t, "n3's audit of the forwarded enable", 10*time.Second, func() bool {
		return c3.Do(ctx, "GET", "/v1/audit?kind=slot.enable", nil, &evs) == nil && len(evs) > 0
	})
	if len(evs) != 1 || evs[0].Actor != "hw-team" || evs[0].Slot != 0 {
		t.Fatalf("n3's audit of the forwarded enable: %+v", evs)
	}
	if err := op.Do(ctx, "POST", "/v1/slots/node-nope%2F0/drain", nil, nil); err == nil {
		t.Fatal("an unknown node's slot was accepted")
	}

	// Affinity: a SAM of n3 places there.
	var sam31 string
	for _, s := range inv {
		if s.Node == id3 && s.Name == "1" {
			sam31 = s.SAM.String()
		}
	}
	if err := c1.Do(ctx, "PUT", "/v1/readers/SPREAD-1/affinity", admin.Affinity{SAMs: []string{sam31}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the affinity entry on n1", 10*time.Second, func() bool {
		var rs []admin.ReaderInfo
		c1.Do(ctx, "GET", "/v1/readers", nil, &rs)
		i := slices.IndexFunc(rs, func(r admin.ReaderInfo) bool { return r.Serial == "SPREAD-1" })
		return i >= 0 && len(rs[i].SAMs) == 1
	})
	res, err := rd.Read(ctx, card(10), client.ReadOptions{})
	if err != nil || res.Host != id3 {
		t.Fatalf("affinity read on %s's SAM ran on %q: %v", id3, res.Host, err)
	}

	// SIGKILL of n3 while it holds the session of a read.
	type outcome struct {
		res *client.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() { // owned here: received below
		res, err := rd.Read(ctx, card(11), client.ReadOptions{})
		done <- outcome{res, err}
	}()
	waitFor(t, "the read holding a SAM of n3", 20*time.Second, func() bool {
		st, err := stats(t, c3)
		return err == nil && st.Placement.PeerLeases == 1
	})
	n3.kill()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the read never ended after n3 died")
	}
	// The front end answers 302 with retry-after 0 (PROTOCOL.md §2.1) and
	// the SDK restarts the read at once: it succeeds on another SAM.
	if o.err != nil || o.res.Host == id3 {
		t.Fatalf("read with its host killed: host %v, %v (want it restarted on another appliance's SAM)", o.res, o.err)
	}
	t.Logf("read with its host killed: host %v err %v", func() string {
		if o.res != nil {
			return o.res.Host
		}
		return "-"
	}(), o.err)
	// No lease lost on the survivors: every SAM of n2 idle again, none
	// leased to a peer; a read through n1 still works.
	waitFor(t, "n2's SAMs all idle again", 20*time.Second, func() bool {
		st, err := stats(t, c2)
		return err == nil && st.Rack.Idle == st.Rack.Enabled && st.Rack.Busy == 0 && st.Placement.PeerLeases == 0
	})
	if err := c1.Do(ctx, "PUT", "/v1/readers/SPREAD-1/affinity", admin.Affinity{}, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := rd.Read(ctx, card(12), client.ReadOptions{}); err != nil || res.Host != id2 {
		t.Fatalf("read after n3 died: host %v, %v", res, err)
	}
	n1.stop()
	n2.stop()
}

// n1readers is the reader address of node id from the registry.
func n1readers(t *testing.T, c *admin.Client, id string) string {
	t.Helper()
	for _, m := range members(t, c) {
		if m.ID == id {
			return m.Reader
		}
	}
	t.Fatalf("node %s not a member", id)
	return ""
}
