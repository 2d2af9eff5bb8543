package serial

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// speeds maps the baud rates GA 467 modules support to their termios
// speed codes.
var speeds = map[int]uint32{
	115200: unix.B115200,
	57600:  unix.B57600,
	38400:  unix.B38400,
	19200:  unix.B19200,
	9600:   unix.B9600,
}

// makeRaw puts the line on fd in raw mode, 8N1, no flow control, at baud:
// cfmakeraw, plus CLOCAL (ignore modem lines) and CREAD (receive), and
// VMIN 1 / VTIME 0. VMIN 0 would make a read with nothing to read return 0
// bytes, which the os package reports as io.EOF, our sign of a vanished
// device. It reads the settings back: Linux applies what it can and
// succeeds if anything changed.
func makeRaw(fd, baud int) error {
	speed, ok := speeds[baud]
	if !ok {
		return fmt.Errorf("%w: %d", ErrBaud, baud)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR |
		unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD | unix.CIBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
	t.Ispeed, t.Ospeed = uint32(baud), uint32(baud) // not read by TCSETS; kept consistent
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("set termios: %w", err)
	}
	got, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("get termios: %w", err)
	}
	const mask = unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	if got.Cflag&mask != t.Cflag&mask || got.Lflag&unix.ICANON != 0 || got.Iflag&unix.IXON != 0 {
		return fmt.Errorf("%w: line refused raw 8N1 at %d baud (cflag %#o)", ErrBaud, baud, got.Cflag)
	}
	return nil
}

// readLine reads back the line's settings.
func readLine(fd int) (Line, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return Line{}, err
	}
	l := Line{
		DataBits: map[uint32]int{unix.CS5: 5, unix.CS6: 6, unix.CS7: 7, unix.CS8: 8}[t.Cflag&unix.CSIZE],
		StopBits: 1,
		Parity:   t.Cflag&unix.PARENB != 0,
		Raw:      t.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 && t.Oflag&unix.OPOST == 0,
		Local:    t.Cflag&unix.CLOCAL != 0,
		FlowCtl:  t.Cflag&unix.CRTSCTS != 0 || t.Iflag&(unix.IXON|unix.IXOFF) != 0,
	}
	if t.Cflag&unix.CSTOPB != 0 {
		l.StopBits = 2
	}
	for rate, code := range speeds {
		if t.Cflag&unix.CBAUD == code {
			l.Baud = rate
		}
	}
	return l, nil
}

// flushInput drops what the line received and nobody read (TCIFLUSH).
func flushInput(fd int) error {
	return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
}

// setExclusive sets (TIOCEXCL) or clears (TIOCNXCL) exclusive mode: while
// set, further opens of the tty fail with EBUSY (except for root).
func setExclusive(fd int, on bool) error {
	req := uint(unix.TIOCNXCL)
	if on {
		req = unix.TIOCEXCL
	}
	return unix.IoctlSetInt(fd, req, 0)
}
