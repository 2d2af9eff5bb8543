package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cmd := newRoot()
	fs := cmd.Flags()
	if err := fs.Parse([]string{"--sim-sams", "3"}); err != nil {
		t.Fatal(err)
	}
	good := write("good.yaml", "vip: 192.0.2.10/24\nvip-interface: eth0\nsim-sams: 5\nhost: [samrack.example, 10.0.0.10]\naudit-stderr: true\n")
	if err := applyConfigFile(fs, good); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"vip": "192.0.2.10/24", "vip-interface": "eth0", "sim-sams": "3",
		"host": "[samrack.example,10.0.0.10]", "audit-stderr": "true"} {
		if got := fs.Lookup(k).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key": {"vipp: 192.0.2.10/24\n", `unknown key "vipp"`},
		"not a map":   {"- vip\n", "not a YAML map"},
		"nested list": {"host: [[a, b]]\n", "a list of plain values"},
		"a map value": {"vip: {a: 1}\n", "is not a flag value"},
		"recursion":   {"config: other.yaml\n", "cannot name another"},
		"bad value":   {"sim-sams: many\n", "sim-sams"},
		"too large":   {"data: " + strings.Repeat("x", maxConfigFile) + "\n", "larger than"},
	} {
		err := applyConfigFile(newRoot().Flags(), write(strings.ReplaceAll(name, " ", "-")+".yaml", tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if err := applyConfigFile(fs, filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("vip: 192.0.2.10/24\nvip-interface: eth0\nhost: [a, b]\n"))
	f.Add([]byte("sim-sams: 3\naudit-stderr: true\n"))
	f.Add([]byte("- x\n"))
	f.Add([]byte("a: &x [*x]\n"))
	fs := newRoot().Flags()
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := parseConfig(data, fs)
		if err == nil {
			for k := range vals {
				if fs.Lookup(k) == nil {
					t.Fatalf("unknown key %q accepted", k)
				}
			}
		}
	})
}
