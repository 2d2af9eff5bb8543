package link

import (
	"encoding/binary"
	"net"
	"sync"
)

// yamux writes each frame as two writes, its 12-byte header and then the
// body; over TLS that is two records (two seals, two system calls) and,
// on the peer, two record reads, often two wake-ups, for every link
// frame. joinWrites hands a data frame's header to the connection
// together with the body that follows it, in one write. The header layout
// (yamux spec.md): version u8 | type u8 | flags u16 | stream u32 | length
// u32, type 0 being data; only a data header with a non-zero length is
// held, since only it is followed by a body write of that length, from
// yamux's single sending goroutine. Other writes pass straight through.
type joinWrites struct {
	net.Conn
	mu  sync.Mutex
	hdr []byte // a data frame's header, waiting for its body
	buf []byte
}

const (
	yamuxHeader   = 12
	yamuxVersion  = 0
	yamuxTypeData = 0
)

func (j *joinWrites) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.hdr != nil {
		j.buf = append(append(j.buf[:0], j.hdr...), p...)
		j.hdr = nil
		n, err := j.Conn.Write(j.buf)
		return max(n-yamuxHeader, 0), err
	}
	if len(p) == yamuxHeader && p[0] == yamuxVersion && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		j.hdr = append(make([]byte, 0, yamuxHeader), p...)
		return len(p), nil
	}
	return j.Conn.Write(p)
}
