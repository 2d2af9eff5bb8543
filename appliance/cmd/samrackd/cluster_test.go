package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/state"
)

// The cluster tests run real samrackd processes (this test binary
// re-executed as samrackd) with raft over TCP and mutual TLS on loopback:
// join, forwarding, leader transfer, a killed leader, remove, refused
// joins and peers, backup and restore.

const childEnv = "SAMRACKD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		i := slices.Index(os.Args, "--")
		os.Args = append([]string{"samrackd"}, os.Args[i+1:]...)
		main()
		childLeakCheck() // chaos_test.go
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is one samrackd process.
type proc struct {
	t    testing.TB
	name string
	data string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // after done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs samrackd with a fresh or given data directory, every port
// chosen by the kernel, two virtual SAMs.
func start(t *testing.T, name, data string, extra ...string) *proc {
	t.Helper()
	args := []string{"-test.run=^$", "--", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--raft", "127.0.0.1:0", "--link", "127.0.0.1:0", "--sim-sams", "2", "--log-level", "warn"}
	return launch(t, name, data, exec.Command(os.Args[0], append(args, extra...)...))
}

// launch starts cmd, this test binary run as samrackd on the data
// directory data (its old credentials file removed, so that the test
// reads the new one), with its output collected; it is killed in
// t.Cleanup, and its output logged if the test failed.
func launch(t testing.TB, name, data string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, data: data, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	if p.cmd.Env == nil { // a caller may set its own extra variables
		p.cmd.Env = os.Environ()
	}
	p.cmd.Env = append(p.cmd.Env, childEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	os.Remove(filepath.Join(data, admin.CredentialsFile))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned by p: stop waits for it
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, p.out)
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		// SIGQUIT: the Go runtime prints every goroutine's stack and
		// exits, which says where the stop hangs.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		p.t.Fatalf("%s did not stop on SIGTERM within 30 s (its goroutines, after a SIGQUIT, at the end):\n%s", p.name, p.out)
	}
	if p.err != nil {
		p.t.Fatalf("%s exited with %v:\n%s", p.name, p.err, p.out)
	}
}

// exited waits for the process to end by itself (a refused join).
func (p *proc) exited() string {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s still runs:\n%s", p.name, p.out)
	}
	if p.err == nil {
		p.t.Fatalf("%s exited 0:\n%s", p.name, p.out)
	}
	return p.out.String()
}

// client waits for the process's admin credentials and returns a client.
func (p *proc) client() *admin.Client {
	p.t.Helper()
	path := filepath.Join(p.data, admin.CredentialsFile)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(90 * time.Second)
	for {
		if c, err := admin.LoadCredentials(path); err == nil {
			cl, err := admin.NewClient(c, "")
			if err != nil {
				p.t.Fatal(err)
			}
			return cl
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.out)
		case <-deadline:
			p.t.Fatalf("%s: no admin credentials:\n%s", p.name, p.out)
		case <-tick.C:
		}
	}
}

func (p *proc) adminAddr() string {
	return strings.TrimPrefix(p.client().Base, "https://")
}

func members(t testing.TB, c *admin.Client) []admin.Member {
	t.Helper()
	var ms []admin.Member
	if err := c.Do(context.Background(), "GET", "/v1/cluster/members", nil, &ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

// waitFor polls cond every 20 ms until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
	return time.Since(start)
}

func leaderOf(ms []admin.Member) (string, int) {
	id, voters := "", 0
	for _, m := range ms {
		if m.Role == "leader" {
			id = m.ID
		}
		if m.Role != "non-voter" && m.Error == "" {
			voters++
		}
	}
	return id, voters
}

func token(t testing.TB, c *admin.Client, ttl string) string {
	t.Helper()
	var tok admin.Token
	if err := c.Do(context.Background(), "POST", "/v1/cluster/tokens", admin.TokenRequest{TTL: ttl}, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

func nodeID(t testing.TB, p *proc) string {
	b, err := os.ReadFile(filepath.Join(p.data, "raft", "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samrackd processes")
	}
	ctx := context.Background()
	tmp := t.TempDir()
	n1 := start(t, "n1", filepath.Join(tmp, "n1"), "--bootstrap")
	c1 := n1.client()
	if _, voters := leaderOf(members(t, c1)); voters != 1 {
		t.Fatalf("bootstrap: %+v", members(t, c1))
	}

	// Join: a second appliance with a token from the first.
	tok := token(t, c1, "")
	begin := time.Now()
	n2 := start(t, "n2", filepath.Join(tmp, "n2"), "--join", n1.adminAddr(), "--token", tok)
	c2 := n2.client()
	waitFor(t, "two voters", 60*time.Second, func() bool { _, v := leaderOf(members(t, c1)); return v == 2 })
	t.Logf("join: %v from process start to voter (a -race build)", time.Since(begin).Round(time.Millisecond))

	// Refused joins, each with its reason, and nothing joined.
	bad := []struct{ name, token, want string }{
		{"reused token", tok, "already used by node " + nodeID(t, n2)},
		{"wrong secret", tok[:22] + strings.Repeat("0", 32) + tok[54:], "secret does not match"},
		{"expired token", token(t, c1, "1ns"), "expired at"},
		{"foreign CA pin", tok[:len(tok)-64] + strings.Repeat("ab", 32), "not the one the token names"},
		{"malformed token", "srj1.nope", "want srj1.<id>.<secret>.<ca-pin>"},
	}
	for _, b := range bad {
		p := start(t, b.name, filepath.Join(tmp, strings.ReplaceAll(b.name, " ", "-")), "--join", n2.adminAddr(), "--token", b.token)
		if out := p.exited(); !strings.Contains(out, b.want) {
			t.Errorf("%s: output %q, want %q", b.name, out, b.want)
		}
	}
	if _, v := leaderOf(members(t, c1)); v != 2 {
		t.Fatalf("a refused join changed the membership: %+v", members(t, c1))
	}

	// A third node joins through a follower (the join is forwarded).
	follower := n2
	if id, _ := leaderOf(members(t, c1)); id == nodeID(t, n2) {
		follower = n1
	}
	n3 := start(t, "n3", filepath.Join(tmp, "n3"), "--join", follower.adminAddr(), "--token", token(t, c2, "5m"))
	c3 := n3.client()
	waitFor(t, "three voters", 60*time.Second, func() bool { _, v := leaderOf(members(t, c1)); return v == 3 })

	// Writes anywhere: a write on each node lands in the cluster's state,
	// audited with the operator (not the forwarding node).
	for i, c := range []*admin.Client{c1, c2, c3} {
		if err := c.Do(ctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{fmt.Sprintf("%016x", i+1)}, Reason: "stolen"}, nil); err != nil {
			t.Fatalf("write on n%d: %v", i+1, err)
		}
	}
	for i, c := range []*admin.Client{c1, c2, c3} {
		cc := *c
		cc.Consistent = true
		var l admin.CardList
		if err := cc.Do(ctx, "GET", "/v1/blacklist/cards", nil, &l); err != nil || l.Count != 3 {
			t.Fatalf("consistent read on n%d: %d cards, %v", i+1, l.Count, err)
		}
	}
	// The inventory of every node is replicated.
	waitFor(t, "inventory of three nodes", 30*time.Second, func() bool {
		var inv []state.Slot
		c3.Do(ctx, "GET", "/v1/inventory", nil, &inv)
		return len(inv) == 6
	})

	// Leader transfer to a named follower.
	procs := map[string]*proc{nodeID(t, n1): n1, nodeID(t, n2): n2, nodeID(t, n3): n3}
	clients := map[string]*admin.Client{nodeID(t, n1): c1, nodeID(t, n2): c2, nodeID(t, n3): c3}
	old, _ := leaderOf(members(t, c1))
	var target string
	for id := range procs {
		if id != old {
			target = id
			break
		}
	}
	begin = time.Now()
	var tr map[string]string
	if err := c3.Do(ctx, "POST", "/v1/cluster/transfer-leader", admin.TransferRequest{ID: target}, &tr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new leader", 30*time.Second, func() bool { id, _ := leaderOf(members(t, clients[target])); return id == target })
	t.Logf("leader transfer %s → %s: %v", old, target, time.Since(begin).Round(time.Millisecond))

	// Peers without a node certificate of this CA are cut off during the
	// handshake; a malformed peer is dropped; raft goes on.
	raftAddr := ""
	for _, m := range members(t, c1) {
		if m.ID == nodeID(t, n1) {
			raftAddr = m.Raft
		}
	}
	foreign, _ := pki.LoadOrCreate(filepath.Join(tmp, "foreign"), nil)
	fcert, _ := foreign.Node("intruder")
	own, _ := pki.LoadOrCreate(filepath.Join(n1.data, "pki"), nil) // the installation CA, read from n1's files
	opPEM, opKey, _ := own.IssueOperator("mallory")
	opCert, _ := tls.X509KeyPair(opPEM, opKey)
	for name, cert := range map[string]tls.Certificate{"foreign CA": fcert, "operator, not node": opCert} {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr,
			&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's refusal arrives after the client's Finished
			conn.Close()
		}
		if err == nil {
			t.Errorf("%s: the raft port accepted it", name)
		}
	}
	if conn, err := net.Dial("tcp", raftAddr); err == nil {
		conn.Write([]byte("GET / HTTP/1.1\r\n\r\n\x00\xff garbage"))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 64)); err == nil {
			t.Error("a malformed peer got an answer")
		}
		conn.Close()
	}
	if err := c1.Do(ctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{"00000000000000ff"}, Reason: "after"}, nil); err != nil {
		t.Fatalf("write after bad peers: %v", err)
	}

	// A follower's backup is its applied state: wait until it has the
	// write just made through n1 (a backup is not a consistent read).
	waitFor(t, "the follower n2 to apply the last write", 10*time.Second, func() bool {
		var l admin.CardList
		return c2.Do(ctx, "GET", "/v1/blacklist/cards", nil, &l) == nil && l.Count == 4
	})
	// Backup from a follower; a truncated or corrupt restore is refused and
	// changes nothing; a good one restores.
	var backup bytes.Buffer
	if err := c2.Download(ctx, "/v1/cluster/snapshot", &backup); err != nil {
		t.Fatal(err)
	}
	if err := state.VerifySnapshot(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := c1.Do(ctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{"0000000000000abc"}, Reason: "late"}, nil); err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(backup.Bytes())
	corrupt[len(corrupt)/2] ^= 0xff
	for name, b := range map[string][]byte{"truncated": backup.Bytes()[:backup.Len()/2], "corrupt": corrupt, "empty": nil} {
		err := c3.Upload(ctx, "POST", "/v1/cluster/snapshot", admin.SnapshotType, bytes.NewReader(b), nil)
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Msg, "nothing was changed") {
			t.Errorf("%s snapshot: %v", name, err)
		}
	}
	var l admin.CardList
	c1c := *c1
	c1c.Consistent = true
	if c1c.Do(ctx, "GET", "/v1/blacklist/cards", nil, &l); l.Count != 5 {
		t.Fatalf("after refused restores: %d cards, want 5", l.Count)
	}
	if err := c3.Upload(ctx, "POST", "/v1/cluster/snapshot", admin.SnapshotType, bytes.NewReader(backup.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	waitRestored(t, map[string]*admin.Client{"n1": c1, "n2": c2, "n3": c3}, 4)

	// A killed leader: the other two elect a new one and take writes; then
	// the dead node is removed.
	dead, _ := leaderOf(members(t, c1))
	begin = time.Now()
	procs[dead].kill()
	var alive []*admin.Client
	for id, c := range clients {
		if id != dead {
			alive = append(alive, c)
		}
	}
	waitFor(t, "a new leader after the kill", 30*time.Second, func() bool {
		var ms []admin.Member
		if alive[0].Do(ctx, "GET", "/v1/cluster/members", nil, &ms) != nil {
			return false
		}
		id, _ := leaderOf(ms)
		return id != "" && id != dead
	})
	t.Logf("failover after SIGKILL of the leader: %v to a new leader", time.Since(begin).Round(time.Millisecond))
	if err := alive[1].Do(ctx, "DELETE", "/v1/cluster/members/"+dead, nil, nil); err != nil {
		t.Fatalf("remove %s: %v", dead, err)
	}
	ms := members(t, alive[0])
	if len(ms) != 2 || slices.ContainsFunc(ms, func(m admin.Member) bool { return m.ID == dead }) {
		t.Fatalf("after remove: %+v", ms)
	}
	if err := alive[0].Do(ctx, "POST", "/v1/blacklist/cards", admin.AddCards{Cards: []string{"0000000000000def"}, Reason: "two"}, nil); err != nil {
		t.Fatalf("write with two nodes: %v", err)
	}
	// The removed node's certificate no longer passes the node endpoints.
	for id, p := range procs {
		if id != dead {
			p.stop()
		}
	}
}

// waitRestored waits up to 30 s for every node to serve the restored state
// (cards blacklisted cards). On a timeout it says which nodes do not, and
// what each node knows of raft: the member list as that node sees it
// (role, raft state, applied index, last contact), so that a node that
// never installed the leader's snapshot stands out from one whose reads
// are stale.
func waitRestored(t *testing.T, nodes map[string]*admin.Client, cards int) {
	t.Helper()
	ctx := context.Background()
	names := slices.Sorted(maps.Keys(nodes))
	lagging := func() []string {
		var out []string
		for _, n := range names {
			var l admin.CardList
			if err := nodes[n].Do(ctx, "GET", "/v1/blacklist/cards", nil, &l); err != nil || l.Count != cards {
				out = append(out, fmt.Sprintf("%s: %d cards, err %v", n, l.Count, err))
			}
		}
		return out
	}
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		lag := lagging()
		if len(lag) == 0 {
			return
		}
		if time.Since(start) > 30*time.Second {
			var b strings.Builder
			for _, n := range names {
				var ms []admin.Member
				err := nodes[n].Do(ctx, "GET", "/v1/cluster/members", nil, &ms)
				fmt.Fprintf(&b, "\n  members as %s sees them (err %v):", n, err)
				for _, m := range ms {
					fmt.Fprintf(&b, "\n    %s role=%s state=%s applied=%d last_contact=%s local=%v error=%q",
						m.ID, m.Role, m.State, m.AppliedIndex, m.LastContact, m.Local, m.Error)
				}
			}
			t.Fatalf("timed out after 30s waiting for the restored state (%d cards) on every node; not restored: %s%s",
				cards, strings.Join(lag, "; "), b.String())
		}
		<-tick.C
	}
}
