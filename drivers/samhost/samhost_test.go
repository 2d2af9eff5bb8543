package samhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
)

var ctx = context.Background()

// verify fails t if a fake was not used as scripted.
func verify(t *testing.T, fakes ...interface{ Verify() error }) {
	t.Helper()
	for _, f := range fakes {
		if err := f.Verify(); err != nil {
			t.Error(err)
		}
	}
}

func ok(data ...byte) ga467.Reply { return ga467.Reply{SW3: ga467.SW3OK, Data: data} }

// exchange is a SW3 E0 reply asking for the given card frames.
func exchange(t *testing.T, frames ...[]byte) ga467.Reply {
	t.Helper()
	data, err := ga467.EncodeCardFrames(frames)
	if err != nil {
		t.Fatal(err)
	}
	return ga467.Reply{SW3: ga467.SW3CardExchange, Data: data}
}

// cardReply is the CmdCardReply carrying the given card replies.
func cardReply(t *testing.T, replies ...[]byte) ga467.Command {
	t.Helper()
	data, err := ga467.EncodeCardFrames(replies)
	if err != nil {
		t.Fatal(err)
	}
	return ga467.Command{Cmd: ga467.CmdCardReply, Data: data}
}

// readData is the DATA of a read reply: big-endian lengths, then text, photo and
// optionally fingerprint.
func readData(text, photo, fp []byte) []byte {
	// Big-endian lengths, as a SAM-V sends them (the facts sheet's `01 00 04 00`).
	b := []byte{byte(len(text) >> 8), byte(len(text)), byte(len(photo) >> 8), byte(len(photo))}
	if fp != nil {
		b = append(b, byte(len(fp)>>8), byte(len(fp)))
	}
	b = append(b, text...)
	b = append(b, photo...)
	return append(b, fp...)
}

func TestControl(t *testing.T) {
	id := ga467.SAMID{A: 5, B: 1, Date: 20101125, Serial1: 12345678, Serial2: 1234567890}
	tr := samtest.NewTransport().
		Expect(ga467.Reset, ok()).
		Expect(ga467.SAMStatus, ok()).
		Expect(ga467.ReadSAMID, ok(id.Bytes()...))
	h := samhost.New(tr, samhost.Timeouts{})
	if err := h.Reset(ctx); err != nil {
		t.Errorf("Reset() = %v", err)
	}
	if err := h.Status(ctx); err != nil {
		t.Errorf("Status() = %v", err)
	}
	if got, err := h.ID(ctx); err != nil || got != id {
		t.Errorf("ID() = %v, %v; want %v", got, err, id)
	}
	verify(t, tr)
}

func TestTunnel(t *testing.T) {
	text := bytes.Repeat([]byte{'T'}, 256)
	photo := bytes.Repeat([]byte{'P'}, 1024)
	serial := sam.Serial{1, 2, 3, 4, 5, 6, 7, 8}
	tr := samtest.NewTransport().
		// Find: one exchange of two frames.
		Expect(ga467.FindCard, exchange(t, []byte{0x05, 0x00}, []byte{0x1D})).
		Expect(cardReply(t, []byte{0x50, 0x01}, []byte{0x90, 0x00}), ga467.Reply{SW3: ga467.SW3CardFound, Data: []byte{0, 0, 0, 0}}).
		// Select: no exchange.
		Expect(ga467.SelectCard, ok(serial[:]...)).
		// Read: two exchanges; the card stops answering after the first
		// frame of the second.
		Expect(ga467.ReadTextPhoto, exchange(t, []byte{0xB0})).
		Expect(cardReply(t, []byte{0x61, 0x00}), exchange(t, []byte{0xB1}, []byte{0xB2})).
		Expect(cardReply(t, []byte{0x90, 0x00}), ok(readData(text, photo, nil)...))
	link := samtest.NewLink(
		samtest.LinkStep{Cmds: [][]byte{{0x05, 0x00}, {0x1D}}, Replies: [][]byte{{0x50, 0x01}, {0x90, 0x00}}},
		samtest.LinkStep{Cmds: [][]byte{{0xB0}}, Replies: [][]byte{{0x61, 0x00}}},
		samtest.LinkStep{Cmds: [][]byte{{0xB1}, {0xB2}}, Replies: [][]byte{{0x90, 0x00}}},
	)
	h := samhost.New(tr, samhost.Timeouts{})
	if info, err := h.Find(ctx, link); err != nil || !bytes.Equal(info, []byte{0, 0, 0, 0}) {
		t.Errorf("Find() = % X, %v", info, err)
	}
	if got, err := h.Select(ctx, link); err != nil || got != serial {
		t.Errorf("Select() = %v, %v", got, err)
	}
	rd, err := h.Read(ctx, link, sam.ReadTextPhoto)
	if err != nil {
		t.Fatalf("Read() = %v", err)
	}
	if !bytes.Equal(rd.Text, text) || !bytes.Equal(rd.Photo, photo) || rd.Fingerprint != nil {
		t.Errorf("Read() = %d/%d/%d bytes", len(rd.Text), len(rd.Photo), len(rd.Fingerprint))
	}
	verify(t, tr, link)
}

func TestReadFingerprint(t *testing.T) {
	text, photo, fp := make([]byte, 256), make([]byte, 1024), bytes.Repeat([]byte{'F'}, 1024)
	tr := samtest.NewTransport().Expect(ga467.ReadAll, ok(readData(text, photo, fp)...))
	h := samhost.New(tr, samhost.Timeouts{})
	rd, err := h.Read(ctx, samtest.NewLink(), sam.ReadFingerprint)
	if err != nil || !bytes.Equal(rd.Fingerprint, fp) {
		t.Fatalf("Read() = %v, %v", rd, err)
	}
	verify(t, tr)
}

func TestMaxExchanges(t *testing.T) {
	for _, n := range []int{samhost.MaxExchanges, samhost.MaxExchanges + 1} {
		t.Run(fmt.Sprint(n, " exchanges"), func(t *testing.T) {
			tr := samtest.NewTransport()
			link := samtest.LinkFunc(func(context.Context, [][]byte) ([][]byte, error) {
				return [][]byte{{0x90, 0x00}}, nil
			})
			cmd := ga467.FindCard
			for range n {
				tr.Expect(cmd, exchange(t, []byte{0x00}))
				cmd = cardReply(t, []byte{0x90, 0x00})
			}
			if n <= samhost.MaxExchanges {
				tr.Expect(cmd, ga467.Reply{SW3: ga467.SW3CardFound, Data: make([]byte, 4)})
			}
			_, err := samhost.New(tr, samhost.Timeouts{}).Find(ctx, link)
			if n <= samhost.MaxExchanges {
				if err != nil {
					t.Fatalf("Find() = %v", err)
				}
			} else if !errors.Is(err, sam.ErrProtocol) {
				t.Fatalf("Find() = %v, want sam.ErrProtocol", err)
			}
			verify(t, tr)
		})
	}
}

func TestTunnelErrors(t *testing.T) {
	linkErr := errors.New("reader went away")
	echo := samtest.LinkFunc(func(_ context.Context, cmds [][]byte) ([][]byte, error) { return cmds, nil })
	tests := []struct {
		name        string
		reply       ga467.Reply // the SAM's answer to FindCard
		link        sam.CardLink
		want        error
		moduleFault bool
	}{
		{"exchange without a link", exchange(t, []byte{1}), nil, sam.ErrProtocol, true},
		{"malformed card frames", ga467.Reply{SW3: ga467.SW3CardExchange, Data: []byte{2, 1}}, echo, sam.ErrProtocol, true},
		{"link fails", exchange(t, []byte{1}),
			samtest.LinkFunc(func(context.Context, [][]byte) ([][]byte, error) { return nil, linkErr }),
			sam.ErrCardLink, false},
		{"link answers more frames than asked", exchange(t, []byte{1}),
			samtest.LinkFunc(func(context.Context, [][]byte) ([][]byte, error) { return [][]byte{{1}, {2}}, nil }),
			sam.ErrCardLink, false},
		{"link answers an oversized frame", exchange(t, []byte{1}),
			samtest.LinkFunc(func(context.Context, [][]byte) ([][]byte, error) {
				return [][]byte{make([]byte, ga467.MaxCardFrame+1)}, nil
			}),
			sam.ErrCardLink, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := samtest.NewTransport().Expect(ga467.FindCard, tt.reply)
			_, err := samhost.New(tr, samhost.Timeouts{}).Find(ctx, tt.link)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Find() = %v, want %v", err, tt.want)
			}
			if got := sam.ModuleFault(err); got != tt.moduleFault {
				t.Errorf("ModuleFault(%v) = %v, want %v", err, got, tt.moduleFault)
			}
			verify(t, tr)
		})
	}
}

func TestLinkTimeoutIsCardLink(t *testing.T) {
	tr := samtest.NewTransport().Expect(ga467.FindCard, exchange(t, []byte{1}))
	link := samtest.LinkFunc(func(ctx context.Context, _ [][]byte) ([][]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	h := samhost.New(tr, samhost.Timeouts{Find: 20 * time.Millisecond})
	_, err := h.Find(ctx, link)
	if !errors.Is(err, sam.ErrCardLink) || !errors.Is(err, context.DeadlineExceeded) || sam.ModuleFault(err) {
		t.Errorf("Find() = %v, want sam.ErrCardLink and DeadlineExceeded, not a module fault", err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		want        error
		moduleFault bool
	}{
		{"ga467 timeout", ga467.ErrTimeout, sam.ErrTimeout, true},
		{"deadline", context.DeadlineExceeded, sam.ErrTimeout, true},
		{"os deadline", os.ErrDeadlineExceeded, sam.ErrTimeout, true},
		{"EOF", io.EOF, sam.ErrGone, true},
		{"closed pipe", io.ErrClosedPipe, sam.ErrGone, true},
		{"closed file", fmt.Errorf("read /dev/ttyUSB0: %w", os.ErrClosed), sam.ErrGone, true},
		{"other I/O error", errors.New("input/output error"), sam.ErrTransport, true},
		{"bad checksum", ga467.ErrChecksum, sam.ErrTransport, true},
		{"already gone", fmt.Errorf("pcsc: %w", sam.ErrGone), sam.ErrGone, true},
		{"already protocol", fmt.Errorf("pcsc: %w", sam.ErrProtocol), sam.ErrProtocol, true},
		{"canceled", context.Canceled, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := samtest.NewTransport().ExpectErr(ga467.SAMStatus, tt.err)
			err := samhost.New(tr, samhost.Timeouts{}).Status(ctx)
			if !errors.Is(err, tt.want) || !errors.Is(err, tt.err) {
				t.Errorf("Status() = %v, want %v wrapping %v", err, tt.want, tt.err)
			}
			if got := sam.ModuleFault(err); got != tt.moduleFault {
				t.Errorf("ModuleFault(%v) = %v, want %v", err, got, tt.moduleFault)
			}
		})
	}
}

func TestStatusErrorPassesThrough(t *testing.T) {
	for _, code := range ga467.ErrorCodes() {
		tr := samtest.NewTransport().Expect(ga467.FindCard, ga467.Status(code))
		_, err := samhost.New(tr, samhost.Timeouts{}).Find(ctx, samtest.NewLink())
		var se *ga467.StatusError
		if !errors.As(err, &se) || se.SW3 != code {
			t.Errorf("SW3 %02X: Find() = %v, want *ga467.StatusError", code, err)
			continue
		}
		// The module is to blame for its own faults, not for the card's.
		wantFault := map[byte]bool{
			ga467.SW3HostChecksum: true, ga467.SW3HostLength: true, ga467.SW3BadCommand: true,
			ga467.SW3Privilege: true, ga467.SW3Unrecognised: true, ga467.SW3Random: true,
			ga467.SW3SelfTest: true, ga467.SW3NotAuthorised: true, ga467.SW3CommFault: true,
		}[code]
		if got := sam.ModuleFault(err); got != wantFault {
			t.Errorf("SW3 %02X: ModuleFault = %v, want %v", code, got, wantFault)
		}
	}
}

func TestTimeout(t *testing.T) {
	tr := samtest.NewTransport().ExpectHang(ga467.SAMStatus)
	h := samhost.New(tr, samhost.Timeouts{Control: 20 * time.Millisecond})
	start := time.Now()
	err := h.Status(ctx)
	if !errors.Is(err, sam.ErrTimeout) || !sam.ModuleFault(err) {
		t.Errorf("Status() = %v, want sam.ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status() took %v", d)
	}
}

func TestReplyShapes(t *testing.T) {
	tests := []struct {
		name string
		cmd  ga467.Command
		r    ga467.Reply
		op   func(h *samhost.Host) error
	}{
		{"SAM ID too short", ga467.ReadSAMID, ok(1, 2, 3),
			func(h *samhost.Host) error { _, err := h.ID(ctx); return err }},
		{"find answers 90", ga467.FindCard, ok(0, 0, 0, 0),
			func(h *samhost.Host) error { _, err := h.Find(ctx, samtest.NewLink()); return err }},
		{"find info too short", ga467.FindCard, ga467.Reply{SW3: ga467.SW3CardFound, Data: []byte{0}},
			func(h *samhost.Host) error { _, err := h.Find(ctx, samtest.NewLink()); return err }},
		{"select serial too short", ga467.SelectCard, ok(1, 2, 3, 4, 5, 6, 7),
			func(h *samhost.Host) error { _, err := h.Select(ctx, samtest.NewLink()); return err }},
		{"read answers 9F", ga467.ReadTextPhoto, ga467.Reply{SW3: ga467.SW3CardFound},
			func(h *samhost.Host) error { _, err := h.Read(ctx, samtest.NewLink(), sam.ReadTextPhoto); return err }},
		{"read lengths wrong", ga467.ReadTextPhoto, ok(readData(make([]byte, 255), nil, nil)...),
			func(h *samhost.Host) error { _, err := h.Read(ctx, samtest.NewLink(), sam.ReadTextPhoto); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := samtest.NewTransport().Expect(tt.cmd, tt.r)
			if err := tt.op(samhost.New(tr, samhost.Timeouts{})); !errors.Is(err, sam.ErrProtocol) {
				t.Errorf("err = %v, want sam.ErrProtocol", err)
			}
			verify(t, tr)
		})
	}
}

func TestParseReading(t *testing.T) {
	text, photo, fp := make([]byte, 256), make([]byte, 1024), make([]byte, 1024)
	tests := []struct {
		name        string
		data        []byte
		fingerprint bool
		wantErr     bool
		wantFP      int
	}{
		{"text+photo", readData(text, photo, nil), false, false, 0},
		{"text+photo+fingerprint", readData(text, photo, fp), true, false, 1024},
		{"no fingerprint on the card", readData(text, photo, []byte{}), true, false, 0},
		{"short photo", readData(text, photo[:100], nil), false, false, 0},
		{"empty", nil, false, true, 0},
		{"lengths only, cut", []byte{1, 0, 4, 0, 0}, false, true, 0},
		{"little-endian lengths", append([]byte{0, 1, 0, 4}, readData(text, photo, nil)[4:]...), false, true, 0},
		{"fingerprint lengths cut", readData(text, photo, nil)[:4], true, true, 0},
		{"text not 256", readData(text[:255], photo, nil), false, true, 0},
		{"photo over 1024", readData(text, make([]byte, 1025), nil), false, true, 0},
		{"fingerprint over 1024", readData(text, photo, make([]byte, 1025)), true, true, 0},
		{"trailing byte", append(readData(text, photo, nil), 0), false, true, 0},
		{"missing byte", readData(text, photo, nil)[:1283], false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := samhost.ParseReading(tt.data, tt.fingerprint)
			if tt.wantErr {
				if err == nil {
					t.Fatal("ParseReading succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rd.Text) != 256 || len(rd.Fingerprint) != tt.wantFP {
				t.Errorf("got %d/%d/%d bytes", len(rd.Text), len(rd.Photo), len(rd.Fingerprint))
			}
		})
	}
}

func TestParseReadingCopies(t *testing.T) {
	data := readData(make([]byte, 256), make([]byte, 1024), nil)
	rd, err := samhost.ParseReading(data, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xEE
	}
	if rd.Text[0] != 0 || rd.Photo[1023] != 0 {
		t.Error("reading aliases data")
	}
	if cap(rd.Text) != 256 {
		t.Errorf("cap(Text) = %d: appending to it would overwrite the photo", cap(rd.Text))
	}
}

func TestClose(t *testing.T) {
	tr := samtest.NewTransport()
	h := samhost.New(tr, samhost.Timeouts{})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if tr.Closed() != 1 {
		t.Errorf("transport closed %d times, want 1", tr.Closed())
	}
	if err := h.Status(ctx); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("Status() after Close = %v, want sam.ErrClosed", err)
	}
	if _, err := h.Find(ctx, samtest.NewLink()); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("Find() after Close = %v, want sam.ErrClosed", err)
	}
	verify(t, tr)
}
