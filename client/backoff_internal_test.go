package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
)

// TestDelayCeilings: with the jitter source at its top, each delay is its attempt's ceiling:
// doubling from Min and capped at Max, without overflow for any attempt.
func TestDelayCeilings(t *testing.T) {
	c := &Client{opts: (&Options{Backoff: Backoff{Min: 100 * time.Millisecond, Max: time.Second}}).withDefaults(),
		random: func() float64 { return 1 }}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, c.delay(i), "attempt %d", i)
	}
	for _, n := range []int{31, 32, 63, 64, 1000} {
		assert.Equal(t, time.Second, c.delay(n), "attempt %d", n)
	}
	c.random = func() float64 { return 0.25 }
	assert.Equal(t, 250*time.Millisecond, c.delay(10), "the draw scales the capped ceiling")
}

// TestBackoffResets: the exponent grows across outages while connections drop soon after they
// are made, and starts again from Min once a connection has stayed up ResetAfter. The jitter
// source is pinned at its top, so each delay is its ceiling.
func TestBackoffResets(t *testing.T) {
	nes := herald.NewServer(http.NewServeMux(), nil)
	hs := httptest.NewServer(nes)
	defer hs.Close()
	defer nes.Close()

	connected := make(chan struct{}, 8)
	delays := make(chan time.Duration, 8)
	c, err := New("ws"+strings.TrimPrefix(hs.URL, "http"), &Options{
		Backoff:     Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond, ResetAfter: 400 * time.Millisecond},
		OnConnect:   func(ConnectEvent) { connected <- struct{}{} },
		OnReconnect: func(e ReconnectEvent) { delays <- e.Delay },
	})
	require.NoError(t, err)
	defer c.Close()
	c.random = func() float64 { return 1 }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	<-connected

	drop := func() time.Duration {
		t.Helper()
		nes.EachSocket(func(s *herald.Socket) bool { s.Disconnect(); return true })
		var d time.Duration
		select {
		case d = <-delays:
		case <-ctx.Done():
			t.Fatal("no reconnection attempt")
		}
		select {
		case <-connected:
		case <-ctx.Done():
			t.Fatal("no reconnection")
		}
		return d
	}
	var got []time.Duration
	for range 3 { // each connection dropped at once: the outages add up
		got = append(got, drop())
	}
	time.Sleep(500 * time.Millisecond) // past ResetAfter
	got = append(got, drop())
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{10 * ms, 20 * ms, 40 * ms, 10 * ms}, got)
}
