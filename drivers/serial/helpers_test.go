//go:build linux

package serial_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
	"golang.org/x/sys/unix"
)

// checkLeaks fails the test if it leaves goroutines behind.
func checkLeaks(t testing.TB) { t.Helper(); leaktest.Check(t) }

var (
	instantSAM = &sim.SAMTiming{}
	instantRF  = &sim.RFTiming{}
)

// newPTY serves an instant virtual SAM on a new pty, closed at the end of
// the test (after the modules opened later, which close first).
func newPTY(t testing.TB, seed int64) *sim.PTY {
	t.Helper()
	p, err := sim.NewPTY(sim.NewSAM(seed, sim.SAMOptions{Timing: instantSAM}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// open opens the serial driver on path, closed at the end of the test.
func open(t testing.TB, path string, o serial.Options) *serial.Module {
	t.Helper()
	m, err := serial.Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// cardLink is the reader side of the tunnel: it runs the SAM's card frames
// on a virtual card.
type cardLink struct{ card *sim.Card }

func (l cardLink) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	return idcard.Run(ctx, l.card, cmds)
}

func newCard(seed int64, fingerprint bool) cardLink {
	return cardLink{sim.NewCard(seed, sim.CardOptions{Timing: instantRF, Fingerprint: fingerprint})}
}

// termios reads f's termios without f.Fd (which would end its deadlines).
func termios(t testing.TB, f *os.File) *unix.Termios {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tio *unix.Termios
	rc.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

// waitFor polls cond until it holds or a second has passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// servePTY serves s on the master of a new pty pair whose slave path the
// driver opens; the serving goroutine is stopped and both ends closed when
// t ends.
func servePTY(t *testing.T, s *sim.SAM) (master, slave *os.File, path string) {
	t.Helper()
	master, slave, path, err := sim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by t: cancelled and waited for in its cleanup
		defer wg.Done()
		s.Serve(ctx, master)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		master.Close()
		slave.Close()
	})
	return master, slave, path
}
