package gpio

import (
	"flag"
	"io"
	"log"
	"os"
	"testing"
)

// TestMain keeps gpiotest.LogPinIO's log of every write for -v runs.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		log.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}
