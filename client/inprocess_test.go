package client_test

// Tests of the client against herald's nes server in this process, for what needs a server
// the test controls closely: dropping sockets, closing and reopening the listener, counting
// what the server saw. The same features against the reference server (hapi + @hapi/nes) and
// herald's demo as separate processes are in peers_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
)

// newLocalServer serves a nes server around a small application through heraldtest: route id
// "hello" (GET /h, "world!"), GET /slow (answers after 5 s, or when the request is cancelled),
// and the subscription /item/{id}.
func newLocalServer(t *testing.T, opts *herald.Options) *heraldtest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "world!") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	nes := herald.NewServer(mux, opts)
	nes.Route("hello", http.MethodGet, "/h")
	nes.Subscription("/item/{id}", nil)
	return heraldtest.NewServer(t, nes)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, url string, opts *client.Options) *client.Client {
	t.Helper()
	c, err := client.New(url, opts)
	require.NoError(t, err)
	require.NoError(t, c.Connect(testContext(t)))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestBackoffIsJittered records the delays of a long outage: they spread over the whole range
// under each attempt's cap, also once the cap has reached Max, instead of bunching at it.
func TestBackoffIsJittered(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	const attempts = 40
	const minDelay, maxDelay = time.Millisecond, 16 * time.Millisecond
	delays := make(chan client.ReconnectEvent, attempts)
	c := srv.Client(t, &client.Options{
		Backoff:    client.Backoff{Min: minDelay, Max: maxDelay},
		MaxRetries: attempts,
		OnReconnect: func(e client.ReconnectEvent) {
			delays <- e
		},
	})
	_ = c
	srv.Stop() // every attempt now fails at once: connection refused

	var atCap []time.Duration
	for i := 1; i <= attempts; i++ {
		var e client.ReconnectEvent
		select {
		case e = <-delays:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d reconnection attempts were reported", i-1)
		}
		require.Equal(t, i, e.Attempt)
		ceiling := min(maxDelay, minDelay<<(i-1))
		assert.LessOrEqual(t, e.Delay, ceiling, "attempt %d", i)
		assert.GreaterOrEqual(t, e.Delay, time.Duration(0))
		if i > 1 {
			assert.Error(t, e.Err, "attempt %d: the previous attempt's error", i)
		}
		if ceiling == maxDelay {
			atCap = append(atCap, e.Delay)
		}
	}
	require.GreaterOrEqual(t, len(atCap), 30)
	lo, hi, pinned := maxDelay, time.Duration(0), 0
	seen := map[time.Duration]bool{}
	for _, d := range atCap {
		lo, hi = min(lo, d), max(hi, d)
		if d == maxDelay {
			pinned++
		}
		seen[d] = true
	}
	// Uniform draws over [0, Max]: with 30+ of them the extremes fall well inside these bounds
	// (the chance that all miss [0, 0.3·Max) is 0.7^30, about 2e-5).
	assert.Less(t, lo, maxDelay*3/10, "the smallest delay at the cap")
	assert.Greater(t, hi, maxDelay*7/10, "the largest delay at the cap")
	assert.LessOrEqual(t, pinned, 1, "delays pinned at exactly Max")
	assert.Greater(t, len(seen), len(atCap)*9/10, "distinct delays at the cap")
}

func TestRequestAndErrors(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c := srv.Client(t, nil)
	ctx := testContext(t)

	res, err := c.Request(ctx, "hello")
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.JSONEq(t, `"world!"`, string(res.Payload))

	_, err = c.Request(ctx, "/nope")
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.KindServer, e.Kind)
	assert.Equal(t, 404, e.StatusCode)
	assert.Equal(t, "Not Found", e.Message)
	assert.JSONEq(t, `{"statusCode":404,"error":"Not Found","message":"Not Found"}`, string(e.Payload))

	_, err = c.Do(ctx, &client.Request{Path: "/h", Headers: map[string]string{"Authorization": "x"}})
	assert.Equal(t, 400, client.StatusCode(err), "%v", err)

	_, err = c.Subscribe(ctx, "no-slash", func(client.Update) {})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.KindUser, e.Kind)

	_, err = c.Subscribe(ctx, "/unknown", func(client.Update) {})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 404, e.StatusCode)
	assert.Equal(t, "/unknown", e.Path)
	assert.Empty(t, c.Subscriptions(), "a refused subscription is not kept")
}

// TestTimeouts: a request the server does not answer in time fails with ErrTimeout, from
// Options.Timeout or from the context, and the connection stays usable.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c := srv.Client(t, &client.Options{Timeout: 100 * time.Millisecond})
	_, err := c.Request(testContext(t), "/slow")
	require.ErrorIs(t, err, client.ErrTimeout)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.KindTimeout, e.Kind)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2 := srv.Client(t, &client.Options{Timeout: -1})
	_, err = c2.Request(ctx, "/slow")
	require.ErrorIs(t, err, client.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = c.Request(testContext(t), "hello")
	require.NoError(t, err, "the connection outlives a timed-out request")
}

// TestConnectTimeout: a server that accepts TCP and never answers fails Connect with
// ErrTimeout once every transport has had its time.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range held {
			conn.Close()
		}
	}()
	// Every transport meets the same silence: WebSocket and the stream get FallbackTimeout
	// each, long-polling ConnectTimeout.
	c, err := client.New("ws://"+ln.Addr().String(), &client.Options{
		ConnectTimeout: 200 * time.Millisecond, FallbackTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	err = c.Connect(context.Background())
	require.ErrorIs(t, err, client.ErrTimeout)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestPendingFailOnDisconnect: requests waiting when the connection is lost fail at once with
// ErrDisconnected, and the client reconnects by itself.
func TestPendingFailOnDisconnect(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	net := newRelay(t, strings.TrimPrefix(srv.URL, "ws://"), pipeBoth)
	connected := make(chan client.ConnectEvent, 4)
	c := connect(t, net.url(), &client.Options{
		Backoff:   client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		OnConnect: func(e client.ConnectEvent) { connected <- e },
	})
	<-connected
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.Request(testContext(t), "/slow")
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the requests go out
	start := time.Now()
	net.cut()
	for range 3 {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, client.ErrDisconnected)
		case <-time.After(3 * time.Second):
			t.Fatal("a pending request did not fail at the disconnection")
		}
	}
	assert.Less(t, time.Since(start), 3*time.Second)
	select {
	case e := <-connected:
		assert.True(t, e.Reconnect)
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnection")
	}
	_, err := c.Request(testContext(t), "hello")
	require.NoError(t, err)
}

// TestSlowHandlerBlocksOnlyItself: a handler that blocks delays neither replies nor another
// subscription's updates.
func TestSlowHandlerBlocksOnlyItself(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c := srv.Client(t, nil)
	ctx := testContext(t)
	release := make(chan struct{})
	slowGot := make(chan client.Update, 10)
	_, err := c.Subscribe(ctx, "/item/1", func(u client.Update) {
		<-release
		slowGot <- u
	})
	require.NoError(t, err)
	fastGot := make(chan client.Update, 10)
	_, err = c.Subscribe(ctx, "/item/2", func(u client.Update) { fastGot <- u })
	require.NoError(t, err)

	for i := range 3 {
		require.NoError(t, srv.Nes.Publish("/item/1", i, nil))
		require.NoError(t, srv.Nes.Publish("/item/2", i, nil))
	}
	for i := range 3 {
		select {
		case u := <-fastGot:
			assert.JSONEq(t, string(rune('0'+i)), string(u.Message))
		case <-time.After(3 * time.Second):
			t.Fatal("the fast handler was held up by the slow one")
		}
	}
	_, err = c.Request(ctx, "hello")
	require.NoError(t, err, "replies are not held up by a blocked handler")
	close(release)
	for i := range 3 {
		u := <-slowGot
		assert.JSONEq(t, string(rune('0'+i)), string(u.Message), "the slow handler's updates in order")
	}
}

// TestHandlerQueueBound: a handler that falls more than Options.HandlerQueue updates behind
// loses the excess, and OnError says so; memory does not grow with what it misses.
func TestHandlerQueueBound(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	dropped := make(chan error, 100)
	c := srv.Client(t, &client.Options{
		HandlerQueue: 4,
		OnError: func(err error) {
			if errors.Is(err, client.ErrHandlerQueueFull) {
				select {
				case dropped <- err:
				default:
				}
			}
		},
	})
	release := make(chan struct{})
	var got []string
	var mu sync.Mutex
	_, err := c.Subscribe(testContext(t), "/item/1", func(u client.Update) {
		<-release
		mu.Lock()
		got = append(got, string(u.Message))
		mu.Unlock()
	})
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, srv.Nes.Publish("/item/1", i, nil))
	}
	select {
	case err := <-dropped:
		assert.Contains(t, err.Error(), "/item/1")
	case <-time.After(5 * time.Second):
		t.Fatal("no ErrHandlerQueueFull")
	}
	close(release)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 4
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Less(t, len(got), 20, "updates past the bound were dropped")
	assert.Equal(t, "0", got[0], "the first update is kept")
}

// TestCallbacksMayCallTheClient: callbacks and handlers call the client, Close included,
// without deadlock.
func TestCallbacksMayCallTheClient(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	replies := make(chan error, 1)
	var c *client.Client
	var err error
	ready := make(chan struct{})
	c, err = client.New(srv.URL, &client.Options{
		OnConnect: func(client.ConnectEvent) {
			<-ready
			_, err := c.Request(testContext(t), "hello")
			replies <- err
		},
	})
	require.NoError(t, err)
	require.NoError(t, c.Connect(testContext(t)))
	close(ready)
	require.NoError(t, <-replies, "a request from OnConnect")

	closed := make(chan error, 1)
	_, err = c.Subscribe(testContext(t), "/item/1", func(u client.Update) {
		closed <- c.Close()
	})
	require.NoError(t, err)
	require.NoError(t, srv.Nes.Publish("/item/1", "bye", nil))
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close from a handler did not return")
	}
	_, err = c.Request(testContext(t), "hello")
	require.ErrorIs(t, err, client.ErrClosed)
}

// TestSubscribeBeforeConnect: a subscription made before Connect goes in the hello; one the
// server refuses there is dropped (its handler hears Revoked, with the refusal), and the
// connection carries on with the rest.
func TestSubscribeBeforeConnect(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c, err := client.New(srv.URL, nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := testContext(t)
	good := make(chan client.Update, 1)
	bad := make(chan client.Update, 1)
	_, err = c.Subscribe(ctx, "/item/7", func(u client.Update) { good <- u })
	require.NoError(t, err)
	_, err = c.Subscribe(ctx, "/nowhere", func(u client.Update) { bad <- u })
	require.NoError(t, err)
	assert.Equal(t, []string{"/item/7", "/nowhere"}, c.Subscriptions())

	require.NoError(t, c.Connect(ctx))
	select {
	case u := <-bad:
		assert.True(t, u.Revoked)
		assert.Equal(t, 404, client.StatusCode(u.Err), "%v", u.Err)
	case <-time.After(5 * time.Second):
		t.Fatal("the refused subscription's handler heard nothing")
	}
	assert.Equal(t, []string{"/item/7"}, c.Subscriptions())
	require.NoError(t, srv.Nes.Publish("/item/7", map[string]string{"a": "b"}, nil))
	select {
	case u := <-good:
		assert.JSONEq(t, `{"a":"b"}`, string(u.Message))
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription from the hello delivered nothing")
	}
}

// TestUnsubscribeOneHandler: a Subscription handle removes its own handler only; the path
// stays subscribed until its last handler goes.
func TestUnsubscribeOneHandler(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c := srv.Client(t, nil)
	ctx := testContext(t)
	a, b := make(chan client.Update, 4), make(chan client.Update, 4)
	subA, err := c.Subscribe(ctx, "/item/1", func(u client.Update) { a <- u })
	require.NoError(t, err)
	_, err = c.Subscribe(ctx, "/item/1", func(u client.Update) { b <- u })
	require.NoError(t, err)
	require.NoError(t, subA.Unsubscribe(ctx))
	assert.Equal(t, []string{"/item/1"}, c.Subscriptions())
	require.NoError(t, srv.Nes.Publish("/item/1", 1, nil))
	select {
	case <-b:
	case <-time.After(3 * time.Second):
		t.Fatal("the remaining handler got nothing")
	}
	require.NoError(t, c.Unsubscribe(ctx, "/item/1"))
	assert.Empty(t, c.Subscriptions())
	var subscribed []string
	srv.Nes.EachSocket(func(s *herald.Socket) bool { subscribed = append(subscribed, s.Subscriptions()...); return true })
	assert.Empty(t, subscribed, "the server still has the socket subscribed")
	require.NoError(t, srv.Nes.Publish("/item/1", 2, nil))
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, a, "the removed handler got an update")
	assert.Len(t, b, 0)
}

// TestRestartSameAddress: the server goes away and comes back on the same port; the client
// reconnects by itself, resubscribes, and its subscriptions deliver again.
func TestRestartSameAddress(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	events := make(chan string, 16)
	c := srv.Client(t, &client.Options{
		Backoff: client.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		OnConnect: func(e client.ConnectEvent) {
			events <- "connect"
		},
		OnDisconnect: func(e client.DisconnectEvent) {
			if e.WillReconnect {
				events <- "disconnect"
			}
		},
	})
	assert.Equal(t, "connect", <-events)
	got := make(chan client.Update, 4)
	_, err := c.Subscribe(testContext(t), "/item/9", func(u client.Update) { got <- u })
	require.NoError(t, err)
	firstID := c.ID()

	srv.Stop()
	assert.Equal(t, "disconnect", <-events)
	time.Sleep(300 * time.Millisecond) // several failed attempts
	srv.Start(t)
	select {
	case ev := <-events:
		assert.Equal(t, "connect", ev)
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnection after the restart")
	}
	assert.NotEqual(t, firstID, c.ID())
	require.NoError(t, srv.Nes.Publish("/item/9", "again", nil))
	select {
	case u := <-got:
		assert.JSONEq(t, `"again"`, string(u.Message))
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not deliver after the reconnection")
	}
}

// TestGiveUpOnRefusedAuth: a reconnect hello refused with 401 (credentials that no longer
// work, and no AuthFunc to renew them) ends the reconnection, and OnDisconnect says so.
func TestGiveUpOnRefusedAuth(t *testing.T) {
	t.Parallel()
	accept := make(chan bool, 1)
	accept <- true
	var mu sync.Mutex
	ok := true
	srv := newLocalServer(t, &herald.Options{Auth: &herald.AuthOptions{
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				return nil, herald.NewError(401, "Bad password")
			}
			return &herald.Credentials{User: "john"}, nil
		},
	}})
	final := make(chan client.DisconnectEvent, 1)
	c := srv.Client(t, &client.Options{
		Auth:    &client.Auth{Headers: map[string]string{"authorization": "Basic x"}},
		Backoff: client.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		OnDisconnect: func(e client.DisconnectEvent) {
			if !e.WillReconnect {
				final <- e
			}
		},
	})
	mu.Lock()
	ok = false
	mu.Unlock()
	srv.DisconnectAll()
	select {
	case e := <-final:
		assert.Equal(t, 401, client.StatusCode(e.Err), "%v", e.Err)
		assert.False(t, e.Requested)
	case <-time.After(5 * time.Second):
		t.Fatal("the client kept reconnecting with refused credentials")
	}
	assert.Equal(t, "", c.ID())
	_, err := c.Request(testContext(t), "hello")
	require.ErrorIs(t, err, client.ErrDisconnected)
}

// TestAuthFuncRefreshes: AuthFunc is asked at every connection, so a renewed credential gets
// the client back in after the old one stopped working.
func TestAuthFuncRefreshes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	valid := "token-1"
	srv := newLocalServer(t, &herald.Options{Auth: &herald.AuthOptions{
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			mu.Lock()
			defer mu.Unlock()
			if r.Header.Get("Authorization") != "Bearer "+valid {
				return nil, herald.NewError(401, "Expired")
			}
			return &herald.Credentials{User: "john"}, nil
		},
	}})
	var calls int
	reconnected := make(chan struct{}, 1)
	c := srv.Client(t, &client.Options{
		Backoff: client.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		AuthFunc: func(ctx context.Context) (*client.Auth, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return &client.Auth{Headers: map[string]string{"authorization": "Bearer " + valid}}, nil
		},
		OnConnect: func(e client.ConnectEvent) {
			if e.Reconnect {
				reconnected <- struct{}{}
			}
		},
	})
	mu.Lock()
	valid = "token-2"
	mu.Unlock()
	srv.DisconnectAll()
	select {
	case <-reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnection with the renewed credential")
	}
	mu.Lock()
	assert.GreaterOrEqual(t, calls, 2)
	mu.Unlock()
	_, err := c.Request(testContext(t), "hello")
	require.NoError(t, err)
}

// TestDisconnectAndConnectAgain: Disconnect stops reconnecting and keeps the subscriptions
// for the next Connect.
func TestDisconnectAndConnectAgain(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	disc := make(chan client.DisconnectEvent, 4)
	c := srv.Client(t, &client.Options{OnDisconnect: func(e client.DisconnectEvent) { disc <- e }})
	got := make(chan client.Update, 1)
	_, err := c.Subscribe(testContext(t), "/item/3", func(u client.Update) { got <- u })
	require.NoError(t, err)
	c.Disconnect()
	e := <-disc
	assert.True(t, e.Requested)
	assert.False(t, e.WillReconnect)
	_, err = c.Request(testContext(t), "hello")
	require.ErrorIs(t, err, client.ErrDisconnected)
	require.NoError(t, c.Connect(testContext(t)))
	require.NoError(t, srv.Nes.Publish("/item/3", true, nil))
	select {
	case u := <-got:
		assert.JSONEq(t, "true", string(u.Message))
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription was not renewed by Connect")
	}
}

// TestMessageAndUpdate: custom messages and the pushes that belong to no subscription.
func TestMessageAndUpdate(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, &herald.Options{
		OnMessage: func(ctx context.Context, s *herald.Socket, m herald.RawMessage) (any, error) {
			return map[string]json.RawMessage{"echo": m}, nil
		},
	})
	updates := make(chan json.RawMessage, 2)
	c := srv.Client(t, &client.Options{OnUpdate: func(m json.RawMessage) { updates <- m }})
	reply, err := c.Message(testContext(t), map[string]string{"hi": "there"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"echo":{"hi":"there"}}`, string(reply))
	require.NoError(t, srv.Nes.Broadcast("all", nil))
	select {
	case m := <-updates:
		assert.JSONEq(t, `"all"`, string(m))
	case <-time.After(3 * time.Second):
		t.Fatal("no broadcast")
	}
	var ids []string
	srv.Nes.EachSocket(func(s *herald.Socket) bool { ids = append(ids, s.ID); return true })
	require.Equal(t, []string{c.ID()}, ids, "Client.ID is the server's socket id")
}

// TestChunkedMessages: a server that splits long messages into chunks; the client puts them
// together, and a message longer than Options.MaxMessageBytes is refused: the connection is
// dropped (OnError says why) and made again.
func TestChunkedMessages(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, &herald.Options{MaxChunkChars: 16})
	long := strings.Repeat("é€😀x", 50) // two-, three- and four-byte characters across the cuts
	c := srv.Client(t, nil)
	updates := heraldtest.Subscribe(t, c, "/item/1")
	require.NoError(t, srv.Nes.Publish("/item/1", long, nil))
	var got string
	require.NoError(t, json.Unmarshal(updates.Next(t).Message, &got))
	assert.Equal(t, long, got)

	var ev heraldtest.Events
	small := srv.Client(t, ev.Options(&client.Options{MaxMessageBytes: 300, Backoff: client.Backoff{Min: time.Millisecond}}))
	ev.Connects.Next(t)
	smallUpdates := heraldtest.Subscribe(t, small, "/item/2")
	require.NoError(t, srv.Nes.Publish("/item/2", long, nil))
	err := ev.Errors.Next(t)
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, client.KindProtocol, e.Kind, "%v", err)
	assert.True(t, ev.Disconnects.Next(t).WillReconnect)
	ev.Connects.Next(t)
	require.NoError(t, srv.Nes.Publish("/item/2", "short", nil))
	assert.JSONEq(t, `"short"`, string(smallUpdates.Next(t).Message), "the subscription survives the reconnection")
}

// TestConcurrentUse: requests, subscriptions and unsubscriptions from many goroutines at once
// (run with -race), each getting its own answer.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := newLocalServer(t, nil)
	c := srv.Client(t, nil)
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/item/" + string(rune('a'+g))
			for i := range 50 {
				res, err := c.Request(ctx, "hello")
				if err != nil || string(res.Payload) != `"world!"` {
					errs <- err
				}
				if i%10 == 0 {
					sub, err := c.Subscribe(ctx, path, func(client.Update) {})
					if err != nil {
						errs <- err
						continue
					}
					if err := sub.Unsubscribe(ctx); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Empty(t, c.Subscriptions())
}
