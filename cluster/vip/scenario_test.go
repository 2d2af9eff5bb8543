package vip

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the machine's actual output")

var testMachineConfig = machineConfig{
	lease:      500 * time.Millisecond,
	margin:     100 * time.Millisecond,
	burst:      5,
	burstEvery: 500 * time.Millisecond,
	refresh:    10 * time.Second,
	retry:      time.Second,
	maxAddFail: 3,
}

// TestScenarios runs the ownership machine through the scripts in
// testdata/*.txt (etcd-io/raft's interaction-test style). A script is
// commands, one a line; the indented lines after a command are what the
// machine did: its actions, its state and when it wants the next tick
// (as time since the script's start). Run with -rewrite to refresh them
// after a deliberate change, then read the diff.
//
// The clock starts at t=0 and only moves with "at". Commands:
// at DURATION (move the clock and tick); start; leader; follower;
// contact DURATION (quorum contact at that script time); ok ACTION and
// fail ACTION MESSAGE (the result of add, remove or announce; the message
// "vanished" is ErrVanished); stop.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := runScenario(t, string(b))
			if *rewrite {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(b) {
				t.Errorf("%s: output differs (run with -rewrite and diff):\n%s", file, got)
			}
		})
	}
}

func runScenario(t *testing.T, script string) string {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	m := newMachine(testMachineConfig)
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
		if strings.HasPrefix(line, "  ") {
			continue // old output
		}
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		ev, err := scenarioEvent(f, t0, &now)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if ev.kind == evDone && ev.act != ActAnnounce && (!m.pending || m.pendAct != ev.act) {
			t.Fatalf("%q: no %v outstanding", line, ev.act)
		}
		m.handle(ev)
		for _, a := range m.take() {
			fmt.Fprintf(&out, "  do: %v\n", a)
		}
		next := "none"
		if n := m.next(now); !n.IsZero() {
			next = n.Sub(t0).String()
		}
		fmt.Fprintf(&out, "  %v next=%s\n", &m, next)
	}
	return out.String()
}

func scenarioEvent(f []string, t0 time.Time, now *time.Time) (event, error) {
	arg := func(i int) string {
		if len(f) > i {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "at":
		d, err := time.ParseDuration(arg(1))
		if err != nil {
			return event{}, err
		}
		if t := t0.Add(d); t.Before(*now) {
			return event{}, fmt.Errorf("time goes back to %v", d)
		} else {
			*now = t
		}
		return event{kind: evTick, now: *now}, nil
	case "start":
		return event{kind: evStart, now: *now}, nil
	case "leader":
		return event{kind: evLeader, now: *now}, nil
	case "follower":
		return event{kind: evFollower, now: *now}, nil
	case "contact":
		d, err := time.ParseDuration(arg(1))
		return event{kind: evContact, now: *now, at: t0.Add(d)}, err
	case "stop":
		return event{kind: evStop, now: *now}, nil
	case "ok", "fail":
		var act ActionKind
		switch arg(1) {
		case "add":
			act = ActAdd
		case "remove":
			act = ActRemove
		case "announce":
			act = ActAnnounce
		default:
			return event{}, fmt.Errorf("unknown action %q", arg(1))
		}
		var err error
		if f[0] == "fail" {
			err = errors.New(strings.Join(f[2:], " "))
			if arg(2) == "vanished" {
				err = ErrVanished
			}
		}
		return event{kind: evDone, now: *now, act: act, err: err}, nil
	}
	return event{}, fmt.Errorf("unknown command %q", f[0])
}
