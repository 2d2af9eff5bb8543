package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterCommands: samctl cluster against a real appliance (a cluster
// of one): members, a token, a backup, a refused and a good restore.
func TestClusterCommands(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	startAppliance(t, data)
	// The inventory is published shortly after the slots come up.
	var out string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(waitLimit); ; <-tick.C {
		out = must(t, 0, "--data", data, "cluster", "members")
		if strings.Contains(out, "2/2") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "leader") || !strings.Contains(out, "2/2") || strings.Count(out, "\n") != 2 {
		t.Fatalf("members:\n%s", out)
	}
	out = must(t, 0, "--data", data, "cluster", "token", "--ttl", "10m")
	if !strings.HasPrefix(out, "srj1.") || len(strings.TrimSpace(out)) != 5+16+1+32+1+64 {
		t.Fatalf("token %q", out)
	}
	if out, _ := samctl(t, "--data", data, "cluster", "token", "--ttl", "48h"); !strings.Contains(out, "ttl") {
		t.Fatalf("48h token: %s", out)
	}
	must(t, 0, "--data", data, "blacklist", "add", "0102030405060708", "--reason", "stolen")
	snap := filepath.Join(dir, "backup.snap")
	must(t, 0, "--data", data, "cluster", "snapshot", "save", snap)
	if fi, err := os.Stat(snap); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	must(t, 0, "--data", data, "blacklist", "add", "1111111111111111", "--reason", "lost")
	b, _ := os.ReadFile(snap)
	trunc := filepath.Join(dir, "trunc.snap")
	os.WriteFile(trunc, b[:len(b)/2], 0o600)
	if out, code := samctl(t, "--data", data, "cluster", "snapshot", "restore", trunc); code == 0 || !strings.Contains(out, "bad snapshot") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("truncated restore: exit %d %s", code, out)
	}
	if out := must(t, 0, "--data", data, "blacklist", "list"); !strings.Contains(out, "2 card(s)") {
		t.Fatalf("after the refused restore:\n%s", out)
	}
	must(t, 0, "--data", data, "cluster", "snapshot", "restore", snap)
	if out := must(t, 0, "--data", data, "--consistent", "blacklist", "list"); !strings.Contains(out, "1 card(s)") {
		t.Fatalf("after the restore:\n%s", out)
	}
	if out, code := samctl(t, "--data", data, "cluster", "remove", "node-nope"); code == 0 || !strings.Contains(out, "not a member") {
		t.Fatalf("remove unknown: %d %s", code, out)
	}
	out = must(t, 0, "--data", data, "slots", "--all")
	if strings.Count(out, "Enabled") != 2 {
		t.Fatalf("inventory:\n%s", out)
	}
}
