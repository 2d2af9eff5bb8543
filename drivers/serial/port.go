package serial

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

var _ ga467.Stream = (*Port)(nil)
var _ io.Closer = (*Port)(nil)

// DefaultBaud is the line speed of a GA 467 module after power-on.
const DefaultBaud = 115200

// Line is what a tty's termios says about the line, read back from the
// kernel.
type Line struct {
	Baud     int  // 0 if not one of the GA 467 rates
	DataBits int  // 5..8
	StopBits int  // 1 or 2
	Parity   bool // parity generation and checking on
	Raw      bool // no canonical mode, echo, signals or output processing
	Local    bool // CLOCAL: modem control lines ignored
	FlowCtl  bool // RTS/CTS or XON/XOFF flow control on
}

// Port is an open tty in raw mode, 8N1, no flow control: a ga467.Stream
// whose read and write deadlines come from Go's poller. Errors that say the
// device went away (EOF or EIO on read: the tty was hung up; ENXIO, ENODEV)
// wrap sam.ErrGone, and the Port stays gone.
//
// Read, Write and the deadline setters may be called concurrently with each
// other and with Close; SetBaud and Flush not while a Read or Write runs.
type Port struct {
	f    *os.File
	rc   syscall.RawConn
	path string
	gone atomic.Bool

	mu   sync.Mutex // mu guards baud
	baud int
}

// OpenPort opens the tty at path (a /dev/serial/by-id link, /dev/ttyUSB0,
// /dev/ttyACM0, a pty slave) for exclusive use, puts it in raw mode 8N1 at
// baud (0 means DefaultBaud) and drops any input already queued.
//
// The tty is opened O_NONBLOCK so that the open does not wait for carrier
// and so that reads and writes go through Go's poller, which is what makes
// SetReadDeadline work. A path that does not exist, or a device that is not
// there (ENXIO, ENODEV, EIO), gives an error wrapping sam.ErrGone.
func OpenPort(path string, baud int) (*Port, error) {
	if baud == 0 {
		baud = DefaultBaud
	}
	if _, ok := speeds[baud]; !ok {
		return nil, fmt.Errorf("serial: %s: %w: %d (have 115200, 57600, 38400, 19200, 9600)", path, ErrBaud, baud)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if goneErr(err) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: serial: %w", sam.ErrGone, err)
		}
		return nil, fmt.Errorf("serial: %w", err)
	}
	p := &Port{f: f, path: path, baud: baud}
	// Never f.Fd(): it puts the descriptor back in blocking mode and the
	// deadlines stop working. Control borrows it instead.
	if p.rc, err = f.SyscallConn(); err == nil {
		err = p.control(func(fd int) error {
			if err := setExclusive(fd, true); err != nil {
				return fmt.Errorf("not a tty: %w", err)
			}
			if err := makeRaw(fd, baud); err != nil {
				return err
			}
			return flushInput(fd)
		})
	}
	if err == nil {
		// A file the poller does not manage cannot honour deadlines.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("serial: %s: %w", path, err)
	}
	return p, nil
}

// control runs fn on the file descriptor.
func (p *Port) control(fn func(fd int) error) error {
	var ferr error
	if err := p.rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return p.mapErr("ioctl", err)
	}
	return p.mapErr("ioctl", ferr)
}

// Path is the path the Port was opened with.
func (p *Port) Path() string { return p.path }

// Gone reports whether the device went away under the Port.
func (p *Port) Gone() bool { return p.gone.Load() }

// Read implements io.Reader.
func (p *Port) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	if err != nil {
		err = p.mapErr("read", err)
	}
	return n, err
}

// Write implements io.Writer.
func (p *Port) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	if err != nil {
		err = p.mapErr("write", err)
	}
	return n, err
}

// SetReadDeadline implements ga467.Stream.
func (p *Port) SetReadDeadline(t time.Time) error { return p.f.SetReadDeadline(t) }

// SetWriteDeadline implements ga467.Stream.
func (p *Port) SetWriteDeadline(t time.Time) error { return p.f.SetWriteDeadline(t) }

// Close clears exclusive mode and closes the tty. It wakes a blocked Read
// or Write.
func (p *Port) Close() error {
	if !p.gone.Load() {
		p.control(func(fd int) error { return setExclusive(fd, false) })
	}
	return p.f.Close()
}

// Flush drops input the line received that nobody has read (TCIFLUSH):
// line noise, the late reply of an abandoned command.
func (p *Port) Flush() error {
	return p.control(flushInput)
}

// Baud is the line speed the Port set last.
func (p *Port) Baud() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.baud
}

// SetBaud changes the local line speed only; Module.SetBaud also tells the
// module. Output already queued may go out at the new speed: call it when
// the line is idle.
func (p *Port) SetBaud(baud int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.control(func(fd int) error { return makeRaw(fd, baud) }); err != nil {
		return fmt.Errorf("serial: %s: %w", p.path, err)
	}
	p.baud = baud
	return nil
}

// Line reads the line's settings back from the kernel.
func (p *Port) Line() (Line, error) {
	var l Line
	err := p.control(func(fd int) (err error) {
		l, err = readLine(fd)
		return err
	})
	return l, err
}

// mapErr marks the Port gone and wraps sam.ErrGone if err says the device
// went away; other errors come back as they are.
func (p *Port) mapErr(op string, err error) error {
	if err == nil || !goneErr(err) {
		return err
	}
	p.gone.Store(true)
	return fmt.Errorf("%w: %s %s: %w", sam.ErrGone, op, p.path, err)
}

// goneErr reports whether err says the device is not there any more. A
// tty in raw mode with VMIN 1 reads 0 bytes (io.EOF) only once it has been
// hung up: a pty whose master closed, a USB adapter unplugged.
func goneErr(err error) bool {
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.EIO, syscall.ENXIO, syscall.ENODEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
