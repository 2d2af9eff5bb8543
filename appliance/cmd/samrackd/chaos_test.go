package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// The cluster chaos test's size and pace. Each appliance has
// clusterChaosSAMs virtual SAMs; clusterChaosReaders readers read at once
// through the SDK with every appliance's address in their bundles.
const (
	clusterChaosSAMs    = 3
	clusterChaosReaders = 6
	clusterChaosRetries = 8
	// clusterChaosShort is the chaos of `make test`; SAMRACK_SOAK (a Go
	// duration, `make soak`) runs it longer.
	clusterChaosShort = 20 * time.Second
	// clusterChaosHung: a read that takes longer than this (through every
	// retry) counts as hung.
	clusterChaosHung = 60 * time.Second
	// clusterChaosSettle bounds each wait after the chaos: slots back,
	// leases given back, digests equal.
	clusterChaosSettle = 60 * time.Second
	// clusterChaosSessionIdle is the appliances' --session-idle-timeout
	// (default 30 s). A cut appliance that wakes up after its peer's
	// Place timed out answers a Place nobody reads: the lease it made
	// is given back after this long, which bounds the healing (the pool
	// whole again) that the test waits for.
	clusterChaosSessionIdle = 8 * time.Second
)

// clusterChaosCodes are the codes a read may end with under the chaos
// (api/PROTOCOL.md, "Error codes"): the retryable ones once the SDK's
// retries are used up — 301 Busy (every SAM of the cluster drained or
// leased), 302 SAMFault (a SAM or its appliance died mid-read), 503
// ShuttingDown — and the card-side "re-present" ones a broken session
// link can end in: 203 CardGone, 204 CardAuthFailed, 205 CardReadFailed.
// Any other code, a read that ends without a code (a broken connection
// through every retry, no appliance reachable) or a hung read fails the
// test.
var clusterChaosCodes = []wire.Code{wire.Busy, wire.SAMFault, wire.ShuttingDown, wire.CardGone, wire.CardAuthFailed, wire.CardReadFailed}

// leakCheckEnv makes a samrackd child check, once main returns after a
// SIGTERM, that no goroutine of its own is left (it exits 3 with their
// stacks if some are).
const leakCheckEnv = "SAMRACKD_TEST_LEAKCHECK"

// childLeakCheck runs in a samrackd child after main returned. The
// runtime's os/signal watcher, started by signal.Notify, lives as long as
// the process by design and is not counted.
func childLeakCheck() {
	if os.Getenv(leakCheckEnv) != "1" {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "os/signal.loop") || strings.Contains(g, ".childLeakCheck()") {
				continue
			}
			left = append(left, g)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "samrackd: %d goroutines left after Run returned:\n%s\n", len(left), strings.Join(left, "\n\n"))
			os.Exit(3)
		}
		<-time.After(10 * time.Millisecond) // polls the goroutines of a process that is ending
	}
}

// chaosNode is one appliance of the chaos: its fixed ports (a restarted
// process must come back on the addresses the others know), its data,
// and its current process and admin client.
type chaosNode struct {
	name, data string
	id         string
	reader     string // reader address
	args       []string

	mu sync.Mutex // guards p and c
	p  *proc
	c  *admin.Client
}

func (n *chaosNode) get() (*proc, *admin.Client) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p, n.c
}

// freePorts are n loopback ports free now and below the kernel's
// ephemeral range (ip_local_port_range), chosen at random. A restarted
// appliance must come back on its ports: one the kernel could hand out
// meanwhile — to a listener on port 0 of any process on the machine, or
// as the local port of an outgoing connection — makes the restart fail
// with "address already in use" (it did, 1 run in ~20, when these were
// ports the kernel had given out for port 0).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	lo := max(1024, low-16384)
	if low-lo < 4*n {
		t.Fatalf("ip_local_port_range starts at %d: no room below it for %d fixed ports", low, n)
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no %d free ports in %d–%d", n, lo, low-1)
		}
		port := lo + rand.IntN(low-lo)
		if slices.Contains(out, port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ls = append(ls, l)
		out = append(out, port)
	}
	return out
}

// TestClusterChaos runs three samrackd processes on loopback under a
// reader load through the SDK (every appliance's address in the bundles,
// with retries) and a stream of blacklist writes, while a seeded nemesis
// SIGKILLs and restarts appliances (the leader or not), cuts one off for
// a while with SIGSTOP/SIGCONT, and a second one drains SAMs, powers them
// off and puts them back.
//
// SIGSTOP is the cut: without network namespaces (root) and with no fault
// hook in samrackd, stopping the process cuts it off from everything at
// once — raft, the session link, readers, the admin API — and SIGCONT
// heals it with the others having moved on (a new leader, a new term,
// entries it has to catch up on, leases on its SAMs that the others gave
// up on), which is what a cut link does to it.
//
// Every read must return the card's data or end with a code of
// clusterChaosCodes. After the healing: every slot back in service, every
// appliance's pool with no lease lost (no SAM busy, none leased to a
// peer, every Enabled SAM idle), all appliances on the same state digest,
// every acknowledged write on every appliance, and every process exits 0
// on SIGTERM with no goroutine of its own left; the test process leaks
// none either.
//
// make test runs it for clusterChaosShort (about 30 s in all under
// -race); SAMRACK_SOAK=10m (make soak) runs the chaos for ten minutes.
// SAMRACK_CHAOS_SEED=N replays the nemesis' decisions (not their timing
// against the load).
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samrackd processes")
	}
	leaktest.Check(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SAMRACK_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SAMRACK_CHAOS_SEED=%q: %v", s, err)
		}
	}
	dur := clusterChaosShort
	if s := os.Getenv("SAMRACK_SOAK"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil {
			t.Fatalf("SAMRACK_SOAK=%q: %v", s, err)
		}
	}
	t.Logf("cluster chaos seed %d for %v (replay: SAMRACK_CHAOS_SEED=%d go test -race -run '^TestClusterChaos$' ./appliance/cmd/samrackd/)", seed, dur, seed)
	t.Setenv(leakCheckEnv, "1")
	begin := time.Now()
	ctx := context.Background()

	// Three appliances on fixed loopback ports.
	tmp := t.TempDir()
	ports := freePorts(t, 12)
	nodes := make([]*chaosNode, 3)
	for i := range nodes {
		p := ports[4*i:]
		nodes[i] = &chaosNode{name: fmt.Sprintf("n%d", i+1), data: filepath.Join(tmp, fmt.Sprintf("n%d", i+1)),
			reader: fmt.Sprintf("127.0.0.1:%d", p[0]),
			args: []string{"--listen", fmt.Sprintf("127.0.0.1:%d", p[0]), "--admin", fmt.Sprintf("127.0.0.1:%d", p[1]),
				"--raft", fmt.Sprintf("127.0.0.1:%d", p[2]), "--link", fmt.Sprintf("127.0.0.1:%d", p[3]),
				"--sim-sams", strconv.Itoa(clusterChaosSAMs), "--sim-read-time", "30ms",
				"--session-idle-timeout", clusterChaosSessionIdle.String()}}
	}
	n1 := nodes[0]
	n1.p = start(t, n1.name, n1.data, append(slices.Clone(n1.args), "--bootstrap")...)
	n1.c = n1.p.client()
	for _, n := range nodes[1:] {
		n.p = start(t, n.name, n.data, append(slices.Clone(n.args), "--join", n1.p.adminAddr(), "--token", token(t, n1.c, ""))...)
		n.c = n.p.client()
	}
	for _, n := range nodes {
		n.id = nodeID(t, n.p)
	}
	waitFor(t, "three voters", 60*time.Second, func() bool { _, v := leaderOf(members(t, n1.c)); return v == 3 })
	waitFor(t, "every appliance's SAMs in service", 60*time.Second, func() bool {
		for _, n := range nodes {
			st, err := stats(t, n.c)
			if err != nil || st.Rack.Idle != clusterChaosSAMs {
				return false
			}
		}
		return true
	})
	t.Logf("three appliances up in %v", time.Since(begin).Round(time.Millisecond))

	// Readers, each with every appliance's address, starting at a
	// different one.
	var b credentials.Bundle
	if err := n1.c.Do(ctx, "POST", "/v1/readers", admin.AddReader{Serial: "CHAOS-1"}, &b); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, "the reader on "+n.name, 30*time.Second, func() bool {
			var rs []admin.ReaderInfo
			n.c.Do(ctx, "GET", "/v1/readers", nil, &rs)
			return slices.ContainsFunc(rs, func(r admin.ReaderInfo) bool { return r.Serial == "CHAOS-1" })
		})
	}
	readers := make([]*client.Client, clusterChaosReaders)
	for i := range readers {
		bb := b
		for j := range nodes {
			bb.Servers = append(bb.Servers[:j:j], nodes[(i+j)%len(nodes)].reader)
		}
		bb.Server = bb.Servers[0]
		rd, err := client.New(&bb, client.WithRetries(clusterChaosRetries), client.WithAddressTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		readers[i] = rd
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	reads := &clusterReads{byCode: map[wire.Code]int{}, byHost: map[string]int{}}
	for w, rd := range readers {
		wg.Add(1)
		go func() { // owned here: stop ends it, wg waits
			defer wg.Done()
			reads.run(ctx, stop, rd, w)
		}()
	}
	writes := &clusterWrites{acked: map[string]bool{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		writes.run(ctx, stop, nodes, rand.New(rand.NewPCG(seed, 3)))
	}()
	nem := &nemesis{t: t, nodes: nodes, kinds: map[string]int{}}
	nemDone := make(chan struct{}, 2)
	go func() {
		defer func() { nemDone <- struct{}{} }()
		nem.processes(stop, rand.New(rand.NewPCG(seed, 1)))
	}()
	go func() {
		defer func() { nemDone <- struct{}{} }()
		nem.sams(stop, rand.New(rand.NewPCG(seed, 2)))
	}()

	chaosStart := time.Now()
	tm := time.NewTimer(dur)
	<-tm.C
	close(stop)
	<-nemDone
	<-nemDone
	wg.Wait()
	for _, rd := range readers {
		rd.Close()
	}
	t.Logf("chaos and load for %v (until %s): %s", time.Since(chaosStart).Round(time.Millisecond), time.Now().Format("15:04:05.000"), nem.summary())
	t.Logf("reads: %s", reads.summary())
	t.Logf("writes: %d acknowledged, %d failed", len(writes.acked), writes.failed)
	for _, e := range nem.errs {
		t.Error(e)
	}
	if len(reads.bad) > 0 {
		t.Errorf("%d reads ended without a defined code:\n%s", len(reads.bad), strings.Join(reads.bad, "\n"))
	}
	if reads.ok == 0 || len(writes.acked) == 0 {
		t.Errorf("no read (%d) or no write (%d) got through the chaos: it proves nothing", reads.ok, len(writes.acked))
	}
	if nem.kinds["kill"]+nem.kinds["cut"] == 0 {
		t.Errorf("the nemesis killed or cut no appliance: %s", nem.summary())
	}

	// Healing: every process runs (the nemesis restarted or continued
	// them); every slot back in service.
	settle := time.Now()
	for _, n := range nodes {
		_, c := n.get()
		d := waitFor(t, n.name+"'s slots back in service", clusterChaosSettle, func() bool { return repairSlots(c) })
		if d > time.Second {
			t.Logf("%s's slots back in service in %v", n.name, d.Round(time.Millisecond))
		}
	}
	// No lease lost: on every appliance every Enabled SAM idle, none busy,
	// none leased to a peer, nobody waiting.
	for _, n := range nodes {
		_, c := n.get()
		var st placementStats
		var err error
		defer func() {
			if t.Failed() {
				var slots []admin.Slot
				c.Do(ctx, "GET", "/v1/slots", nil, &slots)
				t.Logf("%s: last stats %+v, err %v; slots %+v", n.name, st, err, slots)
			}
		}()
		var first *placementStats
		d := waitFor(t, n.name+"'s pool whole again", clusterChaosSettle, func() bool {
			st, err = stats(t, c)
			ok := err == nil && st.Rack.Enabled == clusterChaosSAMs && st.Rack.Idle == st.Rack.Enabled &&
				st.Rack.Busy == 0 && st.Rack.Waiters == 0 && st.Placement.PeerLeases == 0
			if !ok && err == nil && first == nil {
				st0 := st
				first = &st0
			}
			return ok
		})
		if first != nil {
			t.Logf("%s's pool whole in %v; at first %+v", n.name, d.Round(time.Millisecond), *first)
		}
	}
	// Leases the link lost track of (a Place whose reply never reached its
	// front end) are given back by the host's idle timeout: say how many.
	for _, n := range nodes {
		_, c := n.get()
		var evs []audit.Event
		if err := c.Do(ctx, "GET", "/v1/audit?kind=session.abandoned&n=1000", nil, &evs); err == nil && len(evs) > 0 {
			t.Logf("%s: %d sessions abandoned by their front end (lease given back after the idle timeout), the last at %v",
				n.name, len(evs), evs[0].Time.Format("15:04:05.000"))
		}
	}
	// One leader, three voters, one state.
	_, c1 := n1.get()
	waitFor(t, "three voters and a leader", clusterChaosSettle, func() bool {
		var ms []admin.Member
		id, v := "", 0
		if c1.Do(ctx, "GET", "/v1/cluster/members", nil, &ms) == nil {
			id, v = leaderOf(ms)
		}
		return id != "" && v == 3
	})
	var digests []admin.Digest
	waitFor(t, "the same state digest on every appliance", clusterChaosSettle, func() bool {
		digests = digests[:0]
		for _, n := range nodes {
			_, c := n.get()
			var d admin.Digest
			if err := c.Do(ctx, "GET", "/v1/cluster/digest", nil, &d); err != nil {
				return false
			}
			digests = append(digests, d)
		}
		return digests[0].SHA256 == digests[1].SHA256 && digests[1].SHA256 == digests[2].SHA256
	})
	t.Logf("state digest %s… at applied index %d/%d/%d on all three", digests[0].SHA256[:16],
		digests[0].AppliedIndex, digests[1].AppliedIndex, digests[2].AppliedIndex)
	for _, n := range nodes {
		_, c := n.get()
		have := allCards(t, c)
		var missing []string
		for s := range writes.acked {
			if !have[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks %d acknowledged blacklist adds: %v", n.name, len(missing), missing)
		}
	}
	// A read through each appliance alone works again.
	for i, n := range nodes {
		bb := b
		bb.Server, bb.Servers = n.reader, []string{n.reader}
		rd, err := client.New(&bb, client.WithRetries(3))
		if err != nil {
			t.Fatal(err)
		}
		card := sim.NewCard(int64(900_000+i), sim.CardOptions{Timing: &sim.RFTiming{}})
		if res, err := rd.Read(ctx, card, client.ReadOptions{}); err != nil || res.Serial != card.Serial() {
			t.Errorf("read through %s after the healing: %v", n.name, err)
		}
		rd.Close()
	}
	t.Logf("healed in %v", time.Since(settle).Round(time.Millisecond))
	for _, n := range nodes {
		p, _ := n.get()
		p.stop() // exit 0, no goroutine of its own left (childLeakCheck)
	}
	t.Logf("TestClusterChaos took %v", time.Since(begin).Round(time.Millisecond))
}

// clusterReads reads fresh cards until stopped and sorts the outcomes.
type clusterReads struct {
	mu     sync.Mutex // guards the fields
	next   int
	ok     int
	byCode map[wire.Code]int
	byHost map[string]int
	bad    []string
	max    time.Duration
}

func (r *clusterReads) run(ctx context.Context, stop <-chan struct{}, rd *client.Client, w int) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		r.mu.Lock()
		i := r.next
		r.next++
		r.mu.Unlock()
		card := sim.NewCard(int64(100_000+i), sim.CardOptions{Timing: &sim.RFTiming{}})
		rctx, cancel := context.WithTimeout(ctx, clusterChaosHung)
		begin := time.Now()
		res, err := rd.Read(rctx, card, client.ReadOptions{})
		took := time.Since(begin)
		cancel()
		var we *wire.Error
		r.mu.Lock()
		r.max = max(r.max, took)
		switch {
		case err == nil && res.Serial == card.Serial() && res.Identity != nil:
			r.ok++
			r.byHost[res.Host]++
		case err == nil:
			r.bad = append(r.bad, fmt.Sprintf("  read %d (reader %d): another card's data or none", i, w))
		case errors.As(err, &we) && slices.Contains(clusterChaosCodes, we.Code):
			r.byCode[we.Code]++
		default:
			r.bad = append(r.bad, fmt.Sprintf("  read %d (reader %d) after %v: %v", i, w, took.Round(time.Millisecond), err))
		}
		r.mu.Unlock()
		if we != nil && we.RetryAfter > 0 {
			t := time.NewTimer(min(we.RetryAfter, 200*time.Millisecond))
			select {
			case <-stop:
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func (r *clusterReads) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var codes []string
	for c, n := range r.byCode {
		codes = append(codes, fmt.Sprintf("%d %v: %d", c, c, n))
	}
	slices.Sort(codes)
	return fmt.Sprintf("%d in all, %d ok (by host %v), %d with a defined code (%s), %d bad; slowest %v",
		r.next, r.ok, r.byHost, len(codes), strings.Join(codes, ", "), len(r.bad), r.max.Round(time.Millisecond))
}

// clusterWrites adds blacklist cards through random appliances until
// stopped; acked are those whose add was answered OK.
type clusterWrites struct {
	mu     sync.Mutex // guards the fields
	acked  map[string]bool
	failed int
}

func (cw *clusterWrites) run(ctx context.Context, stop <-chan struct{}, nodes []*chaosNode, rng *rand.Rand) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		serial := fmt.Sprintf("c4a05%011x", i)
		_, c := nodes[rng.IntN(len(nodes))].get()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Do(wctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{serial}, Reason: "chaos"}, nil)
		cancel()
		cw.mu.Lock()
		if err == nil {
			cw.acked[serial] = true
		} else {
			cw.failed++
		}
		cw.mu.Unlock()
	}
}

// allCards is the set of blacklisted serials on the appliance of c.
func allCards(t *testing.T, c *admin.Client) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	after := ""
	for {
		var l admin.CardList
		if err := c.Do(context.Background(), "GET", "/v1/blacklist/cards?limit=100000&after="+after, nil, &l); err != nil {
			t.Fatal(err)
		}
		for _, cd := range l.Cards {
			out[cd.Serial] = true
		}
		if l.Next == "" {
			return out
		}
		after = l.Next
	}
}

// repairSlots puts every slot of the appliance of c back in service (the
// nemesis may have been stopped, or its appliance killed, between a drain
// and the enable) and says whether all are Enabled.
func repairSlots(c *admin.Client) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var slots []admin.Slot
	if err := c.Do(ctx, "GET", "/v1/slots", nil, &slots); err != nil || len(slots) != clusterChaosSAMs {
		return false
	}
	all := true
	for _, s := range slots {
		switch s.State {
		case rack.StateEnabled.String():
			continue
		case rack.StateDraining.String(), rack.StateStandbyOffline.String():
			c.Do(ctx, "POST", fmt.Sprintf("/v1/slots/%d/enable", s.ID), nil, nil)
		case rack.StateQuarantined.String():
			c.Do(ctx, "POST", fmt.Sprintf("/v1/slots/%d/clear-quarantine", s.ID), nil, nil)
		}
		all = false
	}
	return all
}

// nemesis injects the faults. processes and sams each run in their own
// goroutine; at most one appliance is killed or cut at a time, so that a
// quorum and some SAMs always remain.
type nemesis struct {
	t     *testing.T
	nodes []*chaosNode

	mu    sync.Mutex // guards kinds and errs
	kinds map[string]int
	errs  []string
}

func (nm *nemesis) count(kind string) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.kinds[kind]++
}

func (nm *nemesis) fail(format string, args ...any) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	nm.errs = append(nm.errs, fmt.Sprintf(format, args...))
}

func (nm *nemesis) summary() string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	var out []string
	for k, n := range nm.kinds {
		out = append(out, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(out)
	return "faults " + strings.Join(out, ", ")
}

// wait waits d or until stop; it says whether stop came.
func wait(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return true
	case <-t.C:
		return false
	}
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// leader is the ID of the raft leader as some appliance sees it, or "".
func (nm *nemesis) leader() string {
	for _, n := range nm.nodes {
		_, c := n.get()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var ms []admin.Member
		err := c.Do(ctx, "GET", "/v1/cluster/members", nil, &ms)
		cancel()
		if err == nil {
			if id, _ := leaderOf(ms); id != "" {
				return id
			}
		}
	}
	return ""
}

// processes kills and restarts, or cuts off and heals, one appliance at
// a time — the leader half of the time — until stop.
func (nm *nemesis) processes(stop <-chan struct{}, rng *rand.Rand) {
	for {
		if wait(stop, between(rng, 500*time.Millisecond, 2*time.Second)) {
			return
		}
		n := nm.nodes[rng.IntN(len(nm.nodes))]
		role := "a follower"
		if rng.IntN(2) == 0 {
			if id := nm.leader(); id != "" {
				i := slices.IndexFunc(nm.nodes, func(n *chaosNode) bool { return n.id == id })
				n, role = nm.nodes[i], "the leader"
			}
		} else if id := nm.leader(); id == n.id {
			role = "the leader"
		}
		p, _ := n.get()
		switch rng.IntN(2) {
		case 0:
			nm.count("kill")
			nm.count("kill " + role)
			p.kill() // SIGKILL
			wait(stop, between(rng, 100*time.Millisecond, 2*time.Second))
			np := start(nm.t, n.name, n.data, n.args...)
			c, err := np.clientErr()
			if err != nil {
				nm.fail("restart of %s: %v", n.name, err)
				return
			}
			n.mu.Lock()
			n.p, n.c = np, c
			n.mu.Unlock()
		default:
			nm.count("cut")
			nm.count("cut " + role)
			p.cmd.Process.Signal(syscall.SIGSTOP)
			wait(stop, between(rng, 300*time.Millisecond, 4*time.Second))
			p.cmd.Process.Signal(syscall.SIGCONT)
		}
		// The appliance is back: wait for it to know a leader before the
		// next fault, so that a quorum stays.
		_, c := n.get()
		deadline := time.Now().Add(clusterChaosSettle)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var ms []admin.Member
			err := c.Do(ctx, "GET", "/v1/cluster/members", nil, &ms)
			cancel()
			if id, v := leaderOf(ms); err == nil && id != "" && v == 3 {
				break
			}
			if time.Now().After(deadline) {
				nm.fail("%s never saw a leader and three voters again within %v", n.name, clusterChaosSettle)
				return
			}
			wait(nil, 50*time.Millisecond)
		}
	}
}

// sams takes SAMs out of service and puts them back, through the slot
// actions of the admin API of the appliance that holds them: a drain,
// then half of the time a power-off, then an enable (the rack's simulated
// SAMs have no hot-pull hook a real process exposes).
func (nm *nemesis) sams(stop <-chan struct{}, rng *rand.Rand) {
	for {
		if wait(stop, between(rng, 100*time.Millisecond, 600*time.Millisecond)) {
			return
		}
		n := nm.nodes[rng.IntN(len(nm.nodes))]
		slot := strconv.Itoa(rng.IntN(clusterChaosSAMs))
		off := rng.IntN(2) == 0
		hold := between(rng, 100*time.Millisecond, 1500*time.Millisecond)
		_, c := n.get()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.Do(ctx, "POST", "/v1/slots/"+url.PathEscape(slot)+"/drain", nil, nil); err != nil {
			cancel()
			continue // its appliance is down or cut: repairSlots puts it back at the end
		}
		nm.count("drain")
		if off && c.Do(ctx, "POST", "/v1/slots/"+slot+"/power-off", nil, nil) == nil {
			nm.count("power-off")
		}
		cancel()
		wait(stop, hold)
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		c.Do(ctx, "POST", "/v1/slots/"+slot+"/enable", nil, nil)
		cancel()
	}
}

// clientErr is client without failing the test, for the nemesis
// goroutine: the admin client once the process wrote its credentials.
func (p *proc) clientErr() (*admin.Client, error) {
	path := filepath.Join(p.data, admin.CredentialsFile)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if c, err := admin.LoadCredentials(path); err == nil {
			return admin.NewClient(c, "")
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no admin credentials:\n%s", p.name, p.out)
		}
		wait(nil, 20*time.Millisecond)
	}
}
