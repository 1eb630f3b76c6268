package eventsource_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

// protos are the HTTP versions the server tests run over.
var protos = []string{"HTTP/1.1", "HTTP/2"}

// serverProtos are protos and HTTP/1.1 over TLS, where a connection taken over by New has no
// raw socket to write to without waiting.
var serverProtos = []string{"HTTP/1.1", "HTTPS/1.1", "HTTP/2"}

// testServer serves EventSources: each request gets one, handed to onNew, and the handler
// waits for it to end.
type testServer struct {
	URL    string
	Client *http.Client
	srv    *httptest.Server
}

func newTestServer(t *testing.T, proto string, opts *eventsource.Options, onNew func(es *eventsource.EventSource)) *testServer {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		es, err := eventsource.New(w, r, opts)
		if err != nil {
			t.Errorf("New: %v", err)
			return
		}
		if onNew != nil {
			onNew(es)
		}
		<-es.Done()
	})
	return serveHandler(t, proto, h)
}

// openStream serves EventSources over proto with opts (see newTestServer), opens path, and
// returns the client's stream and the server's EventSource for it.
func openStream(t *testing.T, proto string, opts *eventsource.Options, path string) (*stream, *eventsource.EventSource) {
	t.Helper()
	got := make(chan *eventsource.EventSource, 1)
	srv := newTestServer(t, proto, opts, func(es *eventsource.EventSource) { got <- es })
	st := srv.open(t, path, nil)
	return st, recv(t, got)
}

// serveHandler serves h over proto (HTTP/2 and HTTPS/1.1 with TLS) until the test ends.
func serveHandler(t *testing.T, proto string, h http.Handler) *testServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	// Small socket send buffers, so that a client that stops reading stalls the server's
	// writes after kilobytes rather than megabytes.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(16 << 10)
		}
		return ctx
	}
	switch proto {
	case "HTTP/2":
		srv.EnableHTTP2 = true
		srv.StartTLS()
	case "HTTPS/1.1":
		srv.StartTLS()
	default:
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &testServer{URL: srv.URL, Client: srv.Client(), srv: srv}
}

// stream is one client connection read by the tests.
type stream struct {
	Resp *http.Response
	R    *bufio.Reader
	Dec  *eventsource.Decoder
	stop context.CancelFunc
}

// open requests path with the given headers, within 10 seconds for the whole test of it.
func (s *testServer) open(t *testing.T, path string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	require.NoError(t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.Client.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	st := &stream{Resp: resp, R: bufio.NewReader(resp.Body), stop: cancel}
	st.Dec = eventsource.NewDecoder(st.R, 0, "")
	t.Cleanup(st.Close)
	return st
}

// Close drops the connection.
func (st *stream) Close() {
	st.stop()
	_ = st.Resp.Body.Close()
}

// readN reads exactly n bytes.
func (st *stream) readN(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(st.R, b)
	require.NoError(t, err, "read so far: %q", b)
	return string(b)
}

// next reads the next event.
func (st *stream) next(t *testing.T) eventsource.Message {
	t.Helper()
	m, err := st.Dec.Next()
	require.NoError(t, err)
	return m
}

// waitDone waits (bounded) for an EventSource to end.
func waitDone(t *testing.T, es *eventsource.EventSource, within time.Duration) {
	t.Helper()
	select {
	case <-es.Done():
	case <-time.After(within):
		t.Fatalf("the EventSource did not end within %v", within)
	}
}

// recv receives from a channel, bounded.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
	}
	var zero T
	return zero
}
