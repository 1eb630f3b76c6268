package docs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// nginxTimeout is proxy_read_timeout and proxy_send_timeout in the test's copy of the guide's
// configuration: short, so that an idle connection outlives several of them within the test.
const nginxTimeout = time.Second

// startGuideNginx runs nginx with the configuration of docs/deployment.md, its upstream
// replaced by upstream (an httptest URL), its listen address by a free loopback port, and its
// timeouts by nginxTimeout. Every line it replaces must be in the guide exactly once.
func startGuideNginx(t *testing.T, upstream string) string {
	t.Helper()
	site := testpeers.CodeBlock(t, "deployment.md", "nginx")
	site = testpeers.Substitute(t, site,
		"server 127.0.0.1:8080;", "server "+strings.TrimPrefix(upstream, "http://")+";",
		"listen 80;", "listen 127.0.0.1:{{PORT}};",
		"proxy_read_timeout 75s;", fmt.Sprintf("proxy_read_timeout %dms;", nginxTimeout.Milliseconds()),
		"proxy_send_timeout 75s;", fmt.Sprintf("proxy_send_timeout %dms;", nginxTimeout.Milliseconds()),
	)
	return testpeers.StartNginxSite(t, site)
}

// guideServer is a nes server with a route, a subscription and a plain event stream of the
// application's own (without X-Accel-Buffering), as the test reaches them through nginx.
type guideServer struct {
	nes     *herald.Server
	url     string
	release chan struct{} // ends the plain stream
}

func newGuideServer(t *testing.T, heartbeat *herald.Heartbeat) *guideServer {
	t.Helper()
	g := &guideServer{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "world") })
	mux.HandleFunc("GET /plain-events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		_ = http.NewResponseController(w).Flush()
		select { // the stream stays open until the test has read the first event
		case <-g.release:
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
		_, _ = io.WriteString(w, "data: last\n\n")
	})
	g.nes = herald.NewServer(mux, &herald.Options{Heartbeat: heartbeat})
	g.nes.Subscription("/ticks", nil)
	hs := httptest.NewServer(g.nes)
	t.Cleanup(func() {
		g.nes.Close()
		hs.Close()
	})
	g.url = hs.URL
	return g
}

// connect connects herald's Go client through the proxy over one transport; disconnects
// counts the connections it lost.
func connect(t *testing.T, proxyURL, transport string, disconnects *atomic.Int32) *client.Client {
	t.Helper()
	c, err := client.New("ws"+strings.TrimPrefix(proxyURL, "http"), &client.Options{
		Transports:   []string{transport},
		Dial:         &websocket.DialOptions{Proxy: websocket.NoProxy},
		NoReconnect:  true,
		OnDisconnect: func(client.DisconnectEvent) { disconnects.Add(1) },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx), transport)
	t.Cleanup(func() { _ = c.Close() })
	require.Equal(t, transport, c.Transport())
	return c
}

// TestPeerNginxFromTheDocs runs the nginx configuration of docs/deployment.md in front of a
// herald server: WebSocket, the fallback's event stream and long-polls each carry requests
// and publications and stay up while idle for several proxy_read_timeouts (the heartbeat
// keeps them alive), an application's own event stream is not buffered, and, as a control, an
// idle WebSocket to a server without heartbeats is cut by nginx. (Named for make interop.)
func TestPeerNginxFromTheDocs(t *testing.T) {
	g := newGuideServer(t, &herald.Heartbeat{Interval: nginxTimeout / 2, Timeout: nginxTimeout / 4})
	proxy := startGuideNginx(t, g.url)

	t.Run("plain event stream is not buffered", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", proxy+"/plain-events", nil)
		require.NoError(t, err)
		res, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		require.NoError(t, err, "the first event must arrive while the stream is open")
		assert.Equal(t, "data: first\n", line)
		close(g.release)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var disconnects [3]atomic.Int32
	clients := map[string]*client.Client{}
	updates := map[string]chan json.RawMessage{}
	for i, transport := range []string{client.TransportWebSocket, client.TransportSSE, client.TransportPoll} {
		c := connect(t, proxy, transport, &disconnects[i])
		res, err := c.Request(ctx, "/hello")
		require.NoError(t, err, transport)
		assert.JSONEq(t, `"world"`, string(res.Payload), transport)
		ch := make(chan json.RawMessage, 16)
		_, err = c.Subscribe(ctx, "/ticks", func(u client.Update) { ch <- u.Message })
		require.NoError(t, err, transport)
		clients[transport], updates[transport] = c, ch
	}

	// Idle for three of nginx's timeouts: only heartbeats flow.
	time.Sleep(3 * nginxTimeout)

	g.nes.Publish("/ticks", map[string]int{"n": 1}, nil)
	for i, transport := range []string{client.TransportWebSocket, client.TransportSSE, client.TransportPoll} {
		select {
		case m := <-updates[transport]:
			assert.JSONEq(t, `{"n":1}`, string(m), transport)
		case <-ctx.Done():
			t.Fatalf("%s: no publication through nginx", transport)
		}
		_, err := clients[transport].Request(ctx, "/hello")
		assert.NoError(t, err, transport)
		assert.Zero(t, disconnects[i].Load(), "%s: the idle connection was cut", transport)
	}

	t.Run("control: without heartbeats nginx cuts an idle WebSocket", func(t *testing.T) {
		quiet := newGuideServer(t, &herald.Heartbeat{Disabled: true})
		quietProxy := startGuideNginx(t, quiet.url)
		close(quiet.release)
		var lost atomic.Int32
		connect(t, quietProxy, client.TransportWebSocket, &lost)
		require.Eventually(t, func() bool { return lost.Load() > 0 }, 10*nginxTimeout, 50*time.Millisecond,
			"nginx's proxy_read_timeout should have closed the idle connection")
	})
}
