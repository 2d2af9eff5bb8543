package vip

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		cidr, iface string
		want        string // Config.String, or "" for an error
		err         error
	}{
		{"192.0.2.10/24", "eth0", "192.0.2.10/24 on eth0", nil},
		{" 192.0.2.10/24 ", "eth0", "192.0.2.10/24 on eth0", nil},
		{"198.51.100.7/32", "bond0.100", "198.51.100.7/32 on bond0.100", nil},
		{"192.0.2.0/31", "eth0", "192.0.2.0/31 on eth0", nil},
		{"2001:db8::10/64", "eth0", "2001:db8::10/64 on eth0", nil},
		{"192.0.2.10", "eth0", "", ErrBadVIP},
		{"192.0.2.0/24", "eth0", "", ErrBadVIP},
		{"192.0.2.255/24", "eth0", "", ErrBadVIP},
		{"192.0.2.10/33", "eth0", "", ErrBadVIP},
		{"127.0.0.1/8", "eth0", "", ErrBadVIP},
		{"224.0.0.1/4", "eth0", "", ErrBadVIP},
		{"0.0.0.0/0", "eth0", "", ErrBadVIP},
		{"169.254.1.1/16", "eth0", "", ErrBadVIP},
		{"fe80::1/64", "eth0", "", ErrBadVIP},
		{"fe80::1%eth0/64", "eth0", "", ErrBadVIP},
		{"::ffff:192.0.2.10/120", "eth0", "", ErrBadVIP},
		{"", "eth0", "", ErrBadVIP},
		{"192.0.2.10/24", "", "", ErrBadInterface},
		{"192.0.2.10/24", "averyveryverylongname", "", ErrBadInterface},
		{"192.0.2.10/24", "eth0:1", "", ErrBadInterface},
		{"192.0.2.10/24", "eth 0", "", ErrBadInterface},
		{"192.0.2.10/24", "..", "", ErrBadInterface},
		{"192.0.2.10/24", "a/b", "", ErrBadInterface},
	} {
		c, err := Parse(tc.cidr, tc.iface)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q, %q) = %v, %v; want %v", tc.cidr, tc.iface, c, err, tc.err)
			}
			continue
		}
		if err != nil || c.String() != tc.want {
			t.Errorf("Parse(%q, %q) = %q, %v; want %q", tc.cidr, tc.iface, c, err, tc.want)
		}
	}
}

// FuzzParse: any flag values give a valid config or a named error, never a
// panic; a valid config round-trips through its String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"192.0.2.10/24", "2001:db8::10/64", "192.0.2.10", "::ffff:1.2.3.4/96", "1.2.3.4/0"} {
		f.Add(s, "eth0")
	}
	f.Fuzz(func(t *testing.T, cidr, iface string) {
		c, err := Parse(cidr, iface)
		if err != nil {
			if !errors.Is(err, ErrBadVIP) && !errors.Is(err, ErrBadInterface) {
				t.Fatalf("unnamed error %v", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error is not UTF-8: %q", err)
			}
			return
		}
		if !c.Prefix.IsValid() || c.Interface == "" || len(c.Interface) > maxIfName {
			t.Fatalf("bad config %+v from %q %q", c, cidr, iface)
		}
		p, i, _ := strings.Cut(c.String(), " on ")
		c2, err := Parse(p, i)
		if err != nil || c2 != c {
			t.Fatalf("%v does not round-trip: %v %v", c, c2, err)
		}
	})
}
