package herald_test

// What the nes peer tests (nes_peers_test.go) and the differential wire test
// (nes_differential_test.go) share: starting a nes server configured like examples/nes, either
// the reference (hapi + @hapi/nes, internal/testpeers/hapi-nes-server.js) or herald's own demo,
// through testpeers.StartNes.

import (
	"testing"
	"time"

	"github.com/herald-go/herald/internal/testpeers"
)

// nesHeartbeat is the heartbeat a server under test is started with.
type nesHeartbeat struct{ interval, timeout time.Duration }

var (
	// nesDefaultHeartbeat is both servers' default.
	nesDefaultHeartbeat = nesHeartbeat{15 * time.Second, 5 * time.Second}
	// nesFastHeartbeat keeps the heartbeat scenario short: several intervals in about 3 s, with room for a loaded machine.
	nesFastHeartbeat = nesHeartbeat{time.Second, 500 * time.Millisecond}
)

// nesImpl is one nes server implementation under test.
type nesImpl testpeers.NesImpl

var (
	// hapiNes is the reference: hapi 21 + @hapi/nes 14.0.1, configured like examples/nes.
	hapiNes = nesImpl(testpeers.HapiNes)
	// heraldNes is herald's examples/nes, built once per test binary.
	heraldNes = nesImpl(testpeers.HeraldNes)
)

// start starts a server with the given heartbeat, stopped when the test ends, and returns its
// WebSocket URL (ws://127.0.0.1:PORT).
func (impl nesImpl) start(t *testing.T, hb nesHeartbeat) string {
	t.Helper()
	return testpeers.StartNes(t, testpeers.NesImpl(impl), testpeers.NesOptions{
		HeartbeatInterval: hb.interval, HeartbeatTimeout: hb.timeout}).URL
}
