package serial

import (
	"cmp"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Candidate is a tty that may have a GA 467 module behind it.
type Candidate struct {
	// Path is what to open: the /dev/serial/by-id name when the device has
	// one (stable across reboots and replugging), else the device node.
	Path string
	// Device is the device node Path resolves to (/dev/ttyUSB0).
	Device string
}

// Discover lists the ttys a module may sit on: the /dev/serial/by-id links
// first (resolved, sorted by name), then the /dev/ttyUSB* (FTDI and other
// USB-serial adapters) and /dev/ttyACM* (USB CDC) nodes that no link names,
// in numeric order. It does not open them.
func Discover() []Candidate { return discover("/dev") }

func discover(dev string) []Candidate {
	var out []Candidate
	named := map[string]bool{}
	links, _ := filepath.Glob(filepath.Join(dev, "serial", "by-id", "*"))
	slices.Sort(links)
	for _, l := range links {
		node, err := filepath.EvalSymlinks(l)
		if err != nil {
			continue // a dangling link: the device is going away
		}
		out = append(out, Candidate{Path: l, Device: node})
		named[node] = true
	}
	for _, prefix := range []string{"ttyUSB", "ttyACM"} {
		nodes, _ := filepath.Glob(filepath.Join(dev, prefix+"*"))
		slices.SortFunc(nodes, func(a, b string) int { return cmp.Compare(ttyNum(a, prefix), ttyNum(b, prefix)) })
		for _, n := range nodes {
			if !named[n] {
				out = append(out, Candidate{Path: n, Device: n})
			}
		}
	}
	return out
}

// ttyNum is the number in /dev/ttyUSB12, or -1.
func ttyNum(path, prefix string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(path), prefix))
	if err != nil {
		return -1
	}
	return n
}
