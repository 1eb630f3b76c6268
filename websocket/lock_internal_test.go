package websocket

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTurnLockExcludes has many goroutines take turns on one counter; a turn that let two in
// at once would lose increments (and the race detector would see it).
func TestTurnLockExcludes(t *testing.T) {
	var l turnLock
	done := make(chan struct{})
	counter := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				require.NoError(t, l.lock(context.Background(), done))
				counter++
				l.unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8*2000, counter)
	assert.Zero(t, l.state.Load(), "free, and no waiter left counted")
}

// TestTurnLockGivesUp checks that a waiter leaves when its context ends or the connection
// closes, and that the lock still works for the next one.
func TestTurnLockGivesUp(t *testing.T) {
	var l turnLock
	done := make(chan struct{})
	require.NoError(t, l.lock(context.Background(), done))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.lock(ctx, done), context.DeadlineExceeded)

	closed := make(chan struct{})
	go func() { time.Sleep(10 * time.Millisecond); close(closed) }()
	assert.ErrorIs(t, l.lock(context.Background(), closed), errLockClosed)

	got := make(chan error, 1)
	go func() { got <- l.lock(context.Background(), done) }()
	time.Sleep(10 * time.Millisecond)
	l.unlock()
	select {
	case err := <-got:
		require.NoError(t, err, "the waiter gets the lock once it is given back")
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter was not woken by unlock")
	}
	l.unlock()
	assert.Zero(t, l.state.Load())
}

// TestHandshakeRequestRoundTrip checks that what a connection keeps of its request comes back
// whole, with header values holding any byte, and that each copy is the caller's own.
func TestHandshakeRequestRoundTrip(t *testing.T) {
	u, err := url.Parse("/chat/r%2Fx?room=1&b=%00")
	require.NoError(t, err)
	r := &http.Request{
		Method: "GET", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Host: "example.com:8080", RemoteAddr: "192.0.2.1:4000", RequestURI: "/chat/r%2Fx?room=1&b=%00",
		Header: http.Header{
			"Origin":                              {"https://example.com"},
			"Cookie":                              {"a=1", "b=2"},
			"X-Binary":                            {"\x00\xff\n\r:" + string(make([]byte, 300))},
			"Empty":                               {""},
			"X-Long-" + string(make([]byte, 200)): {"v"},
		},
	}
	h := snapshotRequest(r)
	got := h.request()
	assert.Equal(t, r.Header, got.Header)
	assert.Equal(t, r.URL.String(), got.URL.String())
	assert.Equal(t, "/chat/r%2Fx", got.URL.EscapedPath())
	assert.Equal(t, r.Host, got.Host)
	assert.Equal(t, r.RemoteAddr, got.RemoteAddr)
	assert.Equal(t, r.RequestURI, got.RequestURI)
	assert.Equal(t, 1, got.ProtoMajor)
	assert.Equal(t, 1, got.ProtoMinor)
	assert.Equal(t, http.NoBody, got.Body)

	got.Header.Set("Origin", "changed")
	got.URL.Path = "/changed"
	again := h.request()
	assert.Equal(t, "https://example.com", again.Header.Get("Origin"), "a copy's header is its own")
	assert.Equal(t, "/chat/r/x", again.URL.Path, "a copy's URL is its own")
	assert.Equal(t, "/chat/r/x", r.URL.Path, "the original URL is never changed")
}
