package client_test

// nes over the fallback transports (EventSource + POST, long-polling) with herald's demo
// (examples/nes) as a process: every nes feature over each, directly and through real proxies
// that block WebSocket (internal/testpeers: Debian's squid and nginx), and the client's choice
// of transport.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// fastHeartbeat has the server ping every 600 ms, so that a test of a few seconds sees
// several heartbeats answered over the transport under test.
var fastHeartbeat = testpeers.NesOptions{HeartbeatInterval: 600 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond}

// nesFeatures runs the nes feature list against srv with clients made from base (its
// transport, proxy and URLs): hello with auth and subscriptions, requests, messages,
// subscriptions with filters, publish, broadcast, revoke, heartbeats, a large message,
// reauthentication. Every client must end up on transport want.
func nesFeatures(t *testing.T, srv *testpeers.NesServer, url string, base client.Options, want string) {
	ctx := testContext(t)
	newClient := func(auth *client.Auth, ev *heraldtest.Events) *client.Client {
		o := base
		o.Auth = auth
		o.Backoff = fastReconnect
		c, err := client.New(url, ev.Options(&o))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	john := &client.Auth{Headers: map[string]string{"authorization": basicJohn}}

	// Hello with auth and a subscription made before connecting.
	var johnEv heraldtest.Events
	jc := newClient(john, &johnEv)
	johnUpdates := &heraldtest.Recorder[client.Update]{}
	_, err := jc.Subscribe(ctx, "/item/5", johnUpdates.Add)
	require.NoError(t, err)
	require.NoError(t, jc.Connect(ctx))
	assert.Equal(t, want, johnEv.Connects.Next(t).Transport)
	assert.Equal(t, want, jc.Transport())
	assertJohn(t, jc)

	var anonEv heraldtest.Events
	ac := newClient(nil, &anonEv)
	require.NoError(t, ac.Connect(ctx))
	anonEv.Connects.Next(t)

	// Requests and messages.
	res, err := ac.Request(ctx, "hello")
	require.NoError(t, err)
	assert.JSONEq(t, `"world!"`, string(res.Payload))
	_, err = ac.Request(ctx, "authhello")
	assert.Equal(t, 401, client.StatusCode(err), "%v", err)
	big := strings.Repeat("ünïcødé ", 32<<10) // 384 KiB: more than one POST's worth of small messages
	res, err = ac.Do(ctx, &client.Request{Method: "POST", Path: "/echo", Payload: map[string]string{"big": big}})
	require.NoError(t, err)
	assert.Contains(t, string(res.Payload), "ünïcødé ünïcødé")
	assert.Len(t, res.Payload, len(`{"big":""}`)+len(big))
	reply, err := ac.Message(ctx, []int{1, 2, 3})
	require.NoError(t, err)
	assert.JSONEq(t, `{"echo":[1,2,3]}`, string(reply))

	// Many requests at once: replies come back to their callers.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := ac.Do(ctx, &client.Request{Method: "POST", Path: "/echo", Payload: map[string]int{"i": i}})
			if assert.NoError(t, err) {
				assert.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(res.Payload))
			}
		}()
	}
	wg.Wait()

	// Subscriptions, the filter, publish and broadcast.
	anonUpdates := heraldtest.Subscribe(t, ac, "/item/5")
	publish(t, srv, "/item/5", map[string]any{"updater": "john", "n": 1})
	assert.JSONEq(t, `{"updater":"john","n":1}`, string(anonUpdates.Next(t).Message))
	publish(t, srv, "/item/5", map[string]any{"updater": "mary", "n": 2})
	assert.JSONEq(t, `{"updater":"mary","n":2}`, string(johnUpdates.Next(t).Message), "john's own update was filtered out")
	anonUpdates.Next(t)
	status, body := srv.Post(t, "/broadcast", map[string]any{"message": "to all"})
	require.Equal(t, 200, status, "%s", body)
	assert.JSONEq(t, `"to all"`, string(anonEv.Updates.Next(t)))
	assert.JSONEq(t, `"to all"`, string(johnEv.Updates.Next(t)))

	// Revoke.
	status, body = srv.Post(t, "/revoke", map[string]any{"path": "/item/5", "message": "bye"})
	require.Equal(t, 200, status, "%s", body)
	u := anonUpdates.Next(t)
	assert.True(t, u.Revoked)
	assert.JSONEq(t, `"bye"`, string(u.Message))
	assert.True(t, johnUpdates.Next(t).Revoked)

	// Reauthentication.
	require.NoError(t, ac.Reauthenticate(ctx, john))
	assertJohn(t, ac)

	// Heartbeats: the server pings every 600 ms and drops a socket that does not answer
	// within 400 ms; over a few seconds nothing drops.
	time.Sleep(2500 * time.Millisecond)
	anonEv.Disconnects.None(t, 0)
	johnEv.Disconnects.None(t, 0)
	johnEv.HeartbeatTimeouts.None(t, 0)
	_, err = jc.Request(ctx, "hello")
	require.NoError(t, err)
}

// TestFallbackFeatures: every nes feature over each fallback transport, chosen explicitly.
func TestFallbackFeatures(t *testing.T) {
	for _, tr := range []string{client.TransportSSE, client.TransportPoll} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
			nesFeatures(t, srv, srv.URL, client.Options{Transports: []string{tr}}, tr)
		})
	}
}

// TestFallbackWhenUpgradeRefused: a server path where the WebSocket handshake fails (a proxy
// that does not forward Upgrade answers the request as a plain GET): the client moves to the
// event stream by itself.
func TestFallbackWhenUpgradeRefused(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
	stripper := stripUpgrade(t, srv.Addr)
	var ev heraldtest.Events
	c, err := client.New("ws://"+stripper, ev.Options(nil))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Connect(testContext(t)))
	assert.Equal(t, client.TransportSSE, ev.Connects.Next(t).Transport)
	res, err := c.Request(testContext(t), "hello")
	require.NoError(t, err)
	assert.JSONEq(t, `"world!"`, string(res.Payload))
}

// TestFallbackWhenFramesDropped: a proxy that lets the WebSocket upgrade through and then
// drops every frame: no hello reply comes, and after FallbackTimeout the client says hello
// over the event stream instead.
func TestFallbackWhenFramesDropped(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
	blackhole := dropFramesAfterUpgrade(t, srv.Addr)
	var ev heraldtest.Events
	c, err := client.New("ws://"+blackhole, ev.Options(&client.Options{FallbackTimeout: 500 * time.Millisecond}))
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	require.NoError(t, c.Connect(testContext(t)))
	assert.Equal(t, client.TransportSSE, ev.Connects.Next(t).Transport)
	assert.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "WebSocket was given its FallbackTimeout")
	_, err = c.Request(testContext(t), "hello")
	require.NoError(t, err)
}

// TestFallbackBackToWebSocket: a client on the fallback tries WebSocket again at its next
// connection, and takes it when it works.
func TestFallbackBackToWebSocket(t *testing.T) {
	t.Parallel()
	srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
	gate := newUpgradeGate(t, srv.Addr)
	var ev heraldtest.Events
	c, err := client.New("ws://"+gate.addr, ev.Options(&client.Options{Backoff: fastReconnect}))
	require.NoError(t, err)
	defer c.Close()
	gate.setBlocked(true)
	require.NoError(t, c.Connect(testContext(t)))
	assert.Equal(t, client.TransportSSE, ev.Connects.Next(t).Transport)
	gate.setBlocked(false)
	_, err = c.Do(testContext(t), &client.Request{Method: "POST", Path: "/drop"})
	require.NoError(t, err)
	e := ev.Connects.Next(t)
	assert.True(t, e.Reconnect)
	assert.Equal(t, client.TransportWebSocket, e.Transport)
}

// TestFallbackThroughProxies: the reality the fallback exists for. Debian's squid, with its
// default rules, as the client's proxy: it refuses CONNECT to the server's port and does not
// forward Upgrade, so WebSocket fails and the event stream goes through it. Debian's nginx as a
// reverse proxy that does not pass Upgrade: the stream flows with its default buffering (the
// server says X-Accel-Buffering: no), and when it is told to buffer anyway the client ends up
// on long-polling. Every nes feature passes through each.
func TestFallbackThroughProxies(t *testing.T) {
	t.Run("squid", func(t *testing.T) {
		t.Parallel()
		srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
		proxy := testpeers.StartSquid(t)
		nesFeatures(t, srv, srv.URL, client.Options{Dial: &websocket.DialOptions{Proxy: websocket.ProxyURL(proxy)}}, client.TransportSSE)
	})
	t.Run("nginx", func(t *testing.T) {
		t.Parallel()
		srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
		front := testpeers.StartNginx(t, srv.HTTPURL, false)
		nesFeatures(t, srv, wsURL(front), client.Options{}, client.TransportSSE)
	})
	t.Run("nginx buffering", func(t *testing.T) {
		t.Parallel()
		srv := testpeers.StartNes(t, testpeers.HeraldNes, fastHeartbeat)
		front := testpeers.StartNginx(t, srv.HTTPURL, true)
		nesFeatures(t, srv, wsURL(front), client.Options{FallbackTimeout: 2 * time.Second}, client.TransportPoll)
	})
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }
