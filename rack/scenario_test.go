package rack

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the machine's actual output")

// TestScenarios runs the slot state machine through the scripts in
// testdata/*.txt (etcd-io/raft's interaction-test style). A script is
// commands, one a line; the indented lines after a command are what the
// machine did: errors, audit events, and its state. Run with -rewrite to
// refresh them after a deliberate change, then read the diff.
//
// Commands: config [power=bool] [k=N]; start; ok [id=N]; fail
// timeout|gone|self|nomodule|transport; stale (a superseded job's result);
// check; lease; release [nil|card|auth|timeout|gone|self]; drain; enable;
// power-off; power-on; power-cycle; locate on|off; clear; removed
// [waiting] and inserted [waiting] (presence reports; waiting: the job in
// flight is still in its backoff wait).
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

// runScenario runs a script and returns it with fresh output.
func runScenario(t *testing.T, script string) string {
	cfg := testMachineConfig
	m := newMachine(cfg)
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
		if f[0] == "config" {
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "power":
					cfg.hasPower = v == "true"
				case "k":
					cfg.maxFailures, _ = strconv.Atoi(v)
				}
			}
			m = newMachine(cfg)
			continue
		}
		ev, err := scenarioEvent(&m, f)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if err := m.handle(ev); err != nil {
			fmt.Fprintf(&out, "  error: %v\n", err)
		}
		for _, e := range m.takeEvents() {
			s := e.String()
			s = strings.TrimPrefix(s, "slot 0: ")
			fmt.Fprintf(&out, "  event: %s\n", s)
		}
		act := ""
		if m.state == StateEnabled || m.state == StateDraining {
			act = "/" + m.act.String()
		}
		leds := ""
		if m.locate {
			leds += " locate"
		}
		if m.fault {
			leds += " fault"
		}
		fmt.Fprintf(&out, "  %v%s health=%v failures=%d job=%s%s\n", m.state, act, m.health, m.failures, jobName(m.job), leds)
	}
	return out.String()
}

var scenarioErrs = map[string]error{
	"nil":       nil,
	"card":      fmt.Errorf("read: %w", sam.ErrCardLink),
	"auth":      fmt.Errorf("read: %w", &ga467.StatusError{SW3: ga467.SW3SAMAuthCard}),
	"timeout":   fmt.Errorf("status: %w", sam.ErrTimeout),
	"gone":      fmt.Errorf("status: %w", sam.ErrGone),
	"self":      fmt.Errorf("status: %w", &ga467.StatusError{SW3: ga467.SW3SelfTest}),
	"transport": fmt.Errorf("status: %w", sam.ErrTransport),
	"nomodule":  fmt.Errorf("open: %w", ErrNoModule),
}

func scenarioEvent(m *machine, f []string) (event, error) {
	arg := func(def string) string {
		if len(f) > 1 {
			return f[1]
		}
		return def
	}
	errArg := func(def string) (error, error) {
		err, ok := scenarioErrs[arg(def)]
		if !ok {
			return nil, fmt.Errorf("unknown error %q", arg(def))
		}
		return err, nil
	}
	switch f[0] {
	case "start":
		return event{kind: evStart}, nil
	case "ok":
		n, _ := strconv.Atoi(strings.TrimPrefix(arg("id=1"), "id="))
		return event{kind: evJobDone, gen: m.gen, id: ga467.SAMID{A: 5, B: 1, Date: 20250101, Serial1: uint32(n)}}, nil
	case "fail":
		err, e := errArg("timeout")
		return event{kind: evJobDone, gen: m.gen, err: err}, e
	case "stale":
		return event{kind: evJobDone, gen: m.gen - 1, err: scenarioErrs["timeout"]}, nil
	case "check":
		return event{kind: evCheckDue}, nil
	case "lease":
		return event{kind: evLease}, nil
	case "release":
		err, e := errArg("nil")
		return event{kind: evRelease, err: err}, e
	case "drain":
		return event{kind: evDrain}, nil
	case "enable":
		return event{kind: evEnable}, nil
	case "power-off":
		return event{kind: evPowerOff}, nil
	case "power-on":
		return event{kind: evPowerOn}, nil
	case "power-cycle":
		return event{kind: evPowerCycle}, nil
	case "locate":
		return event{kind: evLocate, on: arg("on") == "on"}, nil
	case "clear":
		return event{kind: evClearQuarantine}, nil
	case "removed":
		return event{kind: evRemoved, waiting: arg("") == "waiting"}, nil
	case "inserted":
		return event{kind: evInserted, waiting: arg("") == "waiting"}, nil
	}
	return event{}, fmt.Errorf("unknown command %q", f[0])
}
