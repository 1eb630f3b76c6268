//go:build unix && !race

package soak

const raceEnabled = false
