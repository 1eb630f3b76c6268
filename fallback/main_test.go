package fallback_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them: a session's, a stream's
// or a Conn's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
