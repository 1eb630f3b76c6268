// Package docs_test checks the guides in docs/, the top-level README.md and the package docs
// of herald, websocket, eventsource, client and heraldtest: their Go programs and fragments
// compile, the Node lines run against herald, and the deployment guide's nginx configuration
// carries herald's transports through Debian's nginx.
package docs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
