//go:build race

package appliance

// raceEnabled: the race detector is on (allocations cost several times
// more memory).
const raceEnabled = true
