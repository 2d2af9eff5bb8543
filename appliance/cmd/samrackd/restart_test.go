package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
)

// TestRestartedFollowerServesCurrentState: a follower that was down while
// the cluster took many writes answers its first request after a restart
// with all of them. raft hands a returning follower the leader's commit
// index in steps (capped at the follower's own last entry, 64 entries an
// append), so its own commit index says "caught up" long before it is;
// the appliance also waits for the leader's read index before it serves.
func TestRestartedFollowerServesCurrentState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samrackd processes")
	}
	ctx := context.Background()
	tmp := t.TempDir()
	ports := freePorts(t, 12)
	args := func(i int) []string {
		p := ports[4*i:]
		return []string{"--listen", fmt.Sprintf("127.0.0.1:%d", p[0]), "--admin", fmt.Sprintf("127.0.0.1:%d", p[1]),
			"--raft", fmt.Sprintf("127.0.0.1:%d", p[2]), "--link", fmt.Sprintf("127.0.0.1:%d", p[3])}
	}
	data := func(i int) string { return filepath.Join(tmp, fmt.Sprintf("n%d", i+1)) }
	n1 := start(t, "n1", data(0), append(args(0), "--bootstrap")...)
	c1 := n1.client()
	n2 := start(t, "n2", data(1), append(args(1), "--join", n1.adminAddr(), "--token", token(t, c1, ""))...)
	n3 := start(t, "n3", data(2), append(args(2), "--join", n1.adminAddr(), "--token", token(t, c1, ""))...)
	n3.client()
	waitFor(t, "three voters", 60*time.Second, func() bool { _, v := leaderOf(members(t, c1)); return v == 3 })
	leader, _ := leaderOf(members(t, c1))
	if leader == nodeID(t, n3) {
		t.Skip("n3 leads: the test needs it to return as a follower") // rare: n1 bootstraps and leads
	}

	n3.stop()
	const writes = 400 // each its own raft entry: several appends' worth
	for i := range writes {
		if err := c1.Do(ctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{fmt.Sprintf("%016x", 0x5000+i)}, Reason: "restart"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var want admin.CardList
	if err := c1.Do(ctx, "GET", "/v1/blacklist/cards", nil, &want); err != nil || want.Count < writes {
		t.Fatalf("leader: %+v %v", want.Count, err)
	}

	n3 = start(t, "n3 again", data(2), args(2)...)
	var got admin.CardList
	if err := n3.client().Do(ctx, "GET", "/v1/blacklist/cards", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != want.Count {
		t.Fatalf("restarted follower's first answer: %d cards, the leader had %d before it started", got.Count, want.Count)
	}
	for _, p := range []*proc{n1, n2, n3} {
		p.stop()
	}
}
