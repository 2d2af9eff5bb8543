package gpio

import (
	"fmt"
	"strconv"
	"strings"
)

// spec is a parsed line spec.
type spec struct {
	name      string // line name; "" if by chip and offset
	chip      string // chip name, label or path
	offset    int
	activeLow bool
}

// parseSpec parses s (see the package documentation for the syntax).
func parseSpec(s string) (spec, error) {
	var sp spec
	body := strings.TrimSpace(s)
	bad := func(format string, args ...any) (spec, error) {
		return spec{}, fmt.Errorf("%w %q: %s", ErrBadSpec, s, fmt.Sprintf(format, args...))
	}
	bang := strings.HasPrefix(body, "!")
	if bang {
		body = strings.TrimSpace(body[1:])
	}
	sp.activeLow = bang
	if i := strings.LastIndexByte(body, ':'); i >= 0 {
		high := false
		for _, o := range strings.Split(body[i+1:], ",") {
			switch strings.TrimSpace(o) {
			case "active-low":
				sp.activeLow = true
			case "active-high":
				high = true
			default:
				return bad("unknown option %q (options: active-low, active-high; a chip and offset is written CHIP/OFFSET)", strings.TrimSpace(o))
			}
		}
		if high && sp.activeLow {
			return bad("both active-low and active-high")
		}
		body = strings.TrimSpace(body[:i])
	}
	if body == "" {
		return bad("no line")
	}
	if strings.HasPrefix(body, "!") {
		return bad("more than one '!'")
	}
	if i := strings.LastIndexByte(body, '/'); i >= 0 && isDigits(body[i+1:]) {
		n, err := strconv.Atoi(body[i+1:])
		if err != nil || n > 1<<20 {
			return bad("offset %s out of range", body[i+1:])
		}
		if i == 0 {
			return bad("no chip before the offset")
		}
		sp.chip, sp.offset = body[:i], n
		return sp, nil
	}
	sp.name = body
	return sp, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// String is the canonical form of the spec.
func (sp spec) String() string {
	s := sp.name
	if s == "" {
		s = sp.chip + "/" + strconv.Itoa(sp.offset)
	}
	if sp.activeLow {
		s += ":active-low"
	}
	return s
}
