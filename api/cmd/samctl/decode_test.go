package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samtest"
)

// run runs samctl with args and returns what it printed.
func run(t *testing.T, args ...string) string {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("samctl %s: %v\n%s", args[:2], err, out.String())
	}
	return out.String()
}

// TestDecodeRealReadReply: `samctl ga467 decode` of a read reply as a real
// SAM-V sends it (assembled by hand, lengths 01 00 04 00) shows the
// lengths 256/1024, the photo size and the decoded text fields.
func TestDecodeRealReadReply(t *testing.T) {
	frame := strings.ToUpper(hex.EncodeToString(samtest.RealReadFrame()))
	// As a hardware team pastes it: spaced bytes.
	var spaced []string
	for i := 0; i < len(frame); i += 2 {
		spaced = append(spaced, frame[i:i+2])
	}
	out := run(t, "ga467", "decode", "--personal", strings.Join(spaced, " "))
	for _, want := range []string{
		"SAM→host frame, LEN 1288, checksum ok",
		"SW 00 00 90: success",
		"data: 1284 bytes",
		"read reply (30 01 form): lengths text 256, photo 1024 bytes, big-endian",
		"photo: 1024 bytes",
		"text block: resident card",
		"  name: " + samtest.RealName,
		"  sex: " + samtest.RealSex,
		"  nation: " + samtest.RealNation,
		"  birth date: " + samtest.RealBirth,
		"  address: " + samtest.RealAddress,
		"  ID number: " + samtest.RealNumber,
		"  issuing authority: " + samtest.RealAuthority,
		"  valid from: " + samtest.RealValidFrom,
		"  valid to: " + samtest.RealValidTo,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Without --personal the values are withheld.
	out = run(t, "ga467", "decode", frame)
	if strings.Contains(out, samtest.RealName) || strings.Contains(out, samtest.RealNumber) {
		t.Errorf("personal data shown without --personal:\n%s", out)
	}
	if !strings.Contains(out, "ID number: 18 characters (withheld") || !strings.Contains(out, "text 256, photo 1024") {
		t.Errorf("output:\n%s", out)
	}

	// --json carries the same as fields.
	out = run(t, "--json", "ga467", "decode", "--personal", frame)
	var d ga467.Description
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Reading == nil || d.Reading.TextLen != 256 || d.Reading.PhotoLen != 1024 || d.Reading.Order != "big-endian" || len(d.Reading.Fields) != 9 {
		t.Fatalf("json reading %+v", d.Reading)
	}

	// The 30 10 reply of a card without fingerprints: length 0.
	out = run(t, "ga467", "decode", hex.EncodeToString(samtest.RealReadNoFingerprintFrame()))
	if !strings.Contains(out, "fingerprint 0 (card without fingerprints)") {
		t.Errorf("no-fingerprint reply:\n%s", out)
	}
}
