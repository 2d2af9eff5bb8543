//go:build linux

package gpio

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	"periph.io/x/conn/v3/gpio"
)

// The GPIO character device uAPI v2, from <linux/gpio.h>
// (https://docs.kernel.org/userspace-api/gpio/chardev.html). Layouts are
// checked against the kernel's sizes in the tests.
const (
	lineFlagOutput      = 1 << 3 // GPIO_V2_LINE_FLAG_OUTPUT
	lineAttrOutputValue = 2      // GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES
	linesMax            = 64     // GPIO_V2_LINES_MAX
	attrsMax            = 10     // GPIO_V2_LINE_NUM_ATTRS_MAX
	maxNameSize         = 32     // GPIO_MAX_NAME_SIZE
)

type lineAttribute struct { // struct gpio_v2_line_attribute
	id    uint32
	_     uint32
	value uint64 // flags, values or debounce_period_us
}

type lineConfigAttribute struct { // struct gpio_v2_line_config_attribute
	attr lineAttribute
	mask uint64
}

type lineConfig struct { // struct gpio_v2_line_config
	flags    uint64
	numAttrs uint32
	_        [5]uint32
	attrs    [attrsMax]lineConfigAttribute
}

type lineRequest struct { // struct gpio_v2_line_request
	offsets         [linesMax]uint32
	consumer        [maxNameSize]byte
	config          lineConfig
	numLines        uint32
	eventBufferSize uint32
	_               [5]uint32
	fd              int32
}

type lineValues struct { // struct gpio_v2_line_values
	bits uint64
	mask uint64
}

// iowr is _IOWR(0xB4, nr, size).
func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 0xB4<<8 | nr }

var (
	getLineIoctl   = iowr(0x07, unsafe.Sizeof(lineRequest{})) // GPIO_V2_GET_LINE_IOCTL
	getValuesIoctl = iowr(0x0E, unsafe.Sizeof(lineValues{}))  // GPIO_V2_LINE_GET_VALUES_IOCTL
	setValuesIoctl = iowr(0x0F, unsafe.Sizeof(lineValues{}))  // GPIO_V2_LINE_SET_VALUES_IOCTL
)

// consumer is the name `gpioinfo` shows for the lines we hold.
var consumer = func() string {
	s := fmt.Sprintf("samrack:%s@%d", filepath.Base(os.Args[0]), os.Getpid())
	if len(s) > maxNameSize-1 {
		s = s[:maxNameSize-1]
	}
	return s
}()

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		default:
			return e
		}
	}
}

// cdevLine is one line of a GPIO character device, requested as an output
// on its first write.
type cdevLine struct {
	path   string
	offset int

	mu sync.Mutex // mu guards fd
	fd int        // line request fd; -1 until requested
}

func newCdevLine(path string, offset int) backend {
	return &cdevLine{path: path, offset: offset, fd: -1}
}

func (c *cdevLine) out(v gpio.Level) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var bits uint64
	if v {
		bits = 1
	}
	if c.fd >= 0 {
		vals := lineValues{bits: bits, mask: 1}
		return ioctl(c.fd, setValuesIoctl, unsafe.Pointer(&vals))
	}
	// Request as an output with its initial value in one ioctl: a line
	// already at v does not move.
	chip, err := syscall.Open(c.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.path, err)
	}
	defer syscall.Close(chip)
	var req lineRequest
	req.offsets[0] = uint32(c.offset)
	req.numLines = 1
	copy(req.consumer[:maxNameSize-1], consumer)
	req.config.flags = lineFlagOutput
	req.config.numAttrs = 1
	req.config.attrs[0] = lineConfigAttribute{attr: lineAttribute{id: lineAttrOutputValue, value: bits}, mask: 1}
	if err := ioctl(chip, getLineIoctl, unsafe.Pointer(&req)); err != nil {
		if err == syscall.EBUSY {
			return fmt.Errorf("request %s line %d: %w (%w)", c.path, c.offset, ErrBusy, err)
		}
		return fmt.Errorf("request %s line %d: %w", c.path, c.offset, err)
	}
	c.fd = int(req.fd)
	return nil
}

// get reads the line's level back from the kernel (the driven level of an
// output); for tests.
func (c *cdevLine) get() (gpio.Level, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return gpio.Low, fmt.Errorf("%s line %d: not requested", c.path, c.offset)
	}
	vals := lineValues{mask: 1}
	if err := ioctl(c.fd, getValuesIoctl, unsafe.Pointer(&vals)); err != nil {
		return gpio.Low, err
	}
	return vals.bits&1 == 1, nil
}

func (c *cdevLine) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := syscall.Close(c.fd)
	c.fd = -1
	return err
}
