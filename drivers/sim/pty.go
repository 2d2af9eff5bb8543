//go:build linux

package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenPTY opens a new pseudo-terminal (posix_openpt on /dev/ptmx; grantpt
// is nothing on devpts; unlockpt is the TIOCSPTLCK ioctl; ptsname is
// TIOCGPTN) and puts its line in raw mode, 8N1, 115200 baud, so that
// nothing written on either side is echoed or translated.
//
// The slave is the device end: a driver opens slavePath like any tty. The
// master is the wire: bytes written on it arrive at the slave and the other
// way round; serve a SAM on it with (*SAM).Serve (an *os.File is a
// ga467.Stream, deadlines included) or use NewPTY. Closing the master hangs
// the slave up, like unplugging a USB-serial adapter: reads on the slave
// return 0 bytes (io.EOF), writes EIO, and slavePath disappears.
//
// The returned slave is opened too: keep it open while a driver may close
// and reopen slavePath, or the master reads EIO each time no one has the
// slave open, and the pty number could go to another pty. Both files are
// the caller's to close. Termios is the slave's: on Linux the termios
// ioctls on the master read and set the slave's settings.
func OpenPTY() (master, slave *os.File, slavePath string, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("sim: open pty: %w", err)
	}
	defer func() {
		if err != nil {
			master.Close()
			if slave != nil {
				slave.Close()
			}
			master, slave, slavePath = nil, nil, ""
		}
	}()
	var n uint32
	if err = ptyControl(master, func(fd int) (err error) {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlockpt: %w", err)
		}
		n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		return err
	}); err != nil {
		return nil, nil, "", fmt.Errorf("sim: open pty: %w", err)
	}
	slavePath = "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	slave, err = os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("sim: open pty: %w", err)
	}
	if err = ptyControl(slave, ptyRawLine); err != nil {
		return nil, nil, "", fmt.Errorf("sim: pty %s: %w", slavePath, err)
	}
	return master, slave, slavePath, nil
}

// ptyControl runs fn on f's descriptor without f.Fd, which would put it in
// blocking mode and end its deadlines.
func ptyControl(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// ptyRawLine is cfmakeraw at 115200 baud 8N1 with VMIN 1.
func ptyRawLine(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// PTY is a virtual SAM behind a pseudo-terminal: the SAM answers on the
// master while a serial driver opens Path like the tty of a real module. It
// owns the goroutine serving the SAM until Close. Test and demo hardware.
type PTY struct {
	sam   *SAM
	path  string
	slave *os.File // held open: see OpenPTY
	wire  ptyWire

	cancel context.CancelFunc
	done   chan struct{}
	err    error // Serve's result, valid after done

	closeOnce sync.Once
}

// NewPTY opens a pty and serves s on its master. s.Vanish closes the master
// (the SAM's Serve closes its stream), which hangs up Path for the driver.
func NewPTY(s *SAM) (*PTY, error) {
	master, slave, path, err := OpenPTY()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PTY{
		sam:    s,
		path:   path,
		slave:  slave,
		wire:   ptyWire{File: master, noise: new(atomic.Pointer[[]byte])},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() { // owned by p: Close cancels ctx and waits
		defer close(p.done)
		p.err = s.Serve(ctx, p.wire)
	}()
	return p, nil
}

// Path is the slave's path, the tty a driver opens.
func (p *PTY) Path() string { return p.path }

// SAM is the virtual SAM behind p.
func (p *PTY) SAM() *SAM { return p.sam }

// SetNoise makes the SAM's side of the line write noise before every reply
// frame, like a noisy line or a module that chatters at boot; nil stops it.
// A host must resynchronise on the preamble.
func (p *PTY) SetNoise(noise []byte) {
	if len(noise) == 0 {
		p.wire.noise.Store(nil)
		return
	}
	b := append([]byte(nil), noise...)
	p.wire.noise.Store(&b)
}

// Hangup closes the master: the driver's reads on Path end (0 bytes, EOF),
// its writes fail with EIO and Path disappears, as when a USB-serial
// adapter is unplugged. The SAM stops serving; Close is still needed.
func (p *PTY) Hangup() {
	p.wire.Close()
}

// Close stops serving, closes both ends and returns Serve's error (nil
// after a Hangup, ErrVanished after the SAM vanished).
func (p *PTY) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		<-p.done
		p.wire.Close()
		p.slave.Close()
	})
	if errors.Is(p.err, context.Canceled) {
		return nil
	}
	return p.err
}

// ptyWire is the master as the SAM's stream, with optional line noise
// before each reply (Serve writes one whole frame per Write).
type ptyWire struct {
	*os.File
	noise *atomic.Pointer[[]byte]
}

func (w ptyWire) Write(b []byte) (int, error) {
	if n := w.noise.Load(); n != nil {
		if _, err := w.File.Write(*n); err != nil {
			return 0, err
		}
	}
	return w.File.Write(b)
}
