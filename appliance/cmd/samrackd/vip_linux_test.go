package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/cluster/vip/netnstest"
	"github.com/samrack/samrack/drivers/sim"
)

// The VIP tests run three samrackd processes (this test binary) in three
// network namespaces on a bridge, with --vip, and readers that use the Go
// SDK from a fourth namespace. Addresses are 198.51.100.0/24 (TEST-NET-2)
// inside the namespaces only: node i has .1i, the reader .99, the VIP .10.
// Namespaces are cleaned up by the test (and swept when a killed test run
// left some behind).

const (
	labVIP      = "198.51.100.10/24"
	labVIPAddr  = "198.51.100.10:7467"
	labLease    = 250 * time.Millisecond // the appliance's raft lease (appliance/store.go lanLease)
	labReadTime = 10 * time.Millisecond  // a virtual SAM's read
)

// vlab is a netnstest.Lab of three nodes that run samrackd.
type vlab struct {
	*netnstest.Lab
	t     testing.TB
	dirs  []string // data directories
	procs []*proc
	args  [][]string
	dial  client.DialFunc // from the reader namespace
}

func newVLab(t testing.TB) *vlab {
	t.Helper()
	lb := &vlab{Lab: netnstest.New(t, 3, netip.MustParsePrefix(labVIP)), t: t, procs: make([]*proc, 3), args: make([][]string, 3)}
	for i := 1; i <= 3; i++ {
		lb.dirs = append(lb.dirs, filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)))
	}
	lb.dial = lb.Dialer(lb.Reader)
	return lb
}

func nodeAddr(i int, port string) string { return fmt.Sprintf("198.51.100.%d:%s", 11+i, port) }

// startNode runs samrackd i in its namespace with the VIP on eth0.
func (lb *vlab) startNode(i int, extra ...string) *proc {
	t := lb.t
	if extra != nil || lb.args[i] == nil {
		lb.args[i] = append([]string{"--data", lb.dirs[i], "--listen", ":7467", "--advertise", nodeAddr(i, "7467"),
			"--admin", nodeAddr(i, "7480"), "--raft", nodeAddr(i, "7468"), "--sim-sams", "2",
			"--sim-read-time", labReadTime.String(), "--log-level", "info",
			"--vip", labVIP, "--vip-interface", "eth0"}, extra...)
	}
	cmd, err := netnstest.Command(lb.Nodes[i], append([]string{"--"}, lb.args[i]...)...) // the PID is samrackd's
	if err != nil {
		t.Fatal(err)
	}
	p := launch(t, fmt.Sprintf("n%d", i+1), lb.dirs[i], cmd)
	lb.procs[i] = p
	return p
}

// admin returns an admin client of node i, dialling from the reader
// namespace.
func (lb *vlab) admin(i int) *admin.Client {
	c := lb.procs[i].client()
	c.HTTP.Transport.(*http.Transport).DialContext = lb.dial
	c.HTTP.Timeout = 10 * time.Second
	return c
}

func (lb *vlab) members(i int) ([]admin.Member, error) {
	var ms []admin.Member
	err := lb.admin(i).Do(context.Background(), "GET", "/v1/cluster/members", nil, &ms)
	return ms, err
}

// form starts n1 (bootstrap) and joins n2 and n3.
func (lb *vlab) form() {
	t := lb.t
	lb.startNode(0, "--bootstrap")
	c1 := lb.admin(0)
	for i := 1; i < 3; i++ {
		lb.startNode(i, "--join", nodeAddr(0, "7480"), "--token", token(t, c1, "5m"))
		want := i + 1
		waitFor(t, fmt.Sprintf("%d voters", want), 90*time.Second, func() bool {
			ms, err := lb.members(0)
			if err != nil {
				return false
			}
			_, v := leaderOf(ms)
			return v == want
		})
	}
}

// leader is the node whose raft state is Leader, from the members list of
// a live node, or -1.
func (lb *vlab) leader() int {
	for i, p := range lb.procs {
		if p == nil || p.exitedNow() {
			continue
		}
		ms, err := lb.members(i)
		if err != nil {
			continue
		}
		for _, m := range ms {
			if m.Role == "leader" && m.Error == "" {
				for j := range lb.procs {
					if m.Reader == nodeAddr(j, "7467") {
						return j
					}
				}
			}
		}
	}
	return -1
}

func (p *proc) exitedNow() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// addReader provisions a reader through the admin API and checks its
// bundle: the VIP first, then the three appliances.
func (lb *vlab) addReader(serial string) *credentials.Bundle {
	t := lb.t
	var b credentials.Bundle
	if err := lb.admin(0).Do(context.Background(), "POST", "/v1/readers", admin.AddReader{Serial: serial}, &b); err != nil {
		t.Fatal(err)
	}
	want := []string{labVIPAddr, nodeAddr(0, "7467"), nodeAddr(1, "7467"), nodeAddr(2, "7467")}
	got := slices.Clone(b.Servers)
	if len(got) == 4 {
		sort.Strings(got[1:]) // the appliances come by node ID
	}
	if !slices.Equal(got, want) || b.Server != labVIPAddr {
		t.Fatalf("bundle: server %q servers %q, want %s first, then %v", b.Server, b.Servers, labVIPAddr, want[1:])
	}
	// No wait for the followers to apply the new reader: one that has not
	// yet catches up with the leader's read index before it answers.
	return &b
}

// spread runs n readers through the VIP at once, rounds reads each, and
// returns the successful reads by the appliance whose session host
// signed them (client.Result.Host, the node ID); any error fails.
func (lb *vlab) spread(b *credentials.Bundle, n, rounds int, seed int64) map[string]int {
	t := lb.t
	t.Helper()
	var (
		mu    sync.Mutex
		hosts = map[string]int{}
		errs  []error
		wg    sync.WaitGroup
	)
	for r := range n {
		wg.Add(1)
		go func() { // owned: wg.Wait below
			defer wg.Done()
			c, err := client.New(vipOnly(b), client.WithDialer(lb.dial), client.WithRetries(3))
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer c.Close()
			for i := range rounds {
				res, err := c.Read(context.Background(), sim.NewCard(seed+int64(r*rounds+i), sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					hosts[res.Host]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d reads through the VIP failed: %v", len(errs), n*rounds, errs[0])
	}
	return hosts
}

// nodeIDOf is node i's ID.
func (lb *vlab) nodeIDOf(i int) string { return nodeID(lb.t, lb.procs[i]) }

// vipOnly is b with the VIP as its only address: reads that prove the VIP
// serves.
func vipOnly(b *credentials.Bundle) *credentials.Bundle {
	v := *b
	v.Server, v.Servers = labVIPAddr, []string{labVIPAddr}
	return &v
}

// load runs readers that read cards back to back through the SDK (the
// bundle's addresses, retries) until stop; every outcome is recorded.
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	ok     int
	errs   []error
	byAddr map[string]int // successful reads by the address they went to
}

func (lb *vlab) startLoad(b *credentials.Bundle, readers int) *load {
	l := &load{stop: make(chan struct{}), byAddr: map[string]int{}}
	for r := range readers {
		c, err := client.New(b, client.WithDialer(lb.dial), client.WithRetries(8), client.WithAddressTimeout(time.Second))
		if err != nil {
			lb.t.Fatal(err)
		}
		l.wg.Add(1)
		go func() { // owned by l: finish waits
			defer l.wg.Done()
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := c.Read(ctx, sim.NewCard(int64(r*100000+i), sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
				cancel()
				l.mu.Lock()
				if err == nil {
					l.ok++
					l.byAddr[c.Addr()]++
				} else {
					l.errs = append(l.errs, err)
				}
				l.mu.Unlock()
			}
		}()
	}
	lb.t.Cleanup(l.finish)
	return l
}

func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check: every read succeeded or ended with a retryable code.
func (l *load) check(t testing.TB) {
	l.finish()
	l.mu.Lock()
	defer l.mu.Unlock()
	retryable := 0
	for _, err := range l.errs {
		var we *wire.Error
		if errors.As(err, &we) && we.Code.Retryable() {
			retryable++
			continue
		}
		t.Errorf("a read failed without a retryable code: %v", err)
	}
	t.Logf("load: %d reads ok (by address: %v), %d ended with a retryable code", l.ok, l.byAddr, retryable)
	if l.ok == 0 {
		t.Fatal("no read succeeded under load")
	}
}

// probeVIP reads through the VIP alone, a fresh connection each time,
// until one read succeeds; it returns when.
func (lb *vlab) probeVIP(b *credentials.Bundle, within time.Duration) time.Time {
	t := lb.t
	t.Helper()
	v := vipOnly(b)
	deadline := time.Now().Add(within)
	var last error
	for i := 0; time.Now().Before(deadline); i++ {
		c, err := client.New(v, client.WithDialer(lb.dial), client.WithTimeouts(200*time.Millisecond, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(context.Background(), sim.NewCard(int64(900000+i), sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
		c.Close()
		if err == nil {
			return time.Now()
		}
		last = err
		// A refused or unanswered connect returns at once or after its
		// 200 ms timeout: no pause needed between tries.
	}
	t.Fatalf("no read through the VIP within %v: %v", within, last)
	return time.Time{}
}

// failover kills the leader (SIGKILL) and returns how long until a read
// through the VIP succeeded; it then restarts the killed node, as a
// supervisor would, and checks that its startup removed the stale VIP.
func (lb *vlab) failover(b *credentials.Bundle) (time.Duration, int) {
	t := lb.t
	var old int
	waitFor(t, "a leader holding the VIP", 30*time.Second, func() bool {
		old = lb.leader()
		h := lb.Holders()
		return old >= 0 && len(h) == 1 && h[0] == old
	})
	lb.probeVIP(b, 10*time.Second)
	kill := time.Now()
	lb.procs[old].kill()
	ok := lb.probeVIP(b, 30*time.Second)
	d := ok.Sub(kill)
	var next int
	waitFor(t, "a new leader", 30*time.Second, func() bool { next = lb.leader(); return next >= 0 && next != old })
	if !lb.HasVIP(lb.Nodes[next]) {
		t.Fatalf("new leader n%d does not hold the VIP", next+1)
	}
	lb.startNode(old)
	waitFor(t, "the restarted node's stale VIP removed", 60*time.Second, func() bool { return !lb.HasVIP(lb.Nodes[old]) })
	waitFor(t, "three voters again", 90*time.Second, func() bool {
		ms, err := lb.members(next)
		if err != nil {
			return false
		}
		_, v := leaderOf(ms)
		return v == 3
	})
	return d, old
}

// TestVIPFailover: the VIP follows the raft leader across processes; a
// SIGKILL of the leader under a read load costs no read that does not end
// ok or with a retryable code, and reads resume through the VIP; a
// partitioned leader drops the VIP within its lease, the majority's new
// leader takes it, and two namespaces never hold it together longer than
// the lease (sampled every 50 ms).
func TestVIPFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samrackd processes in network namespaces")
	}
	lb := newVLab(t)
	lb.form()
	b := lb.addReader("VIP-READER-1")

	// Reads through the VIP run on the SAMs of all three appliances; with
	// the leader's rack powered off, on the other two.
	var leader0 int
	waitFor(t, "a leader", 30*time.Second, func() bool { leader0 = lb.leader(); return leader0 >= 0 })
	waitFor(t, "every SAM in the cluster idle at the leader", 60*time.Second, func() bool {
		var st placementStats
		if lb.admin(leader0).Do(context.Background(), "GET", "/v1/stats", nil, &st) != nil {
			return false
		}
		idle := st.Rack.Idle
		for _, c := range st.Placement.Counts {
			idle += c.Idle
		}
		return idle >= 6
	})
	hosts := lb.spread(b, 12, 4, 500_000)
	for i := range 3 {
		if hosts[lb.nodeIDOf(i)] == 0 {
			t.Fatalf("reads through the VIP by session host %v: none on n%d", hosts, i+1)
		}
	}
	t.Logf("reads through the VIP by session host: %v", hosts)
	for _, slot := range []string{"0", "1"} {
		for _, action := range []string{"drain", "power-off"} { // a hardware team's order
			if err := lb.admin(leader0).Do(context.Background(), "POST", "/v1/slots/"+slot+"/"+action, nil, nil); err != nil {
				t.Fatalf("slot %s %s: %v", slot, action, err)
			}
		}
	}
	hosts = lb.spread(b, 4, 3, 600_000)
	if n := hosts[lb.nodeIDOf(leader0)]; n != 0 {
		t.Fatalf("%d reads ran on the powered-off rack of n%d: %v", n, leader0+1, hosts)
	}
	for _, slot := range []string{"0", "1"} {
		if err := lb.admin(leader0).Do(context.Background(), "POST", "/v1/slots/"+slot+"/power-on", nil, nil); err != nil {
			t.Fatalf("slot %s power-on: %v", slot, err)
		}
	}
	waitFor(t, "the leader's SAMs back in service", 30*time.Second, func() bool {
		var st placementStats
		return lb.admin(leader0).Do(context.Background(), "GET", "/v1/stats", nil, &st) == nil && st.Rack.Idle == 2
	})

	// SIGKILL of the leader during a load.
	l := lb.startLoad(b, 3)
	d, old := lb.failover(b)
	t.Logf("SIGKILL of leader n%d: first read through the VIP %v later", old+1, d.Round(time.Millisecond))
	l.check(t)

	// Partition: the leader's cable is pulled.
	var leader int
	waitFor(t, "a leader holding the VIP", 30*time.Second, func() bool {
		leader = lb.leader()
		h := lb.Holders()
		return leader >= 0 && len(h) == 1 && h[0] == leader
	})
	s := lb.Sample()
	port := fmt.Sprintf("p%d", leader+1)
	cut := time.Now()
	netnstest.IP(t, "-n", lb.Switch, "link", "set", port, "down")
	dropped := waitFor(t, "the partitioned leader to drop the VIP", 10*time.Second, func() bool { return !lb.HasVIP(lb.Nodes[leader]) })
	var next int
	waitFor(t, "the VIP on the majority's new leader", 30*time.Second, func() bool {
		h := lb.Holders()
		if len(h) != 1 || h[0] == leader {
			return false
		}
		next = h[0]
		return true
	})
	taken := time.Since(cut)
	lb.probeVIP(b, 30*time.Second)
	netnstest.IP(t, "-n", lb.Switch, "link", "set", port, "up")
	overlap, samples := s.Result(t)
	// The partitioned leader's own account: "no quorum contact for X".
	age := fencedAge(lb.procs[leader].out.String())
	t.Logf("partition of n%d: VIP dropped %v after the cut (%s after its last quorum contact; lease %v), on n%d %v after the cut; %d samples, longest double ownership %v",
		leader+1, dropped.Round(time.Millisecond), age, labLease, next+1, taken.Round(time.Millisecond), samples, overlap)
	if overlap > labLease {
		t.Fatalf("two namespaces held the VIP for %v, longer than the lease %v", overlap, labLease)
	}
	if a, err := time.ParseDuration(age); err == nil && a > labLease {
		t.Fatalf("the partitioned leader held the VIP %v after its last quorum contact, longer than the lease %v", a, labLease)
	}
	// The cut is after the last contact, so this bounds the hold from
	// below; the margin is for polling a loaded machine.
	if dropped > labLease+250*time.Millisecond {
		t.Fatalf("the partitioned leader dropped the VIP %v after the cut (lease %v)", dropped, labLease)
	}
	// Healed, the old leader is a follower and stays without the VIP.
	waitFor(t, "the old leader to rejoin as a follower", 30*time.Second, func() bool {
		ms, err := lb.members(leader)
		if err != nil {
			return false
		}
		id, v := leaderOf(ms)
		return id != "" && v == 3 && lb.leader() != leader
	})
	if h := lb.Holders(); len(h) != 1 || h[0] == leader {
		t.Fatalf("after the heal the VIP is on %v", h)
	}
	lb.probeVIP(b, 30*time.Second)

	// Graceful stop (SIGTERM) of the leader: the VIP is removed first,
	// then leadership transferred; another node takes the VIP.
	waitFor(t, "a leader holding the VIP", 30*time.Second, func() bool {
		leader = lb.leader()
		h := lb.Holders()
		return leader >= 0 && len(h) == 1 && h[0] == leader
	})
	stop := time.Now()
	lb.procs[leader].stop()
	if lb.HasVIP(lb.Nodes[leader]) {
		t.Fatalf("n%d kept the VIP after a graceful stop", leader+1)
	}
	out := lb.procs[leader].out.String()
	rm := gracefulRe.FindStringIndex(out)
	tr := strings.Index(out, `msg="vip: transfer"`)
	if rm == nil || tr < rm[0] {
		t.Fatalf("n%d's graceful stop: want the VIP removed, then leadership transferred:\n%s", leader+1, out)
	}
	lb.probeVIP(b, 30*time.Second)
	t.Logf("graceful stop of n%d: read through the VIP on another node %v after SIGTERM", leader+1, time.Since(stop).Round(time.Millisecond))
}

var gracefulRe = regexp.MustCompile(`msg="vip: remove"[^\n]*reason="graceful stop"`)

var fencedRe = regexp.MustCompile(`no quorum contact for ([0-9.]+[mµn]?s)`)

// fencedAge finds the last fencing removal in a node's log: how old its
// quorum contact was; "raft stepped down first" when the manager removed
// the VIP on losing leadership instead.
func fencedAge(log string) string {
	m := fencedRe.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		return "raft stepped down first"
	}
	return m[len(m)-1][1]
}

// BenchmarkFailover: at least 5 SIGKILLs of the leader under a read load;
// failover-p50-s and failover-max-s from the kill to the first read that
// succeeds through the VIP (each killed node is restarted before the next
// kill, as a supervisor would).
func BenchmarkFailover(b *testing.B) {
	lb := newVLab(b)
	lb.form()
	bundle := lb.addReader("VIP-BENCH-1")
	l := lb.startLoad(bundle, 2)
	kills := max(b.N, 5)
	var ds []time.Duration
	b.ResetTimer()
	for range kills {
		d, old := lb.failover(bundle)
		b.Logf("SIGKILL of n%d: read through the VIP after %v", old+1, d.Round(time.Millisecond))
		ds = append(ds, d)
	}
	b.StopTimer()
	l.check(b)
	slices.Sort(ds)
	b.ReportMetric(ds[len(ds)/2].Seconds(), "failover-p50-s")
	b.ReportMetric(ds[len(ds)-1].Seconds(), "failover-max-s")
	b.ReportMetric(float64(len(ds)), "kills")
}
