// Package leaktest checks that a test leaves no goroutines behind: every
// goroutine a driver starts has an owner that stops it. It imports nothing
// of samrack's, so any package's tests can use it.
package leaktest

import (
	"runtime"
	"testing"
	"time"
)

// Check fails t if it ends with more goroutines than it began with. It
// gives goroutines that are finishing up to 3 s, yielding (not sleeping)
// while it waits, and prints every stack when some are left. Call it first
// in a test so its cleanup runs after the test's own.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			runtime.Gosched()
		}
	})
}
