package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindCredentials(t *testing.T) {
	root := t.TempDir()
	prod, dev, data := filepath.Join(root, "samrack"), filepath.Join(root, "samrack-dev"), filepath.Join(root, "data")
	for _, d := range []string{prod, dev, data} {
		os.MkdirAll(d, 0o700)
	}
	touch := func(dir string) string {
		p := filepath.Join(dir, CredentialsFile)
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	find := func(file, dataDir string) (string, error) { return FindCredentials(file, dataDir, prod, dev) }

	if _, err := find("", ""); err == nil || !strings.Contains(err.Error(), "no admin credentials found") {
		t.Fatalf("nothing anywhere: %v", err)
	}
	devFile := touch(dev)
	if p, err := find("", ""); err != nil || p != devFile {
		t.Fatalf("make run's directory: %q %v", p, err)
	}
	prodFile := touch(prod)
	if p, err := find("", ""); err != nil || p != prodFile {
		t.Fatalf("the production directory first: %q %v", p, err)
	}
	if _, err := find("", data); err == nil || !strings.Contains(err.Error(), data) {
		t.Fatalf("--data names one directory only: %v", err)
	}
	dataFile := touch(data)
	if p, err := find("", data); err != nil || p != dataFile {
		t.Fatalf("--data: %q %v", p, err)
	}
	if p, err := find("/x/creds.json", data); err != nil || p != "/x/creds.json" {
		t.Fatalf("--creds wins: %q %v", p, err)
	}
}

func TestLoadCredentialsRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":  "url=https://x",
		"no url":    `{"cert_pem":"","key_pem":""}`,
		"no cert":   `{"url":"https://127.0.0.1:7480"}`,
		"truncated": `{"url":"https://127.0.0.1:7480","cert_pem":"-----BEGIN CERT`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := LoadCredentials(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
