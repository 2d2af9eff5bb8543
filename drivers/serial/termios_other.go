//go:build !linux

package serial

import "errors"

// The tty code speaks Linux termios; the appliance runs Linux.

var speeds = map[int]uint32{115200: 0, 57600: 0, 38400: 0, 19200: 0, 9600: 0}

var errUnsupported = errors.New("serial: ttys are supported on Linux only")

func makeRaw(fd, baud int) error         { return errUnsupported }
func readLine(fd int) (Line, error)      { return Line{}, errUnsupported }
func flushInput(fd int) error            { return errUnsupported }
func setExclusive(fd int, on bool) error { return errUnsupported }
