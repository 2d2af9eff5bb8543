package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Query selects audit events. Zero fields match everything.
type Query struct {
	// Kind matches the kind itself or, as a prefix ending at a dot, a
	// family: "blacklist" matches blacklist.card.add and blacklist.reader.remove.
	Kind  string
	Actor string
	Since time.Time // events at or after
	Until time.Time // events before
	N     int       // at most this many, the newest; default 100
}

// MaxQuery bounds Query.N.
const MaxQuery = 10000

// Match reports whether e is selected by q.
func (q Query) Match(e Event) bool {
	if q.Kind != "" && e.Kind != q.Kind && !strings.HasPrefix(e.Kind, strings.TrimSuffix(q.Kind, ".")+".") {
		return false
	}
	if q.Actor != "" && e.Actor != q.Actor {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	return true
}

// Query returns up to q.N matching events, newest first. With a File it
// reads the file and the rotated ones (File.1 … File.Keep), newest first,
// stopping at the first file older than q.Since; without one it searches
// the events kept in memory. A torn last line (a write in progress) is
// skipped.
func (l *Log) Query(q Query) ([]Event, error) {
	if q.N <= 0 {
		q.N = 100
	}
	q.N = min(q.N, MaxQuery)
	if l.cfg.File == "" {
		var out []Event
		for _, e := range l.Recent(len(l.ring)) {
			if q.Match(e) {
				out = append(out, e)
				if len(out) == q.N {
					break
				}
			}
		}
		return out, nil
	}
	out := []Event{}
	for i := 0; i <= l.cfg.Keep && len(out) < q.N; i++ {
		name := l.cfg.File
		if i > 0 {
			name = fmt.Sprintf("%s.%d", l.cfg.File, i)
		}
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				continue // being rotated
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		fi, err := f.Stat()
		if err == nil && !q.Since.IsZero() && fi.ModTime().Before(q.Since) {
			f.Close()
			break // its newest event is older than Since, and so are the older files'
		}
		var in []Event
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			if q.Match(e) {
				in = append(in, e)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", name, err)
		}
		slices.Reverse(in)
		out = append(out, in[:min(len(in), q.N-len(out))]...)
	}
	return out, nil
}

// pruneLocked applies the retention: rotated files beyond Keep (left by a
// larger Keep before) and, with MaxAge, rotated files whose newest event is
// older than MaxAge are deleted.
func (l *Log) pruneLocked() {
	for i := l.cfg.Keep + 1; ; i++ {
		if err := os.Remove(fmt.Sprintf("%s.%d", l.cfg.File, i)); err != nil {
			break
		}
	}
	if l.cfg.MaxAge <= 0 {
		return
	}
	cutoff := l.cfg.Now().Add(-l.cfg.MaxAge)
	for i := 1; i <= l.cfg.Keep; i++ {
		name := fmt.Sprintf("%s.%d", l.cfg.File, i)
		if fi, err := os.Stat(name); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(name)
		}
	}
}
