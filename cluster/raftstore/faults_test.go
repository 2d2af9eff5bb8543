package raftstore

// Fault tests on node processes (procs_test.go): SIGKILL of the leader,
// partitions through the FaultLayer, a Jepsen-style linearizability check
// of the card blacklist with porcupine, corrupt data after a power cut.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Operations of the blacklist model.
type opKind uint8

const (
	opAdd opKind = iota
	opRemove
	opCheck
)

func (k opKind) String() string { return [...]string{"add", "remove", "check"}[k] }

type linIn struct {
	kind opKind
	key  uint64
}

type linOut struct {
	changed int  // add, remove: cards newly added / taken off (0 or 1)
	present bool // check
	unknown bool // add, remove: no answer; it may or may not have happened
}

// blacklistModel: per card, is it blacklisted. add and remove return
// whether they changed it; check reads it. The history is partitioned by
// card. An operation with an unknown outcome has its return time at
// infinity and accepts any output: linearized before others it took
// effect, after all of them it did not.
var blacklistModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[uint64][]porcupine.Operation{}
		var keys []uint64
		for _, op := range h {
			k := op.Input.(linIn).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return false },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(bool), in.(linIn), out.(linOut)
		b2i := func(b bool) int {
			if b {
				return 1
			}
			return 0
		}
		switch i.kind {
		case opAdd:
			return o.unknown || o.changed == b2i(!s), true
		case opRemove:
			return o.unknown || o.changed == b2i(s), false
		default:
			return o.present == s, s
		}
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(linIn), out.(linOut)
		switch {
		case o.unknown:
			return fmt.Sprintf("%s(%d) → ?", i.kind, i.key)
		case i.kind == opCheck:
			return fmt.Sprintf("check(%d) → %v", i.key, o.present)
		}
		return fmt.Sprintf("%s(%d) → %d", i.kind, i.key, o.changed)
	},
	DescribeState: func(st any) string { return fmt.Sprint(st) },
}

// history records operations with times on one monotonic clock.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	stats map[string]int
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if op.Output != nil {
		h.ops = append(h.ops, op)
	}
	h.stats[outcome]++
}

// do runs one operation from a client: on a random node first, then on
// the leader a refusal names, or another node. It returns ok=false when
// the operation certainly did nothing (every attempt was refused before
// reaching raft); an add or remove without an answer is unknown.
func (pc *procCluster) do(rng *rand.Rand, in linIn) (out linOut, ok bool) {
	target := pc.procs[rng.IntN(len(pc.procs))]
	method, path := "POST", "/"+in.kind.String()
	if in.kind == opCheck {
		method = "GET"
	}
	q := url.Values{"card": {strconv.FormatUint(in.key, 10)}}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		var r opReply
		err := pc.call(target, method, path, q, &r)
		var se *httpStatusError
		switch {
		case err == nil:
			return linOut{changed: r.Changed, present: r.Present}, true
		case errors.Is(err, errRefused):
			target = pc.procs[rng.IntN(len(pc.procs))]
		case errors.As(err, &se) && se.code == http.StatusMisdirectedRequest:
			if l := pc.byID(se.r.Leader); l != nil && l != target {
				target = l
			} else {
				target = pc.procs[rng.IntN(len(pc.procs))]
			}
		default: // 503, 500, timeout, connection lost
			if in.kind == opCheck {
				return linOut{}, false // a read that did not answer did nothing
			}
			return linOut{unknown: true}, true
		}
		<-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond) // back off before the next attempt
	}
	return linOut{}, false
}

// faultSeed is SAMRACK_FAULT_SEED if set (to replay a run's fault
// choices; timing still varies), else random.
func faultSeed(t *testing.T) uint64 {
	if s := os.Getenv("SAMRACK_FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return rand.Uint64()
}

// nemesis injects faults until stop closes: SIGKILL of the leader or of
// another node (restarted on the same data directory after a while), a
// node cut off from the others (the leader or another) and healed. It
// returns a log of what it did.
func (pc *procCluster) nemesis(rng *rand.Rand, stop <-chan struct{}, h *history) (events []string, err error) {
	wait := func(lo, hi int) bool {
		select {
		case <-stop:
			return false
		case <-time.After(time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond):
			return true
		}
	}
	leader := func() *proc {
		for _, p := range pc.procs {
			if st, err := pc.status(p); err == nil && st.IsLeader {
				return p
			}
		}
		return nil
	}
	logf := func(format string, a ...any) {
		events = append(events, fmt.Sprintf("%6.2fs ", time.Since(h.start).Seconds())+fmt.Sprintf(format, a...))
	}
	for wait(300, 1500) {
		victim := pc.procs[rng.IntN(len(pc.procs))]
		action := rng.IntN(4)
		l := leader()
		if (action == 0 || action == 2) && l != nil {
			victim = l
		}
		role := "follower"
		if victim == l {
			role = "leader"
		}
		switch action {
		case 0, 1: // SIGKILL, restart later
			logf("SIGKILL %s (%s)", victim.id, role)
			pc.kill(victim)
			wait(200, 2000)
			if err := pc.start(victim, false); err != nil {
				return events, err
			}
			logf("restarted %s", victim.id)
		case 2, 3: // cut off, heal later
			var others []string
			for _, p := range pc.procs {
				if p != victim {
					others = append(others, p.id)
					pc.call(p, "POST", "/cut", url.Values{"peers": {victim.id}}, nil)
				}
			}
			pc.call(victim, "POST", "/cut", url.Values{"peers": {strings.Join(others, ",")}}, nil)
			logf("cut off %s (%s)", victim.id, role)
			wait(500, 2500)
			pc.healAll()
			logf("healed")
		}
	}
	return events, nil
}

// soakDuration is SAMRACK_SOAK (make soak) or d.
func soakDuration(t *testing.T, d time.Duration) time.Duration {
	if s := os.Getenv("SAMRACK_SOAK"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return d
}

// TestLinearizableUnderFaults: clients add, remove and check cards on
// random nodes while the nemesis kills the leader and cuts nodes off; the
// history must be linearizable (checks are read on the leader after a
// barrier), every acknowledged add of a card that is never removed must be
// on every node afterwards, and all nodes must end with the same digest.
func TestLinearizableUnderFaults(t *testing.T) {
	seed := faultSeed(t)
	dur := soakDuration(t, 25*time.Second)
	t.Logf("seed %d (SAMRACK_FAULT_SEED=%d replays the fault choices), %v", seed, seed, dur)
	pc := newProcCluster(t, 3, 64, 32)
	h := &history{start: time.Now(), stats: map[string]int{}}

	const clients, contended = 5, 6 // cards 0..5 are added and removed; from 1000 up only added
	var nextAddOnly atomic.Uint64
	nextAddOnly.Store(1000)
	var ackedMu sync.Mutex
	var acked []uint64 // acknowledged add-only cards
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(c)+1))
			id := c
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := linIn{kind: opKind(rng.IntN(3)), key: uint64(rng.IntN(contended))}
				if rng.IntN(5) == 0 {
					in = linIn{kind: opAdd, key: nextAddOnly.Add(1)}
				}
				call := h.now()
				out, ok := pc.do(rng, in)
				op := porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: h.now()}
				switch {
				case !ok:
					op.Output = nil
					h.add(op, "failed")
				case out.unknown:
					op.Return = math.MaxInt64
					h.add(op, "unknown")
					id += clients // an unanswered client is gone; a new one takes its place
				default:
					h.add(op, "ok "+in.kind.String())
					if in.kind == opAdd && in.key >= 1000 {
						ackedMu.Lock()
						acked = append(acked, in.key)
						ackedMu.Unlock()
					}
				}
			}
		}()
	}
	nemStop := make(chan struct{})
	var events []string
	var nemErr error
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		events, nemErr = pc.nemesis(rand.New(rand.NewPCG(seed, 0)), nemStop, h)
	}()
	<-time.After(dur)
	close(nemStop)
	<-nemDone
	close(stop)
	wg.Wait()
	for _, e := range events {
		t.Log(e)
	}
	if nemErr != nil {
		pc.dumpLogs()
		t.Fatal(nemErr)
	}
	for _, p := range pc.procs { // a node the nemesis killed last is up again
		if p.ctl() == "" {
			pc.restart(p)
		}
	}
	digest := pc.converged()

	// Final reads of every card on every node, after convergence: nothing
	// runs concurrently, so they are plain reads at one point in time.
	keys := make([]string, 0, contended+len(acked))
	var all []uint64
	for k := range uint64(contended) {
		all = append(all, k)
	}
	for k := uint64(1001); k <= nextAddOnly.Load(); k++ {
		all = append(all, k)
	}
	for _, k := range all {
		keys = append(keys, strconv.FormatUint(k, 10))
	}
	for i, p := range pc.procs {
		var present []bool
		if err := pc.call(p, "GET", "/local", url.Values{"cards": {strings.Join(keys, ",")}}, &present); err != nil || len(present) != len(all) {
			t.Fatalf("final reads on %s: %v", p.id, err)
		}
		now := h.now()
		for j, k := range all {
			h.ops = append(h.ops, porcupine.Operation{ClientId: 10000 + i, Input: linIn{kind: opCheck, key: k},
				Call: now, Output: linOut{present: present[j]}, Return: now})
		}
		for _, k := range acked {
			if !present[slices.Index(all, k)] {
				t.Errorf("%s: acknowledged add of card %d lost", p.id, k)
			}
		}
	}
	t.Logf("%d operations recorded (%v), %d acknowledged add-only cards, %d faults, digest %.12s",
		len(h.ops), h.stats, len(acked), len(events), digest)
	if len(events) == 0 || h.stats["ok add"] == 0 || h.stats["ok check"] == 0 {
		t.Fatalf("the run tested nothing: %d faults, %v", len(events), h.stats)
	}
	checkLinearizable(t, h.ops)
}

// checkLinearizable runs porcupine; on failure it writes the HTML
// visualisation to a file that outlives the test and names it.
func checkLinearizable(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(blacklistModel, ops, 5*time.Minute)
	t.Logf("porcupine: %s in %v", res, time.Since(start).Round(time.Millisecond))
	if res == porcupine.Ok {
		return
	}
	f, err := os.CreateTemp("", "samrack-linearizability-*.html")
	if err == nil {
		err = porcupine.Visualize(blacklistModel, info, f)
		f.Close()
	}
	if err != nil {
		t.Fatalf("history is %s; no visualisation: %v", res, err)
	}
	t.Fatalf("history is %s (not linearizable unless Unknown = timed out); visualisation: %s", res, f.Name())
}

// TestKillLeaderKeepsAcknowledgedWrites: the leader is SIGKILLed right
// after acknowledging writes; a new leader is elected among the others and
// has every one of them; the killed node comes back on its data directory
// and converges.
func TestKillLeaderKeepsAcknowledgedWrites(t *testing.T) {
	pc := newProcCluster(t, 3, 0, 0)
	l := pc.leader()
	const n = 40
	for k := range uint64(n) {
		var r opReply
		if err := pc.call(l, "POST", "/add", url.Values{"card": {strconv.FormatUint(k, 10)}}, &r); err != nil || r.Changed != 1 {
			t.Fatalf("add %d on the leader: %+v %v", k, r, err)
		}
	}
	pc.kill(l)
	nl := pc.leader()
	if nl == l {
		t.Fatal("the killed node leads")
	}
	for k := range uint64(n) {
		var r opReply
		if err := pc.call(nl, "GET", "/check", url.Values{"card": {strconv.FormatUint(k, 10)}}, &r); err != nil || !r.Present {
			t.Fatalf("card %d after the leader was killed: %+v %v", k, r, err)
		}
	}
	pc.restart(l)
	pc.converged()
	if st, _ := pc.status(l); st.Cards != n {
		t.Fatalf("the restarted node has %d cards", st.Cards)
	}
}

// corruption is damage done to a killed node's data directory, as a power
// cut in the middle of a write could leave it.
type corruption struct {
	name string
	do   func(t *testing.T, dir string)
}

func lastSnapshot(t *testing.T, dir string) string {
	sd := dir + "/snapshots/snapshots" // raft.FileSnapshotStore's own subdirectory
	ents, err := os.ReadDir(sd)
	if err != nil || len(ents) == 0 {
		t.Fatalf("no snapshot in %s: %v", sd, err)
	}
	return sd + "/" + ents[len(ents)-1].Name()
}

func truncateBy(t *testing.T, path string, n int64) {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, max(0, fi.Size()-n)); err != nil {
		t.Fatal(err)
	}
}

func scribble(t *testing.T, path string, fromEnd int64, n int) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(0xa5 ^ i)
	}
	if _, err := f.WriteAt(junk, max(0, fi.Size()-fromEnd)); err != nil {
		t.Fatal(err)
	}
}

var corruptions = []corruption{
	{"raft.db truncated by a page", func(t *testing.T, dir string) { truncateBy(t, dir+"/raft.db", 4096) }},
	{"raft.db truncated to half", func(t *testing.T, dir string) {
		fi, _ := os.Stat(dir + "/raft.db")
		truncateBy(t, dir+"/raft.db", fi.Size()/2)
	}},
	{"raft.db tail scribbled", func(t *testing.T, dir string) { scribble(t, dir+"/raft.db", 8192, 8192) }},
	{"last snapshot truncated", func(t *testing.T, dir string) { truncateBy(t, lastSnapshot(t, dir)+"/state.bin", 100) }},
	{"last snapshot scribbled", func(t *testing.T, dir string) { scribble(t, lastSnapshot(t, dir)+"/state.bin", 200, 50) }},
	{"last snapshot meta cut", func(t *testing.T, dir string) { truncateBy(t, lastSnapshot(t, dir)+"/meta.json", 10) }},
}

// TestCorruptTailAfterKill: a node (follower or leader) is SIGKILLed after
// writes and a snapshot, and the tail of its raft.db or of its last
// snapshot is then truncated or overwritten, as a power cut could leave
// them. Restarted, it either recovers (and converges with every write) or
// refuses with ErrDamaged saying what to do, with no crash; doing what it
// says (remove it on the leader, move the directory aside, join again)
// brings it back with every write. The others go on meanwhile.
func TestCorruptTailAfterKill(t *testing.T) {
	outcomes := map[string]string{}
	for _, c := range corruptions {
		for _, role := range []string{"follower", "leader"} {
			t.Run(c.name+"/"+role, func(t *testing.T) {
				pc := newProcCluster(t, 3, 0, 0)
				add := func(from, to uint64) {
					t.Helper()
					l := pc.leader()
					for k := from; k < to; k++ {
						if err := pc.call(l, "POST", "/add", url.Values{"card": {strconv.FormatUint(k, 10)}}, nil); err != nil {
							pc.dumpLogs()
							t.Fatal(err)
						}
					}
				}
				add(0, 60)
				l := pc.leader()
				victim := l
				if role == "follower" {
					victim = pc.procs[(slices.Index(pc.procs, l)+1)%3]
				}
				pc.converged()
				if err := pc.call(victim, "POST", "/snapshot", nil, nil); err != nil {
					t.Fatal(err)
				}
				add(60, 120)
				pc.kill(victim)
				c.do(t, victim.dir)
				err := pc.start(victim, false)
				if err != nil {
					outcomes[c.name+"/"+role] = "refused"
					if !strings.Contains(err.Error(), ErrDamaged.Error()) || !strings.Contains(err.Error(), "aside") ||
						!strings.Contains(err.Error(), "exit status 1") {
						t.Fatalf("refused without the damaged-state error, or crashed: %v", err)
					}
					t.Logf("refused: %v", err)
					add(120, 130) // the others go on
					// What the error says: remove it on the leader, move the
					// directory aside, join again.
					if err := pc.call(pc.leader(), "POST", "/removeserver", url.Values{"id": {victim.id}}, nil); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(victim.dir, victim.dir+".damaged"); err != nil {
						t.Fatal(err)
					}
					pc.restart(victim)
					if err := pc.call(pc.leader(), "POST", "/addvoter", url.Values{"id": {victim.id}, "addr": {victim.raftAddr}}, nil); err != nil {
						t.Fatal(err)
					}
				} else {
					outcomes[c.name+"/"+role] = "recovered"
					add(120, 130)
				}
				pc.converged()
				if st, _ := pc.status(victim); st.Cards != 130 {
					t.Fatalf("%d cards on the damaged node, want 130", st.Cards)
				}
			})
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestBlacklistModel: the model rejects what the fault test must catch (a
// lost acknowledged add, a resurrected remove, a stale read) and accepts an
// unknown write either way.
func TestBlacklistModel(t *testing.T) {
	op := func(kind opKind, out linOut, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: linIn{kind: kind, key: 7}, Call: call, Output: out, Return: ret}
	}
	for name, tc := range map[string]struct {
		h  []porcupine.Operation
		ok bool
	}{
		"lost add":           {[]porcupine.Operation{op(opAdd, linOut{changed: 1}, 0, 10), op(opCheck, linOut{}, 20, 30)}, false},
		"resurrected remove": {[]porcupine.Operation{op(opAdd, linOut{changed: 1}, 0, 10), op(opRemove, linOut{changed: 1}, 20, 30), op(opCheck, linOut{present: true}, 40, 50)}, false},
		"double add":         {[]porcupine.Operation{op(opAdd, linOut{changed: 1}, 0, 10), op(opAdd, linOut{changed: 1}, 20, 30)}, false},
		"concurrent":         {[]porcupine.Operation{op(opAdd, linOut{changed: 1}, 0, 30), op(opCheck, linOut{}, 5, 10), op(opCheck, linOut{present: true}, 20, 25)}, true},
		"unknown took effect": {[]porcupine.Operation{op(opAdd, linOut{unknown: true}, 0, math.MaxInt64), op(opCheck, linOut{}, 5, 10),
			op(opCheck, linOut{present: true}, 20, 25)}, true},
		"unknown did not":   {[]porcupine.Operation{op(opAdd, linOut{unknown: true}, 0, math.MaxInt64), op(opCheck, linOut{}, 20, 25)}, true},
		"present then gone": {[]porcupine.Operation{op(opAdd, linOut{unknown: true}, 0, math.MaxInt64), op(opCheck, linOut{present: true}, 5, 10), op(opCheck, linOut{}, 20, 25)}, false},
	} {
		if got := porcupine.CheckOperations(blacklistModel, tc.h); got != tc.ok {
			t.Errorf("%s: linearizable %v, want %v", name, got, tc.ok)
		}
	}
}
