package ga467

import (
	"bytes"
	"errors"
	"testing"
)

func TestSAMID(t *testing.T) {
	const printed = "05.01-20101125-0012345678-1234567890"
	want := SAMID{A: 5, B: 1, Date: 20101125, Serial1: 12345678, Serial2: 1234567890}
	wantBytes := unhex("0500 0100 05B83201 4E61BC00 D2029649")

	id, err := ParseSAMID(printed)
	if err != nil {
		t.Fatal(err)
	}
	if id != want {
		t.Errorf("ParseSAMID = %+v, want %+v", id, want)
	}
	if got := id.String(); got != printed {
		t.Errorf("String() = %q, want %q", got, printed)
	}
	if got := id.Bytes(); !bytes.Equal(got, wantBytes) {
		t.Errorf("Bytes() = % X, want % X", got, wantBytes)
	}
	dec, err := DecodeSAMID(wantBytes)
	if err != nil || dec != want {
		t.Errorf("DecodeSAMID = %+v, %v; want %+v", dec, err, want)
	}
	if id.IsZero() || !(SAMID{}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestSAMIDErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"05.01-20101125-0012345678-123456789",   // short
		"05.01-20101125-0012345678-12345678901", // long
		"05:01-20101125-0012345678-1234567890",  // separator
		"05.01-2010112a-0012345678-1234567890",  // letter
		"05.01-20101125-0012345678-9999999999",  // overflows u32
		"-5.01-20101125-0012345678-1234567890",  // sign
		"05.01-20101125 0012345678-1234567890",  // separator
	} {
		if _, err := ParseSAMID(s); !errors.Is(err, ErrSAMID) {
			t.Errorf("ParseSAMID(%q) err = %v, want ErrSAMID", s, err)
		}
	}
	for _, n := range []int{0, 15, 17} {
		if _, err := DecodeSAMID(make([]byte, n)); !errors.Is(err, ErrSAMID) {
			t.Errorf("DecodeSAMID(%d bytes) err = %v, want ErrSAMID", n, err)
		}
	}
}
