package appliance

import (
	"strings"
	"testing"
	"time"
)

func TestParseToken(t *testing.T) {
	tok, s, err := newToken("sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseToken(s)
	if err != nil || got != tok {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, tok)
	}
	for _, bad := range []string{"", "srj1.", "srj2." + s[5:], s[:len(s)-1], s + "0", strings.Replace(s, ".", ":", -1),
		s[:5] + "zz" + s[7:], s[:22] + ".x" + s[23:]} {
		if _, err := parseToken(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	_, s, _ := newToken("sha256:" + strings.Repeat("cd", 32))
	f.Add(s)
	f.Add("srj1.a.b.c")
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := parseToken(in)
		if err != nil {
			return
		}
		if len(tok.id) != 16 || len(tok.secret) != 32 || len(tok.pin) != 71 {
			t.Fatalf("accepted %q as %+v", in, tok)
		}
	})
}

func TestJoinLimiter(t *testing.T) {
	l := &joinLimiter{fail: map[string][]time.Time{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range joinFailures {
		if !l.allowed("192.0.2.1", now) {
			t.Fatalf("refused after %d failures", i)
		}
		l.failed("192.0.2.1", now)
	}
	if l.allowed("192.0.2.1", now.Add(time.Second)) {
		t.Fatal("allowed after the failure budget")
	}
	if !l.allowed("192.0.2.2", now) {
		t.Fatal("another source refused")
	}
	if !l.allowed("192.0.2.1", now.Add(joinFailureWindow)) {
		t.Fatal("still refused after the window")
	}
}
