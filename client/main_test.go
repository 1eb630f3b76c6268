package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: no goroutine of a
// client may outlive its Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
