package ga467

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pipe returns a Conn on one end of a net.Pipe and the other end, both
// closed when the test ends.
func pipe(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	return NewConn(near), far
}

// goTest runs fn in a goroutine owned by the test: the far end of the pipe
// is closed and fn waited for when the test ends.
func goTest(t *testing.T, far net.Conn, fn func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	t.Cleanup(func() {
		far.Close()
		wg.Wait()
	})
}

// mustFrame is the frame of a command or reply; it fails the test on error.
func mustFrame(t *testing.T, f interface{ Frame() ([]byte, error) }) []byte {
	t.Helper()
	b, err := f.Frame()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConnReadFrame(t *testing.T) {
	status := wire("00 04 00 00 90 94")
	find := wire("00 08 00 00 9F 00 00 00 00 97")
	tests := []struct {
		name          string
		in            [][]byte // written in order, each in one Write
		want          [][]byte // frames, nil for an ErrChecksum
		wantDiscarded uint64
	}{
		{"clean", [][]byte{status, find}, [][]byte{status, find}, 0},
		{"garbage before a frame", [][]byte{unhex("00 13 AA 37 AA AA 96"), status},
			[][]byte{status}, 7},
		{"frame split over writes", [][]byte{status[:3], status[3:9], status[9:]}, [][]byte{status}, 0},
		{"false preamble, LEN too long", [][]byte{wire("FF FF"), find},
			[][]byte{find}, 7},
		{"false preamble, LEN too short", [][]byte{wire("00 02"), status},
			[][]byte{status}, 7},
		{"preamble inside a false preamble", [][]byte{unhex("AA AA AA AA 96 69 AA AA AA 96 69 00 00"), status},
			[][]byte{status}, 13},
		{"bad checksum consumed and reported", [][]byte{wire("00 04 00 00 90 95"), find},
			[][]byte{nil, find}, 0},
		{"shortest command", [][]byte{wire("00 03 10 FF EC")}, [][]byte{wire("00 03 10 FF EC")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, far := pipe(t)
			goTest(t, far, func() {
				for _, b := range tt.in {
					if _, err := far.Write(b); err != nil {
						t.Errorf("write: %v", err)
						return
					}
				}
			})
			for i, want := range tt.want {
				got, err := c.ReadFrame()
				if want == nil {
					if !errors.Is(err, ErrChecksum) {
						t.Fatalf("frame %d: err = %v, want ErrChecksum", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("frame %d = % X, want % X", i, got, want)
				}
			}
			if got := c.Discarded(); got != tt.wantDiscarded {
				t.Errorf("Discarded() = %d, want %d", got, tt.wantDiscarded)
			}
		})
	}
}

func TestConnReadFrameEOF(t *testing.T) {
	c, far := pipe(t)
	far.Close()
	if _, err := c.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want io.EOF", err)
	}
}

// fakeSAM answers each command it reads with the reply fn gives.
func fakeSAM(t *testing.T, far net.Conn, fn func(Command) Reply) {
	goTest(t, far, func() {
		sc := NewConn(far)
		for {
			f, err := sc.ReadFrame()
			if err != nil {
				return
			}
			cmd, err := ParseCommand(f)
			if err != nil {
				t.Errorf("fake SAM: %v", err)
				return
			}
			b, err := fn(cmd).Frame()
			if err != nil {
				t.Errorf("fake SAM: %v", err)
				return
			}
			if err := sc.WriteFrame(b); err != nil {
				return
			}
		}
	})
}

func TestConnTransact(t *testing.T) {
	c, far := pipe(t)
	fakeSAM(t, far, func(cmd Command) Reply {
		return Reply{SW3: SW3OK, Data: []byte{cmd.Cmd, cmd.Para}}
	})
	for _, cmd := range []Command{Reset, SAMStatus, ReadSAMID} {
		r, err := c.Transact(context.Background(), cmd)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		if r.Err() != nil || !bytes.Equal(r.Data, []byte{cmd.Cmd, cmd.Para}) {
			t.Errorf("%v: reply %v", cmd, r)
		}
	}
}

func TestConnTransactDeadline(t *testing.T) {
	c, far := pipe(t)
	goTest(t, far, func() {
		// Take commands, never answer; the test's end closes far.
		sc := NewConn(far)
		for {
			if _, err := sc.ReadFrame(); err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Transact(ctx, SAMStatus)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Transact returned after %v", d)
	}
}

func TestConnTransactDoneContext(t *testing.T) {
	c, _ := pipe(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Transact(ctx, SAMStatus); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// signalStream reports each Write before passing it on.
type signalStream struct {
	net.Conn
	writing chan struct{}
}

func (s signalStream) Write(b []byte) (int, error) {
	s.writing <- struct{}{}
	return s.Conn.Write(b)
}

func TestConnTransactCancelUnblocksWrite(t *testing.T) {
	near, far := net.Pipe() // nobody reads far: the write blocks
	defer near.Close()
	defer far.Close()
	s := signalStream{near, make(chan struct{}, 1)}
	c := NewConn(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Transact(ctx, SAMStatus)
		errc <- err
	}()
	<-s.writing
	cancel()
	if err := <-errc; !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrTimeout and context.Canceled", err)
	}
}

// cancelOn cancels ctx when ready closes; it returns early if ctx ends.
func cancelOn(ctx context.Context, cancel context.CancelFunc, ready <-chan struct{}) {
	select {
	case <-ready:
		cancel()
	case <-ctx.Done():
	}
}

func TestConnDrainsStaleReply(t *testing.T) {
	c, far := pipe(t)
	c.grace = time.Minute // the stale reply arrives whenever the fake SAM gets to it
	stale := mustFrame(t, Reply{SW3: SW3OK, Data: []byte("stale")})
	fresh := mustFrame(t, Reply{SW3: SW3OK, Data: []byte("fresh")})
	got1, release := make(chan struct{}), make(chan struct{})
	goTest(t, far, func() {
		sc := NewConn(far)
		if _, err := sc.ReadFrame(); err != nil { // command 1
			t.Errorf("fake SAM: %v", err)
			return
		}
		close(got1)
		<-release
		if err := sc.WriteFrame(stale); err != nil { // its late reply
			t.Errorf("fake SAM: %v", err)
			return
		}
		if _, err := sc.ReadFrame(); err != nil { // command 2
			t.Errorf("fake SAM: %v", err)
			return
		}
		sc.WriteFrame(fresh)
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancelOn(ctx, cancel, got1)
	if _, err := c.Transact(ctx, ReadSAMID); !errors.Is(err, ErrTimeout) {
		t.Fatalf("abandoned Transact: err = %v, want ErrTimeout", err)
	}
	close(release)

	r, err := c.Transact(context.Background(), SAMStatus)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Data) != "fresh" {
		t.Errorf("reply data %q, want %q", r.Data, "fresh")
	}
	if got, want := c.Discarded(), uint64(len(stale)); got != want {
		t.Errorf("Discarded() = %d, want %d", got, want)
	}
}

func TestConnDrainWithoutLateReply(t *testing.T) {
	c, far := pipe(t)
	got1 := make(chan struct{})
	goTest(t, far, func() {
		sc := NewConn(far)
		if _, err := sc.ReadFrame(); err != nil { // command 1, never answered
			t.Errorf("fake SAM: %v", err)
			return
		}
		close(got1)
		if _, err := sc.ReadFrame(); err != nil {
			t.Errorf("fake SAM: %v", err)
			return
		}
		b, _ := Status(SW3OK).Frame()
		sc.WriteFrame(b)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cancelOn(ctx, cancel, got1)
	if _, err := c.Transact(ctx, ReadSAMID); !errors.Is(err, ErrTimeout) {
		t.Fatalf("abandoned Transact: err = %v, want ErrTimeout", err)
	}
	r, err := c.Transact(context.Background(), SAMStatus)
	if err != nil || r.Err() != nil {
		t.Fatalf("Transact = %v, %v", r, err)
	}
}
