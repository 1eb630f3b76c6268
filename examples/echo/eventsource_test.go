package main

// The echo program's EventSource stream, read by Go over HTTP/1.1 and HTTP/2 (exact bytes),
// by Node's eventsource package and by Chromium's EventSource. The handler runs in-process
// (newHandler, as the program serves it) so that a test can cut connections.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// esServer serves the echo handler with the given event interval until the test ends.
func esServer(t *testing.T, proto string, interval time.Duration) *esTestServer {
	t.Helper()
	stop := make(chan struct{})
	cfg := config{deflate: true, interval: interval}
	srv := &esTestServer{Server: httptest.NewUnstartedServer(newHandler(cfg, &websocket.Registry{}, stop))}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		srv.mu.Lock()
		srv.conns = append(srv.conns, c)
		srv.mu.Unlock()
		return ctx
	}
	if proto == "HTTP/2" {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		close(stop) // the streams end, then their handlers return
		srv.Close()
	})
	return srv
}

// esTestServer is an httptest.Server that can cut every connection it accepted, including
// those the event streams took over from net/http (which CloseClientConnections does not see).
type esTestServer struct {
	*httptest.Server
	mu    sync.Mutex
	conns []net.Conn
}

// cutAll closes every connection the server accepted.
func (s *esTestServer) cutAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// esGet opens a stream and returns the response and a reader of its body, for 20 s at most.
func esGet(t *testing.T, srv *esTestServer, path string, header http.Header) (*http.Response, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

func readExactly(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	b := make([]byte, len(want))
	_, err := io.ReadFull(r, b)
	require.NoError(t, err, "read so far %q", b)
	assert.Equal(t, want, string(b))
}

func tick(n int) string {
	return "id: " + strconv.Itoa(n) + "\ndata: tick " + strconv.Itoa(n) + "\n\n"
}

func TestEventSourceStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		path   string
		header http.Header
		first  int
	}{
		{"fresh", "/", nil, 1},
		{"any path", "/some/path?x=1", nil, 1},
		{"Last-Event-ID", "/", http.Header{"Last-Event-Id": {"41"}}, 42},
		{"lastEventId query", "/?lastEventId=7", nil, 8},
		{"header wins", "/?lastEventId=7", http.Header{"Last-Event-Id": {"100"}}, 101},
		{"not a number", "/", http.Header{"Last-Event-Id": {"abc"}}, 1},
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		srv := esServer(t, proto, 20*time.Millisecond)
		for _, c := range cases {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				h := http.Header{"Accept": {"text/event-stream"}}
				for k, v := range c.header {
					h[k] = v
				}
				resp, r := esGet(t, srv, c.path, h)
				assert.Equal(t, map[string]int{"HTTP/1.1": 1, "HTTP/2": 2}[proto], resp.ProtoMajor)
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
				assert.Equal(t, "no-cache, no-transform", resp.Header.Get("Cache-Control"))
				assert.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
				assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
				readExactly(t, r, "retry: 10000\n\n")
				readExactly(t, r, tick(c.first)+tick(c.first+1)+tick(c.first+2))
			})
		}
	}
	// Without Accept: text/event-stream, the plain answer stays.
	srv := esServer(t, "HTTP/1.1", time.Hour)
	resp, r := esGet(t, srv, "/", nil)
	assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	readExactly(t, r, "Hello")
}

// The keep-alive comment comes every 15 s on an otherwise idle stream.
func TestEventSourceKeepAlive(t *testing.T) {
	t.Parallel()
	srv := esServer(t, "HTTP/1.1", time.Hour)
	_, r := esGet(t, srv, "/", http.Header{"Accept": {"text/event-stream"}})
	readExactly(t, r, "retry: 10000\n\n")
	start := time.Now()
	readExactly(t, r, ": ping\n\n")
	t.Logf("keep-alive after %v", time.Since(start).Round(time.Millisecond))
}

// Node's eventsource: the ticks in order, and after the connection drops, a reconnection
// after the server's retry (10 s) that resumes right after the last tick received.
func TestEventSourcePeerNode(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	srv := esServer(t, "HTTP/1.1", 50*time.Millisecond)
	p := testpeers.Start(t, "eventsource-client.js", srv.URL+"/ticks")
	resp := p.WaitES(t, 20*time.Second, "response")
	assert.Equal(t, "*", resp.Headers["access-control-allow-origin"])
	assert.Equal(t, "text/event-stream", resp.Headers["content-type"])
	checkTicksAndResume(t, p, srv, "", 1)
}

// Chromium's EventSource over HTTP/1.1 and HTTP/2, from a page of another origin (CORS), and
// with the lastEventId query parameter.
func TestEventSourcePeerBrowser(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	chromium := testpeers.Chromium(t)
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			srv := esServer(t, proto, 50*time.Millisecond)
			page := esServer(t, "HTTP/1.1", time.Hour) // another origin: the stream needs CORS
			p := testpeers.Start(t, "eventsource-browser.js", chromium, page.URL+"/", srv.URL+"/ticks?lastEventId=41")
			checkTicksAndResume(t, p, srv, map[string]string{"HTTP/1.1": "http/1.1", "HTTP/2": "h2"}[proto], 42)
		})
	}
}

// checkTicksAndResume reads three ticks from first on, cuts every connection, and checks the
// client resumes after the last tick it had (or the page's ticks, for a browser).
func checkTicksAndResume(t *testing.T, p *testpeers.Proc, srv *esTestServer, protocol string, first int) {
	t.Helper()
	next := first
	for deadline := time.Now().Add(30 * time.Second); next < first+3; {
		l := p.NextES(t, time.Until(deadline))
		switch l.Kind {
		case "response":
			if protocol != "" {
				assert.Equal(t, protocol, l.Protocol)
			}
			assert.Equal(t, "*", l.Headers["access-control-allow-origin"])
		case "message":
			require.Equal(t, testpeers.ESLine{Kind: "message", Type: "message", ID: strconv.Itoa(next), Data: "tick " + strconv.Itoa(next)}, l)
			next++
		}
	}
	srv.cutAll()
	// The client notices the drop (an error event), comes back after retry: 10000 and
	// resumes after the last tick it received: every tick, before and after, follows the
	// previous one.
	dropped, after := false, 0
	for deadline := time.Now().Add(30 * time.Second); after < 2; {
		switch l := p.NextES(t, time.Until(deadline)); l.Kind {
		case "error":
			dropped = true
		case "message":
			require.Equal(t, testpeers.ESLine{Kind: "message", Type: "message", ID: strconv.Itoa(next), Data: "tick " + strconv.Itoa(next)}, l,
				"a gap or a duplicate across the reconnection")
			next++
			if dropped {
				after++
			}
		}
	}
}
