package host_test

import (
	"slices"
	"testing"
	"time"

	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/dispatch/host/hosttest"
)

// BenchmarkForwardedRead: the same whole read (Place, find, select, read
// over the fake SAM of hosttest) on a local host and on a host forwarded
// over a real mutual-TLS link on loopback, alternating. A read's
// appliance-side overhead is its wall time at the front end minus the SAM
// time the host reports; forward-overhead-p99-ms is p99(overhead of the
// forwarded reads) − p99(overhead of the local reads): what forwarding a
// session to another appliance adds to a read's tail, in ms.
func BenchmarkForwardedRead(b *testing.B) {
	cfg := host.Config{Pool: hosttest.NewPool(), HashCard: func([8]byte) string { return "h" }}
	local := host.New(cfg)
	defer local.Close()
	_, nodes := serveOverLink(b, host.New(host.Config{Pool: hosttest.NewPool(), HashCard: cfg.HashCard}))
	remote := host.NewRemote(nodes["fe"].Link, "sam")
	hosttest.Read(b, remote) // the connection is up
	var loc, rem []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		s := hosttest.Read(b, local)
		loc = append(loc, time.Since(t0)-s)
		t0 = time.Now()
		s = hosttest.Read(b, remote)
		rem = append(rem, time.Since(t0)-s)
	}
	p99 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[(len(d)-1)*99/100]) / float64(time.Millisecond)
	}
	mean := func(d []time.Duration) float64 {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		return float64(sum) / float64(len(d)) / float64(time.Millisecond)
	}
	b.ReportMetric(mean(rem)-mean(loc), "forward-overhead-mean-ms")
	pl, pr := p99(loc), p99(rem)
	b.ReportMetric(pl, "local-p99-ms")
	b.ReportMetric(pr, "remote-p99-ms")
	b.ReportMetric(pr-pl, "forward-overhead-p99-ms")
}
