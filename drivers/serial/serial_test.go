//go:build linux

package serial_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
	"golang.org/x/sys/unix"
)

// readCard runs find, select and read on m and checks what comes back
// against the card.
func readCard(t testing.TB, m sam.SAM, link cardLink, what sam.ReadWhat) {
	t.Helper()
	ctx := context.Background()
	if _, err := m.Find(ctx, link); err != nil {
		t.Fatalf("find: %v", err)
	}
	s, err := m.Select(ctx, link)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if s != sam.Serial(link.card.Serial()) {
		t.Fatalf("select: serial %x, want %x", s, link.card.Serial())
	}
	rd, err := m.Read(ctx, link, what)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(rd.Text, link.card.Text()) || !bytes.Equal(rd.Photo, link.card.Photo()) {
		t.Fatalf("read: text or photo differ from the card's")
	}
	if what == sam.ReadFingerprint && !bytes.Equal(rd.Fingerprint, link.card.Fingerprint()) {
		t.Fatalf("read: fingerprint differs from the card's")
	}
}

func TestModule(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	m := open(t, p.Path(), serial.Options{})
	ctx := context.Background()
	if err := m.Status(ctx); err != nil {
		t.Fatalf("status: %v", err)
	}
	if err := m.Reset(ctx); err != nil {
		t.Fatalf("reset: %v", err)
	}
	id, err := m.ID(ctx)
	if err != nil || id != p.SAM().ID() {
		t.Fatalf("ID: %v, %v; want %v", id, err, p.SAM().ID())
	}
	readCard(t, m, newCard(1, false), sam.ReadTextPhoto)
	readCard(t, m, newCard(2, true), sam.ReadFingerprint)
	if m.Discarded() != 0 {
		t.Errorf("discarded %d bytes on a clean line", m.Discarded())
	}
	l, err := m.Line()
	want := serial.Line{Baud: 115200, DataBits: 8, StopBits: 1, Raw: true, Local: true}
	if err != nil || l != want {
		t.Errorf("line %+v, %v; want %+v", l, err, want)
	}
	if err := m.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := m.Status(ctx); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("status after close: %v", err)
	}
	if err := m.Reopen(ctx); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("reopen after close: %v", err)
	}
}

func TestLineNoise(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	m := open(t, p.Path(), serial.Options{})
	// Junk, a false preamble with an impossible LEN, and a preamble cut
	// short before the real frame.
	noise := []byte{0x00, 0xFF, 0xAA, 0x13, 0xAA, 0xAA, 0xAA, 0x96, 0x69, 0xFF, 0xFF, 0xAA, 0xAA, 0x96}
	p.SetNoise(noise)
	link := newCard(3, false)
	if err := m.Status(context.Background()); err != nil {
		t.Fatalf("status: %v", err)
	}
	readCard(t, m, link, sam.ReadTextPhoto)
	// status, find+1 exchange, select+1, read+2: 8 replies.
	if got, want := m.Discarded(), uint64(8*len(noise)); got != want {
		t.Errorf("discarded %d bytes, want %d", got, want)
	}
}

func TestHungSAM(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	const timeout = 100 * time.Millisecond
	m := open(t, p.Path(), serial.Options{Timeouts: samhost.Timeouts{Control: timeout}})
	ctx := context.Background()
	p.SAM().SetHang(true)
	start := time.Now()
	err := m.Status(ctx)
	took := time.Since(start)
	if !errors.Is(err, sam.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("status of a hung SAM: %v, want ErrTimeout", err)
	}
	if took < timeout || took > timeout+200*time.Millisecond {
		t.Errorf("status gave up after %v, want %v", took, timeout)
	}
	if m.Gone() {
		t.Errorf("a hung SAM is not gone")
	}
	p.SAM().SetHang(false)
	id, err := m.ID(ctx)
	if err != nil || id != p.SAM().ID() {
		t.Fatalf("ID after the hang: %v, %v", id, err)
	}
}

// TestStaleReply: a reply that comes after its command was abandoned is
// dropped, and the next command gets its own reply.
func TestStaleReply(t *testing.T) {
	checkLeaks(t)
	s := sim.NewSAM(1, sim.SAMOptions{Timing: instantSAM})
	_, slave, path := servePTY(t, s)

	m := open(t, path, serial.Options{Timeouts: samhost.Timeouts{Control: 30 * time.Millisecond}})
	s.SetSlow(80 * time.Millisecond)
	if err := m.Status(context.Background()); !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("status of a slow SAM: %v, want ErrTimeout", err)
	}
	s.SetSlow(0)
	// The late status reply lands in the slave's input queue.
	waitFor(t, "the late reply", func() bool {
		rc, _ := slave.SyscallConn()
		var n int
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		return n >= 11 // the whole status reply
	})
	id, err := m.ID(context.Background())
	if err != nil || id != s.ID() {
		t.Fatalf("ID after a late reply: %v, %v", id, err)
	}
	if n := m.Discarded(); n != 0 {
		t.Errorf("framing skipped %d bytes: the late reply should have been flushed from the tty", n)
	}
}

func TestGone(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		vanish func(p *sim.PTY)
	}{
		{"hangup", (*sim.PTY).Hangup},
		{"SAM vanishes", func(p *sim.PTY) { p.SAM().Vanish() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := newPTY(t, 1)
			m := open(t, p.Path(), serial.Options{Timeouts: samhost.Timeouts{Control: 5 * time.Second}})
			if err := m.Status(ctx); err != nil {
				t.Fatal(err)
			}
			// Hang the SAM so the next command waits, then pull the device
			// while it waits: the command ends at once with ErrGone, not at
			// its deadline with ErrTimeout.
			p.SAM().SetHang(true)
			_, before := p.SAM().Stats()
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- m.Status(ctx) }() // ends with the Status
			waitFor(t, "the command to reach the SAM", func() bool {
				_, n := p.SAM().Stats()
				return n > before
			})
			tt.vanish(p)
			err := <-done
			if !errors.Is(err, sam.ErrGone) || !sam.ModuleFault(err) {
				t.Fatalf("status when the device went away: %v, want ErrGone", err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("ErrGone took %v", took)
			}
			if !m.Gone() {
				t.Errorf("Gone() false")
			}
			if _, err := m.ID(ctx); !errors.Is(err, sam.ErrGone) {
				t.Errorf("ID when gone: %v", err)
			}
			if _, err := os.Stat(p.Path()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still there: %v", p.Path(), err)
			}
			if err := m.Reopen(ctx); !errors.Is(err, sam.ErrGone) {
				t.Errorf("reopen of a vanished device: %v, want ErrGone", err)
			}
			if _, err := m.Find(ctx, newCard(1, false)); !errors.Is(err, sam.ErrGone) {
				t.Errorf("find after a failed reopen: %v", err)
			}
		})
	}
}

// TestGoneIdle: a device pulled between commands is noticed by the next
// one, on write (EIO) or read (EOF).
func TestGoneIdle(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	m := open(t, p.Path(), serial.Options{})
	p.Hangup()
	if err := m.Status(context.Background()); !errors.Is(err, sam.ErrGone) {
		t.Fatalf("status after hangup: %v, want ErrGone", err)
	}
}

func TestReopen(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	m := open(t, p.Path(), serial.Options{Baud: 38400})
	ctx := context.Background()
	for i := range 3 {
		if err := m.Reopen(ctx); err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if err := m.Status(ctx); err != nil {
			t.Fatalf("status after reopen %d: %v", i, err)
		}
	}
	if l, err := m.Line(); err != nil || l.Baud != 38400 {
		t.Errorf("line after reopen: %+v, %v; want 38400 baud", l, err)
	}
}

func TestBaud(t *testing.T) {
	checkLeaks(t)
	s := sim.NewSAM(1, sim.SAMOptions{Timing: instantSAM})
	master, slave, path := servePTY(t, s)

	codes := map[int]uint32{115200: unix.B115200, 57600: unix.B57600, 38400: unix.B38400, 19200: unix.B19200, 9600: unix.B9600}
	// check reads the line back through the test's own descriptors: the
	// slave's and the master's (which on Linux shows the slave's termios).
	check := func(what string, baud int) {
		t.Helper()
		for _, f := range []*os.File{slave, master} {
			tio := termios(t, f)
			if tio.Cflag&unix.CBAUD != codes[baud] || tio.Cflag&unix.CSIZE != unix.CS8 ||
				tio.Cflag&(unix.PARENB|unix.CSTOPB|unix.CRTSCTS) != 0 || tio.Cflag&unix.CLOCAL == 0 ||
				tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Iflag&(unix.IXON|unix.IXOFF|unix.ICRNL) != 0 ||
				tio.Oflag&unix.OPOST != 0 || tio.Cc[unix.VMIN] != 1 || tio.Cc[unix.VTIME] != 0 {
				t.Errorf("%s: %s termios %+v, want raw 8N1 at %d", what, f.Name(), tio, baud)
			}
		}
	}

	m := open(t, path, serial.Options{Baud: 9600, Timeouts: samhost.Timeouts{Control: 100 * time.Millisecond}})
	check("open at 9600", 9600)
	for _, baud := range []int{57600, 38400, 19200, 9600, 115200} {
		if err := m.SetBaud(context.Background(), baud); err != nil {
			t.Fatalf("SetBaud %d: %v", baud, err)
		}
		check(fmt.Sprintf("SetBaud %d", baud), baud)
		if m.Baud() != baud {
			t.Errorf("Baud() %d after SetBaud %d", m.Baud(), baud)
		}
		if err := m.Status(context.Background()); err != nil {
			t.Fatalf("status at %d: %v", baud, err)
		}
	}
	if err := m.SetBaud(context.Background(), 4800); !errors.Is(err, serial.ErrBaud) {
		t.Errorf("SetBaud 4800: %v, want ErrBaud", err)
	}

	// The module refuses: the line stays.
	s.FailCommand(ga467.CmdSetBaud, 1, ga467.SW3BadCommand)
	if err := m.SetBaud(context.Background(), 57600); !errors.Is(err, ga467.ErrBadCommand) {
		t.Errorf("SetBaud refused: %v", err)
	}
	check("SetBaud refused", 115200)
	s.FailCommand(ga467.CmdSetBaud, 1, 0)

	// The module does not answer: the probe at the new speed fails too,
	// and the line goes back.
	s.SetHang(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if err := m.SetBaud(ctx2, 19200); !errors.Is(err, sam.ErrTimeout) {
		t.Errorf("SetBaud of a hung SAM: %v, want ErrTimeout", err)
	}
	check("SetBaud of a hung SAM", 115200)
	s.SetHang(false)
	if err := m.Status(context.Background()); err != nil {
		t.Fatalf("status after a failed SetBaud: %v", err)
	}
}

// TestBaudReplyLost: the module switches but its answer is lost; the probe
// at the new speed finds it.
func TestBaudReplyLost(t *testing.T) {
	checkLeaks(t)
	master, slave, path, err := sim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the test: ends when master is closed below
		defer wg.Done()
		c := ga467.NewConn(master)
		for {
			f, err := c.ReadFrame()
			if err != nil {
				return
			}
			cmd, _ := ga467.ParseCommand(f)
			if cmd.Cmd == ga467.CmdSetBaud {
				continue // the answer is lost on the line
			}
			b, _ := ga467.Status(ga467.SW3OK).Frame()
			c.WriteFrame(b)
		}
	}()
	defer func() {
		master.Close()
		wg.Wait()
	}()
	m := open(t, path, serial.Options{Timeouts: samhost.Timeouts{Control: 50 * time.Millisecond}})
	if err := m.SetBaud(context.Background(), 19200); err != nil {
		t.Fatalf("SetBaud with a lost answer: %v", err)
	}
	if l, err := m.Line(); err != nil || l.Baud != 19200 {
		t.Errorf("line %+v, %v; want 19200", l, err)
	}
}

func TestParallel(t *testing.T) {
	checkLeaks(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		p := newPTY(t, int64(i))
		m := open(t, p.Path(), serial.Options{})
		wg.Add(1)
		go func() { // owned by the test: waited for below
			defer wg.Done()
			ctx := context.Background()
			for j := range 5 {
				link := newCard(int64(100*i+j), j%2 == 1)
				what := sam.ReadWhat(j % 2)
				if _, err := m.Find(ctx, link); err != nil {
					errs <- fmt.Errorf("pty %d: find: %w", i, err)
					return
				}
				if _, err := m.Select(ctx, link); err != nil {
					errs <- fmt.Errorf("pty %d: select: %w", i, err)
					return
				}
				rd, err := m.Read(ctx, link, what)
				if err != nil {
					errs <- fmt.Errorf("pty %d: read: %w", i, err)
					return
				}
				if !bytes.Equal(rd.Photo, link.card.Photo()) {
					errs <- fmt.Errorf("pty %d: wrong photo", i)
					return
				}
			}
			if id, err := m.ID(ctx); err != nil || id != p.SAM().ID() {
				errs <- fmt.Errorf("pty %d: ID %v, %v", i, id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRegistry(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	ctx := context.Background()
	m, err := sam.Open(ctx, "serial", p.Path(), map[string]string{"baud": "57600"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if b := m.(*serial.Module).Baud(); b != 57600 {
		t.Errorf("baud %d", b)
	}
	for _, opts := range []map[string]string{{"baud": "4800"}, {"baud": "fast"}, {"parity": "even"}} {
		if _, err := sam.Open(ctx, "serial", p.Path(), opts); err == nil {
			t.Errorf("open with %v succeeded", opts)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := serial.OpenPort(filepath.Join(dir, "ttyUSB9"), 0); !errors.Is(err, sam.ErrGone) {
		t.Errorf("open of a missing device: %v, want ErrGone", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := serial.OpenPort(file, 0); err == nil || errors.Is(err, sam.ErrGone) {
		t.Errorf("open of a plain file: %v, want a not-a-tty error", err)
	}
	if _, err := serial.OpenPort("/dev/null", 0); err == nil || !errors.Is(err, syscall.ENOTTY) {
		t.Errorf("open of /dev/null: %v, want ENOTTY", err)
	}
	p := newPTY(t, 1)
	if _, err := serial.OpenPort(p.Path(), 4800); !errors.Is(err, serial.ErrBaud) {
		t.Errorf("open at 4800: %v, want ErrBaud", err)
	}
}

// TestPortDeadline: the poller manages a tty opened O_NONBLOCK, so read
// deadlines work on it.
func TestPortDeadline(t *testing.T) {
	checkLeaks(t)
	p := newPTY(t, 1)
	port, err := serial.OpenPort(p.Path(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	port.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err = port.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if took := time.Since(start); took < 20*time.Millisecond || took > 500*time.Millisecond {
		t.Errorf("read gave up after %v, want 20ms", took)
	}
	// Close wakes a blocked read.
	port.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { // ends when Close wakes the read
		_, err := port.Read(make([]byte, 1))
		done <- err
	}()
	port.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}
