package herald_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/broker"
)

// TestReadinessFollowsTheBrokerLink: with a broker, the server is ready once its link is up,
// not ready (503, "broker unavailable") while the link is cut, and ready again when it comes
// back; liveness stays 200 throughout.
func TestReadinessFollowsTheBrokerLink(t *testing.T) {
	hub := broker.NewMemoryHub()
	b := hub.Broker()
	srv := herald.NewServer(nil, &herald.Options{Broker: b, Heartbeat: &herald.Heartbeat{Disabled: true}})
	defer srv.Close()
	ready := func() int {
		code, _ := status(t, srv.ReadyHandler(), "/ready")
		return code
	}
	require.Eventually(t, func() bool { return ready() == http.StatusOK }, 10*time.Second, 10*time.Millisecond, "never ready")

	hub.Disconnect(b)
	require.Eventually(t, func() bool { return ready() == http.StatusServiceUnavailable }, 10*time.Second, 10*time.Millisecond)
	code, body := status(t, srv.ReadyHandler(), "/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "broker unavailable\n", body)
	code, _ = status(t, srv.LiveHandler(), "/live")
	assert.Equal(t, http.StatusOK, code)

	hub.Reconnect(b)
	require.Eventually(t, func() bool { return ready() == http.StatusOK }, 10*time.Second, 10*time.Millisecond, "not ready again")
}
