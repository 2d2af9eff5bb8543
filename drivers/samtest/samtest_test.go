package samtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

var ctx = context.Background()

func TestTransportScript(t *testing.T) {
	boom := errors.New("boom")
	tr := NewTransport().
		Expect(ga467.SAMStatus, ga467.Status(ga467.SW3OK)).
		ExpectErr(ga467.Reset, boom).
		Expect(ga467.Command{Cmd: ga467.CmdCardReply, Data: []byte{0}}, ga467.Reply{SW3: ga467.SW3OK, Data: []byte{1, 2}})

	if r, err := tr.Transact(ctx, ga467.SAMStatus); err != nil || r.SW3 != ga467.SW3OK {
		t.Errorf("step 0: %v, %v", r, err)
	}
	if _, err := tr.Transact(ctx, ga467.Reset); !errors.Is(err, boom) {
		t.Errorf("step 1: err = %v, want boom", err)
	}
	if err := tr.Verify(); !errors.Is(err, ErrUnmet) {
		t.Errorf("Verify() with a step left = %v, want ErrUnmet", err)
	}
	r, err := tr.Transact(ctx, ga467.Command{Cmd: ga467.CmdCardReply, Data: []byte{0}})
	if err != nil || !bytes.Equal(r.Data, []byte{1, 2}) {
		t.Errorf("step 2: %v, %v", r, err)
	}
	r.Data[0] = 9 // must not change the script
	if err := tr.Verify(); err != nil {
		t.Errorf("Verify() = %v", err)
	}
	if got := len(tr.Sent()); got != 3 {
		t.Errorf("Sent() has %d commands, want 3", got)
	}
}

func TestTransportUnexpected(t *testing.T) {
	tr := NewTransport().Expect(ga467.FindCard, ga467.Status(ga467.SW3CardFound))
	if _, err := tr.Transact(ctx, ga467.SelectCard); !errors.Is(err, ErrUnexpected) {
		t.Errorf("wrong command: err = %v, want ErrUnexpected", err)
	}
	if _, err := tr.Transact(ctx, ga467.FindCard); err != nil {
		t.Errorf("expected command after a wrong one: %v", err)
	}
	if _, err := tr.Transact(ctx, ga467.FindCard); !errors.Is(err, ErrUnexpected) {
		t.Errorf("past the end: err = %v, want ErrUnexpected", err)
	}
	err := tr.Verify()
	if !errors.Is(err, ErrUnexpected) || !strings.Contains(err.Error(), "20 02") {
		t.Errorf("Verify() = %v, want ErrUnexpected naming 20 02", err)
	}
}

func TestTransportHang(t *testing.T) {
	tr := NewTransport().ExpectHang(ga467.ReadTextPhoto)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err := tr.Transact(ctx, ga467.ReadTextPhoto)
	if !errors.Is(err, sam.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want sam.ErrTimeout and DeadlineExceeded", err)
	}
}

func TestTransportClose(t *testing.T) {
	tr := NewTransport().Expect(ga467.SAMStatus, ga467.Status(ga467.SW3OK))
	tr.Close()
	if _, err := tr.Transact(ctx, ga467.SAMStatus); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("err = %v, want sam.ErrClosed", err)
	}
	if tr.Closed() != 1 {
		t.Errorf("Closed() = %d", tr.Closed())
	}
}

func TestTransportConcurrent(t *testing.T) {
	const n = 50
	tr := NewTransport()
	for range n {
		tr.Expect(ga467.SAMStatus, ga467.Status(ga467.SW3OK))
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tr.Transact(ctx, ga467.SAMStatus); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := tr.Verify(); err != nil {
		t.Error(err)
	}
}

func TestRecordingText(t *testing.T) {
	rec := Recording{
		{Cmd: ga467.SAMStatus, Reply: ga467.Status(ga467.SW3OK)},
		{Cmd: ga467.FindCard, Err: "sam: timed out: cmd 20 01 (0 data bytes): context deadline exceeded"},
		{Cmd: ga467.Command{Cmd: ga467.CmdCardReply, Data: []byte{1, 0, 0}}, Reply: ga467.Reply{SW1: 1, SW2: 2, SW3: 3, Data: []byte{4}}},
	}
	text, err := rec.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	want := `> AA AA AA 96 69 00 03 11 FF ED
< AA AA AA 96 69 00 04 00 00 90 94
> AA AA AA 96 69 00 03 20 01 22
! sam: timed out: cmd 20 01 (0 data bytes): context deadline exceeded
> AA AA AA 96 69 00 06 E1 00 01 00 00 E6
< AA AA AA 96 69 00 05 01 02 03 04 01
`
	if string(text) != want {
		t.Errorf("MarshalText:\n%s\nwant:\n%s", text, want)
	}
	var got Recording
	if err := got.UnmarshalText(append([]byte("# a comment\n\n"), text...)); err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalText()
	if !bytes.Equal(again, text) {
		t.Errorf("round trip:\n%s\nwant:\n%s", again, text)
	}
	if r, err := ReadRecording(strings.NewReader(want)); err != nil || len(r) != 3 {
		t.Errorf("ReadRecording = %d steps, %v", len(r), err)
	}
}

func TestRecordingTextErrors(t *testing.T) {
	for _, text := range []string{
		"< AA AA AA 96 69 00 04 00 00 90 94\n",                                  // reply first
		"> AA AA AA 96 69 00 03 11 FF ED\n",                                     // no reply
		"> AA AA AA 96 69 00 03 11 FF ED\n> AA AA AA 96 69 00 03 11 FF ED\n",    // two commands
		"> AA AA AA 96 69 00 03 11 FF EE\n< AA AA AA 96 69 00 04 00 00 90 94\n", // bad checksum
		"> AA AA AA 96 69 00 03 11 FF ED\n< AA AA AA 96 69 00 04 00 00 90 9\n",  // odd hex
		"> AA AA AA 96 69 00 03 11 FF ED\n!\n",                                  // empty error
		"= AA\n",                                                                // direction
		"> AA AA AA 96 69 00 03 11 FF ED\n< AA AA AA 96 69 00 03 00 00 03\n",    // reply too short
	} {
		var r Recording
		if err := r.UnmarshalText([]byte(text)); err == nil {
			t.Errorf("UnmarshalText(%q) = nil error", text)
		}
	}
}

func TestRecorderPlayback(t *testing.T) {
	module := NewTransport().
		Expect(ga467.FindCard, ga467.Reply{SW3: ga467.SW3CardFound, Data: []byte{0, 0, 0, 0}}).
		ExpectErr(ga467.SelectCard, ga467.ErrTimeout).
		ExpectErr(ga467.ReadTextPhoto, io.EOF)
	rec := NewRecorder(module)
	rec.Transact(ctx, ga467.FindCard)
	rec.Transact(ctx, ga467.SelectCard)
	rec.Transact(ctx, ga467.ReadTextPhoto)
	if err := module.Verify(); err != nil {
		t.Fatal(err)
	}
	text, err := rec.Recording().MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadRecording(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	p := Playback(r)
	if got, err := p.Transact(ctx, ga467.FindCard); err != nil || got.SW3 != ga467.SW3CardFound || len(got.Data) != 4 {
		t.Errorf("find: %v, %v", got, err)
	}
	if _, err := p.Transact(ctx, ga467.SelectCard); !errors.Is(err, ga467.ErrTimeout) {
		t.Errorf("select: err = %v, want a replayed ga467.ErrTimeout", err)
	}
	if _, err := p.Transact(ctx, ga467.ReadTextPhoto); !errors.Is(err, io.EOF) || err.Error() != io.EOF.Error() {
		t.Errorf("read: err = %v, want a replayed io.EOF", err)
	}
	if err := p.Verify(); err != nil {
		t.Errorf("Verify() = %v", err)
	}
	if err := rec.Close(); err != nil || module.Closed() != 1 {
		t.Errorf("Recorder.Close did not close the module")
	}
}

func TestPlaybackMismatch(t *testing.T) {
	p := Playback(Recording{
		{Cmd: ga467.FindCard, Reply: ga467.Status(ga467.SW3CardFound)},
		{Cmd: ga467.SelectCard, Reply: ga467.Status(ga467.SW3OK)},
	})
	if err := p.Verify(); !errors.Is(err, ErrUnmet) {
		t.Errorf("Verify() before playing = %v, want ErrUnmet", err)
	}
	if _, err := p.Transact(ctx, ga467.FindCard); err != nil {
		t.Fatal(err)
	}
	_, err := p.Transact(ctx, ga467.ReadAll)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	for _, want := range []string{"step 1", "30 10", "20 02"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Failed for good, even for the recorded command.
	if _, err := p.Transact(ctx, ga467.SelectCard); !errors.Is(err, ErrMismatch) {
		t.Errorf("after a mismatch: err = %v, want ErrMismatch", err)
	}
	if err := p.Verify(); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify() = %v, want ErrMismatch", err)
	}

	p = Playback(nil)
	if _, err := p.Transact(ctx, ga467.FindCard); !errors.Is(err, ErrMismatch) {
		t.Errorf("past the end: err = %v, want ErrMismatch", err)
	}
	p = Playback(Recording{{Cmd: ga467.FindCard}})
	p.Close()
	if _, err := p.Transact(ctx, ga467.FindCard); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("after Close: err = %v, want sam.ErrClosed", err)
	}
}

func TestReplayedError(t *testing.T) {
	tests := []struct {
		text string
		is   []error
		not  []error
	}{
		{"sam: timed out: cmd 30 01 (0 data bytes): ga467: timed out waiting for a frame: context deadline exceeded",
			[]error{sam.ErrTimeout, ga467.ErrTimeout, context.DeadlineExceeded}, []error{sam.ErrGone}},
		{"sam: module gone: cmd 11 FF (0 data bytes): EOF", []error{sam.ErrGone, io.EOF}, []error{sam.ErrTimeout}},
		{"EOF", []error{io.EOF}, nil},
		{"EOFish trouble", nil, []error{io.EOF}},
		{"the widget said: no", nil, []error{sam.ErrTransport}},
	}
	for _, tt := range tests {
		err := replayedError(tt.text)
		if err.Error() != tt.text {
			t.Errorf("Error() = %q, want %q", err, tt.text)
		}
		for _, e := range tt.is {
			if !errors.Is(err, e) {
				t.Errorf("%q: not %v", tt.text, e)
			}
		}
		for _, e := range tt.not {
			if errors.Is(err, e) {
				t.Errorf("%q: is %v", tt.text, e)
			}
		}
	}
}

func TestLink(t *testing.T) {
	l := NewLink(
		LinkStep{Cmds: [][]byte{{1}}, Replies: [][]byte{{2}}},
		LinkStep{Replies: [][]byte{{3}, {4}}}, // any frames
		LinkStep{Err: sam.ErrCardLink},
	)
	if got, err := l.Exchange(ctx, [][]byte{{1}}); err != nil || !bytes.Equal(got[0], []byte{2}) {
		t.Errorf("step 0: %v, %v", got, err)
	}
	if got, err := l.Exchange(ctx, [][]byte{{9}, {9}}); err != nil || len(got) != 2 {
		t.Errorf("step 1: %v, %v", got, err)
	}
	if _, err := l.Exchange(ctx, nil); !errors.Is(err, sam.ErrCardLink) {
		t.Errorf("step 2: err = %v", err)
	}
	if _, err := l.Exchange(ctx, nil); !errors.Is(err, ErrUnexpected) {
		t.Errorf("past the end: err = %v", err)
	}
	if err := l.Verify(); !errors.Is(err, ErrUnexpected) {
		t.Errorf("Verify() = %v, want ErrUnexpected", err)
	}
	if got := len(l.Calls()); got != 4 {
		t.Errorf("Calls() has %d exchanges", got)
	}

	l = NewLink(LinkStep{Cmds: [][]byte{{1}}})
	if _, err := l.Exchange(ctx, [][]byte{{2}}); !errors.Is(err, ErrUnexpected) {
		t.Errorf("wrong frames: err = %v", err)
	}
	if err := l.Verify(); !errors.Is(err, ErrUnmet) || !errors.Is(err, ErrUnexpected) {
		t.Errorf("Verify() = %v, want ErrUnmet and ErrUnexpected", err)
	}

	f := LinkFunc(func(_ context.Context, cmds [][]byte) ([][]byte, error) { return cmds, nil })
	if got, err := f.Exchange(ctx, [][]byte{{7}}); err != nil || got[0][0] != 7 {
		t.Errorf("LinkFunc: %v, %v", got, err)
	}
}

func TestSAM(t *testing.T) {
	id := ga467.SAMID{A: 5, B: 1, Date: 20101125, Serial1: 1, Serial2: 2}
	s := NewSAM(id)
	link := NewLink()

	if got, err := s.ID(ctx); err != nil || got != id {
		t.Errorf("ID() = %v, %v", got, err)
	}
	if _, err := s.Find(ctx, link); !errors.Is(err, ga467.ErrFindFailed) {
		t.Errorf("Find without a card: err = %v, want ErrFindFailed", err)
	}
	card := &Card{
		Info:    []byte{1, 2, 3, 4},
		Serial:  sam.Serial{8, 7, 6, 5, 4, 3, 2, 1},
		Reading: sam.Reading{Text: make([]byte, 256), Photo: make([]byte, 1024), Fingerprint: make([]byte, 1024)},
	}
	s.SetCard(card)
	if got, err := s.Find(ctx, link); err != nil || !bytes.Equal(got, card.Info) {
		t.Errorf("Find() = %v, %v", got, err)
	}
	if got, err := s.Select(ctx, link); err != nil || got != card.Serial {
		t.Errorf("Select() = %v, %v", got, err)
	}
	if r, err := s.Read(ctx, link, sam.ReadTextPhoto); err != nil || len(r.Text) != 256 || r.Fingerprint != nil {
		t.Errorf("Read(text+photo) = %v, %v", r, err)
	}
	if r, err := s.Read(ctx, link, sam.ReadFingerprint); err != nil || len(r.Fingerprint) != 1024 {
		t.Errorf("Read(fingerprint) = %v, %v", r, err)
	}

	fault := ga467.Status(ga467.SW3SelfTest).Err()
	s.SetErr(MethodStatus, fault)
	if err := s.Status(ctx); !errors.Is(err, ga467.ErrSelfTest) || !sam.ModuleFault(err) {
		t.Errorf("Status() = %v, want the self-test fault", err)
	}
	s.SetErr(MethodStatus, nil)
	if err := s.Status(ctx); err != nil {
		t.Errorf("Status() after clearing = %v", err)
	}

	s.SetHang(MethodReset, true)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := s.Reset(tctx); !errors.Is(err, sam.ErrTimeout) {
		t.Errorf("hung Reset() = %v, want sam.ErrTimeout", err)
	}

	for m, want := range map[Method]int{MethodID: 1, MethodFind: 2, MethodSelect: 1, MethodRead: 2, MethodStatus: 2, MethodReset: 1} {
		if got := s.Calls(m); got != want {
			t.Errorf("Calls(%s) = %d, want %d", m, got, want)
		}
	}
	if err := s.Close(); err != nil || !s.Closed() {
		t.Errorf("Close() = %v", err)
	}
	if _, err := s.ID(ctx); !errors.Is(err, sam.ErrClosed) {
		t.Errorf("ID() after Close = %v, want sam.ErrClosed", err)
	}
	if len(link.Calls()) != 0 {
		t.Errorf("the fake SAM used its link")
	}
}
