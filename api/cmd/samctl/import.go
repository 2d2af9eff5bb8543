package main

// samctl blacklist import: a card list of any size sent as parts of whole
// lines (one request each, see api/admin/import.go), with a progress bar.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/samrack/samrack/api/admin"
)

// Import defaults.
const (
	defaultPartSize = 8 << 20 // bytes of a part: about 470,000 lines, a second or two of work
	maxShownBad     = 10      // bad lines printed by the human summary
)

// exitBadLines is samctl blacklist import's exit status when the list had
// bad lines (the good ones are imported).
const exitBadLines = 3

// importOptions tune importList.
type importOptions struct {
	Reason   string
	PartSize int64         // bytes of a part (cut at the next line end); default defaultPartSize
	Progress io.Writer     // where progress goes; nil for none
	Bar      bool          // a bar redrawn in place (a terminal) rather than plain lines
	Every    time.Duration // how often progress is drawn; default 200 ms for a bar, 10 s for lines
	Now      func() time.Time
	// Retries is how many times a part is sent again after a failure that
	// may pass (a 5xx answer, a broken connection: leadership moved, the
	// appliance restarted), waiting Backoff (default 1 s), doubled each
	// time. Only a list that can be read again (a file) is retried.
	Retries int
	Backoff time.Duration
}

// importSummary is what an import did, over all its parts.
type importSummary struct {
	Lines    int64           `json:"lines"`
	Cards    int64           `json:"cards"`
	New      int64           `json:"new"`
	Present  int64           `json:"present"`
	Bad      int64           `json:"bad"`
	BadLines []admin.BadLine `json:"bad_lines,omitempty"` // the first admin.MaxBadLinesReported
	Parts    int             `json:"parts"`
	Chunks   int             `json:"chunks"`
	Retries  int             `json:"retries,omitempty"` // parts sent again after a failure
	Count    int             `json:"count"`             // cards on the blacklist after
	Seconds  float64         `json:"seconds"`
}

func (s *importSummary) add(r admin.ImportResult) {
	s.Lines += r.Lines
	s.Cards += r.Cards
	s.New += r.New
	s.Present += r.Present
	s.Bad += r.Bad
	for _, b := range r.BadLines {
		if len(s.BadLines) < admin.MaxBadLinesReported {
			s.BadLines = append(s.BadLines, b)
		}
	}
	s.Parts++
	s.Chunks += r.Chunks
	s.Count = r.Count
}

// partReader reads one part of a list: limit bytes, then on to the end of
// the line it is in. It counts bytes and line ends for the progress.
type partReader struct {
	br    *bufio.Reader
	limit int64
	n     int64
	last  byte // last byte read
	done  bool
	prog  *importProgress
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.done || len(b) == 0 {
		if p.done {
			return 0, io.EOF
		}
		return 0, nil
	}
	var n int
	var err error
	if p.n < p.limit {
		n, err = p.br.Read(b[:min(int64(len(b)), p.limit-p.n)])
	} else if p.last != '\n' {
		// Past the limit: finish the line (bounded by b; the next call goes on).
		for n < len(b) {
			c, rerr := p.br.ReadByte()
			if rerr != nil {
				err = rerr
				break
			}
			b[n] = c
			n++
			if c == '\n' {
				p.done = true
				break
			}
		}
	} else {
		p.done = true
	}
	if n > 0 {
		p.last = b[n-1]
		p.n += int64(n)
		p.prog.bytes.Add(int64(n))
		p.prog.lines.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
	}
	if err == io.EOF {
		p.done = true
		if n > 0 {
			return n, nil
		}
	}
	if p.done && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

// importList sends the card list r (size bytes, or -1 if unknown) as parts
// and adds up the answers. A failed part stops the import: the parts
// before it, and whole chunks of it, are applied, and running the same
// import again completes it (the cards already imported count as present).
func importList(ctx context.Context, c *admin.Client, r io.Reader, size int64, opt importOptions) (importSummary, error) {
	if opt.PartSize <= 0 {
		opt.PartSize = defaultPartSize
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var sum importSummary
	prog := &importProgress{size: size, start: opt.Now(), now: opt.Now, bar: opt.Bar, w: opt.Progress}
	stop := prog.run(opt.Every)
	br := bufio.NewReaderSize(r, 64<<10)
	seeker, _ := r.(io.Seeker)
	var offset int64 // of the next part in r
	if seeker != nil {
		var err error
		if offset, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	line := int64(1) // number of the next part's first line
	fail := func(err error) (importSummary, error) {
		stop()
		sum.Seconds = opt.Now().Sub(prog.start).Seconds()
		if sum.Parts > 0 {
			err = fmt.Errorf("%w (lines before %d are imported; run the same import again to complete it)", err, line)
		}
		return sum, err
	}
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		} else if err != nil {
			return fail(fmt.Errorf("reading the card list: %w", err))
		}
		backoff := opt.Backoff
		if backoff <= 0 {
			backoff = time.Second
		}
		for attempt := 0; ; attempt++ {
			part := &partReader{br: br, limit: opt.PartSize, prog: prog}
			res, err := c.ImportPart(ctx, part, line, opt.Reason)
			if err == nil {
				sum.add(res)
				offset += part.n
				line += res.Lines
				prog.setLines(line - 1)
				break
			}
			if attempt >= opt.Retries || seeker == nil || !retriable(err) || ctx.Err() != nil {
				return fail(err)
			}
			// Send the part again: whole chunks it applied count as present.
			sum.Retries++
			prog.bytes.Add(-part.n)
			prog.setLines(line - 1)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fail(ctx.Err())
			}
			backoff *= 2
			if _, err := seeker.Seek(offset, io.SeekStart); err != nil {
				return fail(fmt.Errorf("reading the card list again: %w", err))
			}
			br.Reset(r)
		}
	}
	stop()
	sum.Seconds = opt.Now().Sub(prog.start).Seconds()
	if sum.Parts == 0 {
		return sum, errors.New("the card list is empty")
	}
	return sum, nil
}

// retriable reports whether a part that failed with err may pass if sent
// again: a 5xx answer or no answer at all, not a refusal.
func retriable(err error) bool {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// importProgress draws the progress of an import: bytes and lines sent
// (the appliance reads them only as fast as it applies them).
type importProgress struct {
	bytes, lines atomic.Int64
	size         int64 // -1 if unknown
	start        time.Time
	now          func() time.Time
	bar          bool
	w            io.Writer
	mu           sync.Mutex // guards drawn: the line width on screen
	drawn        int
}

// setLines corrects the line count after a part (a last line without a
// line end is counted by the server).
func (p *importProgress) setLines(n int64) { p.lines.Store(n) }

// run draws every d until the returned stop is called, which draws a last
// time and ends the line; stop waits for the drawing goroutine.
func (p *importProgress) run(d time.Duration) (stop func()) {
	if p.w == nil {
		return func() {}
	}
	if d <= 0 {
		d = 200 * time.Millisecond
		if !p.bar {
			d = 10 * time.Second
		}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			wg.Wait()
			p.draw(true)
		})
	}
}

func (p *importProgress) draw(final bool) {
	s := renderProgress(p.bytes.Load(), p.size, p.lines.Load(), p.now().Sub(p.start), p.bar)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.bar {
		if !final {
			fmt.Fprintln(p.w, "import:", s)
		}
		return
	}
	pad := max(p.drawn-len(s), 0)
	p.drawn = len(s)
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	if final {
		fmt.Fprintln(p.w)
	}
}

// renderProgress is one progress line: with a bar for a terminal, the
// share of the bytes (when the size is known), lines, lines/s and ETA.
func renderProgress(sent, size, lines int64, elapsed time.Duration, bar bool) string {
	var b strings.Builder
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(lines) / s
	}
	if size > 0 {
		frac := min(float64(sent)/float64(size), 1)
		if bar {
			const width = 30
			full := int(frac * width)
			b.WriteString("[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "] ")
		}
		fmt.Fprintf(&b, "%3.0f%% ", 100*frac)
	}
	fmt.Fprintf(&b, "%s lines, %s lines/s", siCount(float64(lines)), siCount(rate))
	if size > 0 && sent > 0 && sent < size {
		eta := time.Duration(float64(elapsed) * float64(size-sent) / float64(sent))
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	} else {
		fmt.Fprintf(&b, ", %s", elapsed.Round(100*time.Millisecond))
	}
	return b.String()
}

func siCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (a *app) importCmd() *cobra.Command {
	var reason, progress string
	var partMiB, retries int
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Bulk-import a card list: one serial per line, optional ',reason', '#' comments ('-' reads stdin)",
		Long: `Imports a card list of any size: one card serial (16 hex digits) per line,
optionally followed by ',reason'; '#' starts a comment; blank lines are skipped.

The list is sent in parts of --part-size MiB, each cut at a line end; the
appliance applies it in chunks of at most 100,000 cards, each one raft log
entry applied whole or not at all. Bad lines are reported with their line
numbers (the first 10 here, 100 a part with --json) and the good lines
around them are imported.

A part that fails with a 5xx answer or a broken connection (leadership
moved, the appliance restarted) is sent again (--retries). Interrupted for
good (samctl or the appliance stopped, the network cut)? Run the same
import again: cards already imported are counted as already present.

Progress goes to stderr: a bar on a terminal, a plain line every 10 s
otherwise (--progress bar, lines or none to choose).

Exit status:
  0  every line imported (new or already present)
  3  the list has bad lines; all the good lines were imported
  1  the import failed or stopped: run it again to complete it`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			size := int64(-1)
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					size = fi.Size()
				}
				r = f
			}
			if partMiB < 1 || partMiB > 64 {
				return fmt.Errorf("--part-size %d: want 1–64 MiB", partMiB)
			}
			opt := importOptions{Reason: reason, PartSize: int64(partMiB) << 20, Retries: retries}
			errOut := cmd.ErrOrStderr()
			switch progress {
			case "auto":
				if f, ok := errOut.(*os.File); ok {
					opt.Progress, opt.Bar = f, isTerminal(f)
				} else {
					opt.Progress = errOut
				}
			case "bar", "lines":
				opt.Progress, opt.Bar = errOut, progress == "bar"
			case "none":
			default:
				return fmt.Errorf("--progress %q: want auto, bar, lines or none", progress)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			sum, err := importList(cmd.Context(), c, r, size, opt)
			if err != nil {
				if sum.Parts > 0 {
					printImportSummary(cmd.ErrOrStderr(), sum)
				}
				return err
			}
			if err := a.show(cmd, sum, func(w io.Writer) { printImportSummary(w, sum) }); err != nil {
				return err
			}
			if sum.Bad > 0 {
				return &exitError{exitBadLines, fmt.Errorf("%d bad line(s)", sum.Bad), true}
			}
			return nil
		},
	}
	imp.Flags().StringVar(&reason, "reason", "imported", "reason for lines that carry none")
	imp.Flags().StringVar(&progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal, else a line every 10 s), bar, lines or none")
	imp.Flags().IntVar(&partMiB, "part-size", defaultPartSize>>20, "MiB of the list sent per request (1–64)")
	imp.Flags().IntVar(&retries, "retries", 3, "times a part is sent again after a 5xx answer or a broken connection (FILE only, not stdin)")
	return imp
}

func printImportSummary(w io.Writer, s importSummary) {
	fmt.Fprintf(w, "%d line(s) in %d part(s), %.1f s: %d new, %d already present, %d bad\n",
		s.Lines, s.Parts, s.Seconds, s.New, s.Present, s.Bad)
	if s.Retries > 0 {
		fmt.Fprintf(w, "%d part(s) sent again after a failure (cards they had applied count as already present)\n", s.Retries)
	}
	if s.Bad > 0 {
		shown := s.BadLines[:min(len(s.BadLines), maxShownBad)]
		fmt.Fprintf(w, "bad lines (the first %d of %d):\n", len(shown), s.Bad)
		for _, b := range shown {
			fmt.Fprintf(w, "  line %d: %s\n", b.Line, b.Error)
		}
	}
	fmt.Fprintf(w, "%d card(s) on the blacklist\n", s.Count)
}
