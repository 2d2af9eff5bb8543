// Package gpio drives the slot power lines and the locate and fault LEDs of
// a samrack rack on real hardware, through periph.io (https://periph.io).
// It is the hardware twin of the virtual lines in drivers/sim: both hand
// the rack periph's gpio.PinOut, and rack.Options.Lines is (*Lines).Resolve.
//
// # Drivers
//
// Open runs periph's host.Init (periph.io/x/host/v3), which loads the
// GPIO character-device driver gpioioctl ("ioctl-gpio": /dev/gpiochipN,
// the Linux GPIO uAPI v2,
// https://docs.kernel.org/userspace-api/gpio/chardev.html), the legacy
// sysfs driver ("sysfs-gpio": /sys/class/gpio, lines named GPIO<n>) and the board
// drivers periph has for the CPU. What loaded, was skipped (and why) or
// failed is kept for the admin API: see Lines.Drivers and Lines.Chips. A
// machine without GPIO is not an error for Open: the drivers are skipped
// and Resolve says which line it cannot find and why.
//
// Character-device lines are preferred: a line name found on a chip is
// driven through the character device even if sysfs or a board driver
// registered the same name. sysfs lines are the fallback for names only
// gpioreg knows. Note that periph host v3.8.5 declares sysfs-gpio with
// ioctl-gpio as a prerequisite, so it is skipped on a kernel without the
// character device (CONFIG_GPIO_CDEV, in Linux since 4.8): sysfs is a
// fallback per line, not per machine. Do not export through sysfs a line
// that is also used by its character-device name: the kernel gives it to
// one of them only (ErrBusy for the other).
//
// # Naming a line
//
// SlotConfig.Power, Locate and Fault are line specs:
//
//	spec    = [ "!" ] line [ ":" option { "," option } ]
//	line    = NAME | CHIP "/" OFFSET
//	option  = "active-low" | "active-high"
//
// NAME is a line name: the name the kernel gives a character-device line
// (its gpio-line-names label, e.g. "SAM0_PWR" or "GPIO17" on a Raspberry
// Pi), or any name or alias in periph's gpioreg (sysfs lines are "GPIO<n>"
// with the kernel's global number, board drivers add their own). A name
// found on more than one chip is ambiguous and must be given by chip and
// offset.
//
// CHIP/OFFSET is a character-device line by its offset on a chip; CHIP is
// the chip's name ("gpiochip0"), label ("pinctrl-bcm2835") or device path
// ("/dev/gpiochip0/17" is offset 17 of /dev/gpiochip0). Offsets work for
// unnamed lines and do not depend on gpio-line-names in the device tree;
// they are not the board's header pin numbers. A spec whose text after
// the last "/" is all digits is always read as CHIP/OFFSET.
//
// Polarity: "!" or the option "active-low" makes the line active-low: the
// rack's High (power on, LED lit) drives the wire low. Many load switches
// and LEDs wired to a 3.3 V rail are active-low. Examples:
//
//	SAM0_PWR                  line named SAM0_PWR, active-high
//	!SAM0_PWR                 the same, active-low
//	SAM0_PWR:active-low       the same, spelled out
//	gpiochip0/17              offset 17 of gpiochip0
//	pinctrl-bcm2835/17:active-low
//	/dev/gpiochip2/5
//
// A name containing ':' or ending in "/<digits>" cannot be written as
// NAME; use CHIP/OFFSET for it.
//
// # Writing character-device lines
//
// Character-device lines are requested by this package, not through
// periph's gpioioctl.GPIOLine, for two reasons found in periph host v3.8.5:
// its first Out configures the line as an output (which the kernel drives
// low) before it writes the level, a glitch that would brown out every
// powered SAM at daemon start; and its Read and Function reconfigure an
// output line as an input with pull-up. Here the first Out requests the
// line as an output with its initial value in the same ioctl
// (GPIO_V2_GET_LINE_IOCTL with GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES), so a
// line that is already at the level is never moved, and nothing ever reads
// or re-directs an output. periph is still what discovers the chips and
// lines. Other lines (sysfs, board drivers, test pins) are driven through
// their periph gpio.PinOut.
//
// # Safe state at exit
//
// A daemon restart (upgrade, crash, watchdog) must not power-cycle the
// rack: SAMs that are up keep serving the other appliances' sessions while
// this one restarts, and a power-cycle costs a boot and a re-probe of every
// slot. So Close, per line role (see ResolveAs):
//
//   - power lines are left as they are: never driven at Close, then
//     released;
//   - locate LEDs are turned off: locate is an operator's request held in
//     the daemon's memory, and nothing could turn it off while the daemon
//     is down;
//   - fault LEDs are left as they are: a quarantined module stays marked
//     while the daemon restarts (a technician may be walking to it); the
//     next daemon decides again when it starts;
//   - lines of no declared role (Resolve alone) are left as they are:
//     never guess about a line that could be power.
//
// After Close the lines are released. The kernel then holds the last level
// on most GPIO chips, but the uAPI does not promise it (a released line
// "may revert to its default state"; bcm2835 reverts to input unless
// pinctrl_bcm2835.persist_gpio_outputs is set), and a crash or SIGKILL
// releases the lines anyway. The guarantee therefore belongs in hardware:
// wire each power switch so that its undriven state, set by its pull
// resistor, is powered (a pull-up on an active-high enable, or a pull-down
// on an active-low one), and LEDs so that undriven is off. Lines that are
// never driven are never requested, so starting the daemon does not touch
// a line the rack does not drive.
//
// Close must come after the rack's Run has returned; a late Out fails with
// ErrClosed.
package gpio
