package main

// samctl against a real appliance (appliance.New on loopback, its own dev
// CA, a simulated rack): credentials found by itself, operator identities,
// roles, revocation kept across a restart, audit filters, health exit
// codes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

const waitLimit = 15 * time.Second

// startAppliance runs an appliance on dir until the test ends (or stop is
// called) and waits until its slots are Enabled.
func startAppliance(t *testing.T, dir string) (a *appliance.Appliance, stop func()) {
	t.Helper()
	a, err := appliance.New(appliance.Config{
		DataDir: dir, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		SimSAMs: 2, SimTiming: &sim.SAMTiming{Boot: time.Millisecond},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("appliance did not stop")
		}
	}
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(ctx, waitLimit)
	defer wcancel()
	for _, s := range a.Rack().Slots() {
		if _, err := a.Rack().WaitState(wctx, s.ID, rack.StateEnabled); err != nil {
			t.Fatalf("slot %d never came up: %v", s.ID, err)
		}
	}
	return a, stop
}

// samctl runs the CLI in-process and returns its output and exit code.
func samctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.shown {
			out.WriteString(err.Error())
		}
		return out.String(), ee.code
	}
	out.WriteString(err.Error())
	return out.String(), 1
}

func must(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, code := samctl(t, args...)
	if code != want {
		t.Fatalf("samctl %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// isolate keeps the test from finding the machine's own credentials.
func isolate(t *testing.T) {
	for _, v := range []string{"SAMRACK_ADMIN", "SAMRACK_CREDS", "SAMRACK_PROFILE", "SAMRACK_DATA"} {
		t.Setenv(v, "")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	old := DefaultDataDirs
	DefaultDataDirs = []string{filepath.Join(t.TempDir(), "none")}
	t.Cleanup(func() { DefaultDataDirs = old })
}

func TestSamctlAgainstAppliance(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	a, stop := startAppliance(t, dir)
	work := t.TempDir()

	// The bootstrap credentials: root-only, found through --data and $SAMRACK_DATA.
	fi, err := os.Stat(filepath.Join(dir, admin.CredentialsFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin credentials file: %v %v", err, fi)
	}
	if out := must(t, 2, "health"); !strings.Contains(out, "no admin credentials found") {
		t.Fatalf("without credentials: %s", out)
	}
	must(t, 0, "--data", dir, "health")
	t.Setenv("SAMRACK_DATA", dir)
	if out := must(t, 0, "operator", "whoami"); !strings.Contains(out, "samrack-admin (admin)") {
		t.Fatal(out)
	}
	// A new user's quick start: provision a reader; the bundle loads.
	must(t, 0, "reader", "add", "HOTEL-0001", "--out", filepath.Join(work, "reader.json"))
	if _, err := credentials.Load(filepath.Join(work, "reader.json")); err != nil {
		t.Fatal(err)
	}

	// Operator identities with roles.
	alice, bob := filepath.Join(work, "alice.json"), filepath.Join(work, "bob.json")
	must(t, 0, "operator", "add", "alice", "--role", "operator", "--out", alice)
	must(t, 0, "operator", "add", "bob", "--role", "viewer", "--out", bob)
	if fi, err := os.Stat(alice); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator credentials: %v %v", err, fi)
	}
	t.Setenv("SAMRACK_DATA", "")
	must(t, 0, "--creds", alice, "blacklist", "add", "0102030405060708", "--reason", "stolen")
	must(t, 0, "--creds", alice, "blacklist", "remove", "0102030405060708")
	if out := must(t, 1, "--creds", alice, "reader", "add", "HOTEL-0002", "--out", filepath.Join(work, "r2.json")); !strings.Contains(out, "needs role admin") {
		t.Fatal(out)
	}
	if out := must(t, 1, "--creds", bob, "slot", "locate-on", "0"); !strings.Contains(out, "needs role operator") {
		t.Fatal(out)
	}
	must(t, 0, "--creds", bob, "slots")

	// A workstation profile, and --admin overriding the file's address.
	profiles := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "samrack", "profiles")
	os.MkdirAll(profiles, 0o700)
	data, _ := os.ReadFile(bob)
	os.WriteFile(filepath.Join(profiles, "rack1.json"), data, 0o600)
	if out := must(t, 0, "--profile", "rack1", "operator", "whoami"); !strings.Contains(out, "bob (viewer)") {
		t.Fatal(out)
	}
	addr := strings.TrimPrefix(a.AdminURL(), "https://")
	must(t, 0, "--profile", "rack1", "--admin", "localhost:"+addr[strings.LastIndex(addr, ":")+1:], "slots")
	if out := must(t, 1, "--profile", "rack1", "--admin", "http://"+addr, "slots"); !strings.Contains(out, "plain HTTP") {
		t.Fatal(out)
	}

	// Audit: who did what, filtered.
	var evs []audit.Event
	out := must(t, 0, "--data", dir, "--json", "audit", "--kind", "blacklist", "--actor", "alice", "--since", "1h")
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err, out)
	}
	if len(evs) != 2 || evs[0].Kind != "blacklist.card.remove" || evs[1].Kind != "blacklist.card.add" || evs[1].Count != 1 || evs[0].Actor != "alice" {
		t.Fatalf("audit: %+v", evs)
	}
	out = must(t, 0, "--data", dir, "--json", "audit", "--until", "1h")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("events before an hour ago: %s", out)
	}
	out = must(t, 0, "--data", dir, "--json", "audit", "--kind", "operator")
	if err := json.Unmarshal([]byte(out), &evs); err != nil || len(evs) != 3 || evs[0].Detail != "operator bob role viewer" || evs[0].Actor != "samrack-admin" || evs[2].Actor != "samrackd" {
		t.Fatalf("operator events: %+v %v", evs, err)
	}

	// Revocation: at once, and across a restart.
	must(t, 0, "--data", dir, "operator", "revoke", "alice")
	if out := must(t, 1, "--creds", alice, "slots"); !strings.Contains(out, `operator "alice" is revoked`) {
		t.Fatal(out)
	}
	stop()
	a, _ = startAppliance(t, dir)
	if out := must(t, 1, "--creds", alice, "--admin", a.AdminURL(), "slots"); !strings.Contains(out, `operator "alice" is revoked`) {
		t.Fatalf("after a restart: %s", out)
	}
	if out := must(t, 0, "--data", dir, "operator", "list"); !strings.Contains(out, "revoked") || !strings.Contains(out, "bob") {
		t.Fatal(out)
	}
}

func TestSamctlHealthExitCodes(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	a, stop := startAppliance(t, dir)
	if out := must(t, 0, "--data", dir, "health"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("healthy: %q", out)
	}
	// No SAM in service: degraded, exit 1, the reason on one line.
	for _, s := range a.Rack().Slots() {
		must(t, 0, "--data", dir, "slot", "drain", strconv.Itoa(s.ID))
	}
	out := must(t, 1, "--data", dir, "health")
	if out != "degraded: no SAM in service\n" {
		t.Fatalf("degraded: %q", out)
	}
	must(t, 0, "--data", dir, "slot", "enable", "0")
	if _, err := a.Rack().WaitState(context.Background(), 0, rack.StateEnabled); err != nil {
		t.Fatal(err)
	}
	must(t, 0, "--data", dir, "health")
	// Unreachable: exit 2.
	stop()
	if out := must(t, 2, "--data", dir, "health"); !strings.HasPrefix(out, "unreachable: ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("stopped: %q", out)
	}
	if out := must(t, 2, "--data", filepath.Join(dir, "missing"), "health"); !strings.Contains(out, "unreachable: no admin credentials") {
		t.Fatalf("no credentials: %q", out)
	}
}

// Plain HTTP is gone, also on loopback; a non-loopback admin address is
// accepted but logged at warn.
func TestAdminTransport(t *testing.T) {
	isolate(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	a, err := appliance.New(appliance.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Admin: "0.0.0.0:0", SimSAMs: 1,
		SimTiming: &sim.SAMTiming{Boot: time.Millisecond},
		Logger:    slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	mu.Lock()
	l := logs.String()
	mu.Unlock()
	if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "beyond loopback") {
		t.Fatalf("no warning for 0.0.0.0: %s", l)
	}
	if !strings.HasPrefix(a.AdminURL(), "https://127.0.0.1:") {
		t.Fatalf("admin URL %s", a.AdminURL())
	}
	resp, err := http.Get("http://" + strings.TrimPrefix(a.AdminURL(), "https://") + "/v1/slots")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP answered: %s", body)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// The bootstrap admin identity: a reissued certificate rebinds the name
// (role kept), a revoked identity stays revoked across restarts.
func TestBootstrapAdmin(t *testing.T) {
	isolate(t)
	dir, work := t.TempDir(), t.TempDir()
	_, stop := startAppliance(t, dir)
	must(t, 0, "--data", dir, "operator", "add", "root2", "--role", "admin", "--out", filepath.Join(work, "root2.json"))
	stop()
	for _, f := range []string{"admin.pem", "admin-key.pem"} {
		if err := os.Remove(filepath.Join(dir, "pki", f)); err != nil {
			t.Fatal(err)
		}
	}
	a, stop := startAppliance(t, dir)
	if out := must(t, 0, "--data", dir, "operator", "whoami"); !strings.Contains(out, "samrack-admin (admin)") {
		t.Fatalf("reissued bootstrap admin: %s", out)
	}
	root2 := []string{"--creds", filepath.Join(work, "root2.json"), "--admin", a.AdminURL()}
	must(t, 0, append(root2, "operator", "revoke", "samrack-admin")...)
	stop()
	a, _ = startAppliance(t, dir)
	if out := must(t, 1, "--data", dir, "slots"); !strings.Contains(out, `"samrack-admin" is revoked`) {
		t.Fatalf("revoked bootstrap admin after a restart: %s", out)
	}
	root2[3] = a.AdminURL()
	if out := must(t, 1, append(root2, "operator", "revoke", "root2")...); !strings.Contains(out, "last admin") {
		t.Fatalf("the last admin revoked itself: %s", out)
	}
}
