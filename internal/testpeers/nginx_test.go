package testpeers_test

// Debian's nginx as a reverse proxy, as StartNginx runs it: no WebSocket gets through; by
// default an event stream flows (X-Accel-Buffering: no, which eventsource.New sends, turns
// buffering off for it); told to ignore that header, nginx holds the stream's events, and only
// requests that end (POST, long-poll) work.

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// bufferings is the two ways StartNginx runs.
var bufferings = []struct {
	name     string
	buffered bool
}{
	{"default", false},
	{"buffered", true},
}

// TestNginxRefusesWebSocket: nginx passes a WebSocket handshake on as a plain GET (no Upgrade,
// Connection: close), so the server cannot upgrade and the client gets no 101.
func TestNginxRefusesWebSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range bufferings {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			base := testpeers.StartNginx(t, up.URL, tc.buffered)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
				&websocket.DialOptions{Proxy: websocket.NoProxy})
			if err == nil {
				_ = ws.CloseNow()
				t.Fatal("a WebSocket got through nginx")
			}
			var he *websocket.HandshakeError
			require.ErrorAs(t, err, &he, "err: %v", err)
			require.NotNil(t, resp, "err: %v", err)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "websocket.Upgrade's answer to a GET without Upgrade")

			h := up.header("/ws")
			require.NotNil(t, h, "nginx did not pass the request on")
			assert.Empty(t, h.Get("Upgrade"), "nginx passed Upgrade on")
			assert.Equal(t, "close", h.Get("Connection"), "nginx's HTTP/1.0 request to the upstream")
		})
	}
}

// TestNginxStreamsEvents: by default, nginx passes each event of a stream on at once, because
// the stream's response carries X-Accel-Buffering: no.
func TestNginxStreamsEvents(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	c := client(t, "")
	s := openStream(t, c, testpeers.StartNginx(t, up.URL, false)+"/events")
	s.requireOpen(t, prompt)
	require.NotNil(t, up.header("/events"), "the stream did not come through nginx")

	s.requireEvent(t, "first", prompt)
	for _, data := range []string{"second", "third"} {
		up.send(t, data)
		s.requireEvent(t, data, prompt)
	}
	_, got, ended := s.next(100 * time.Millisecond)
	require.False(t, got || ended, "the stream should be open and quiet")

	up.send(t, "")
	_, got, ended = s.next(5 * time.Second)
	require.True(t, ended && !got, "the response should have ended with the stream")
	require.NoError(t, s.err)
}

// TestNginxBufferedHoldsEvents: told to ignore X-Accel-Buffering, nginx holds a stream's small
// events until the stream ends; then they all arrive, which shows they were held, not lost.
// It holds the response head too: nginx sends it with the first body bytes it passes on
// (postpone_output 1460 keeps a head alone back), so the client sees no response at all,
// not even the 200 that opens an EventSource.
func TestNginxBufferedHoldsEvents(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	c := client(t, "")
	s := openStream(t, c, testpeers.StartNginx(t, up.URL, true)+"/events")

	data, got, ended := s.next(held)
	require.False(t, ended, "the response ended early")
	require.False(t, got, "the event %q came through a buffering nginx", data)
	require.NotNil(t, up.header("/events"), "the request did not reach the upstream")
	require.False(t, s.isOpen(), "the response head came through a buffering nginx")
	up.send(t, "second")
	data, got, ended = s.next(held / 2)
	require.False(t, ended, "the response ended early")
	require.False(t, got, "the event %q came through a buffering nginx", data)

	up.send(t, "") // the stream ends: nginx sends what it held
	s.requireOpen(t, prompt)
	s.requireEvent(t, "first", prompt)
	s.requireEvent(t, "second", prompt)
	_, got, ended = s.next(5 * time.Second)
	require.True(t, ended && !got, "the response should have ended with the stream")
	require.NoError(t, s.err)
}

// TestNginxPassesRequests: with and without buffering, a POST with a JSON body and a long-poll
// that answers late go through nginx.
func TestNginxPassesRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range bufferings {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t)
			base := testpeers.StartNginx(t, up.URL, tc.buffered)
			c := client(t, "")

			body := map[string]any{"type": "request", "id": 1.0, "path": "/hello", "pad": strings.Repeat("x", 64<<10)}
			got := postJSON(t, c, base+"/echo", body)
			assert.Equal(t, map[string]any{"method": "POST", "body": body}, got)
			h := up.header("/echo")
			require.NotNil(t, h, "the POST did not come through nginx")
			assert.Equal(t, "application/json", h.Get("Content-Type"))

			requireLongPoll(t, c, base+"/poll?delay=1500ms", 1500*time.Millisecond)
			require.NotNil(t, up.header("/poll"), "the poll did not come through nginx")
		})
	}
}

// TestStartNginxUpstream: StartNginx takes a base URL and nothing else.
func TestStartNginxUpstream(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"127.0.0.1:8000", "ws://127.0.0.1:8000", "http://127.0.0.1:8000/path", "http://u:p@127.0.0.1:8000"} {
		t.Run(bad, func(t *testing.T) {
			t.Parallel()
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testpeers.StartNginx(ft, bad, false)
			}()
			<-done
			assert.Contains(t, ft.msg, "is not a base URL", "StartNginx(%q)", bad)
		})
	}
}

// fatalRecorder records the message of Fatalf and ends the goroutine, as testing.T does,
// without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Helper() {}
