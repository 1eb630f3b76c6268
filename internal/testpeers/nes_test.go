package testpeers_test

// StartNes's options, checked the same way on both servers: whatever passes here holds for the
// reference (hapi + @hapi/nes) as much as for herald's demo.

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// nesWait bounds each wait for a server's frame.
const nesWait = 5 * time.Second

// nesConn is a raw nes connection: JSON messages over the repository's own WebSocket.
type nesConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialNes(t *testing.T, srv *testpeers.NesServer, header http.Header) *nesConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nesWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.URL, &websocket.DialOptions{Header: header})
	require.NoError(t, err, "dial %s", srv.URL)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &nesConn{t: t, ws: ws}
}

func (c *nesConn) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nesWait)
	defer cancel()
	require.NoError(c.t, c.ws.Write(ctx, websocket.MessageText, []byte(msg)))
}

// next returns the next message other than a server ping, or the read error after timeout.
func (c *nesConn) next(timeout time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		if m["type"] != "ping" {
			return m, nil
		}
	}
}

func (c *nesConn) must() map[string]any {
	c.t.Helper()
	m, err := c.next(nesWait)
	require.NoError(c.t, err)
	return m
}

// hello says hello with auth (a JSON value, or "" for none) and subs, and returns the reply.
func (c *nesConn) hello(auth string, subs ...string) map[string]any {
	c.t.Helper()
	msg := map[string]any{"type": "hello", "id": 1, "version": "2", "subs": subs}
	if auth != "" {
		msg["auth"] = json.RawMessage(auth)
	}
	b, _ := json.Marshal(msg)
	c.send(string(b))
	return c.must()
}

// request sends a request and returns its reply.
func (c *nesConn) request(id int, method, path string, payload any) map[string]any {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"type": "request", "id": id, "method": method, "path": path, "payload": payload})
	c.send(string(b))
	m := c.must()
	require.Equal(c.t, "request", m["type"], "reply: %v", m)
	return m
}

// requireHelloOK checks a successful hello reply carrying the server's heartbeat.
func requireHelloOK(t *testing.T, m map[string]any, interval, timeout float64) {
	t.Helper()
	require.Equal(t, "hello", m["type"], "hello reply: %v", m)
	require.Nil(t, m["statusCode"], "hello reply: %v", m)
	assert.Equal(t, map[string]any{"interval": interval, "timeout": timeout}, m["heartbeat"])
}

func forEachNes(t *testing.T, test func(t *testing.T, impl testpeers.NesImpl)) {
	for _, impl := range testpeers.NesImpls() {
		t.Run(string(impl), func(t *testing.T) {
			t.Parallel()
			test(t, impl)
		})
	}
}

func TestPeerNesTokenAuth(t *testing.T) {
	t.Parallel()
	forEachNes(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "token", HeartbeatInterval: 2 * time.Second, HeartbeatTimeout: time.Second})
		token := srv.Token(t)
		quoted, _ := json.Marshal(token)

		c := dialNes(t, srv, nil)
		requireHelloOK(t, c.hello(string(quoted)), 2000, 1000)
		got := c.request(2, "GET", "authhello", nil)
		assert.Equal(t, 200.0, got["statusCode"], "authhello: %v", got)
		assert.Equal(t, "Hello John Doe", got["payload"])

		// Without the token the route refuses; with a forged one, so does the hello.
		anon := dialNes(t, srv, nil)
		requireHelloOK(t, anon.hello(""), 2000, 1000)
		assert.Equal(t, 401.0, anon.request(2, "GET", "authhello", nil)["statusCode"])
		forged := dialNes(t, srv, nil)
		bad := forged.hello(`"Fe26.2**forged"`)
		assert.Equal(t, 401.0, bad["statusCode"], "hello with a forged token: %v", bad)
		assert.Equal(t, map[string]any{"error": "Unauthorized", "message": "Invalid token"}, bad["payload"])
	})
}

func TestPeerNesCookieAuth(t *testing.T) {
	t.Parallel()
	forEachNes(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "cookie"})
		cookie := srv.Cookie(t)
		assert.True(t, cookie.HttpOnly, "the nes cookie is HttpOnly")
		assert.False(t, cookie.Secure, "the nes cookie is not Secure, for plain HTTP")

		c := dialNes(t, srv, http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
		requireHelloOK(t, c.hello(""), 15000, 5000)
		got := c.request(2, "GET", "authhello", nil)
		assert.Equal(t, 200.0, got["statusCode"], "authhello: %v", got)
		assert.Equal(t, "Hello John Doe", got["payload"])

		anon := dialNes(t, srv, nil)
		requireHelloOK(t, anon.hello(""), 15000, 5000)
		assert.Equal(t, 401.0, anon.request(2, "GET", "authhello", nil)["statusCode"])
	})
}

func TestPeerNesRevokeAndSend(t *testing.T) {
	t.Parallel()
	forEachNes(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		c := dialNes(t, srv, nil)
		requireHelloOK(t, c.hello("", "/item/5", "/items", "/item/6"), 15000, 5000)
		other := dialNes(t, srv, nil)
		requireHelloOK(t, other.hello("", "/item/6"), 15000, 5000)

		status, body := srv.Post(t, "/revoke", map[string]any{"path": "/item/5", "message": map[string]any{"why": "gone"}})
		require.Equal(t, 200, status, "%s", body)
		assert.JSONEq(t, `{"ok":true}`, string(body))
		assert.Equal(t, map[string]any{"type": "revoke", "path": "/item/5", "message": map[string]any{"why": "gone"}}, c.must())
		status, body = srv.Post(t, "/revoke", map[string]any{"path": "/items"})
		require.Equal(t, 200, status, "%s", body)
		assert.Equal(t, map[string]any{"type": "revoke", "path": "/items"}, c.must(), "a revoke without a message")

		// The revoked paths deliver nothing more; /item/6 still does, and only to its subscribers.
		for _, path := range []string{"/item/5", "/items", "/item/6"} {
			status, body = srv.Post(t, "/publish", map[string]any{"path": path, "message": path})
			require.Equal(t, 200, status, "%s", body)
		}
		assert.Equal(t, map[string]any{"type": "pub", "path": "/item/6", "message": "/item/6"}, c.must())
		assert.Equal(t, map[string]any{"type": "pub", "path": "/item/6", "message": "/item/6"}, other.must())

		status, body = srv.Post(t, "/revoke", map[string]any{"message": 1})
		assert.Equal(t, 400, status, "a revoke without a path: %s", body)

		// /send reaches the calling socket only, before the request's reply.
		b, _ := json.Marshal(map[string]any{"type": "request", "id": 2, "method": "POST", "path": "/send", "payload": map[string]any{"message": map[string]any{"x": 1}}})
		c.send(string(b))
		assert.Equal(t, map[string]any{"type": "update", "message": map[string]any{"x": 1.0}}, c.must())
		reply := c.must()
		assert.Equal(t, map[string]any{"type": "request", "id": 2.0, "statusCode": 200.0, "payload": map[string]any{"ok": true}}, reply)
		got := other.request(2, "GET", "hello", nil)
		assert.Equal(t, "world!", got["payload"], "the other socket's next message is its own reply: %v", got)
		status, body = srv.Post(t, "/send", map[string]any{"message": 1})
		assert.Equal(t, 400, status, "/send over plain HTTP: %s", body)
	})
}

func TestPeerNesRestart(t *testing.T) {
	t.Parallel()
	forEachNes(t, func(t *testing.T, impl testpeers.NesImpl) {
		port := freePort(t)
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Port: port})
		require.Equal(t, "ws://127.0.0.1:"+strconv.Itoa(port), srv.URL)

		c := dialNes(t, srv, nil)
		requireHelloOK(t, c.hello(""), 15000, 5000)

		// Frozen, the server answers nothing; thawed, it answers what it was sent meanwhile.
		srv.Freeze(t)
		c.send(`{"type":"request","id":2,"method":"GET","path":"/h"}`)
		m, err := c.next(300 * time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "a frozen server answered: %v", m)
		srv.Thaw(t)
		assert.Equal(t, "world!", c.must()["payload"])

		// Killed, the connection drops; started again, the server takes new connections on the
		// same port.
		srv.Kill(t)
		_, err = c.next(nesWait)
		require.Error(t, err)
		require.False(t, errors.Is(err, context.DeadlineExceeded), "the connection outlived the killed server")
		srv.Start(t)
		require.Equal(t, "ws://127.0.0.1:"+strconv.Itoa(port), srv.URL)
		again := dialNes(t, srv, nil)
		requireHelloOK(t, again.hello(""), 15000, 5000)

		// Stopped, likewise.
		srv.Stop(t)
		_, err = again.next(nesWait)
		require.Error(t, err)
		require.False(t, errors.Is(err, context.DeadlineExceeded), "the connection outlived the stopped server")
		srv.Start(t)
		requireHelloOK(t, dialNes(t, srv, nil).hello(""), 15000, 5000)
	})
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}
