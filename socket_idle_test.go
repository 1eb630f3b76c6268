package herald

import (
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/leakcheck"
)

// Sockets in idle mode speak nes as others do: hello, requests, subscriptions and
// publications, heartbeats that keep live clients and drop silent ones, a panic closing only
// its socket, and OnDisconnection once each socket has gone.
func TestIdleModeSockets(t *testing.T) {
	t.Parallel()
	var gone atomic.Int32
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	}), &Options{
		IdleMode:        true,
		Heartbeat:       &Heartbeat{Interval: 400 * time.Millisecond, Timeout: 300 * time.Millisecond},
		OnDisconnection: func(*Socket) { gone.Add(1) },
	})
	srv.Subscription("/item/{id}", nil)
	url := newTestServer(t, srv)

	c := dialRaw(t, url, nil)
	assert.Equal(t, "hello", c.hello(nil)["type"])
	next := func() map[string]any { // the next message but the heartbeat's pings, which may come first on a loaded machine
		for {
			if m := c.next(5 * time.Second); m["type"] != "ping" {
				return m
			}
		}
	}
	c.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/x"})
	m := next()
	assert.Equal(t, "ok /x", m["payload"])
	c.send(map[string]any{"type": "sub", "id": 3, "path": "/item/5"})
	assert.Equal(t, "sub", next()["type"])
	require.NoError(t, srv.Publish("/item/5", map[string]any{"n": 1}, nil))
	m = next()
	assert.Equal(t, "pub", m["type"])
	assert.Equal(t, "/item/5", m["path"])

	// The heartbeat: a silent client is closed, a live one kept.
	silent := dialRaw(t, url, nil)
	silent.hello(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		// The live client answers every ping, as the official client does, for three intervals.
		for deadline := time.Now().Add(1200 * time.Millisecond); time.Now().Before(deadline); {
			if m := c.next(2 * time.Second); m["type"] == "ping" {
				c.send(map[string]any{"type": "ping", "id": 99})
			}
		}
	})
	assert.Equal(t, ws.StatusNoStatusRcvd, silent.closed(5*time.Second))
	wg.Wait()
	c.send(map[string]any{"type": "request", "id": 4, "method": "GET", "path": "/y"})
	for {
		if m := c.next(2 * time.Second); m["type"] == "request" {
			assert.Equal(t, "ok /y", m["payload"])
			break
		}
	}

	// A panic closes its socket with 1011 and no other.
	victim := dialRaw(t, url, nil)
	victim.hello(nil)
	victim.send(map[string]any{"type": "request", "id": 2, "method": "GET", "path": "/panic"})
	assert.Equal(t, float64(500), victim.next(5 * time.Second)["statusCode"])
	assert.Equal(t, ws.StatusInternalServerError, victim.closed(5*time.Second))

	for deadline := time.Now().Add(5 * time.Second); gone.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, int32(2), gone.Load(), "OnDisconnection for the silent socket and the victim")
}

// TestIdleModeSocketsHaveNoGoroutine opens 300 nes sockets in idle mode, each after its hello,
// and counts goroutines: an idle socket has none.
func TestIdleModeSocketsHaveNoGoroutine(t *testing.T) {
	srv := NewServer(nil, &Options{IdleMode: true, Heartbeat: &Heartbeat{Disabled: true}})
	url := newTestServer(t, srv)
	before := runtime.NumGoroutine()
	const n = 300
	for range n {
		c := dialRaw(t, url, nil)
		require.Equal(t, "hello", c.hello(nil)["type"])
	}
	during := leakcheck.Settle(before, 10)
	t.Logf("goroutines: %d before, %d with %d idle sockets", before, during, n)
	assert.Less(t, during-before, 10, "idle sockets must not keep goroutines")
}
