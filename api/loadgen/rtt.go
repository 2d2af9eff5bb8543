package loadgen

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/drivers/sim/pace"
)

// WithRTT is a client option that makes every round trip to the appliance
// cost rtt more, on the reader's side only (no netem): each connection
// delays what the reader sends by rtt, so a frame reaches the appliance
// rtt after it was written, and a request and its answer are one round
// trip apart. Writes return at once, as into a socket's send buffer; the
// bytes go out in order, each when due. It costs one timer per connection
// and one reset per write, no goroutine of its own and no busy wait.
func WithRTT(rtt time.Duration) client.Option {
	return client.WithDialer(RTTDialer(rtt, nil))
}

// RTTDialer returns a dialer (client.WithDialer) whose connections delay
// what is written to them by rtt. dial opens the TCP connection; nil means
// a net.Dialer.
func RTTDialer(rtt time.Duration, dial client.DialFunc) client.DialFunc {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil || rtt <= 0 {
			return c, err
		}
		return newRTTConn(c, rtt), nil
	}
}

type delayed struct {
	due time.Time
	b   []byte
}

// pacer arms the delay line's timers: a plain timer fires a few tenths of
// a millisecond late under load, which would lengthen every injected
// round trip by as much (see package pace).
var pacer = pace.Default

// rttConn delays its writes. One timer sends what is due; its callback
// is the only writer to the underlying connection, so the order holds.
type rttConn struct {
	net.Conn
	rtt   time.Duration
	timer *time.Timer
	lead  time.Duration // the pacer's lead the timer was armed with

	mu      sync.Mutex
	queue   []delayed
	armed   bool // a callback is scheduled or running
	err     error
	closed  bool
	flushed sync.Cond // signalled when a callback ends
}

func newRTTConn(c net.Conn, rtt time.Duration) *rttConn {
	r := &rttConn{Conn: c, rtt: rtt}
	r.flushed.L = &r.mu
	r.timer = time.AfterFunc(time.Hour, r.send)
	r.timer.Stop()
	return r
}

func (r *rttConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if r.closed {
		return 0, net.ErrClosed
	}
	r.queue = append(r.queue, delayed{due: time.Now().Add(r.rtt), b: append([]byte(nil), p...)})
	if !r.armed {
		r.armed = true
		r.arm()
	}
	return len(p), nil
}

// arm sets the timer for the first write in the queue (r.mu held).
func (r *rttConn) arm() {
	var d time.Duration
	d, r.lead = pacer.Arm(r.queue[0].due)
	r.timer.Reset(d)
}

// send writes what is due and re-arms the timer for the rest. The timer
// is armed early by the pacer's lead, so what is due within the lead
// counts as due.
func (r *rttConn) send() {
	r.mu.Lock()
	if len(r.queue) > 0 {
		pacer.Fired(r.queue[0].due, r.lead)
	}
	for {
		now := time.Now().Add(r.lead)
		n := 0
		for n < len(r.queue) && !r.queue[n].due.After(now) {
			n++
		}
		due := r.queue[:n]
		r.queue = r.queue[n:]
		if n == 0 || r.closed || r.err != nil {
			break
		}
		r.mu.Unlock()
		var err error
		for _, d := range due {
			if _, err = r.Conn.Write(d.b); err != nil {
				break
			}
		}
		r.mu.Lock()
		if err != nil && r.err == nil {
			r.err = err
		}
	}
	if len(r.queue) > 0 && !r.closed && r.err == nil {
		r.arm()
	} else {
		r.armed = false
		r.queue = nil
		r.flushed.Broadcast()
	}
	r.mu.Unlock()
}

// Close drops what is not yet due, closes the connection and waits for a
// running callback.
func (r *rttConn) Close() error {
	r.mu.Lock()
	r.closed = true
	if r.armed && r.timer.Stop() {
		r.armed = false
		r.queue = nil
	}
	r.mu.Unlock()
	err := r.Conn.Close() // unblocks a callback stuck in Write
	r.mu.Lock()
	for r.armed {
		r.flushed.Wait()
	}
	r.mu.Unlock()
	return err
}
