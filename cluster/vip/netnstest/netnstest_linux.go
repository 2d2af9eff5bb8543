package netnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// prefix starts every namespace a lab makes: prefix<pid>-<lab>-<name>.
const prefix = "vipt"

var labSeq atomic.Int32

// Need skips (or, under CI=true, fails) when this machine cannot run
// network-namespace tests.
func Need(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip command (iproute2)"
	} else {
		probe := fmt.Sprintf("%s%d-probe", prefix, os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			why = fmt.Sprintf("ip netns add: %v: %s", err, out)
		} else {
			exec.Command("ip", "netns", "del", probe).Run()
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("netns tests cannot run under CI: %s", why)
	}
	t.Skipf("netns tests need root and network namespaces: %s", why)
}

// IP runs the ip command (iproute2) and fails t when it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sweep deletes the namespaces of labs whose test process died without
// its cleanup (killed): prefix<pid>-… with no such process.
func sweep() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		pid, _, ok := strings.Cut(strings.TrimPrefix(f[0], prefix), "-")
		if _, err := strconv.Atoi(pid); !ok || err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}

// Lab is a switch, node namespaces and a reader namespace.
type Lab struct {
	t      testing.TB
	VIP    netip.Prefix
	Switch string            // the switch namespace; node i's port on br0 is p<i+1>, the reader's prd
	Reader string            // the reader namespace
	Nodes  []string          // node namespaces
	MACs   map[string]string // node namespace → eth0 MAC
}

// New builds the switch, n node namespaces and the reader namespace, in
// the address family of vip (which no one holds yet). Everything goes
// away in t.Cleanup, also when the test fails.
func New(t testing.TB, n int, vip netip.Prefix) *Lab {
	t.Helper()
	Need(t)
	pfx := fmt.Sprintf("%s%d-%d-", prefix, os.Getpid(), labSeq.Add(1))
	lb := &Lab{t: t, VIP: vip, Switch: pfx + "sw", Reader: pfx + "rd", MACs: map[string]string{}}
	for i := 1; i <= n; i++ {
		lb.Nodes = append(lb.Nodes, fmt.Sprintf("%sn%d", pfx, i))
	}
	sweep()
	for _, ns := range append([]string{lb.Switch, lb.Reader}, lb.Nodes...) {
		IP(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	IP(t, "-n", lb.Switch, "link", "add", "br0", "type", "bridge")
	IP(t, "-n", lb.Switch, "link", "set", "br0", "up")
	v6 := vip.Addr().Is6()
	join := func(ns, port string, host int) {
		IP(t, "-n", lb.Switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		IP(t, "-n", lb.Switch, "link", "set", port, "master", "br0", "up")
		if v6 {
			// No duplicate address detection: usable at once.
			IP(t, "-n", ns, "addr", "add", fmt.Sprintf("2001:db8:5a::%d/64", host), "dev", "eth0", "nodad")
		} else {
			IP(t, "-n", ns, "addr", "add", fmt.Sprintf("198.51.100.%d/24", host), "dev", "eth0")
		}
		IP(t, "-n", ns, "link", "set", "eth0", "up")
		IP(t, "-n", ns, "link", "set", "lo", "up")
	}
	for i, ns := range lb.Nodes {
		join(ns, fmt.Sprintf("p%d", i+1), 11+i)
		lb.MACs[ns] = lb.mac(ns)
	}
	join(lb.Reader, "prd", 99)
	return lb
}

// handle is a netlink handle inside the namespace ns.
func (lb *Lab) handle(ns string) *netlink.Handle {
	lb.t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		lb.t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		lb.t.Fatal(err)
	}
	return nh
}

func (lb *Lab) mac(ns string) string {
	nh := lb.handle(ns)
	defer nh.Close()
	l, err := nh.LinkByName("eth0")
	if err != nil {
		lb.t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

// HasVIP reports whether the namespace ns holds the lab's VIP.
func (lb *Lab) HasVIP(ns string) bool {
	lb.t.Helper()
	nh := lb.handle(ns)
	defer nh.Close()
	n, err := count(nh, lb.VIP.Addr())
	if err != nil {
		lb.t.Fatal(err)
	}
	return n > 0
}

// Holders lists the node indexes whose namespaces hold the VIP.
func (lb *Lab) Holders() []int {
	var out []int
	for i, ns := range lb.Nodes {
		if lb.HasVIP(ns) {
			out = append(out, i)
		}
	}
	return out
}

// count is how many addresses in the namespace of h are vip.
func count(h *netlink.Handle, vip netip.Addr) (int, error) {
	addrs, err := h.AddrList(nil, Family(vip))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip {
			n++
		}
	}
	return n, nil
}

// Family is the netlink address family of a.
func Family(a netip.Addr) int {
	if a.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// Command runs this test binary (no tests: -test.run=^$) inside the
// namespace ns with args after it; ip netns exec execs it, so the
// process's PID is the binary's.
func Command(ns string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, exe, "-test.run=^$"}, args...)...), nil
}

// Dialer dials from the namespace ns: the socket is made by a thread
// that entered ns, and stays in ns after the thread has left it.
func (lb *Lab) Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	lb.t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		lb.t.Fatal(err)
	}
	lb.t.Cleanup(func() { h.Close() })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() { // waited for below
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				ch <- result{nil, err} // the thread stays locked and ends with the goroutine
				return
			}
			defer orig.Close()
			if err := netns.Set(h); err != nil {
				ch <- result{nil, err}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// Sampler looks every SamplePeriod which node namespaces hold the VIP.
type Sampler struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // mu guards the fields below
	err     error
	samples int
	runFrom time.Time     // first sample of the current run with ≥2 holders
	longest time.Duration // longest such run, first to last sample + one period
}

// SamplePeriod is the Sampler's period.
const SamplePeriod = 50 * time.Millisecond

// Sample starts a Sampler; it stops at Result or in t.Cleanup.
func (lb *Lab) Sample() *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	var hs []*netlink.Handle
	for _, ns := range lb.Nodes {
		hs = append(hs, lb.handle(ns))
	}
	vip := lb.VIP.Addr()
	go func() { // owned by s: ends at s.close
		defer close(s.done)
		defer func() {
			for _, h := range hs {
				h.Close()
			}
		}()
		tick := time.NewTicker(SamplePeriod)
		defer tick.Stop()
		for {
			now, n := time.Now(), 0
			for _, h := range hs {
				c, err := count(h, vip)
				if err != nil {
					s.mu.Lock()
					s.err = err
					s.mu.Unlock()
				}
				n += c
			}
			s.mu.Lock()
			s.samples++
			if n >= 2 {
				if s.runFrom.IsZero() {
					s.runFrom = now
				}
				s.longest = max(s.longest, now.Sub(s.runFrom)+SamplePeriod)
			} else {
				s.runFrom = time.Time{}
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	lb.t.Cleanup(s.close)
	return s
}

func (s *Sampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Result stops the sampler and returns the longest time two namespaces
// held the VIP together (an upper bound: one sampling period more than
// the samples saw) and the number of samples.
func (s *Sampler) Result(t testing.TB) (time.Duration, int) {
	t.Helper()
	s.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("sampler: %v", s.err)
	}
	return s.longest, s.samples
}
