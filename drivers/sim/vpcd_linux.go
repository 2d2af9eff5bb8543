package sim

import (
	"net"
	"syscall"
)

// quickAcker returns a func that makes c acknowledge received data at once
// (TCP_QUICKACK, which Linux clears again by itself, so it is set after
// every read). For other connections it does nothing.
func quickAcker(c net.Conn) func() {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return func() {}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return func() {}
	}
	set := func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}
	return func() { rc.Control(set) }
}
