package link_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/link/linktest"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

const waitLimit = 10 * time.Second

// echo serves one frame back with its type + 1.
func echo(c link.Conn, s net.Conn) {
	typ, p, err := link.ReadFrame(s, 0)
	if err != nil {
		return
	}
	link.WriteFrame(s, typ+1, append([]byte(c.Peer+":"), p...))
}

func call(t *testing.T, l *link.Link, peer string, p []byte) (uint8, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	s, _, err := l.Open(ctx, peer)
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	if err := link.WriteFrame(s, 7, p); err != nil {
		return 0, nil, err
	}
	return link.ReadFrame(s, 0)
}

func TestMeshEcho(t *testing.T) {
	leaktest.Check(t)
	ca := linktest.NewCA(t)
	m := linktest.NewMembers("a", "b", "c")
	nodes := linktest.Mesh(t, ca, m, func(string) link.Config { return link.Config{Handle: echo} }, "a", "b", "c")
	for _, from := range []string{"a", "b", "c"} {
		for _, to := range []string{"a", "b", "c"} {
			if from == to {
				continue
			}
			typ, p, err := call(t, nodes[from].Link, to, []byte("hi"))
			if err != nil || typ != 8 || string(p) != from+":hi" {
				t.Fatalf("%s→%s: %d %q %v", from, to, typ, p, err)
			}
		}
	}
}

// TestRefusedPeers: a certificate of another CA, one without a node
// identity and one of a node that is not a member are refused at the
// handshake; the link's node does not even read a frame from them.
func TestRefusedPeers(t *testing.T) {
	leaktest.Check(t)
	ca := linktest.NewCA(t)
	m := linktest.NewMembers("a", "b")
	nodes := linktest.Mesh(t, ca, m, func(string) link.Config { return link.Config{Handle: echo} }, "a")
	for name, cfg := range map[string]*tls.Config{
		"other CA":   linktest.NewCA(t).Node(t, "b"),
		"no node ID": ca.Node(t, ""),
		"not member": ca.Node(t, "z"),
	} {
		cfg.InsecureSkipVerify = true
		cfg.MinVersion = tls.VersionTLS13
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", nodes["a"].Addr, cfg)
		if err == nil {
			// TLS 1.3: the client's certificate is judged after the
			// client's handshake ends; the refusal shows on first read.
			c.SetDeadline(time.Now().Add(waitLimit))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

// TestReconnect: a peer's link restarts; the dialing side redials and
// streams work again. The Down callback sees the old connection end.
func TestReconnect(t *testing.T) {
	leaktest.Check(t)
	ca := linktest.NewCA(t)
	m := linktest.NewMembers("a", "b")
	down := make(chan link.Conn, 4)
	nodes := linktest.Mesh(t, ca, m, func(id string) link.Config {
		return link.Config{Handle: echo, Down: func(c link.Conn) {
			if id == "a" {
				down <- c
			}
		}}
	}, "a", "b")
	if _, p, err := call(t, nodes["a"].Link, "b", []byte("1")); err != nil || string(p) != "a:1" {
		t.Fatalf("first call: %q %v", p, err)
	}
	// b restarts on the same address.
	nodes["b"].Link.Close()
	select {
	case c := <-down:
		if c.Peer != "b" {
			t.Fatalf("down %+v", c)
		}
	case <-time.After(waitLimit):
		t.Fatal("a never saw b's connection end")
	}
	ln, err := net.Listen("tcp", nodes["b"].Addr)
	if err != nil {
		t.Skipf("address taken again: %v", err)
	}
	b2, err := link.New(link.Config{ID: "b", TLS: ca.Node(t, "b"), Member: m.Member, Handle: echo})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); b2.Serve(ln) }()
	defer func() { b2.Close(); <-served }()
	b2.SetPeers(map[string]string{"a": nodes["a"].Addr})
	if _, p, err := call(t, nodes["a"].Link, "b", []byte("2")); err != nil || string(p) != "a:2" {
		t.Fatalf("after reconnect: %q %v", p, err)
	}
	if _, p, err := call(t, b2, "a", []byte("3")); err != nil || string(p) != "b:3" {
		t.Fatalf("from the accepting side: %q %v", p, err)
	}
}

// TestOpenDeadline: Open to a peer that never connects ends with ctx.
func TestOpenDeadline(t *testing.T) {
	leaktest.Check(t)
	ca := linktest.NewCA(t)
	nodes := linktest.Mesh(t, ca, linktest.NewMembers("a"), func(string) link.Config { return link.Config{Handle: echo} }, "a")
	nodes["a"].Link.SetPeers(map[string]string{"a": nodes["a"].Addr, "b": "127.0.0.1:1"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := nodes["a"].Link.Open(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: %v", err)
	}
	if _, _, err := nodes["a"].Link.Open(ctx, "nobody"); !errors.Is(err, link.ErrUnknownPeer) {
		t.Fatalf("Open unknown: %v", err)
	}
}

func TestFrame(t *testing.T) {
	var b bytes.Buffer
	if err := link.WriteFrame(&b, 3, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if want := []byte{1, 3, 0, 0, 0, 3, 'a', 'b', 'c'}; !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("frame % x, want % x", b.Bytes(), want)
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"version":  {[]byte{2, 3, 0, 0, 0, 0}, link.ErrFrameVersion},
		"too big":  {[]byte{1, 3, 0, 0x10, 0, 1}, link.ErrFrameTooBig},
		"over max": {[]byte{1, 3, 0, 0, 0, 5, 1, 2, 3, 4, 5}, link.ErrFrameTooBig},
		"short":    {[]byte{1, 3, 0, 0, 0, 3, 1}, link.ErrFrameShort},
		"header":   {[]byte{1, 3}, link.ErrFrameShort},
	} {
		if _, _, err := link.ReadFrame(bytes.NewReader(tc.in), 4); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, _, err := link.ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Errorf("empty: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{1, 3, 0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{1, 3, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, p, err := link.ReadFrame(bytes.NewReader(in), 64)
		if err != nil {
			return
		}
		if len(p) > 64 {
			t.Fatalf("payload of %d bytes past the bound", len(p))
		}
		out, err := link.AppendFrame(nil, typ, p)
		if err != nil || !bytes.Equal(out, in[:len(out)]) {
			t.Fatalf("re-encoding differs: % x vs % x", out, in)
		}
	})
}
