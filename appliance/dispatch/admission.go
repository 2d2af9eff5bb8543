package dispatch

import (
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Admission: a reader connection goes through two stages, each with its
// own budget, so that connections nobody has authenticated cannot crowd
// out the readers.
//
//   - Pending: accepted, TLS handshake (with the client certificate our CA
//     issued) not yet finished. At most MaxPendingPerSource per source
//     address (an IPv6 source is its /64) and MaxPending in all; each has
//     HandshakeTimeout to finish. A pending connection costs its goroutine,
//     its tls.Conn and the TLS record it is receiving (≤ 16 KiB + header,
//     the protocol maximum): the 16 KiB frame buffer is only allocated
//     once it is authenticated.
//   - Authenticated: the handshake proved a certificate of our CA. At most
//     MaxConns; these alone get a frame buffer and the idle timeout.
//
// When a source already has MaxPendingPerSource pending, its new
// connection is refused at once: reset (SO_LINGER 0, so no TIME_WAIT and
// no handshake work) before a byte is read. One source therefore holds at
// most MaxPendingPerSource of the pending budget however many connections
// it opens, and every other source keeps its own.
//
// When MaxPending are pending in all (many sources), the oldest pending
// connection is evicted to admit the new one, rather than the new one
// refused. A legitimate reader finishes its handshake within a round trip
// or two, so it is never the oldest for long; connections held open
// without finishing (idle or slowloris) age to the front and are the ones
// dropped. Refusing the newest instead would hand the whole budget to
// whoever filled it first, and every reader would be locked out until the
// flood's handshakes timed out, again and again. (haproxy and nginx reach
// the same end with per-source limits and short handshake timeouts; a full
// budget evicting its oldest is the classic answer to slowloris.)
//
// Every refusal, eviction and handshake timeout is counted (Stats) and
// logged at warn, at most once per source per RefusalLogEvery, with the
// number of lines suppressed since.

// Refusal reasons, as logged.
const (
	reasonSourceBudget  = "source-pending-budget"  // MaxPendingPerSource pending from the source
	reasonEvicted       = "evicted-oldest-pending" // MaxPending pending in all; this was the oldest
	reasonReadersFull   = "authenticated-budget"   // MaxConns authenticated connections open
	reasonHandshakeSlow = "handshake-timeout"      // HandshakeTimeout passed
	reasonHandshakeBad  = "handshake-failed"       // no or bad certificate, not TLS, …
)

// admitted is one accepted connection's place in the admission budgets;
// its fields are guarded by Server.mu.
type admitted struct {
	nc     net.Conn
	src    string
	since  time.Time
	authed bool // promoted to the authenticated budget

	// the pending list, oldest first; linked while pending
	prev, next *admitted
	linked     bool
}

// sourceOf is the budget key of a remote address: the IP, or the /64 of
// an IPv6 address (one subscriber's share of the address space).
func sourceOf(a net.Addr) string {
	var ip netip.Addr
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip = tcp.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	} else {
		return a.String()
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// admit places a new connection from src in the pending budget. It
// returns the admission, or a refusal reason, or neither when the server
// is closing; evict, if not nil, is a pending connection the caller must
// reset.
func (s *Server) admit(nc net.Conn) (a *admitted, src, reason string, evict *admitted) {
	src = sourceOf(nc.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, src, "", nil
	}
	if s.perSource[src] >= s.cfg.MaxPendingPerSource {
		return nil, src, reasonSourceBudget, nil
	}
	if s.npending >= s.cfg.MaxPending {
		evict = s.oldest
		s.unlinkLocked(evict)
	}
	a = &admitted{nc: nc, src: src, since: s.cfg.Now()}
	a.prev = s.newest
	if s.newest != nil {
		s.newest.next = a
	} else {
		s.oldest = a
	}
	s.newest, a.linked = a, true
	s.npending++
	s.perSource[src]++
	s.open[nc] = a
	s.active.Add(1)
	return a, src, "", evict
}

// unlinkLocked takes a out of the pending budget.
func (s *Server) unlinkLocked(a *admitted) {
	if !a.linked {
		return
	}
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		s.oldest = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		s.newest = a.prev
	}
	a.prev, a.next, a.linked = nil, nil, false
	s.npending--
	if s.perSource[a.src]--; s.perSource[a.src] <= 0 {
		delete(s.perSource, a.src)
	}
}

// promote moves a from the pending budget to the authenticated one. It
// fails with a reason when MaxConns are authenticated, and with none when
// a was evicted meanwhile.
func (s *Server) promote(a *admitted) (ok bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !a.linked {
		return false, "" // evicted while finishing its handshake
	}
	s.unlinkLocked(a)
	if s.nauthed >= s.cfg.MaxConns {
		return false, reasonReadersFull
	}
	a.authed = true
	s.nauthed++
	return true, ""
}

// leavePending takes a out of the pending budget and reports whether it
// was still there (not evicted).
func (s *Server) leavePending(a *admitted) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := a.linked
	s.unlinkLocked(a)
	return was
}

// release takes a closed connection out of every budget.
func (s *Server) release(a *admitted) {
	s.mu.Lock()
	s.unlinkLocked(a)
	if a.authed {
		a.authed = false
		s.nauthed--
	}
	delete(s.open, a.nc)
	s.mu.Unlock()
	s.active.Add(-1)
	a.nc.Close()
}

// budgets returns the pending and authenticated connections open now.
func (s *Server) budgets() (pending, authed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.npending), int64(s.nauthed)
}

// reset closes nc with a TCP reset: no FIN handshake, no TIME_WAIT left on
// the appliance, and the peer learns at once that it was refused.
func reset(nc net.Conn) {
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	nc.Close()
}

// refused counts a refusal and logs it (rate-limited).
func (s *Server) refusedConn(src, reason string) {
	switch reason {
	case reasonSourceBudget:
		s.refusedSource.Add(1)
	case reasonEvicted:
		s.evicted.Add(1)
	case reasonReadersFull:
		s.refusedFull.Add(1)
	case reasonHandshakeSlow:
		s.hsTimeouts.Add(1)
	case reasonHandshakeBad:
		s.hsFailed.Add(1)
	}
	if ok, suppressed := s.warns.allow(src, s.cfg.Now()); ok {
		pending, authed := s.budgets()
		s.cfg.Logger.Warn("reader connection refused", "source", src, "reason", reason,
			"suppressed", suppressed, "pending", pending, "authenticated", authed)
	}
}

// warnLimiter lets through at most one line per key per period and counts
// the rest; it remembers at most max keys (beyond, keys share one "*"
// entry, so a flood from many sources still yields one line per period).
type warnLimiter struct {
	every time.Duration
	max   int

	mu   sync.Mutex // guards seen
	seen map[string]*warnEntry
}

type warnEntry struct {
	last       time.Time
	suppressed uint64
}

func newWarnLimiter(every time.Duration, max int) *warnLimiter {
	return &warnLimiter{every: every, max: max, seen: map[string]*warnEntry{}}
}

// allow reports whether a line for key may be logged at now, and how many
// were suppressed since the last one.
func (l *warnLimiter) allow(key string, now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.seen[key]
	if e == nil {
		if len(l.seen) >= l.max {
			// Forget the keys whose period is over (their suppressed
			// counts with them: they were silent a whole period), but
			// not the shared "*".
			for k, o := range l.seen {
				if k != "*" && now.Sub(o.last) >= l.every {
					delete(l.seen, k)
				}
			}
		}
		if len(l.seen) >= l.max {
			key = "*"
			e = l.seen[key]
		}
		if e == nil {
			l.seen[key] = &warnEntry{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < l.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}
