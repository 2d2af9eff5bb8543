package admin

// Bulk import of a card list: POST /v1/blacklist/cards/import.
//
// The body is read line by line (state.CardListScanner), never held whole:
// valid lines are grouped into AddCards commands of at most
// state.MaxCardsPerCommand cards (state.CardChunker), each one raft log
// entry of at most state.MaxCardCommandBytes, applied whole or not at all;
// bad lines are counted and the first MaxBadLinesReported are listed with
// their line numbers, and the good lines around them are imported. Up to
// ImportInFlight chunks are proposed at a time (state.Proposer), so the
// leader batches them into its log writes.
//
// A request is bounded by MaxImport bytes; a bigger list is sent as parts
// (samctl cuts it at line boundaries), each with ?first_line= so that line
// numbers are those of the whole file. An import cut short (connection
// dropped, appliance restarted) leaves whole chunks applied; sending the
// same list again completes it, and the answer counts the cards already on
// the list as present. Re-adding a card refreshes its reason and time; a
// card on several lines of one list with different reasons keeps the
// reason of one of them (the same on every replica).
//
// The answer is one JSON ImportResult per request rather than a stream of
// progress records: a part takes about a second, so the client's progress
// (bytes it has sent, which the server reads only as fast as it applies)
// is as fine as a stream would give, and an error stays an HTTP status.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/cluster/state"
)

// Import limits.
const (
	DefaultMaxImport      = 64 << 20 // bytes of one import request
	DefaultImportInFlight = 4        // chunks proposed and not yet applied
	MaxBadLinesReported   = 100      // bad lines listed per request (all are counted)
	maxFirstLine          = 1 << 50
)

// ImportResult is the answer to an import request (one part of a list).
type ImportResult struct {
	FirstLine int64     `json:"first_line"` // number of the request's first line in the list
	Lines     int64     `json:"lines"`      // lines read, blank and comment lines included
	Cards     int64     `json:"cards"`      // lines holding a valid card
	New       int64     `json:"new"`        // cards newly on the blacklist
	Present   int64     `json:"present"`    // valid lines whose card was already on it (repeats included)
	Bad       int64     `json:"bad"`        // bad lines, all counted
	BadLines  []BadLine `json:"bad_lines,omitempty"`
	Chunks    int       `json:"chunks"` // chunks applied, each one log entry
	Count     int       `json:"count"`  // cards on the blacklist after
}

// BadLine is a bad line of a card list and what is wrong with it.
type BadLine struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

type proposed struct {
	p     state.Pending
	cards int
}

func (s *Server) importCards(w http.ResponseWriter, r *http.Request) error {
	limit := s.MaxImport
	if limit <= 0 {
		limit = DefaultMaxImport
	}
	inFlight := s.ImportInFlight
	if inFlight <= 0 {
		inFlight = DefaultImportInFlight
	}
	q := r.URL.Query()
	for k := range q {
		if k != "reason" && k != "first_line" {
			return errorf(http.StatusBadRequest, "unknown parameter %q (reason, first_line; the actor is taken from your certificate)", k)
		}
	}
	first := int64(1)
	if v := q.Get("first_line"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > maxFirstLine {
			return errorf(http.StatusBadRequest, "first_line %q: want a line number from 1", v)
		}
		first = n
	}
	reason := q.Get("reason")
	if reason == "" {
		reason = "imported"
	}
	probe := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, At: s.now(), Reason: reason, By: s.actor(r), Cards: []state.CardSerial{{7: 1}}}
	if err := probe.Validate(); err != nil {
		return err
	}

	ctx := r.Context()
	sc := state.NewCardListScanner(http.MaxBytesReader(w, r.Body, limit), first)
	ch := &state.CardChunker{DefaultReason: reason, By: s.actor(r)}
	res := ImportResult{FirstLine: first}
	var queue []proposed
	wait := func() error {
		p := queue[0]
		queue = queue[1:]
		out, err := p.p.Wait()
		if err != nil {
			return err
		}
		res.New += int64(out.Cards)
		res.Present += int64(p.cards - out.Cards)
		res.Chunks++
		return nil
	}
	propose := func(cmds []*state.Command) error {
		for _, c := range cmds {
			for len(queue) >= inFlight {
				if err := wait(); err != nil {
					return err
				}
			}
			p, err := state.Propose(ctx, s.State, c)
			if err != nil {
				return err
			}
			queue = append(queue, proposed{p, len(c.Cards)})
		}
		return nil
	}
	var readErr, applyErr error
	for readErr == nil && applyErr == nil {
		e, line, err := sc.Next()
		switch {
		case err == io.EOF:
			applyErr = propose(ch.Flush())
			readErr = io.EOF
		case errors.Is(err, state.ErrBadCardList):
			res.Bad++
			if len(res.BadLines) < MaxBadLinesReported {
				msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("%v: line %d: ", state.ErrBadCardList, line))
				res.BadLines = append(res.BadLines, BadLine{Line: line, Error: msg})
			}
		case err != nil:
			readErr = err // the pending chunks are dropped: the upload is incomplete
		default:
			res.Cards++
			applyErr = propose(ch.Add(e))
		}
	}
	for len(queue) > 0 { // every proposed chunk is waited for, whatever happened
		if err := wait(); err != nil && applyErr == nil {
			applyErr = err
		}
	}
	res.Lines = sc.Line() - first + 1
	res.Count = s.State.CardCount()
	last := first + res.Lines - 1
	detail := fmt.Sprintf("lines %d-%d: %d new, %d already present, %d bad, %d chunk(s)", first, last, res.New, res.Present, res.Bad, res.Chunks)
	if readErr == io.EOF {
		readErr = nil
	}
	if err := errors.Join(readErr, applyErr); err != nil {
		status := http.StatusServiceUnavailable
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			status = http.StatusRequestEntityTooLarge
			err = fmt.Errorf("request body larger than %d bytes (send the list in parts: samctl does)", mbe.Limit)
		case readErr != nil:
			status = http.StatusBadRequest
			err = fmt.Errorf("upload cut: %w", readErr)
		case errors.Is(err, state.ErrInvalidCommand):
			status = http.StatusBadRequest
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			status = http.StatusRequestTimeout
		}
		s.record(r, audit.Event{Kind: "blacklist.card.import", Count: int(res.New), Detail: detail + "; stopped: " + oneLineErr(err)})
		return &Error{Status: status, Err: err, Msg: fmt.Sprintf(
			"import stopped after line %d: %v; %d chunk(s) applied whole (%d new cards), any other either whole or not at all: send the same list again to complete it",
			last, err, res.Chunks, res.New)}
	}
	if res.Cards == 0 && res.Bad == 0 && first == 1 {
		return errorf(http.StatusBadRequest, "the card list holds no cards")
	}
	s.record(r, audit.Event{Kind: "blacklist.card.import", Count: int(res.New), Detail: detail})
	return writeJSON(w, http.StatusOK, res)
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// ImportPart sends one part of a card list (whole lines; firstLine is the
// number of its first line in the list, from 1) and returns the answer.
// reason is for lines without one ("" for the server's default).
func (c *Client) ImportPart(ctx context.Context, part io.Reader, firstLine int64, reason string) (ImportResult, error) {
	q := url.Values{"first_line": {strconv.FormatInt(firstLine, 10)}}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out ImportResult
	err := c.Do(ctx, http.MethodPost, "/v1/blacklist/cards/import?"+q.Encode(), CardListBody{Reader: part}, &out)
	return out, err
}
