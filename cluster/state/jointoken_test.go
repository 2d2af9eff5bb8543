package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func putToken(t *testing.T, m *Memory, id, secret string, expires time.Time) {
	t.Helper()
	h := sha256.Sum256([]byte(secret))
	v, _ := json.Marshal(JoinToken{Hash: hex.EncodeToString(h[:]), Expires: expires, By: "alice"})
	if err := m.Apply(context.Background(), &Command{Version: CommandVersion, Op: OpSetConfig, Key: JoinTokenPrefix + id, Value: string(v)}); err != nil {
		t.Fatal(err)
	}
}

func TestUseJoinToken(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	m := NewMemory(WithClock(func() time.Time { return now }))
	defer m.Close()
	ctx := context.Background()
	putToken(t, m, "t1", "secret", now.Add(10*time.Minute))
	putToken(t, m, "t2", "secret2", now.Add(-time.Second))

	use := func(id, secret, node string) error {
		return m.Apply(ctx, UseJoinTokenCommand(id, sha256.Sum256([]byte(secret)), node))
	}
	for _, tc := range []struct {
		id, secret, node, want string
	}{
		{"nope", "secret", "n2", "unknown token"},
		{"t1", "wrong", "n2", "secret does not match"},
		{"t2", "secret2", "n2", "expired"},
		{"t1", "secret", "n2", ""},
		{"t1", "secret", "n3", "already used by node n2"},
	} {
		err := use(tc.id, tc.secret, tc.node)
		if tc.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.id, err)
			}
			continue
		}
		if !errors.Is(err, ErrJoinToken) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s/%s: got %v, want ErrJoinToken %q", tc.id, tc.secret, err, tc.want)
		}
	}
	tok, err := ParseJoinToken(m.ConfigPrefix(JoinTokenPrefix)["join.t1"])
	if err != nil || tok.UsedBy != "n2" || !tok.UsedAt.Equal(now) {
		t.Fatalf("stored token %+v %v", tok, err)
	}
	// The wire form round-trips, and bad values are refused before raft.
	c, _ := Prepare(ctx, UseJoinTokenCommand("t1", sha256.Sum256(nil), "n9"), func() time.Time { return now })
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil || d.Key != c.Key || d.Value != c.Value {
		t.Fatalf("decode %+v %v", d, err)
	}
	for _, bad := range []*Command{
		{Version: CommandVersion, Op: OpUseJoinToken, At: now, Key: "node.x", Value: strings.Repeat("0", 64) + " n"},
		{Version: CommandVersion, Op: OpUseJoinToken, At: now, Key: "join.x", Value: "zz n"},
		{Version: CommandVersion, Op: OpUseJoinToken, At: now, Key: "join.x", Value: strings.Repeat("0", 64) + " "},
		{Version: CommandVersion, Op: OpUseJoinToken, At: now, Key: "join.x", Value: strings.Repeat("0", 64) + " n", Serial: "r"},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
