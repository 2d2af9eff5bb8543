// Package serial drives GA/T 467 SAM-V modules on a serial line: the USB
// CDC-ACM (/dev/ttyACM*) and FTDI-style USB-serial (/dev/ttyUSB*) modules of
// a SAM rack, or a pty with a virtual SAM behind it (sim.OpenPTY).
//
// The line is GA 467's UART: 115200 baud 8N1 by default, 57600, 38400,
// 19200 or 9600 after a set-UART-speed command (60 00..04), no flow control
// (see package ga467 and GA/T 467-2019). OpenPort opens a tty raw
// and returns it as a ga467.Stream whose deadlines come from Go's poller;
// Open puts a samhost.Host on it, so frames, resynchronisation after line
// noise (ga467.Conn), per-operation deadlines and the card-frame tunnel are
// samhost's and package ga467's. What this package adds is the tty itself:
// termios, the line speed (Module.SetBaud), flushing stale input after an
// abandoned command, telling a vanished device (sam.ErrGone) from a slow
// one (sam.ErrTimeout), Module.Reopen, and Discover.
//
// The driver "serial" is registered with package sam: its dev string is the
// tty path, its one option "baud".
//
// Linux only: the tty code speaks Linux termios ioctls.
package serial
