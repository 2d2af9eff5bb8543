package sam

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Driver opens SAM modules of one kind. Drivers register themselves from
// init (periph's driverreg style) so the rack config can name them.
type Driver struct {
	// Name is how a rack config names the driver: "sim", "serial", "pcsc".
	Name string
	// Open opens the module at dev (a driver-specific address: a tty path,
	// a PC/SC reader name, a virtual SAM seed) with driver options.
	Open func(ctx context.Context, dev string, opts map[string]string) (SAM, error)
}

// ErrUnknownDriver: no driver of that name is registered.
var ErrUnknownDriver = errors.New("sam: unknown driver")

var (
	regMu   sync.Mutex // regMu guards drivers
	drivers = map[string]Driver{}
)

// Register adds d to the registry. It fails if the name is taken or empty.
func Register(d Driver) error {
	if d.Name == "" || d.Open == nil {
		return errors.New("sam: driver needs a name and an Open func")
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, ok := drivers[d.Name]; ok {
		return fmt.Errorf("sam: driver %q registered twice", d.Name)
	}
	drivers[d.Name] = d
	return nil
}

// MustRegister is Register for init functions: it panics on error.
func MustRegister(d Driver) {
	if err := Register(d); err != nil {
		panic(err)
	}
}

// Drivers lists the registered driver names, sorted.
func Drivers() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens dev with the named driver.
func Open(ctx context.Context, driver, dev string, opts map[string]string) (SAM, error) {
	regMu.Lock()
	d, ok := drivers[driver]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (have %v)", ErrUnknownDriver, driver, Drivers())
	}
	s, err := d.Open(ctx, dev, opts)
	if err != nil {
		return nil, fmt.Errorf("sam: open %s %q: %w", driver, dev, err)
	}
	return s, nil
}
