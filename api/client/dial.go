package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Connecting through a bundle's addresses (api/PROTOCOL.md §2): the
// cluster's virtual IP first, then each appliance's own reader address.
//
// A connect tries every address once, in the bundle's order but starting
// at the last address that worked (the first, at the start), each within
// the per-address timeout (WithAddressTimeout, default 3 s, for TCP and
// the TLS handshake together; a bundle of one address uses the connect
// timeout of WithTimeouts). The first that answers becomes the last good
// address. When none answers the connect fails with an *UnreachableError
// (errors.Is ErrUnreachable), which Read retries like a broken connection
// (WithRetries), after 100 ms, 200 ms, 400 ms, 800 ms, then 1 s between
// attempts.

// DefaultAddressTimeout bounds the connect to one address of a bundle
// with several.
const DefaultAddressTimeout = 3 * time.Second

// ErrUnreachable: no address of the bundle answered a connect.
var ErrUnreachable = errors.New("samrack: no appliance reachable")

// DialFunc opens the TCP connection to addr (WithDialer).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WithDialer makes the client open its TCP connections with dial (TLS
// runs on top): a reader behind a proxy, or a test in a network namespace.
func WithDialer(dial DialFunc) Option { return func(o *options) { o.dialer = dial } }

// WithAddressTimeout sets how long a connect waits for each address of a
// bundle with several before it tries the next (default 3 s).
func WithAddressTimeout(d time.Duration) Option { return func(o *options) { o.addrTimeout = d } }

// AddrError is the failure of one address.
type AddrError struct {
	Addr string
	Err  error
}

func (e AddrError) Error() string { return e.Addr + ": " + e.Err.Error() }
func (e AddrError) Unwrap() error { return e.Err }

// UnreachableError says that no address of the bundle answered: each
// address with its error, and how many connect attempts Read made.
type UnreachableError struct {
	Tried    []AddrError // the last attempt's, in the order tried
	Attempts int         // connects through all addresses (1 + retries)
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d address(es) tried %d time(s); last errors:", ErrUnreachable, len(e.Tried), max(e.Attempts, 1))
	for i, a := range e.Tried {
		if i > 0 {
			b.WriteString(";")
		}
		b.WriteString(" " + a.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnreachable) hold.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// Unwrap gives the addresses' errors (errors.As finds a net.Error in them).
func (e *UnreachableError) Unwrap() []error {
	out := make([]error, len(e.Tried))
	for i, a := range e.Tried {
		out[i] = a
	}
	return out
}

// dialState is where a Client connects: the bundle's addresses and the
// index of the last that worked. Guarded by Client.mu.
type dialState struct {
	addrs []string
	good  int
}

// unreachableBackoff is the wait before connect attempt k+1 after k+1
// attempts found no address: 100 ms doubling, at most 1 s.
func unreachableBackoff(k int) time.Duration {
	d := 100 * time.Millisecond
	for i := 0; i < k && d < time.Second; i++ {
		d *= 2
	}
	return min(d, time.Second)
}

// dialLocked connects to the first address that answers, starting at the
// last good one.
func (c *Client) dialLocked(ctx context.Context) (net.Conn, error) {
	if c.ds.addrs == nil {
		c.ds.addrs = c.b.Addresses()
	}
	per := c.opts.dialTimeout
	if len(c.ds.addrs) > 1 {
		at := c.opts.addrTimeout
		if at <= 0 {
			at = DefaultAddressTimeout
		}
		per = min(per, at)
	}
	ue := &UnreachableError{}
	for i := range c.ds.addrs {
		k := (c.ds.good + i) % len(c.ds.addrs)
		addr := c.ds.addrs[k]
		nc, err := c.dialOne(ctx, addr, per)
		if err == nil {
			c.ds.good = k
			return nc, nil
		}
		ue.Tried = append(ue.Tried, AddrError{Addr: addr, Err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, ue
}

func (c *Client) dialOne(parent context.Context, addr string, timeout time.Duration) (nc net.Conn, err error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	defer func() {
		if err != nil && parent.Err() == nil && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", timeout, err)
		}
	}()
	dial := c.opts.dialer
	if dial == nil {
		d := &net.Dialer{LocalAddr: c.opts.localAddr}
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// Addr is the address of the current connection, or the one the next
// connect tries first.
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ds.addrs == nil {
		c.ds.addrs = c.b.Addresses()
	}
	return c.ds.addrs[c.ds.good]
}
