//go:build linux

package serial_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samtest"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
)

// scriptedDevice plays a real SAM-V on the master of a pty: for each
// expected command (byte-exact) it writes the given reply bytes, unchanged.
// Its goroutine is owned by t and stopped in its cleanup; a mismatch is
// reported through the returned channel's error.
func scriptedDevice(t *testing.T, script [][2][]byte) (path string, done <-chan error) {
	t.Helper()
	master, slave, path, err := sim.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by t: ends with the script or when master closes
		defer wg.Done()
		for _, step := range script {
			got := make([]byte, len(step[0]))
			if _, err := io.ReadFull(master, got); err != nil {
				errc <- err
				return
			}
			if !bytes.Equal(got, step[0]) {
				errc <- fmt.Errorf("host sent % X, want % X", got, step[0])
				return
			}
			if _, err := master.Write(step[1]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	t.Cleanup(func() {
		master.Close()
		wg.Wait()
		slave.Close()
	})
	return path, errc
}

// TestRealReadReplyOverPTY: the serial driver reads the reply frames of a
// real SAM-V (assembled by hand from the published layout, lengths
// `01 00 04 00` big-endian) sent byte for byte on a pty.
func TestRealReadReplyOverPTY(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		name  string
		what  sam.ReadWhat
		cmd   []byte
		reply []byte
		fp    []byte
	}{
		{"30 01", sam.ReadTextPhoto, samtest.RealReadCommand, samtest.RealReadFrame(), nil},
		{"30 10", sam.ReadFingerprint, samtest.RealReadAllCommand, samtest.RealReadAllFrame(), samtest.RealFingerprint()},
		{"30 10 without fingerprints", sam.ReadFingerprint, samtest.RealReadAllCommand, samtest.RealReadNoFingerprintFrame(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, done := scriptedDevice(t, [][2][]byte{{tc.cmd, tc.reply}})
			m := open(t, path, serial.Options{})
			rd, err := m.Read(context.Background(), nil, tc.what)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(rd.Text) != 256 || len(rd.Photo) != 1024 {
				t.Fatalf("text %d bytes, photo %d bytes: want 256 and 1024", len(rd.Text), len(rd.Photo))
			}
			if !bytes.Equal(rd.Text, samtest.RealText()) || !bytes.Equal(rd.Photo, samtest.RealPhoto()) || !bytes.Equal(rd.Fingerprint, tc.fp) {
				t.Fatal("reading differs from the frame's data")
			}
			id, err := ga467.DecodeText(rd.Text)
			if err != nil {
				t.Fatal(err)
			}
			if id.Name != samtest.RealName || id.Number != samtest.RealNumber || id.ValidTo != samtest.RealValidTo {
				t.Fatalf("decoded %s", id.Redacted())
			}
		})
	}
}
