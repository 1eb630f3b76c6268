// Package docs_test checks the guides in docs/: their Go programs compile, and the deployment
// guide's nginx configuration carries herald's transports through Debian's nginx.
package docs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
