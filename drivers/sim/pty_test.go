//go:build linux

package sim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sim"
	"golang.org/x/sys/unix"
)

func TestOpenPTY(t *testing.T) {
	master, slave, path, err := sim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()

	// Raw both ways: CR LF and control bytes pass untouched, nothing echoes.
	msg := []byte("\r\n\x03\x04\x11\x13\xAA\x96\x69\x00")
	if _, err := slave.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	master.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(master, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("master read %x, %v; want %x", got, err, msg)
	}
	if _, err := master.Write(msg); err != nil {
		t.Fatal(err)
	}
	slave.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(slave, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("slave read %x, %v; want %x", got, err, msg)
	}
	// No echo came back to the master.
	master.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := master.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("master read %x, %v; want a timeout (no echo)", got[:n], err)
	}

	// Termios read through the master is the slave's.
	var viaMaster, viaSlave *unix.Termios
	ctl := func(f *os.File, p **unix.Termios) {
		rc, _ := f.SyscallConn()
		rc.Control(func(fd uintptr) { *p, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
		if err != nil {
			t.Fatal(err)
		}
	}
	ctl(master, &viaMaster)
	ctl(slave, &viaSlave)
	if *viaMaster != *viaSlave || viaSlave.Lflag&unix.ECHO != 0 || viaSlave.Cflag&unix.CBAUD != unix.B115200 {
		t.Errorf("termios via master %+v, via slave %+v", viaMaster, viaSlave)
	}

	// Hangup: closing the master ends the slave's reads and removes path.
	master.Close()
	slave.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := slave.Read(got); err != io.EOF {
		t.Errorf("slave read after hangup: %v, want EOF", err)
	}
	if _, err := slave.Write(msg); !errors.Is(err, syscall.EIO) {
		t.Errorf("slave write after hangup: %v, want EIO", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after hangup: %v", path, err)
	}
}

func TestPTYServe(t *testing.T) {
	checkLeaks(t)
	p, err := sim.NewPTY(newSAM())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := os.OpenFile(p.Path(), os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := ga467.NewConn(f)
	transact := func(cmd ga467.Command) (ga467.Reply, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Transact(ctx, cmd)
	}
	if r, err := transact(ga467.ReadSAMID); err != nil || !bytes.Equal(r.Data, p.SAM().ID().Bytes()) {
		t.Fatalf("SAM ID: %v, %v", r, err)
	}
	p.SetNoise([]byte{0x00, 0xAA, 0xAA, 0xAA, 0x96, 0x69, 0xFF, 0xFF, 0x55})
	if r, err := transact(ga467.SAMStatus); err != nil || r.SW3 != ga467.SW3OK {
		t.Fatalf("status with noise: %v, %v", r, err)
	}
	if c.Discarded() != 9 {
		t.Errorf("discarded %d bytes of noise, want 9", c.Discarded())
	}
	p.SetNoise(nil)

	// Vanish closes the master: the slave is hung up.
	p.SAM().Vanish()
	if _, err := transact(ga467.SAMStatus); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("status after vanish: %v, want EOF or EIO", err)
	}
	if err := p.Close(); !errors.Is(err, sim.ErrVanished) {
		t.Errorf("Close: %v, want ErrVanished", err)
	}
}
