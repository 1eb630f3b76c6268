package eventsource_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/internal/leakcheck"
)

// Streams in idle mode behave as others, over every protocol (idle mode applies to HTTP/1.1
// on plain TCP only: the others keep their goroutine).
func TestIdleModeStream(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			st, es := openStream(t, proto, &eventsource.Options{IdleMode: true, PingInterval: 50 * time.Millisecond}, "/")
			for i := range 3 {
				require.NoError(t, es.Send(fmt.Sprint("event ", i), eventsource.Event{ID: fmt.Sprint(i)}))
			}
			for got := 0; got < 3; {
				m := st.next(t)
				if m.Data == "" {
					continue // a ping
				}
				assert.Equal(t, fmt.Sprint("event ", got), m.Data)
				got++
			}
			st.Close()
			waitDone(t, es, 5*time.Second)
			assert.ErrorIs(t, es.Err(), eventsource.ErrClientGone)
		})
	}
}

// A client that stops reading is dropped after WriteTimeout in idle mode too: the writer that
// waits for it waits on the poller.
func TestIdleModeSlowClient(t *testing.T) {
	t.Parallel()
	st, es := openStream(t, "HTTP/1.1", &eventsource.Options{IdleMode: true, PingInterval: -1,
		WriteTimeout: 200 * time.Millisecond, QueueLimit: 64 << 20}, "/")
	_ = st // never read
	data := strings.Repeat("x", 64<<10)
	for range 200 {
		if es.Send(data, eventsource.Event{}) != nil {
			break
		}
	}
	waitDone(t, es, 10*time.Second)
	assert.Error(t, es.Err())
}

// TestIdleModeStreamsHaveNoGoroutine opens 300 streams taken over in idle mode and counts
// goroutines: an idle stream has none.
func TestIdleModeStreamsHaveNoGoroutine(t *testing.T) {
	const n = 300
	got := make(chan *eventsource.EventSource, n)
	srv := httptest.NewServer(&eventsource.Handler{
		Options: &eventsource.Options{IdleMode: true, PingInterval: -1},
		Accept:  func(es *eventsource.EventSource) { got <- es },
	})
	defer srv.Close()
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	ess := make([]*eventsource.EventSource, 0, n)
	for range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		es := recv(t, got)
		require.True(t, es.Hijacked())
		ess = append(ess, es)
	}
	during := leakcheck.Settle(before, 10)
	t.Logf("goroutines: %d before, %d with %d idle streams", before, during, n)
	assert.Less(t, during-before, 10, "idle streams must not keep goroutines")
	for _, c := range conns {
		_ = c.Close()
	}
	for _, es := range ess {
		waitDone(t, es, 10*time.Second)
		assert.ErrorIs(t, es.Err(), eventsource.ErrClientGone)
	}
}
