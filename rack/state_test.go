package rack

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
)

var (
	id1 = ga467.SAMID{A: 5, B: 1, Date: 20250101, Serial1: 1, Serial2: 11}
	id2 = ga467.SAMID{A: 5, B: 1, Date: 20250101, Serial1: 2, Serial2: 22}

	errTimeout = fmt.Errorf("status: %w", sam.ErrTimeout)
	errGone    = fmt.Errorf("status: %w", sam.ErrGone)
	errCard    = fmt.Errorf("read: %w", sam.ErrCardLink)
	errAuth    = &ga467.StatusError{SW1: 0, SW2: 0, SW3: ga467.SW3SAMAuthCard} // card-side
	errSelf    = &ga467.StatusError{SW1: 0, SW2: 0, SW3: ga467.SW3SelfTest}    // module-side
)

var testMachineConfig = machineConfig{maxFailures: 3, backoff: 2 * time.Second, maxBackoff: 5 * time.Second, reprobe: 5 * time.Second, hasPower: true}

// done is the result of the machine's current job.
func done(m *machine, err error, id ga467.SAMID) event {
	return event{kind: evJobDone, gen: m.gen, err: err, id: id}
}

// reach builds a machine in a named situation by feeding it real events.
func reach(t *testing.T, name string, cfg machineConfig) *machine {
	t.Helper()
	m := newMachine(cfg)
	must := func(ev event) {
		t.Helper()
		if err := m.handle(ev); err != nil {
			t.Fatalf("reach %s: %v", name, err)
		}
	}
	steps := map[string]func(){
		"absent":   func() {},
		"starting": func() { must(event{kind: evStart}) },
		"enabled": func() {
			must(event{kind: evStart})
			must(done(&m, nil, id1))
		},
	}
	steps["leased"] = func() { steps["enabled"](); must(event{kind: evLease}) }
	steps["checking"] = func() { steps["enabled"](); must(event{kind: evCheckDue}) }
	steps["resetting"] = func() { steps["leased"](); must(event{kind: evRelease, err: errCard}) }
	steps["draining"] = func() { steps["leased"](); must(event{kind: evDrain}) }
	steps["standby"] = func() { steps["enabled"](); must(event{kind: evDrain}) }
	steps["standby-off"] = func() { steps["standby"](); must(event{kind: evPowerOff}); must(done(&m, nil, ga467.SAMID{})) }
	steps["unavailable"] = func() { steps["checking"](); must(done(&m, errTimeout, ga467.SAMID{})) }
	steps["unavailable-1"] = func() { steps["unavailable"](); must(done(&m, errTimeout, ga467.SAMID{})) }
	steps["unavailable-2"] = func() { steps["unavailable-1"](); must(done(&m, errTimeout, ga467.SAMID{})) }
	steps["quarantined"] = func() { steps["unavailable-2"](); must(done(&m, errTimeout, ga467.SAMID{})) }
	steps["absent-gone"] = func() { steps["checking"](); must(done(&m, errGone, ga467.SAMID{})) }
	f, ok := steps[name]
	if !ok {
		t.Fatalf("no situation %q", name)
	}
	f()
	m.takeEvents()
	return &m
}

func TestMachineTransitions(t *testing.T) {
	noPower := testMachineConfig
	noPower.hasPower = false
	tests := []struct {
		from  string
		ev    func(m *machine) event
		cfg   *machineConfig
		state State
		act   activity
		h     Health
		job   string // job.String(), "" for none
		err   error
		fails int
		evs   []string // event kinds, in order
	}{
		// start and probe
		{from: "absent", ev: ev(evStart), state: StateStarting, job: "start(power-on,open,probe)", h: HealthWarning, evs: []string{"state"}},
		{from: "absent", ev: ev(evStart), cfg: &noPower, state: StateStarting, job: "start(open,probe)", h: HealthWarning, evs: []string{"state"}},
		{from: "starting", ev: ok(id1), state: StateEnabled, h: HealthOK, evs: []string{"sam-id", "state"}},
		{from: "starting", ev: fail(errTimeout), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", evs: []string{"state", "recovery-started"}},
		{from: "starting", ev: fail(fmt.Errorf("open: %w", ErrNoModule)), state: StateAbsent, h: HealthWarning, job: "reprobe(wait 5s,close,open,probe)", evs: []string{"state"}},
		{from: "starting", ev: ev(evStart), state: StateStarting, err: ErrNotAllowed, job: "start(power-on,open,probe)", h: HealthWarning},
		// pool
		{from: "enabled", ev: ev(evLease), state: StateEnabled, act: actLeased},
		{from: "leased", ev: ev(evLease), state: StateEnabled, act: actLeased, err: ErrNotAllowed},
		{from: "leased", ev: release(nil), state: StateEnabled},
		{from: "leased", ev: release(errCard), state: StateEnabled, act: actResetting, job: "reset(reset)"},
		{from: "leased", ev: release(errAuth), state: StateEnabled, act: actResetting, job: "reset(reset)"},
		{from: "leased", ev: release(errSelf), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", evs: []string{"state", "recovery-started"}},
		{from: "leased", ev: release(errTimeout), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", evs: []string{"state", "recovery-started"}},
		{from: "leased", ev: release(errGone), state: StateAbsent, h: HealthWarning, job: "reprobe(wait 5s,close,open,probe)", evs: []string{"state"}},
		{from: "enabled", ev: release(nil), state: StateEnabled, err: ErrNotAllowed},
		{from: "resetting", ev: ok(ga467.SAMID{}), state: StateEnabled},
		{from: "resetting", ev: fail(errTimeout), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", evs: []string{"state", "recovery-started"}},
		{from: "resetting", ev: ev(evLease), state: StateEnabled, act: actResetting, job: "reset(reset)", err: ErrNotAllowed},
		// health checks
		{from: "enabled", ev: ev(evCheckDue), state: StateEnabled, act: actChecking, job: "check(probe)"},
		{from: "leased", ev: ev(evCheckDue), state: StateEnabled, act: actLeased},
		{from: "checking", ev: ok(id1), state: StateEnabled},
		{from: "checking", ev: ok(id2), state: StateEnabled, evs: []string{"swap"}},
		{from: "checking", ev: fail(errTimeout), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", evs: []string{"state", "recovery-started"}},
		{from: "checking", ev: fail(errGone), state: StateAbsent, h: HealthWarning, job: "reprobe(wait 5s,close,open,probe)", evs: []string{"state"}},
		{from: "checking", ev: func(m *machine) event { return event{kind: evJobDone, gen: m.gen - 1, err: errTimeout} }, state: StateEnabled, act: actChecking, job: "check(probe)"},
		// recovery, backoff, quarantine
		{from: "unavailable", ev: ok(id1), state: StateEnabled, h: HealthWarning, evs: []string{"recovered", "state"}},
		{from: "unavailable", ev: ok(id2), state: StateEnabled, h: HealthWarning, evs: []string{"recovered", "swap", "state"}},
		{from: "unavailable", ev: fail(errTimeout), state: StateUnavailableOffline, h: HealthCritical, fails: 1, job: "recover(wait 2s,power-off,power-on,open,probe)", evs: []string{"recovery-failed"}},
		{from: "unavailable", ev: fail(errTimeout), cfg: &noPower, state: StateUnavailableOffline, h: HealthCritical, fails: 1, job: "recover(wait 2s,close,open,reset,probe)", evs: []string{"recovery-failed"}},
		{from: "unavailable-1", ev: fail(errTimeout), state: StateUnavailableOffline, h: HealthCritical, fails: 2, job: "recover(wait 4s,power-off,power-on,open,probe)", evs: []string{"recovery-failed"}},
		{from: "unavailable-2", ev: fail(errGone), state: StateQuarantined, h: HealthCritical, fails: 3, evs: []string{"recovery-failed", "state", "quarantined"}},
		{from: "unavailable-2", ev: ok(id1), state: StateEnabled, h: HealthWarning, evs: []string{"recovered", "state"}},
		{from: "unavailable", ev: ev(evLease), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", err: ErrNotAllowed},
		{from: "quarantined", ev: ev(evClearQuarantine), state: StateStarting, h: HealthCritical, job: "clear-quarantine(power-off,power-on,open,probe)", evs: []string{"quarantine-cleared", "state"}},
		{from: "quarantined", ev: ev(evPowerOn), state: StateQuarantined, h: HealthCritical, fails: 3, err: ErrNotAllowed},
		{from: "quarantined", ev: ev(evPowerCycle), state: StateQuarantined, h: HealthCritical, fails: 3, err: ErrNotAllowed},
		{from: "quarantined", ev: ev(evPowerOff), state: StateQuarantined, h: HealthCritical, fails: 3, job: "power-off(power-off)"},
		{from: "enabled", ev: ev(evClearQuarantine), state: StateEnabled, err: ErrNotAllowed},
		// absent and hot-swap
		{from: "absent-gone", ev: ok(id1), state: StateEnabled, evs: []string{"state"}},
		{from: "absent-gone", ev: ok(id2), state: StateEnabled, evs: []string{"swap", "state"}},
		{from: "absent-gone", ev: fail(errGone), state: StateAbsent, h: HealthWarning, job: "reprobe(wait 5s,close,open,probe)"},
		{from: "absent-gone", ev: ev(evPowerOn), state: StateStarting, h: HealthWarning, job: "power-on(open,probe)", evs: []string{"state"}},
		// presence reports
		{from: "enabled", ev: ev(evRemoved), state: StateAbsent, h: HealthWarning, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "checking", ev: ev(evRemoved), state: StateAbsent, h: HealthWarning, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "resetting", ev: ev(evRemoved), state: StateAbsent, h: HealthWarning, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "leased", ev: ev(evRemoved), state: StateAbsent, act: actLeased, h: HealthWarning, evs: []string{"module-removed", "state"}},
		{from: "draining", ev: ev(evRemoved), state: StateAbsent, act: actLeased, h: HealthWarning, evs: []string{"module-removed", "state"}},
		{from: "starting", ev: ev(evRemoved), cfg: &noPower, state: StateAbsent, h: HealthWarning, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "starting", ev: ev(evRemoved), state: StateStarting, h: HealthWarning, job: "start(power-on,open,probe)"},                                               // the rack powers it on
		{from: "unavailable-1", ev: ev(evRemoved), state: StateUnavailableOffline, h: HealthCritical, fails: 1, job: "recover(wait 2s,power-off,power-on,open,probe)"}, // power-cycling
		{from: "unavailable-1", ev: waiting(evRemoved), state: StateAbsent, h: HealthWarning, fails: 1, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "unavailable", ev: ev(evRemoved), state: StateAbsent, h: HealthWarning, job: "removed(close)", evs: []string{"module-removed", "state"}},
		{from: "standby", ev: ev(evRemoved), state: StateStandbyOffline, job: "removed(close)", evs: []string{"module-removed"}},
		{from: "quarantined", ev: ev(evRemoved), state: StateQuarantined, h: HealthCritical, fails: 3, job: "removed(close)", evs: []string{"module-removed"}},
		{from: "absent-gone", ev: ev(evInserted), state: StateStarting, h: HealthWarning, job: "inserted(close,open,probe)", evs: []string{"state"}},
		{from: "enabled", ev: ev(evInserted), state: StateEnabled},
		{from: "starting", ev: ev(evInserted), cfg: &noPower, state: StateStarting, h: HealthWarning, job: "start(open,probe)"},
		{from: "quarantined", ev: ev(evInserted), state: StateQuarantined, h: HealthCritical, fails: 3, job: "identify(close,open,probe)"},
		{from: "standby", ev: ev(evInserted), state: StateStandbyOffline},
		{from: "absent-gone", ev: release(nil), state: StateAbsent, h: HealthWarning, job: "reprobe(wait 5s,close,open,probe)", err: ErrNotAllowed},
		// operator: drain, enable, power
		{from: "enabled", ev: ev(evDrain), state: StateStandbyOffline, evs: []string{"state", "state"}},
		{from: "leased", ev: ev(evDrain), state: StateDraining, act: actLeased, evs: []string{"state"}},
		{from: "draining", ev: release(nil), state: StateStandbyOffline, evs: []string{"state"}},
		{from: "draining", ev: release(errCard), state: StateDraining, act: actResetting, job: "reset(reset)"},
		{from: "draining", ev: ev(evEnable), state: StateEnabled, act: actLeased, evs: []string{"state"}},
		{from: "draining", ev: ev(evLease), state: StateDraining, act: actLeased, err: ErrNotAllowed},
		{from: "checking", ev: ev(evDrain), state: StateDraining, act: actChecking, job: "check(probe)", evs: []string{"state"}},
		{from: "standby", ev: ev(evEnable), state: StateStarting, job: "enable(open,probe)", evs: []string{"state"}},
		{from: "standby", ev: ev(evPowerOff), state: StateStandbyOffline, job: "power-off(power-off)"},
		{from: "standby", ev: ev(evPowerOff), cfg: &noPower, state: StateStandbyOffline, err: ErrNoPowerLine},
		{from: "standby-off", ev: ev(evPowerOff), state: StateStandbyOffline},
		{from: "standby-off", ev: ev(evPowerOn), state: StateStarting, job: "power-on(power-on,open,probe)", evs: []string{"state"}},
		{from: "standby-off", ev: ev(evEnable), state: StateStarting, job: "enable(power-on,open,probe)", evs: []string{"state"}},
		{from: "standby", ev: ev(evPowerCycle), state: StateStarting, job: "power-cycle(power-off,power-on,open,probe)", evs: []string{"state"}},
		{from: "standby", ev: ev(evLease), state: StateStandbyOffline, err: ErrNotAllowed},
		{from: "enabled", ev: ev(evPowerOff), state: StateEnabled, err: ErrNotAllowed},
		{from: "enabled", ev: ev(evPowerCycle), state: StateEnabled, err: ErrNotAllowed},
		{from: "enabled", ev: ev(evPowerCycle), cfg: &noPower, state: StateEnabled, err: ErrNoPowerLine},
		{from: "enabled", ev: ev(evPowerOn), state: StateEnabled},
		{from: "enabled", ev: ev(evEnable), state: StateEnabled},
		{from: "unavailable", ev: ev(evPowerOff), state: StateStandbyOffline, h: HealthCritical, job: "power-off(power-off)", evs: []string{"state"}},
		{from: "unavailable", ev: ev(evPowerCycle), state: StateStarting, h: HealthCritical, job: "power-cycle(power-off,power-on,open,probe)", evs: []string{"state"}},
		{from: "unavailable", ev: ev(evDrain), state: StateUnavailableOffline, h: HealthCritical, job: "recover(open,reset,probe)", err: ErrNotAllowed},
		{from: "absent", ev: ev(evEnable), state: StateAbsent, h: HealthWarning, err: ErrNotAllowed},
		// locate is independent of the state
		{from: "quarantined", ev: locate(true), state: StateQuarantined, h: HealthCritical, fails: 3, evs: []string{"locate"}},
		{from: "leased", ev: locate(true), state: StateEnabled, act: actLeased, evs: []string{"locate"}},
		{from: "enabled", ev: locate(false), state: StateEnabled},
	}
	for _, tt := range tests {
		cfg := testMachineConfig
		if tt.cfg != nil {
			cfg = *tt.cfg
		}
		m := reach(t, tt.from, cfg)
		e := tt.ev(m)
		name := fmt.Sprintf("%s/%s", tt.from, evName(e))
		t.Run(name, func(t *testing.T) {
			err := m.handle(e)
			if !errors.Is(err, tt.err) || (err != nil) != (tt.err != nil) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			got := fmt.Sprintf("%v/%v health=%v job=%s failures=%d", m.state, m.act, m.health, jobName(m.job), m.failures)
			want := fmt.Sprintf("%v/%v health=%v job=%s failures=%d", tt.state, tt.act, tt.h, orNone(tt.job), tt.fails)
			if got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			var kinds []string
			for _, e := range m.takeEvents() {
				kinds = append(kinds, e.Kind.String())
			}
			if !slices.Equal(kinds, tt.evs) {
				t.Errorf("events %v, want %v", kinds, tt.evs)
			}
			if m.state == StateQuarantined != m.fault {
				t.Errorf("fault LED %v in state %v", m.fault, m.state)
			}
		})
	}
}

func ev(k evKind) func(*machine) event { return func(*machine) event { return event{kind: k} } }
func waiting(k evKind) func(*machine) event {
	return func(*machine) event { return event{kind: k, waiting: true} }
}
func ok(id ga467.SAMID) func(*machine) event {
	return func(m *machine) event { return done(m, nil, id) }
}
func fail(err error) func(*machine) event {
	return func(m *machine) event { return done(m, err, ga467.SAMID{}) }
}
func release(err error) func(*machine) event {
	return func(*machine) event { return event{kind: evRelease, err: err} }
}
func locate(on bool) func(*machine) event {
	return func(*machine) event { return event{kind: evLocate, on: on} }
}

var evNames = map[evKind]string{evStart: "start", evJobDone: "done", evCheckDue: "check-due", evLease: "lease",
	evRelease: "release", evDrain: "drain", evEnable: "enable", evPowerOff: "power-off", evPowerOn: "power-on",
	evPowerCycle: "power-cycle", evLocate: "locate", evClearQuarantine: "clear-quarantine",
	evRemoved: "removed", evInserted: "inserted"}

func evName(e event) string {
	s := evNames[e.kind]
	if e.waiting {
		s += "-waiting"
	}
	if e.err != nil {
		s += "(" + strings.ReplaceAll(e.err.Error(), " ", "_") + ")"
	}
	return s
}

func jobName(j *job) string {
	if j == nil {
		return "none"
	}
	return j.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// TestMachineSwapResetsFailures: a new module starts with a clean record.
func TestMachineSwapResetsFailures(t *testing.T) {
	m := reach(t, "unavailable-2", testMachineConfig)
	if err := m.handle(done(m, nil, id2)); err != nil {
		t.Fatal(err)
	}
	if m.failures != 0 || m.samID != id2 || m.state != StateEnabled {
		t.Fatalf("after swap: %v failures=%d id=%v", m.state, m.failures, m.samID)
	}
}

// TestMachineBackoffCaps: the power-cycle delay doubles up to maxBackoff.
func TestMachineBackoffCaps(t *testing.T) {
	cfg := testMachineConfig
	cfg.maxFailures = 10
	m := reach(t, "unavailable", cfg)
	var delays []time.Duration
	for range 5 {
		if err := m.handle(done(m, errTimeout, ga467.SAMID{})); err != nil {
			t.Fatal(err)
		}
		delays = append(delays, m.job.delay)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
}
