//go:build !linux

package gpio

import (
	"errors"

	"periph.io/x/conn/v3/gpio"
)

// The GPIO character device is Linux only; Open finds no chips elsewhere.
type cdevLine struct{}

func newCdevLine(string, int) backend { return cdevLine{} }

func (cdevLine) out(gpio.Level) error { return errors.ErrUnsupported }
func (cdevLine) release() error       { return nil }
