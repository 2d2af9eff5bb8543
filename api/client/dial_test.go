package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// deadAddrs returns a closed port (connects are refused) and a black hole
// (TCP connects, TLS never answers).
func deadAddrs(t *testing.T) (refused, hole string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused = ln.Addr().String()
	ln.Close()
	bh, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: the kernel completes TCP, nobody speaks TLS
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bh.Close() })
	return refused, bh.Addr().String()
}

// startAppliance runs an appliance in-process and provisions a reader.
func startAppliance(t *testing.T) *credentials.Bundle {
	t.Helper()
	a, err := appliance.New(appliance.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		SimSAMs: 1, SimTiming: &sim.SAMTiming{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	if _, err := a.Rack().WaitState(ctx, 0, rack.StateEnabled); err != nil {
		t.Fatal(err)
	}
	b, err := a.AddReader(ctx, "FALLBACK-1", "sm4", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Servers) != 1 || b.Servers[0] != b.Server || b.Server != a.ReaderAddr() {
		t.Fatalf("bundle of a single appliance: server %q servers %q, want [%s]", b.Server, b.Servers, a.ReaderAddr())
	}
	return b
}

// countingDialer records the addresses dialled.
type countingDialer struct {
	mu    sync.Mutex
	dials []string
}

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *countingDialer) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.dials
	d.dials = nil
	return out
}

// A bundle whose first addresses are dead: the client falls through to
// the live one, reads, and starts there the next time.
func TestFallbackThroughAddresses(t *testing.T) {
	leaktest.Check(t)
	b := startAppliance(t)
	live := b.Server
	refused, hole := deadAddrs(t)
	fb := *b
	fb.Servers = []string{refused, hole, live}
	fb.Server = refused
	d := &countingDialer{}
	c, err := client.New(&fb, client.WithDialer(d.dial), client.WithAddressTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	card := sim.NewCard(3, sim.CardOptions{Timing: &sim.RFTiming{}})
	if _, err := c.Read(ctx, card, client.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.take(), " "); got != refused+" "+hole+" "+live {
		t.Fatalf("dialled %s, want the bundle's order", got)
	}
	if c.Addr() != live {
		t.Fatalf("connected to %s, want %s", c.Addr(), live)
	}
	// A broken connection: the next connect starts at the last good address.
	c.Close()
	if _, err := c.Read(ctx, card, client.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := d.take(); len(got) != 1 || got[0] != live {
		t.Fatalf("after a reconnect dialled %v, want [%s] (the last good address)", got, live)
	}
}

// Bad input: a bundle whose addresses are all dead. Read gives up after
// 1 + retries connect attempts through every address, with an error that
// names each address and says how often it tried, within the documented
// bound: attempts × addresses × address timeout + the backoffs.
func TestAllAddressesDead(t *testing.T) {
	leaktest.Check(t)
	b := startAppliance(t)
	refused, hole := deadAddrs(t)
	_, hole2 := deadAddrs(t)
	dead := *b
	dead.Servers = []string{hole, refused, hole2}
	dead.Server = hole
	const per, retries = 200 * time.Millisecond, 2
	c, err := client.New(&dead, client.WithRetries(retries), client.WithAddressTimeout(per))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Read(context.Background(), sim.NewCard(4, sim.CardOptions{Timing: &sim.RFTiming{}}), client.ReadOptions{})
	took := time.Since(start)
	var ue *client.UnreachableError
	if !errors.Is(err, client.ErrUnreachable) || !errors.As(err, &ue) {
		t.Fatalf("got %v, want an UnreachableError", err)
	}
	if ue.Attempts != 1+retries || len(ue.Tried) != 3 {
		t.Fatalf("%d attempts through %d addresses, want %d through 3: %v", ue.Attempts, len(ue.Tried), 1+retries, err)
	}
	msg := err.Error()
	for _, a := range dead.Servers {
		if !strings.Contains(msg, a) {
			t.Errorf("error %q does not name %s", msg, a)
		}
	}
	if !strings.Contains(msg, "3 time(s)") || !strings.Contains(msg, "refused") {
		t.Errorf("error %q: want the attempts and each address's reason", msg)
	}
	// Two black holes cost the address timeout each per attempt; the
	// backoffs are 100 ms and 200 ms.
	low := (1+retries)*2*per + 300*time.Millisecond
	high := (1+retries)*3*per + 300*time.Millisecond + 5*time.Second // generous: a loaded machine
	t.Logf("all dead: %v (%v..%v): %v", took.Round(time.Millisecond), low, high, err)
	if took < low-50*time.Millisecond || took > high {
		t.Fatalf("gave up after %v, want between %v and %v", took, low, high)
	}
}
