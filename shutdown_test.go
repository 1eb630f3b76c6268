package herald_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/websocket"
)

// status GETs url through h and returns the status and body.
func status(t *testing.T, h http.Handler, url string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
	return w.Code, w.Body.String()
}

// TestShutdownDrains checks the drain: readiness fails once Shutdown is called (liveness does
// not), a WebSocket client hears 1012 (service restart) and a fallback stream its close
// event, new connections get 503, and Shutdown returns once every socket has gone.
func TestShutdownDrains(t *testing.T) {
	srv := herald.NewServer(nil, &herald.Options{HelloTimeout: -1, Heartbeat: &herald.Heartbeat{Disabled: true}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	code, body := status(t, srv.ReadyHandler(), "/ready")
	assert.Equal(t, http.StatusOK, code, body)

	// A WebSocket client, with herald's own client side (gobwas/ws refuses 1012, which its
	// list of codes predates).
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","id":1,"version":"2"}`)))
	_, hello, err := c.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(hello), `"type":"hello"`)
	st := openStream(t, ctx, hs.URL+"/nes/sse", "")
	st.expect(t, "herald-open")
	var sockets int
	require.Eventually(t, func() bool {
		sockets = 0
		srv.EachSocket(func(*herald.Socket) bool { sockets++; return true })
		return sockets == 2
	}, 5*time.Second, 10*time.Millisecond)

	// The WebSocket client reads on, as a client does, and answers the close.
	closeCode := make(chan websocket.StatusCode, 1)
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				closeCode <- websocket.CloseStatus(err)
				return
			}
		}
	}()
	require.NoError(t, srv.Shutdown(ctx))
	assert.Equal(t, websocket.StatusServiceRestart, <-closeCode)
	closed := st.expect(t, "herald-close")
	assert.Contains(t, closed.data, `"code":1001`)
	srv.EachSocket(func(*herald.Socket) bool { t.Error("a socket is left after Shutdown"); return false })

	code, body = status(t, srv.ReadyHandler(), "/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "shutting down\n", body)
	code, _ = status(t, srv.LiveHandler(), "/live")
	assert.Equal(t, http.StatusOK, code)

	// New connections are refused with 503, over each transport.
	_, _, _, err = ws.Dialer{}.Dial(ctx, wsURL)
	var se ws.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusServiceUnavailable, int(se))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/nes/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, err = http.Post(hs.URL+"/nes/poll", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)

	// Shutdown and Close may be called again.
	require.NoError(t, srv.Shutdown(ctx))
	srv.Close()
}

// TestShutdownIsBoundedByItsContext: a client that never answers the close keeps its
// connection until the WebSocket close timeout; Shutdown returns when its context ends, and
// Close then waits for the rest.
func TestShutdownIsBoundedByItsContext(t *testing.T) {
	srv := herald.NewServer(nil, &herald.Options{Heartbeat: &herald.Heartbeat{Disabled: true},
		WebSocket: &websocket.Options{CloseTimeout: time.Second}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dialRawWS(t, ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/")
	c.send(t, `{"type":"hello","id":1,"version":"2"}`)
	require.Contains(t, c.read(t), `"type":"hello"`)

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, srv.Shutdown(short), context.DeadlineExceeded)
	code, _ := status(t, srv.ReadyHandler(), "/ready")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	srv.Close() // waits for the close timeout
	srv.EachSocket(func(*herald.Socket) bool { t.Error("a socket is left after Close"); return false })
}
