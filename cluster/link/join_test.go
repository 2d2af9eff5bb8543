package link

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// recorder records every write as one element.
type recorder struct {
	net.Conn
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func header(typ uint8, length uint32) []byte {
	h := make([]byte, yamuxHeader)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 7)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// TestJoinWrites: a data frame's header and body go out as one write, in
// order and unchanged; a header-only frame (window update, ping, a data
// frame of length 0) goes out at once.
func TestJoinWrites(t *testing.T) {
	r := &recorder{}
	j := &joinWrites{Conn: r}
	body := []byte("hello")
	update := header(1, 4096)
	empty := header(yamuxTypeData, 0)
	for _, w := range [][]byte{header(yamuxTypeData, 5), body, update, empty, header(yamuxTypeData, 3), []byte("abc")} {
		if n, err := j.Write(w); n != len(w) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(w), n, err)
		}
	}
	want := [][]byte{append(header(yamuxTypeData, 5), body...), update, empty, append(header(yamuxTypeData, 3), "abc"...)}
	if len(r.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(r.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(r.writes[i], want[i]) {
			t.Errorf("write %d: % x, want % x", i, r.writes[i], want[i])
		}
	}
}
