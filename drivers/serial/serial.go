package serial

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
)

var (
	_ sam.SAM       = (*Module)(nil)
	_ sam.Transport = (*transport)(nil)
)

// Errors of package serial. Everything else wraps the errors of package sam.
var (
	// ErrBaud: a line speed GA 467 does not have (115200, 57600, 38400,
	// 19200, 9600), or one the tty refused.
	ErrBaud = errors.New("serial: unsupported baud rate")
)

// baudPara is the PARA of GA 467's set-UART-speed command (60 xx) for each
// rate.
var baudPara = map[int]byte{115200: 0, 57600: 1, 38400: 2, 19200: 3, 9600: 4}

// Options configure Open. The zero value is a module at 115200 baud with
// samhost's default timeouts.
type Options struct {
	// Baud is the speed the module's UART is at now; 0 means DefaultBaud.
	Baud int
	// Timeouts bound each operation (samhost.Timeouts; zero fields take
	// the defaults).
	Timeouts samhost.Timeouts
}

// Module is a GA 467 SAM module on a tty: a samhost.Host over the tty's
// frames. It adds what only a serial line has: the line speed (SetBaud)
// and reopening a device that went away (Reopen).
type Module struct {
	*samhost.Host
	tr *transport
	to samhost.Timeouts
}

// Open opens the module on the tty at path (see OpenPort). It does not talk
// to the module: that is the health check's job.
func Open(ctx context.Context, path string, opts Options) (*Module, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := OpenPort(path, opts.Baud)
	if err != nil {
		return nil, err
	}
	tr := &transport{path: path, baud: p.Baud()}
	tr.attachLocked(p)
	return &Module{Host: samhost.New(tr, opts.Timeouts), tr: tr, to: opts.Timeouts}, nil
}

// Path is the tty path the Module opens.
func (m *Module) Path() string { return m.tr.path }

// Baud is the line speed the host side is set to.
func (m *Module) Baud() int {
	m.tr.mu.Lock()
	defer m.tr.mu.Unlock()
	return m.tr.baud
}

// Gone reports whether the device went away (unplugged, hung up) since it
// was last opened. Every operation then fails with sam.ErrGone until Reopen
// succeeds.
func (m *Module) Gone() bool {
	m.tr.mu.Lock()
	defer m.tr.mu.Unlock()
	return m.tr.port == nil || m.tr.port.Gone()
}

// Discarded is the number of line-noise bytes skipped while resynchronising
// on frames since the tty was last opened.
func (m *Module) Discarded() uint64 {
	m.tr.mu.Lock()
	defer m.tr.mu.Unlock()
	if m.tr.st == nil {
		return 0
	}
	return m.tr.st.Conn().Discarded()
}

// Line reads the tty's settings back from the kernel.
func (m *Module) Line() (Line, error) {
	m.tr.mu.Lock()
	defer m.tr.mu.Unlock()
	if m.tr.port == nil {
		return Line{}, fmt.Errorf("%w: %s: not open", sam.ErrGone, m.tr.path)
	}
	return m.tr.port.Line()
}

// Reopen closes the tty and opens path again at the current line speed,
// for a device that went away and came back (same /dev/serial/by-id name).
// A module that lost power is back at its power-on speed: a caller that
// had changed it opens a new Module instead. Reopen fails with an error
// wrapping sam.ErrGone while the device is not there, and with
// sam.ErrClosed after Close. It waits for an operation in progress.
func (m *Module) Reopen(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := m.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return sam.ErrClosed
	}
	if t.port != nil {
		t.port.Close()
		t.port, t.st = nil, nil
	}
	p, err := OpenPort(t.path, t.baud)
	if err != nil {
		return err
	}
	t.attachLocked(p)
	return nil
}

// SetBaud switches the module's UART to baud (GA 467 60 00..04) and then
// the local line. Call it while the module is idle: it runs between the
// host's operations, not inside a card session.
//
// The module answers at the old speed and then switches. If no good
// answer comes (the module may have switched and answered at the new
// speed), SetBaud probes with a status command at the new speed for up to
// the Control timeout; if that fails too the line goes back to the old
// speed and the error is returned. Without a deadline on ctx the command
// runs under the Control timeout.
func (m *Module) SetBaud(ctx context.Context, baud int) error {
	para, ok := baudPara[baud]
	if !ok {
		return fmt.Errorf("%w: %d", ErrBaud, baud)
	}
	to := m.to.Control
	if to <= 0 {
		to = time.Second // samhost's default
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, to)
		defer cancel()
	}
	t := m.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	cmd := ga467.Command{Cmd: ga467.CmdSetBaud, Para: para}
	r, err := t.transactLocked(ctx, cmd)
	if err == nil {
		if err := r.Err(); err != nil {
			return fmt.Errorf("serial: %s: %v: %w", t.path, cmd, err)
		}
		return t.switchLocked(baud)
	}
	if errors.Is(err, sam.ErrGone) || errors.Is(err, sam.ErrClosed) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("serial: %s: %v: %w", t.path, cmd, err)
	}
	old := t.baud
	if serr := t.switchLocked(baud); serr != nil {
		return fmt.Errorf("serial: %s: %v: %w", t.path, cmd, err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), to)
	defer cancel()
	if r, perr := t.transactLocked(pctx, ga467.SAMStatus); perr == nil && r.Err() == nil {
		return nil // the module switched; its first answer was lost
	}
	t.switchLocked(old)
	return fmt.Errorf("serial: %s: %v: %w", t.path, cmd, err)
}

// transport is the sam.Transport of a Module: a samhost.StreamTransport on
// the current Port, swapped by Reopen. It turns the signs of a vanished
// device into sam.ErrGone and flushes the input after an abandoned command.
type transport struct {
	path string

	mu        sync.Mutex // mu guards the fields below; held for a whole Transact
	port      *Port      // nil after a failed Reopen
	st        *samhost.StreamTransport
	baud      int
	abandoned bool // the last command timed out: its reply may still come
	closed    bool
}

func (t *transport) attachLocked(p *Port) {
	t.port = p
	t.st = samhost.NewStreamTransport(p, nil)
	t.abandoned = false
}

// Transact implements sam.Transport.
func (t *transport) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.transactLocked(ctx, cmd)
}

func (t *transport) transactLocked(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	switch {
	case t.closed:
		return ga467.Reply{}, sam.ErrClosed
	case t.port == nil:
		return ga467.Reply{}, fmt.Errorf("%w: %s: not open (reopen it)", sam.ErrGone, t.path)
	case t.port.Gone():
		return ga467.Reply{}, fmt.Errorf("%w: %s: went away (reopen it)", sam.ErrGone, t.path)
	}
	if t.abandoned {
		// Drop what the kernel holds of a late reply; ga467.Conn drains
		// what is buffered and what arrives within its grace period.
		t.abandoned = false
		if err := t.port.Flush(); err != nil {
			return ga467.Reply{}, fmt.Errorf("%w: flush %s: %w", sam.ErrTransport, t.path, err)
		}
	}
	r, err := t.st.Transact(ctx, cmd)
	switch {
	case err == nil, errors.Is(err, sam.ErrGone):
		return r, err
	case errors.Is(err, ga467.ErrTimeout), ctx.Err() != nil:
		t.abandoned = true
		// A USB adapter can vanish without hanging up the tty first.
		if _, serr := os.Stat(t.path); errors.Is(serr, fs.ErrNotExist) {
			t.port.gone.Store(true)
			return r, fmt.Errorf("%w: %s disappeared: %w", sam.ErrGone, t.path, err)
		}
		if errors.Is(err, context.Canceled) {
			return r, err
		}
		return r, fmt.Errorf("%w: %w", sam.ErrTimeout, err)
	}
	return r, fmt.Errorf("%w: %w", sam.ErrTransport, err)
}

// switchLocked sets the local line speed and drops input received at the
// old one.
func (t *transport) switchLocked(baud int) error {
	if err := t.port.SetBaud(baud); err != nil {
		return err
	}
	t.baud = baud
	t.port.Flush()
	return nil
}

// Close implements sam.Transport.
func (t *transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.port == nil {
		return nil
	}
	return t.port.Close()
}

// Driver options of the "serial" driver (sam.Open("serial", path, opts)):
//
//	baud  the module's current line speed: 115200 (default), 57600,
//	      38400, 19200 or 9600
//
// dev is the tty path, best a /dev/serial/by-id name (see Discover).
func init() {
	sam.MustRegister(sam.Driver{Name: "serial", Open: openDriver})
}

func openDriver(ctx context.Context, dev string, opts map[string]string) (sam.SAM, error) {
	var o Options
	for k, v := range opts {
		switch k {
		case "baud":
			n, err := strconv.Atoi(v)
			if _, ok := baudPara[n]; err != nil || !ok {
				return nil, fmt.Errorf("serial: option baud: %w: %q", ErrBaud, v)
			}
			o.Baud = n
		default:
			return nil, fmt.Errorf("serial: unknown option %q (have baud)", k)
		}
	}
	return Open(ctx, dev, o)
}
