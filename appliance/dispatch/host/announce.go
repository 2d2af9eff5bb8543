package host

import (
	"context"
	"time"

	clink "github.com/samrack/samrack/cluster/link"
)

// frCount carries an appliance's Count to a peer: idle u32 | healthy u32.
// It has no reply; the peer's Server records it under the sender's node
// ID (the link's authenticated identity, never a name in the frame).
const frCount uint8 = 8

// Announce streams count() to every peer over l: at once, then when
// changed fires (debounced by debounce, so a burst of leases is one
// announcement) and every period. It returns when ctx is done; the caller
// owns its goroutine.
func Announce(ctx context.Context, l *clink.Link, peers func() []string, count func() Count, changed <-chan struct{}, debounce, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		c := count()
		var e enc
		e.u32(uint32(max(c.Idle, 0)))
		e.u32(uint32(max(c.Healthy, 0)))
		for _, p := range peers() {
			sctx, cancel := context.WithTimeout(ctx, period)
			if st, _, err := l.Open(sctx, p); err == nil {
				clink.WriteFrame(st, frCount, e)
				st.Close()
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changed:
			t := time.NewTimer(debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func decodeCount(b []byte) (Count, error) {
	d := &dec{b: b}
	c := Count{Idle: int(d.u32("idle")), Healthy: int(d.u32("healthy"))}
	return c, d.end()
}
