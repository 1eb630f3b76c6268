package heraldtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/websocket"
)

// fast reconnects at once, so that tests of lost connections do not wait out the defaults.
var fast = client.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestServerServesNesAndHTTP(t *testing.T) {
	t.Parallel()
	srv := heraldtest.NewServer(t, newApp())
	assert.True(t, strings.HasPrefix(srv.URL, "ws://127.0.0.1:"), srv.URL)
	assert.Equal(t, "http"+strings.TrimPrefix(srv.URL, "ws"), srv.HTTPURL)

	body, err := get(t, srv.HTTPURL+"/h")
	require.NoError(t, err)
	assert.Equal(t, "world!", body)

	c := srv.Client(t, nil)
	assert.NotEmpty(t, c.ID(), "Client returns a connected client")
	res, err := c.Request(context.Background(), "hello")
	require.NoError(t, err)
	assert.JSONEq(t, `"world!"`, string(res.Payload))
}

func TestServerClosedWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	var srv *heraldtest.Server
	var c *client.Client
	var ev heraldtest.Events
	t.Run("inner", func(t *testing.T) {
		srv = heraldtest.NewServer(t, newApp())
		c = srv.Client(t, ev.Options(nil))
		ev.Connects.Next(t)
	})
	_, err := c.Request(context.Background(), "hello")
	assert.ErrorIs(t, err, client.ErrClosed, "the client was closed")
	// The client was closed before the server: it heard its own close, not the server's 1001.
	d := ev.Disconnects.Next(t)
	assert.True(t, d.Requested, "%+v", d)
	ev.Disconnects.None(t, 20*time.Millisecond)

	_, err = net.DialTimeout("tcp", strings.TrimPrefix(srv.URL, "ws://"), time.Second)
	assert.Error(t, err, "the listener was closed")
	n := 0
	srv.Nes.EachSocket(func(*herald.Socket) bool { n++; return true })
	assert.Zero(t, n, "no socket is left open")
}

func TestServerClosesOtherClients(t *testing.T) {
	t.Parallel()
	var ev heraldtest.Events
	var c *client.Client
	t.Run("inner", func(t *testing.T) {
		srv := heraldtest.NewServer(t, newApp())
		// A client the test made itself, which heraldtest does not close.
		var err error
		c, err = client.New(srv.URL, ev.Options(&client.Options{NoReconnect: true,
			Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}}))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, c.Connect(ctx))
	})
	defer c.Close()
	d := ev.Disconnects.Next(t)
	assert.False(t, d.Requested)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(d.Err), "herald.Server.Close closes with 1001: %v", d.Err)
}

// TestClientConnectsDirectly sets the environment, so it cannot run in parallel.
func TestClientConnectsDirectly(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadProxy := "http://" + dead.Addr().String()
	require.NoError(t, dead.Close())
	t.Setenv("HTTP_PROXY", deadProxy)
	t.Setenv("ALL_PROXY", deadProxy)
	t.Setenv("NO_PROXY", "")

	srv := heraldtest.NewServer(t, newApp())
	opts := &client.Options{}
	c := srv.Client(t, opts)
	assert.NotEmpty(t, c.ID(), "the environment's proxy was not used")
	assert.Nil(t, opts.Dial, "the caller's options are left as they were")

	// A proxy the options name is used: this one is down, so the test fails.
	msg := failure(t, func(tb testing.TB) {
		srv.Client(tb, &client.Options{Dial: &websocket.DialOptions{Proxy: websocket.ProxyURL(deadProxy)}})
	})
	assert.Contains(t, msg, "heraldtest: connect to "+srv.URL+": ")
	assert.Contains(t, msg, "connection refused")
}

func TestClientRefused(t *testing.T) {
	t.Parallel()
	nes := herald.NewServer(http.NotFoundHandler(), &herald.Options{Auth: &herald.AuthOptions{
		Required:     true,
		Authenticate: func(*http.Request) (*herald.Credentials, error) { return nil, nil },
	}})
	srv := heraldtest.NewServer(t, nes)
	msg := failure(t, func(tb testing.TB) { srv.Client(tb, nil) })
	assert.Contains(t, msg, "heraldtest: connect to "+srv.URL+": ")
	assert.Contains(t, msg, "401")
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	c := srv.Client(t, nil)
	updates := heraldtest.Subscribe(t, c, "/item/5")
	other := heraldtest.Subscribe(t, c, "/item/6")

	require.NoError(t, nes.Publish("/item/5", map[string]int{"n": 1}, nil))
	u := updates.Next(t)
	assert.Equal(t, "/item/5", u.Path)
	assert.JSONEq(t, `{"n":1}`, string(u.Message))
	assert.False(t, u.Revoked)

	var subscribers []*herald.Socket
	nes.EachSubscriber("/item/5", "", func(s *herald.Socket) bool {
		subscribers = append(subscribers, s)
		return true
	})
	require.Len(t, subscribers, 1)
	require.NoError(t, subscribers[0].Revoke(context.Background(), "/item/5", "bye"))
	u = updates.Next(t)
	assert.True(t, u.Revoked)
	assert.JSONEq(t, `"bye"`, string(u.Message))
	updates.None(t, 20*time.Millisecond)
	other.None(t, 0)

	msg := failure(t, func(tb testing.TB) { heraldtest.Subscribe(tb, c, "/nowhere") })
	assert.Contains(t, msg, "heraldtest: subscribe to /nowhere: ")
	assert.Contains(t, msg, "404")

	// A failure names the subscription, and shows the update that should not have come.
	require.NoError(t, nes.Publish("/item/6", map[string]int{"n": 2}, nil))
	msg = failure(t, func(tb testing.TB) { other.None(tb, 5*time.Second) })
	assert.Equal(t, `heraldtest: want no updates of /item/6, got update of /item/6: {"n":2}`, msg)
}

func TestEvents(t *testing.T) {
	t.Parallel()
	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	var own atomic.Int32
	base := &client.Options{Backoff: fast, OnConnect: func(client.ConnectEvent) { own.Add(1) }}
	var ev heraldtest.Events
	opts := ev.Options(base)
	assert.Nil(t, base.OnDisconnect, "base is left as it was")
	c := srv.Client(t, opts)

	e := ev.Connects.Next(t)
	assert.False(t, e.Reconnect)
	assert.Equal(t, c.ID(), e.ID)
	assert.Equal(t, int32(1), own.Load(), "the callback of the options given still runs, before the event is recorded")

	require.NoError(t, nes.Broadcast(map[string]string{"to": "all"}, nil))
	assert.JSONEq(t, `{"to":"all"}`, string(ev.Updates.Next(t)))

	srv.DisconnectAll()
	d := ev.Disconnects.Next(t)
	assert.True(t, d.WillReconnect)
	assert.False(t, d.Requested)
	assert.Equal(t, 1, ev.Reconnects.Next(t).Attempt)
	assert.True(t, ev.Connects.Next(t).Reconnect)
	assert.Equal(t, int32(2), own.Load())
	ev.Errors.None(t, 0)
	ev.HeartbeatTimeouts.None(t, 0)
}

func TestStopStart(t *testing.T) {
	t.Parallel()
	nes := newApp()
	srv := heraldtest.NewServer(t, nes)
	var ev heraldtest.Events
	c := srv.Client(t, ev.Options(&client.Options{Backoff: fast}))
	updates := heraldtest.Subscribe(t, c, "/item/5")
	ev.Connects.Next(t)

	srv.Stop()
	srv.Stop() // a no-op
	assert.True(t, ev.Disconnects.Next(t).WillReconnect)
	_, err := get(t, srv.HTTPURL+"/h")
	assert.Error(t, err, "the listener is closed")
	// Attempts fail while the server is down: the second attempt says why the first failed.
	ev.Reconnects.Next(t)
	r := ev.Reconnects.Next(t)
	assert.Error(t, r.Err)
	var ce *client.Error
	require.ErrorAs(t, r.Err, &ce)
	assert.Equal(t, client.KindTransport, ce.Kind, "the connection was refused: %v", r.Err)
	ev.Connects.None(t, 50*time.Millisecond)

	srv.Start(t)
	srv.Start(t) // a no-op
	assert.True(t, ev.Connects.Next(t).Reconnect)
	body, err := get(t, srv.HTTPURL+"/h")
	require.NoError(t, err)
	assert.Equal(t, "world!", body)
	require.NoError(t, nes.Publish("/item/5", json.RawMessage(`{"back":true}`), nil))
	assert.JSONEq(t, `{"back":true}`, string(updates.Next(t).Message), "the client resubscribed")
}
