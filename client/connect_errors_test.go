package client_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// TestConnectRefusedNamesEveryTransport: when no transport reaches the server, Connect's error
// says why for each one, not only for the last tried, and errors.Is and errors.As still find
// the causes (here, a refused connection).
func TestConnectRefusedNamesEveryTransport(t *testing.T) {
	t.Parallel()
	url := "ws://" + testpeers.ClosedAddr(t)

	c, err := client.New(url, &client.Options{Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}})
	require.NoError(t, err)
	defer c.Close()
	err = c.Connect(context.Background())
	require.Error(t, err)

	var e *client.Error
	require.True(t, errors.As(err, &e), "%T %v", err, err)
	assert.Equal(t, client.KindTransport, e.Kind)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "%v", err)
	assert.False(t, errors.Is(err, client.ErrTimeout), "%v", err)
	msg := err.Error()
	assert.Contains(t, msg, "client: transport: no transport reached the server: ")
	for _, transport := range []string{"websocket", "sse", "poll"} {
		assert.Contains(t, msg, "cannot connect over "+transport+": ", "%v", err)
	}

	// One transport: its own error, as before.
	one, err := client.New(url, &client.Options{Transports: []string{client.TransportWebSocket},
		Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}})
	require.NoError(t, err)
	defer one.Close()
	err = one.Connect(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "client: transport: cannot connect over websocket: ")
	assert.NotContains(t, err.Error(), "no transport reached")
}
