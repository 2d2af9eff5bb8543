package samtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

// Step is one Transact of a recording: the command and either the reply
// or the text of the error.
type Step struct {
	Cmd   ga467.Command
	Reply ga467.Reply // meaningful when Err is empty
	Err   string      // error text; empty if the Transact succeeded
}

// Recording is a sequence of Transacts. Its text form has one line per
// frame, each frame in full (preamble to checksum) in hex:
//
//	# comment
//	> AA AA AA 96 69 00 03 11 FF ED
//	< AA AA AA 96 69 00 04 00 00 90 94
//	> AA AA AA 96 69 00 03 20 01 22
//	! sam: timed out: cmd 20 01 (0 data bytes): context deadline exceeded
//
// ">" is a host frame, "<" the module's reply to it, "!" the error
// Transact returned instead. Blank lines and lines starting with "#" are
// ignored. Recordings of card reads hold personal data: keep only those of
// test cards.
type Recording []Step

// MarshalText implements encoding.TextMarshaler.
func (r Recording) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	for i, s := range r {
		f, err := s.Cmd.Frame()
		if err != nil {
			return nil, fmt.Errorf("samtest: step %d: %w", i, err)
		}
		writeFrame(&b, '>', f)
		if s.Err != "" {
			b.WriteString("! ")
			b.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(s.Err))
			b.WriteByte('\n')
			continue
		}
		if f, err = s.Reply.Frame(); err != nil {
			return nil, fmt.Errorf("samtest: step %d: %w", i, err)
		}
		writeFrame(&b, '<', f)
	}
	return b.Bytes(), nil
}

func writeFrame(b *bytes.Buffer, dir byte, f []byte) {
	b.WriteByte(dir)
	for _, c := range f {
		fmt.Fprintf(b, " %02X", c)
	}
	b.WriteByte('\n')
}

// UnmarshalText implements encoding.TextUnmarshaler. Errors give the line.
func (r *Recording) UnmarshalText(text []byte) error {
	var rec Recording
	var pending *ga467.Command // a ">" line waiting for its "<" or "!"
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 8*ga467.MaxFrame)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		dir, rest := line[0], strings.TrimSpace(line[1:])
		if (dir == '>') != (pending == nil) {
			if pending == nil {
				return fmt.Errorf("samtest: recording line %d: %q without a host frame before it", n, dir)
			}
			return fmt.Errorf("samtest: recording line %d: host frame without a reply or error before it", n)
		}
		switch dir {
		case '>':
			b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
			if err != nil {
				return fmt.Errorf("samtest: recording line %d: %w", n, err)
			}
			c, err := ga467.ParseCommand(b)
			if err != nil {
				return fmt.Errorf("samtest: recording line %d: %w", n, err)
			}
			pending = &c
		case '<':
			b, err := hex.DecodeString(strings.ReplaceAll(rest, " ", ""))
			if err != nil {
				return fmt.Errorf("samtest: recording line %d: %w", n, err)
			}
			rp, err := ga467.ParseReply(b)
			if err != nil {
				return fmt.Errorf("samtest: recording line %d: %w", n, err)
			}
			rec = append(rec, Step{Cmd: *pending, Reply: rp})
			pending = nil
		case '!':
			if rest == "" {
				return fmt.Errorf("samtest: recording line %d: empty error", n)
			}
			rec = append(rec, Step{Cmd: *pending, Err: rest})
			pending = nil
		default:
			return fmt.Errorf("samtest: recording line %d: starts with %q; a line starts with > (host frame), < (reply) or ! (error)", n, dir)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("samtest: recording: %w", err)
	}
	if pending != nil {
		return fmt.Errorf("samtest: recording ends with a host frame without a reply or error")
	}
	*r = rec
	return nil
}

// ReadRecording parses the text form of a recording.
func ReadRecording(rd io.Reader) (Recording, error) {
	text, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	var r Recording
	return r, r.UnmarshalText(text)
}

// Recorder is a sam.Transport that passes every Transact to another one
// and records it. It is safe for concurrent use.
type Recorder struct {
	tr sam.Transport

	mu  sync.Mutex // mu guards rec
	rec Recording
}

var _ sam.Transport = (*Recorder)(nil)

// NewRecorder returns a Recorder in front of tr.
func NewRecorder(tr sam.Transport) *Recorder { return &Recorder{tr: tr} }

// Transact implements sam.Transport.
func (r *Recorder) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	rp, err := r.tr.Transact(ctx, cmd)
	s := Step{Cmd: cloneCommand(cmd)}
	if err != nil {
		s.Err = err.Error()
	} else {
		s.Reply = rp
		s.Reply.Data = bytes.Clone(rp.Data)
	}
	r.mu.Lock()
	r.rec = append(r.rec, s)
	r.mu.Unlock()
	return rp, err
}

// Close implements sam.Transport: it closes the recorded transport.
func (r *Recorder) Close() error { return r.tr.Close() }

// Recording returns what has been recorded so far.
func (r *Recorder) Recording() Recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(Recording(nil), r.rec...)
}

// Player is a sam.Transport that replays a Recording: each Transact must
// carry the next recorded command and gets the recorded reply or error.
// The first command that differs fails with an error wrapping ErrMismatch,
// and so does every Transact after it. It is safe for concurrent use.
type Player struct {
	mu     sync.Mutex // mu guards everything below
	rec    Recording
	next   int
	failed error
	closed bool
}

var _ sam.Transport = (*Player)(nil)

// Playback returns a Player of rec.
func Playback(rec Recording) *Player { return &Player{rec: rec} }

// Transact implements sam.Transport. A recorded error is replayed as an
// error with the recorded text that wraps the errors of packages sam,
// ga467, context and io whose text it contains, so that errors.Is still
// classifies it.
func (p *Player) Transact(ctx context.Context, cmd ga467.Command) (ga467.Reply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ga467.Reply{}, fmt.Errorf("samtest: playback: %v: %w", cmd, sam.ErrClosed)
	case p.failed != nil:
		return ga467.Reply{}, p.failed
	case p.next == len(p.rec):
		p.failed = fmt.Errorf("%w: step %d: got %s after the end of the recording", ErrMismatch, p.next, commandText(cmd))
		return ga467.Reply{}, p.failed
	case !sameCommand(p.rec[p.next].Cmd, cmd):
		p.failed = fmt.Errorf("%w: step %d: got %s, recorded %s", ErrMismatch, p.next, commandText(cmd), commandText(p.rec[p.next].Cmd))
		return ga467.Reply{}, p.failed
	}
	if err := ctx.Err(); err != nil {
		return ga467.Reply{}, err
	}
	s := p.rec[p.next]
	p.next++
	if s.Err != "" {
		return ga467.Reply{}, replayedError(s.Err)
	}
	r := s.Reply
	r.Data = bytes.Clone(r.Data)
	return r, nil
}

// Close implements sam.Transport.
func (p *Player) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// Verify returns nil if the whole recording was played and no command
// differed; otherwise an error wrapping ErrMismatch or ErrUnmet.
func (p *Player) Verify() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	if left := len(p.rec) - p.next; left > 0 {
		return fmt.Errorf("%w: %d of %d recorded steps not played, next %s",
			ErrUnmet, left, len(p.rec), commandText(p.rec[p.next].Cmd))
	}
	return nil
}

// known are the errors a replayed error text is matched against.
var known = []error{
	sam.ErrTimeout, sam.ErrGone, sam.ErrTransport, sam.ErrProtocol, sam.ErrCardLink, sam.ErrClosed,
	ga467.ErrTimeout, ga467.ErrChecksum, ga467.ErrFrameTooLong,
	context.DeadlineExceeded, context.Canceled,
	io.EOF, io.ErrUnexpectedEOF, io.ErrClosedPipe,
}

// playedError is an error replayed from its text.
type playedError struct {
	text  string
	wraps []error
}

func (e *playedError) Error() string   { return e.text }
func (e *playedError) Unwrap() []error { return e.wraps }

// replayedError rebuilds an error from its text: it wraps every known
// error whose text is one of the ": "-separated parts of text.
func replayedError(text string) error {
	e := &playedError{text: text}
	for _, k := range known {
		s := k.Error()
		if text == s || strings.HasPrefix(text, s+": ") || strings.HasSuffix(text, ": "+s) || strings.Contains(text, ": "+s+": ") {
			e.wraps = append(e.wraps, k)
		}
	}
	return e
}
