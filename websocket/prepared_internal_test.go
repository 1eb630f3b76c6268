package websocket

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/extensions/deflate"
)

// TestPreparedMessageEncodesOncePerSetting checks that connections sharing stateless
// compression settings share one encoding, and that a connection with context gets its own.
func TestPreparedMessageEncodesOncePerSetting(t *testing.T) {
	ext := []Extension{deflate.New(deflate.Options{})}
	newTestConn := func(offer string) *Conn {
		client, server := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
		offers, err := extensions.Parse(offer)
		require.NoError(t, err)
		n, err := extensions.ServerNegotiate(offers, ext)
		require.NoError(t, err)
		c := newConn(server, nil, false, (&Options{PingInterval: -1}).withDefaults())
		c.setExtensions(n)
		t.Cleanup(func() { c.shut(ErrClosed) })
		return c
	}
	pm, err := NewPreparedMessage(MessageText, bytes.Repeat([]byte("broadcast "), 100))
	require.NoError(t, err)
	for _, offer := range []string{
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate",
	} {
		require.NoError(t, pm.writeTo(newTestConn(offer)))
	}
	assert.Len(t, pm.encoded, 1, "the two stateless connections share one encoding; the third has context")
}

// writeTo is a test shorthand.
func (pm *PreparedMessage) writeTo(c *Conn) error { return c.WritePrepared(context.Background(), pm) }
