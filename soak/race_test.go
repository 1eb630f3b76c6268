//go:build unix && race

package soak

// raceEnabled: the race detector's shadow memory is never returned to the OS, so RSS is
// reported but not held to the baseline.
const raceEnabled = true
