package ga467

import (
	"errors"
	"strings"
	"testing"
)

func TestStatusErrorUnwrap(t *testing.T) {
	want := map[byte]error{
		0x10: ErrHostChecksum, 0x11: ErrHostLength, 0x21: ErrBadCommand,
		0x23: ErrPrivilege, 0x24: ErrUnrecognised, 0x31: ErrCardAuthSAM,
		0x32: ErrSAMAuthCard, 0x33: ErrVerify, 0x37: ErrFingerprint,
		0x3F: ErrInfoLength, 0x40: ErrCardType, 0x41: ErrReadFailed,
		0x47: ErrRandom, 0x60: ErrSelfTest, 0x66: ErrNotAuthorised,
		0x80: ErrFindFailed, 0x81: ErrSelectFailed, 0x91: ErrNoItem,
		0xFF: ErrCommFault,
	}
	codes := ErrorCodes()
	if len(codes) != len(want) {
		t.Fatalf("ErrorCodes() has %d codes, want %d", len(codes), len(want))
	}
	for i, code := range codes {
		if i > 0 && codes[i-1] >= code {
			t.Errorf("ErrorCodes() not ascending at %d", i)
		}
		named, ok := want[code]
		if !ok {
			t.Errorf("ErrorCodes() lists %02X, which is not a GA 467 error code", code)
			continue
		}
		err := Status(code).Err()
		var se *StatusError
		if !errors.As(err, &se) || se.SW3 != code {
			t.Errorf("Status(%02X).Err() = %v, want *StatusError", code, err)
		}
		if !errors.Is(err, named) {
			t.Errorf("Status(%02X).Err() = %v, does not wrap %v", code, err, named)
		}
		if errors.Is(err, ErrUnknownStatus) {
			t.Errorf("Status(%02X).Err() wraps ErrUnknownStatus", code)
		}
		for other, otherErr := range want {
			if other != code && errors.Is(err, otherErr) {
				t.Errorf("Status(%02X).Err() also wraps %v", code, otherErr)
			}
		}
		if s := StatusText(code); s != named.Error() {
			t.Errorf("StatusText(%02X) = %q, want %q", code, s, named.Error())
		}
		if !strings.Contains(err.Error(), named.Error()) {
			t.Errorf("Error() = %q does not say %q", err.Error(), named.Error())
		}
	}
}

func TestReplyErr(t *testing.T) {
	tests := []struct {
		name    string
		r       Reply
		wantErr error // nil: success
	}{
		{"OK", Status(SW3OK), nil},
		{"card found", Status(SW3CardFound), nil},
		{"card exchange", Status(SW3CardExchange), nil},
		{"unknown code", Status(0x55), ErrUnknownStatus},
		{"SW1 set", Reply{SW1: 1, SW3: SW3OK}, ErrUnknownStatus},
		{"SW2 set with error code", Reply{SW2: 1, SW3: SW3ReadFailed}, ErrReadFailed},
		{"find failed", Status(SW3FindFailed), ErrFindFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Err()
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Err() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[byte]string{
		SW3OK:           "success",
		SW3CardFound:    "card found",
		SW3CardExchange: "card exchange needed (samrack tunnel)",
		0x55:            "unknown status",
	} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%02X) = %q, want %q", code, got, want)
		}
	}
}
