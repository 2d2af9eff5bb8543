package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every byte it reads with the same byte; stopped by
// the test's cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }() // ends when the client closes
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestRTTConn(t *testing.T) {
	addr := echoServer(t)
	const rtt = 30 * time.Millisecond
	c, err := RTTDialer(rtt, nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A round trip costs at least rtt, and several writes in one flight
	// arrive in order, about rtt later, not rtt each.
	for round := range 3 {
		t0 := time.Now()
		var want []byte
		for i := range 20 {
			msg := []byte{byte(round), byte(i), 0xA5}
			want = append(want, msg...)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(t0); d > rtt/2 {
			t.Errorf("writes blocked for %v", d)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		el := time.Since(t0)
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: got % x, want % x", round, got, want)
		}
		if el < rtt {
			t.Errorf("round %d: answer after %v, before the round trip of %v", round, el, rtt)
		}
		if el > 20*rtt { // generous: a shared machine
			t.Errorf("round %d: answer after %v: the flight was delayed per write", round, el)
		}
	}
}

func TestRTTConnCloseWithPending(t *testing.T) {
	addr := echoServer(t)
	c, err := RTTDialer(time.Hour, nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("never sent")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // must not wait for the hour
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}
