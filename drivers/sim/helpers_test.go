package sim_test

import (
	"context"
	"sync"
	"testing"

	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/sim"
)

// checkLeaks fails the test if it leaves goroutines behind.
func checkLeaks(t testing.TB) { t.Helper(); leaktest.Check(t) }

var instantRF = &sim.RFTiming{}
var instantSAM = &sim.SAMTiming{}

// openSAM opens an instant virtual SAM behind a samhost.Host, closed at the
// end of the test.
func openSAM(t testing.TB, seed int64, to samhost.Timeouts, opts sim.SAMOptions) *sim.Module {
	t.Helper()
	checkLeaks(t)
	if opts.Timing == nil {
		opts.Timing = instantSAM
	}
	m := sim.Open(sim.NewSAM(seed, opts), to)
	t.Cleanup(func() { m.Close() })
	return m
}

// link is the reader side of the tunnel: it answers from prefetched
// exchanges when it can and runs the rest on the card with idcard.Run.
type link struct {
	card *sim.Card
	pre  *idcard.Prefetched

	mu      sync.Mutex
	remote  int                          // exchanges that went to the card
	before  func(n int, cmds [][]byte)   // runs before remote exchange n (from 1)
	tamper  func(cmds, replies [][]byte) // may change the replies
	partial bool                         // swallow card errors: return fewer replies
}

func (l *link) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var replies [][]byte
	i := 0
	for l.pre != nil && i < len(cmds) {
		r, ok := l.pre.Take(cmds[i])
		if !ok {
			break
		}
		replies = append(replies, r)
		i++
	}
	if i < len(cmds) {
		l.remote++
		if l.before != nil {
			l.before(l.remote, cmds[i:])
		}
		rest, err := idcard.Run(ctx, l.card, cmds[i:])
		replies = append(replies, rest...)
		if err != nil && !l.partial {
			return replies, err
		}
	}
	if l.tamper != nil {
		l.tamper(cmds, replies)
	}
	return replies, nil
}

func isAuth(cmd []byte) bool { return len(cmd) > 2 && cmd[0] == 0x80 && cmd[1] == 0x82 }
