package gpio

import (
	"errors"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want spec
	}{
		{"SAM0_PWR", spec{name: "SAM0_PWR"}},
		{"  GPIO17 ", spec{name: "GPIO17"}},
		{"!SAM0_PWR", spec{name: "SAM0_PWR", activeLow: true}},
		{"SAM0_PWR:active-low", spec{name: "SAM0_PWR", activeLow: true}},
		{"SAM0_PWR:active-high", spec{name: "SAM0_PWR"}},
		{"! SAM0_PWR : active-low", spec{name: "SAM0_PWR", activeLow: true}},
		{"gpiochip0/17", spec{chip: "gpiochip0", offset: 17}},
		{"pinctrl-bcm2835/17:active-low", spec{chip: "pinctrl-bcm2835", offset: 17, activeLow: true}},
		{"/dev/gpiochip2/5", spec{chip: "/dev/gpiochip2", offset: 5}},
		{"!gpiochip0/0", spec{chip: "gpiochip0", offset: 0, activeLow: true}},
		{"a/b", spec{name: "a/b"}}, // not digits after the slash: a name
	} {
		got, err := parseSpec(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, in := range []string{
		"", "  ", "!", ":active-low",
		"pinctrl-bcm2835:17",    // offset after a colon: tells to use CHIP/OFFSET
		"SAM0_PWR:active-lo",    // typo
		"!SAM0_PWR:active-high", // contradiction
		"SAM0_PWR:active-low,active-high",
		"/17",                         // no chip
		"gpiochip0/99999999999999999", // out of range
	} {
		_, err := parseSpec(in)
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("parseSpec(%q) = %v, want ErrBadSpec", in, err)
		}
	}
	_, err := parseSpec("pinctrl-bcm2835:17")
	if want := `gpio: bad line spec "pinctrl-bcm2835:17": unknown option "17" (options: active-low, active-high; a chip and offset is written CHIP/OFFSET)`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// FuzzParseSpec: the canonical form of a spec parses back to the same spec.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"SAM0_PWR", "!SAM0_PWR", "gpiochip0/17:active-low", "/dev/gpiochip2/5", "a:b:active-low"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parseSpec(s)
		if err != nil {
			return
		}
		again, err := parseSpec(sp.String())
		if err != nil || again != sp {
			t.Fatalf("parseSpec(%q) = %+v; its String %q parses to %+v, %v", s, sp, sp.String(), again, err)
		}
	})
}
