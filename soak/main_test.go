//go:build unix

package soak

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine outlives it, as the other packages do; TestSoak's
// own checks after each phase are stricter (counts, fds, memory) and name the phase.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
