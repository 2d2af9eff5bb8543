package gpio

import "errors"

// Errors of this package; returned errors wrap them with the line or chip.
var (
	// ErrBadSpec: a line spec does not follow the syntax (see the package
	// documentation).
	ErrBadSpec = errors.New("gpio: bad line spec")
	// ErrUnknownLine: no driver knows a line of that name or offset.
	ErrUnknownLine = errors.New("gpio: no such line")
	// ErrUnknownChip: no GPIO character device has that name, label or path.
	ErrUnknownChip = errors.New("gpio: no such GPIO chip")
	// ErrAmbiguous: the name or chip label matches more than one line or chip.
	ErrAmbiguous = errors.New("gpio: ambiguous line spec")
	// ErrBusy: the line is held by another consumer (a kernel driver or
	// another process).
	ErrBusy = errors.New("gpio: line in use")
	// ErrConflict: the same line named twice with different polarity or
	// role.
	ErrConflict = errors.New("gpio: line named twice")
	// ErrNoPWM: slot lines are plain outputs.
	ErrNoPWM = errors.New("gpio: PWM not supported")
	// ErrClosed: Lines.Close was called.
	ErrClosed = errors.New("gpio: lines closed")
)
