package testpeers_test

// Debian's squid as a client's HTTP proxy, as StartSquid runs it: a WebSocket cannot get
// through (CONNECT to a non-TLS port is refused, Upgrade is dropped), while what the
// EventSource + POST fallback needs does, event streams included, one event at a time.

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// TestSquidRefusesWebSocketCONNECT: a ws:// dial through squid asks for a tunnel to the
// server's port, which is not 443: squid answers 403, and nothing reaches the server.
func TestSquidRefusesWebSocketCONNECT(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	proxy := testpeers.StartSquid(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+up.Listener.Addr().String()+"/ws",
		&websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)})
	if err == nil {
		_ = ws.CloseNow()
		t.Fatal("a WebSocket got through squid")
	}
	var pe *websocket.ProxyError
	require.ErrorAs(t, err, &pe, "err: %v", err)
	require.NotNil(t, pe.Response, "err: %v", err)
	assert.Equal(t, http.StatusForbidden, pe.Response.StatusCode, "err: %v", err)
	assert.Equal(t, up.Listener.Addr().String(), pe.Target)
	assert.Nil(t, up.header("/ws"), "the handshake reached the server")
}

// TestSquidDropsUpgrade sends a WebSocket handshake to squid as a plain HTTP request (as a
// client does for ws:// through a proxy that it does not tunnel through): squid forwards it
// as an ordinary GET, without Upgrade, so the server never answers 101.
func TestSquidDropsUpgrade(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	proxy := testpeers.StartSquid(t)
	pu, err := url.Parse(proxy)
	require.NoError(t, err)

	conn, err := net.DialTimeout("tcp", pu.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	target := up.Listener.Addr().String()
	_, err = conn.Write([]byte("GET http://" + target + "/ws HTTP/1.1\r\n" +
		"Host: " + target + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "websocket.Upgrade's answer to a GET without Upgrade")

	h := up.header("/ws")
	require.NotNil(t, h, "squid did not forward the request")
	assert.Empty(t, h.Get("Upgrade"), "squid forwarded Upgrade")
	assert.NotContains(t, strings.ToLower(h.Get("Connection")), "upgrade")
	assert.Contains(t, h.Get("Via"), "squid", "the request did not come through squid")
}

// TestSquidStreamsEvents reads an event stream through squid: each event arrives on its own,
// at once, while the response stays open.
func TestSquidStreamsEvents(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	c := client(t, testpeers.StartSquid(t))

	s := openStream(t, c, up.URL+"/events")
	s.requireOpen(t, prompt)
	assert.Contains(t, up.header("/events").Get("Via"), "squid", "the stream did not come through squid")
	s.requireEvent(t, "first", prompt)
	for _, data := range []string{"second", "third"} {
		up.send(t, data)
		s.requireEvent(t, data, prompt)
	}
	_, got, ended := s.next(100 * time.Millisecond)
	require.False(t, got || ended, "the stream should be open and quiet")

	up.send(t, "") // the server ends the stream: squid ends the response
	_, got, ended = s.next(5 * time.Second)
	require.True(t, ended && !got, "the response should have ended with the stream")
	require.NoError(t, s.err)
}

// TestSquidPassesRequests: a POST with a JSON body and a long-poll that answers late both go
// through squid.
func TestSquidPassesRequests(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	c := client(t, testpeers.StartSquid(t))

	got := postJSON(t, c, up.URL+"/echo", map[string]any{"type": "request", "id": 1.0, "path": "/hello"})
	assert.Equal(t, map[string]any{"method": "POST",
		"body": map[string]any{"type": "request", "id": 1.0, "path": "/hello"}}, got)
	h := up.header("/echo")
	assert.Contains(t, h.Get("Via"), "squid", "the POST did not come through squid")
	assert.Equal(t, "application/json", h.Get("Content-Type"))

	requireLongPoll(t, c, up.URL+"/poll?delay=1500ms", 1500*time.Millisecond)
	assert.Contains(t, up.header("/poll").Get("Via"), "squid", "the poll did not come through squid")
}
