package eventsource_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/eventsource"
)

// flushOnly is a middleware's ResponseWriter that can flush but neither be hijacked nor
// unwrapped.
type flushOnly struct{ w http.ResponseWriter }

func (f flushOnly) Header() http.Header         { return f.w.Header() }
func (f flushOnly) Write(b []byte) (int, error) { return f.w.Write(b) }
func (f flushOnly) WriteHeader(code int)        { f.w.WriteHeader(code) }
func (f flushOnly) Flush()                      { f.w.(http.Flusher).Flush() }

// New takes HTTP/1.x connections over, and answers through the ResponseWriter on HTTP/2 or
// when a middleware hides the connection; the stream works the same either way.
func TestHijackedOrNot(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		proto string
		wrap  bool
		want  bool
	}{
		{"HTTP/1.1", "HTTP/1.1", false, true},
		{"HTTPS/1.1", "HTTPS/1.1", false, true},
		{"HTTP/2", "HTTP/2", false, false},
		{"middleware without Unwrap", "HTTP/1.1", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan *eventsource.EventSource, 1)
			srv := serveHandler(t, c.proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.wrap {
					w = flushOnly{w}
				}
				w.Header().Set("X-Before", "kept")
				es, err := eventsource.New(w, r, &eventsource.Options{Retry: time.Second})
				if err != nil {
					t.Errorf("New: %v", err)
					return
				}
				got <- es
				<-es.Done()
			}))
			st := srv.open(t, "/", nil)
			es := recv(t, got)
			assert.Equal(t, c.want, es.Hijacked())
			assert.Equal(t, "kept", st.Resp.Header.Get("X-Before"))
			assert.Equal(t, "retry: 1000\n\n", st.readN(t, len("retry: 1000\n\n")))
			require.NoError(t, es.Send("one", eventsource.Event{ID: "1"}))
			assert.Equal(t, eventsource.Message{Type: "message", ID: "1", Data: "one"}, st.next(t))
			require.NoError(t, es.Close())
			_, err := st.Dec.Next()
			assert.ErrorIs(t, err, io.EOF, "a clean end of the stream")
		})
	}
}

// An HTTP/1.0 client gets an HTTP/1.0 response that ends when the connection closes, with the
// stream's headers (header values cannot smuggle in a line of their own); bytes it sends after
// its request are ignored.
func TestHTTP10Client(t *testing.T) {
	t.Parallel()
	got := make(chan *eventsource.EventSource, 1)
	srv := newTestServer(t, "HTTP/1.1", &eventsource.Options{
		Retry:  time.Second,
		Header: http.Header{"X-Test": {"a\r\nInjected: yes"}, "Content-Length": {"5"}},
	}, func(es *eventsource.EventSource) { got <- es })
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /old HTTP/1.0\r\nAccept: text/event-stream\r\n\r\nGET /next HTTP/1.0\r\n\r\n")
	require.NoError(t, err)

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "HTTP/1.0", resp.Proto)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache, no-transform", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	assert.NotEmpty(t, resp.Header.Get("Date"))
	assert.True(t, resp.Close, "Connection: close")
	assert.Equal(t, int64(-1), resp.ContentLength, "no length: the response ends with the connection")
	assert.Empty(t, resp.TransferEncoding)
	assert.Equal(t, "a  Injected: yes", resp.Header.Get("X-Test"))
	assert.Empty(t, resp.Header.Get("Injected"))

	es := recv(t, got)
	assert.True(t, es.Hijacked())
	_, err = io.WriteString(conn, "more bytes the server ignores\r\n")
	require.NoError(t, err)
	require.NoError(t, es.Send("hello", eventsource.Event{ID: "1"}))
	require.NoError(t, es.Close())
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "retry: 1000\n\nid: 1\ndata: hello\n\n", string(body))
	assert.NoError(t, es.Err())
}

// Handler returns as soon as Accept has on a connection it took over, and the stream goes on;
// over HTTP/2 it holds the request until the stream ends. Other requests go to Fallback.
func TestHandler(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			got := make(chan *eventsource.EventSource, 1)
			returned := make(chan struct{}, 1)
			h := &eventsource.Handler{Accept: func(es *eventsource.EventSource) { got <- es }}
			srv := serveHandler(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				returned <- struct{}{}
			}))
			st := srv.open(t, "/", nil)
			es := recv(t, got)
			if es.Hijacked() {
				recv(t, returned)
			} else {
				select {
				case <-returned:
					t.Fatal("ServeHTTP returned while the stream was open on the ResponseWriter")
				case <-time.After(50 * time.Millisecond):
				}
			}
			require.NoError(t, es.Send("after", eventsource.Event{}))
			assert.Equal(t, "after", st.next(t).Data)
			st.Close()
			waitDone(t, es, 10*time.Second)
			assert.ErrorIs(t, es.Err(), eventsource.ErrClientGone)
			if !es.Hijacked() {
				recv(t, returned)
			}

			resp, err := srv.Client.Get(srv.URL + "/")
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusNotAcceptable, resp.StatusCode, "not an event stream, no Fallback")
			recv(t, returned)
		})
	}
	t.Run("Fallback", func(t *testing.T) {
		t.Parallel()
		h := &eventsource.Handler{Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "page")
		})}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		assert.Equal(t, "page", rec.Body.String())
	})
}

// Clients that vanish mid-stream, closing or resetting their connection, end their streams
// with ErrClientGone at once (no ping is needed to find out), and nothing is left of them: no
// goroutine, no descriptor. Not parallel: it counts both for the whole process.
func TestClientVanishesReleasesEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fds := openFDs(t)
	s := eventsource.NewStream(nil)
	got := make(chan *eventsource.EventSource, 16)
	srv := httptest.NewServer(&eventsource.Handler{
		Options: &eventsource.Options{PingInterval: -1},
		Accept: func(es *eventsource.EventSource) {
			_ = s.Subscribe(es)
			got <- es
		},
	})
	const n = 16
	conns := make([]*bufio.Reader, n)
	var ess []*eventsource.EventSource
	raw := make([]*net.TCPConn, n)
	for i := range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		require.NoError(t, err)
		raw[i] = c.(*net.TCPConn)
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
		require.NoError(t, err)
		conns[i] = bufio.NewReader(c)
		resp, err := http.ReadResponse(conns[i], nil)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		ess = append(ess, recv(t, got))
	}
	_, err := s.Publish("x", eventsource.Event{})
	require.NoError(t, err)
	for i := range n {
		line, err := conns[i].ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "id: 1\n", line)
		if i%2 == 0 {
			_ = raw[i].SetLinger(0) // a reset rather than a clean close
		}
		_ = raw[i].Close()
	}
	for _, es := range ess {
		waitDone(t, es, 10*time.Second)
		assert.ErrorIs(t, es.Err(), eventsource.ErrClientGone)
	}
	assert.Equal(t, 0, s.Len())
	srv.Close()
	if fds >= 0 {
		deadline := time.Now().Add(5 * time.Second)
		for openFDs(t) > fds && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		assert.LessOrEqual(t, openFDs(t), fds, "descriptors left open")
	}
}

// openFDs counts the process's open descriptors, or returns -1 where it cannot.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
