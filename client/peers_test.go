package client_test

// The client against the reference nes server (hapi 21 + @hapi/nes 14.0.1) and against
// herald's examples/nes, each a separate process configured alike (internal/testpeers), with
// the same assertions: what holds against hapi is what a nes client must do, and herald must
// answer the same.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// basicJohn is the Authorization header of the servers' one account.
var basicJohn = "Basic " + base64.StdEncoding.EncodeToString([]byte(testpeers.NesUsername+":"+testpeers.NesUserPassword))

// forEachServer runs test as a parallel subtest per implementation.
func forEachServer(t *testing.T, test func(t *testing.T, impl testpeers.NesImpl)) {
	for _, impl := range testpeers.NesImpls() {
		t.Run(string(impl), func(t *testing.T) {
			t.Parallel()
			test(t, impl)
		})
	}
}

// fastReconnect reconnects within a few tens of milliseconds, to keep the tests short.
var fastReconnect = client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// recorder collects a subscription's updates.
type recorder chan client.Update

func (r recorder) handler(u client.Update) { r <- u }

func (r recorder) next(t *testing.T) client.Update {
	t.Helper()
	select {
	case u := <-r:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10 s")
	}
	return client.Update{}
}

func (r recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case u := <-r:
		t.Fatalf("unexpected update %s %s", u.Path, u.Message)
	case <-time.After(d):
	}
}

func publish(t *testing.T, srv *testpeers.NesServer, path string, message any) {
	t.Helper()
	status, body := srv.Post(t, "/publish", map[string]any{"path": path, "message": message})
	require.Equal(t, http.StatusOK, status, "POST /publish: %s", body)
}

func TestPeerRequests(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		updates := make(chan json.RawMessage, 4)
		c := connect(t, srv.URL, &client.Options{OnUpdate: func(m json.RawMessage) { updates <- m }})
		ctx := testContext(t)
		assert.NotEmpty(t, c.ID())
		assert.Equal(t, client.TransportWebSocket, c.Transport())

		for _, path := range []string{"hello", "/h"} {
			res, err := c.Request(ctx, path)
			require.NoError(t, err, path)
			assert.Equal(t, 200, res.StatusCode)
			assert.JSONEq(t, `"world!"`, string(res.Payload), path)
		}
		res, err := c.Do(ctx, &client.Request{Method: "POST", Path: "/echo", Payload: map[string]any{"a": []int{1, 2}}})
		require.NoError(t, err)
		assert.JSONEq(t, `{"a":[1,2]}`, string(res.Payload))

		_, err = c.Request(ctx, "/nowhere")
		var e *client.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, client.KindServer, e.Kind)
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "Not Found", e.Message)

		_, err = c.Request(ctx, "/boom")
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 500, e.StatusCode)
		assert.Equal(t, "An internal server error occurred", e.Message)

		_, err = c.Request(ctx, "wild")
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 400, e.StatusCode)
		assert.Equal(t, "Cannot use route id with wildcard method route config", e.Message)

		reply, err := c.Message(ctx, map[string]string{"hi": "there"})
		require.NoError(t, err)
		assert.JSONEq(t, `{"echo":{"hi":"there"}}`, string(reply))

		// Pushes outside subscriptions: a broadcast, and a send to this socket alone.
		status, body := srv.Post(t, "/broadcast", map[string]any{"message": "to all"})
		require.Equal(t, 200, status, "%s", body)
		assert.JSONEq(t, `"to all"`, string(waitRaw(t, updates)))
		_, err = c.Do(ctx, &client.Request{Method: "POST", Path: "/send", Payload: map[string]any{"message": map[string]int{"n": 1}}})
		require.NoError(t, err)
		assert.JSONEq(t, `{"n":1}`, string(waitRaw(t, updates)))
	})
}

func waitRaw(t *testing.T, ch chan json.RawMessage) json.RawMessage {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing within 10 s")
	}
	return nil
}

func TestPeerAuth(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		t.Run("direct", func(t *testing.T) {
			srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "direct"})
			c := connect(t, srv.URL, &client.Options{Auth: &client.Auth{Headers: map[string]string{"authorization": basicJohn}}})
			assertJohn(t, c)

			anon := connect(t, srv.URL, nil)
			_, err := anon.Request(testContext(t), "authhello")
			assert.Equal(t, 401, client.StatusCode(err), "authhello without credentials: %v", err)

			bad, err := client.New(srv.URL, &client.Options{Auth: &client.Auth{Headers: map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("john:wrong"))}}})
			require.NoError(t, err)
			defer bad.Close()
			err = bad.Connect(testContext(t))
			var e *client.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, client.KindServer, e.Kind)
			assert.Equal(t, 401, e.StatusCode)
			assert.Equal(t, "", bad.ID(), "a refused hello leaves the client disconnected")
		})
		t.Run("token", func(t *testing.T) {
			srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "token"})
			ctx := testContext(t)
			token, err := client.FetchToken(ctx, srv.HTTPURL+"/nes/auth", http.Header{"Authorization": {basicJohn}}, nil)
			require.NoError(t, err)
			require.NotEmpty(t, token)
			c := connect(t, srv.URL, &client.Options{Auth: &client.Auth{Token: token}})
			assertJohn(t, c)

			_, err = client.FetchToken(ctx, srv.HTTPURL+"/nes/auth", nil, nil)
			assert.Error(t, err, "no credentials: the endpoint answers unauthenticated")

			forged := []byte(token)
			forged[len(forged)/2] ^= 1
			bad, err := client.New(srv.URL, &client.Options{Auth: &client.Auth{Token: string(forged)}})
			require.NoError(t, err)
			defer bad.Close()
			err = bad.Connect(ctx)
			assert.Equal(t, 401, client.StatusCode(err), "a forged token: %v", err)
		})
		t.Run("cookie", func(t *testing.T) {
			srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "cookie"})
			ctx := testContext(t)
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			hc := &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}}
			token, err := client.FetchToken(ctx, srv.HTTPURL+"/nes/auth", http.Header{"Authorization": {basicJohn}}, hc)
			require.NoError(t, err)
			assert.Empty(t, token, "cookie auth answers no token")
			u, _ := url.Parse(srv.HTTPURL)
			require.NotEmpty(t, jar.Cookies(u), "the endpoint set its cookie")
			c := connect(t, srv.URL, &client.Options{Jar: jar})
			assertJohn(t, c)

			// A cookie that was tampered with is refused at the hello.
			badJar, _ := cookiejar.New(nil)
			for _, ck := range jar.Cookies(u) {
				ck.Value = "x" + ck.Value[1:]
				badJar.SetCookies(u, []*http.Cookie{ck})
			}
			bad, err := client.New(srv.URL, &client.Options{Jar: badJar})
			require.NoError(t, err)
			defer bad.Close()
			err = bad.Connect(ctx)
			assert.Equal(t, 401, client.StatusCode(err), "a tampered cookie: %v", err)
		})
	})
}

// assertJohn checks that c's connection is authenticated as the servers' account.
func assertJohn(t *testing.T, c *client.Client) {
	t.Helper()
	res, err := c.Request(testContext(t), "authhello")
	require.NoError(t, err)
	assert.JSONEq(t, `"Hello John Doe"`, string(res.Payload))
}

func TestPeerReauthenticate(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{Auth: "token"})
		ctx := testContext(t)
		c := connect(t, srv.URL, &client.Options{Backoff: fastReconnect})
		_, err := c.Request(ctx, "authhello")
		require.Equal(t, 401, client.StatusCode(err), "%v", err)
		token, err := client.FetchToken(ctx, srv.HTTPURL+"/nes/auth", http.Header{"Authorization": {basicJohn}}, nil)
		require.NoError(t, err)
		require.NoError(t, c.Reauthenticate(ctx, &client.Auth{Token: token}))
		assertJohn(t, c)

		// The new credentials are kept for reconnections.
		connected := make(chan struct{}, 1)
		c2 := connect(t, srv.URL, &client.Options{Backoff: fastReconnect,
			OnConnect: func(client.ConnectEvent) { connected <- struct{}{} }})
		<-connected
		require.NoError(t, c2.Reauthenticate(ctx, &client.Auth{Token: token}))
		_, err = c2.Do(ctx, &client.Request{Method: "POST", Path: "/drop"})
		require.NoError(t, err)
		waitEvent(t, connected)
		assertJohn(t, c2)

		// Refused credentials: the server answers 401 and closes the socket.
		err = c.Reauthenticate(ctx, &client.Auth{Token: "forged"})
		assert.Equal(t, 401, client.StatusCode(err), "%v", err)
	})
}

func TestPeerSubscriptions(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		ctx := testContext(t)
		john := connect(t, srv.URL, &client.Options{Auth: &client.Auth{Headers: map[string]string{"authorization": basicJohn}}})
		anon := connect(t, srv.URL, nil)
		johnGot, anonGot, anonGot2 := make(recorder, 8), make(recorder, 8), make(recorder, 8)
		_, err := john.Subscribe(ctx, "/item/5", johnGot.handler)
		require.NoError(t, err)
		anonSub, err := anon.Subscribe(ctx, "/item/5", anonGot.handler)
		require.NoError(t, err)
		_, err = anon.Subscribe(ctx, "/item/5", anonGot2.handler)
		require.NoError(t, err)
		assert.Equal(t, []string{"/item/5"}, anon.Subscriptions())

		// The filter: john does not get the updates he made himself.
		publish(t, srv, "/item/5", map[string]any{"updater": "john", "n": 1})
		assert.JSONEq(t, `{"updater":"john","n":1}`, string(anonGot.next(t).Message))
		assert.JSONEq(t, `{"updater":"john","n":1}`, string(anonGot2.next(t).Message))
		publish(t, srv, "/item/5", map[string]any{"updater": "mary", "n": 2})
		u := johnGot.next(t)
		assert.Equal(t, "/item/5", u.Path)
		assert.False(t, u.Revoked)
		assert.JSONEq(t, `{"updater":"mary","n":2}`, string(u.Message), "john's first update is mary's")
		anonGot.next(t)
		anonGot2.next(t)

		// One handler goes; the other stays.
		require.NoError(t, anonSub.Unsubscribe(ctx))
		publish(t, srv, "/item/5", 3)
		assert.JSONEq(t, `3`, string(anonGot2.next(t).Message))
		johnGot.next(t)
		anonGot.none(t, 100*time.Millisecond)

		// A subscription the server does not have.
		_, err = anon.Subscribe(ctx, "/nothing", anonGot.handler)
		var e *client.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 404, e.StatusCode)
		assert.Equal(t, "/nothing", e.Path)

		// Revoke: the handler hears it with the revoked flag and the server's message.
		status, body := srv.Post(t, "/revoke", map[string]any{"path": "/item/5", "message": "gone"})
		require.Equal(t, 200, status, "%s", body)
		u = anonGot2.next(t)
		assert.True(t, u.Revoked)
		assert.JSONEq(t, `"gone"`, string(u.Message))
		u = johnGot.next(t)
		assert.True(t, u.Revoked)
		assert.Empty(t, john.Subscriptions())
		publish(t, srv, "/item/5", 4)
		johnGot.none(t, 100*time.Millisecond)

		// Unsubscribe removes the path on the server too.
		_, err = anon.Subscribe(ctx, "/items", anonGot.handler)
		require.NoError(t, err)
		require.NoError(t, anon.Unsubscribe(ctx, "/items"))
		publish(t, srv, "/items", 5)
		anonGot.none(t, 200*time.Millisecond)
	})
}

// TestPeerReconnectAfterDrop: the server closes the socket; the client reconnects, resubscribes
// and its subscription delivers again.
func TestPeerReconnectAfterDrop(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		ctx := testContext(t)
		connects := make(chan client.ConnectEvent, 4)
		disconnects := make(chan client.DisconnectEvent, 4)
		c := connect(t, srv.URL, &client.Options{
			Backoff:      fastReconnect,
			OnConnect:    func(e client.ConnectEvent) { connects <- e },
			OnDisconnect: func(e client.DisconnectEvent) { disconnects <- e },
		})
		<-connects
		got := make(recorder, 4)
		_, err := c.Subscribe(ctx, "/item/1", got.handler)
		require.NoError(t, err)
		_, err = c.Do(ctx, &client.Request{Method: "POST", Path: "/drop"})
		require.NoError(t, err)
		d := waitEvent(t, disconnects)
		assert.True(t, d.WillReconnect)
		assert.False(t, d.Requested)
		assert.ErrorIs(t, d.Err, client.ErrDisconnected)
		e := waitEvent(t, connects)
		assert.True(t, e.Reconnect)
		publish(t, srv, "/item/1", "after")
		assert.JSONEq(t, `"after"`, string(got.next(t).Message))
	})
}

func waitEvent[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("no event within 15 s")
	}
	var zero T
	return zero
}

// TestPeerRestart: the server process is killed and started again on the same port. Requests
// in flight fail at once, the client reconnects by itself, every subscription delivers again,
// and nothing is left pending.
func TestPeerRestart(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		ctx := testContext(t)
		connects := make(chan client.ConnectEvent, 4)
		c := connect(t, srv.URL, &client.Options{
			Backoff:   fastReconnect,
			OnConnect: func(e client.ConnectEvent) { connects <- e },
		})
		<-connects
		paths := []string{"/item/1", "/item/2", "/items"}
		recs := map[string]recorder{}
		for _, p := range paths {
			recs[p] = make(recorder, 4)
			_, err := c.Subscribe(ctx, p, recs[p].handler)
			require.NoError(t, err)
		}

		// Requests keep going out while the server dies: each either succeeds or fails with
		// ErrDisconnected; none hangs.
		var wg sync.WaitGroup
		results := make(chan error, 100)
		stopRequests := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopRequests:
					return
				default:
				}
				_, err := c.Do(ctx, &client.Request{Method: "POST", Path: "/echo", Payload: 1})
				select {
				case results <- err:
				default:
				}
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
		time.Sleep(50 * time.Millisecond)
		srv.Kill(t)
		time.Sleep(300 * time.Millisecond)
		srv.Start(t)
		e := waitEvent(t, connects)
		assert.True(t, e.Reconnect)
		close(stopRequests)
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				assert.ErrorIs(t, err, client.ErrDisconnected)
			}
		}
		assert.Equal(t, paths, c.Subscriptions())
		for _, p := range paths {
			publish(t, srv, p, p)
			u := recs[p].next(t)
			assert.Equal(t, p, u.Path)
			assert.False(t, u.Revoked)
		}
		_, err := c.Request(ctx, "hello")
		require.NoError(t, err)
	})
}

// TestPeerHeartbeatTimeout: the server stops answering (its process frozen); the client notices
// from the heartbeat the server announced, disconnects and reconnects once it answers again.
func TestPeerHeartbeatTimeout(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{HeartbeatInterval: 500 * time.Millisecond, HeartbeatTimeout: 250 * time.Millisecond})
		timeouts := make(chan bool, 4)
		connects := make(chan client.ConnectEvent, 4)
		disconnects := make(chan client.DisconnectEvent, 4)
		c := connect(t, srv.URL, &client.Options{
			Backoff:            fastReconnect,
			ConnectTimeout:     500 * time.Millisecond,
			OnHeartbeatTimeout: func(willReconnect bool) { timeouts <- willReconnect },
			OnConnect:          func(e client.ConnectEvent) { connects <- e },
			OnDisconnect:       func(e client.DisconnectEvent) { disconnects <- e },
		})
		<-connects
		time.Sleep(1200 * time.Millisecond) // several pings answered: no timeout while the server lives
		select {
		case <-timeouts:
			t.Fatal("heartbeat timeout while the server was answering")
		default:
		}
		srv.Freeze(t)
		frozen := time.Now()
		assert.True(t, waitEvent(t, timeouts), "willReconnect")
		// The window is interval + timeout (750 ms) from the last frame, which came at most an
		// interval (500 ms) before the freeze.
		assert.GreaterOrEqual(t, time.Since(frozen), 250*time.Millisecond, "not before the window has passed")
		d := waitEvent(t, disconnects)
		assert.ErrorIs(t, d.Err, client.ErrHeartbeatTimeout)
		assert.True(t, d.WillReconnect)
		srv.Thaw(t)
		assert.True(t, waitEvent(t, connects).Reconnect)
		_, err := c.Request(testContext(t), "hello")
		require.NoError(t, err)
	})
}

// TestPeerProxy: the client dials through a real HTTP CONNECT proxy.
func TestPeerProxy(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "user:pw")
		c := connect(t, srv.URL, &client.Options{Dial: &websocket.DialOptions{
			Proxy: websocket.ProxyURL("http://user:pw@" + proxyAddr),
		}})
		res, err := c.Request(testContext(t), "hello")
		require.NoError(t, err)
		assert.JSONEq(t, `"world!"`, string(res.Payload))
		var seen struct {
			Connect string `json:"connect"`
		}
		p.JSONLine(t, 5*time.Second, &seen)
		assert.Equal(t, srv.Addr, seen.Connect, "the proxy was asked for the tunnel")
	})
}

// TestPeerNoReconnectAfterClose: Close ends everything; a server drop afterwards changes
// nothing, and calls fail with ErrClosed.
func TestPeerClose(t *testing.T) {
	forEachServer(t, func(t *testing.T, impl testpeers.NesImpl) {
		srv := testpeers.StartNes(t, impl, testpeers.NesOptions{})
		c, err := client.New(srv.URL, nil)
		require.NoError(t, err)
		require.NoError(t, c.Connect(testContext(t)))
		require.NoError(t, c.Close())
		_, err = c.Request(testContext(t), "hello")
		assert.True(t, errors.Is(err, client.ErrClosed), "%v", err)
		assert.True(t, errors.Is(c.Connect(context.Background()), client.ErrClosed))
	})
}
