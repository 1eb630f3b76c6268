package eventsource_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

// collect runs a client until it has n events (or fails after 20 s) and returns them.
func collect(t *testing.T, c *eventsource.Client, n int) ([]eventsource.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []eventsource.Message
	err := c.Run(ctx, func(m eventsource.Message) {
		if len(got) < n {
			got = append(got, m)
		}
		if len(got) == n {
			cancel()
		}
	})
	if len(got) == n {
		err = nil
	}
	return got, err
}

// The client reconnects after a clean end of the stream, waits the server's retry time (not
// its own hour), and resumes with Last-Event-ID.
func TestClientReconnectsWithRetryAndLastEventID(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			var mu sync.Mutex
			var lastIDs []string
			srv := serveHandler(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(conns.Add(1))
				mu.Lock()
				lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
				mu.Unlock()
				es, err := eventsource.New(w, r, &eventsource.Options{Retry: 20 * time.Millisecond})
				if err != nil {
					return
				}
				// Two events per connection, then a clean end.
				for i := 2*n - 1; i <= 2*n; i++ {
					_ = es.Send("tick "+strconv.Itoa(i), eventsource.Event{ID: strconv.Itoa(i)})
				}
				_ = es.Close()
			}))
			var opened atomic.Int32
			var errs []error
			c := eventsource.NewClient(srv.URL+"/s", &eventsource.ClientOptions{
				HTTPClient: srv.Client,
				Retry:      time.Hour,
				OnOpen: func(resp *http.Response) {
					opened.Add(1)
					assert.Equal(t, proto[len("HTTP/"):][:1], strconv.Itoa(resp.ProtoMajor))
				},
				OnError: func(err error) { errs = append(errs, err) },
			})
			got, err := collect(t, c, 6)
			require.NoError(t, err)
			for i, m := range got {
				assert.Equal(t, eventsource.Message{Type: "message", ID: strconv.Itoa(i + 1), Data: "tick " + strconv.Itoa(i+1)}, m)
			}
			mu.Lock()
			assert.Equal(t, []string{"", "2", "4"}, lastIDs[:3])
			mu.Unlock()
			assert.Equal(t, 20*time.Millisecond, c.Retry())
			assert.Equal(t, "6", c.LastEventID())
			assert.GreaterOrEqual(t, int(opened.Load()), 3)
			require.NotEmpty(t, errs)
			assert.ErrorIs(t, errs[0], io.EOF, "a clean end is reported as io.EOF")
		})
	}
}

func TestClientLargeEvents(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("é", 300<<10) // 600 KiB, far over bufio.Scanner's 64 KiB
	var conns atomic.Int32
	srv := newTestServer(t, "HTTP/1.1", &eventsource.Options{Retry: 10 * time.Millisecond}, func(es *eventsource.EventSource) {
		conns.Add(1)
		_ = es.Send(big, eventsource.Event{ID: "big"})
	})
	c := eventsource.NewClient(srv.URL, &eventsource.ClientOptions{MaxEventSize: 1 << 20})
	got, err := collect(t, c, 1)
	require.NoError(t, err)
	assert.Equal(t, big, got[0].Data)

	// Over the limit: a clear error, and no reconnecting to receive the same event again.
	before := conns.Load()
	c = eventsource.NewClient(srv.URL, &eventsource.ClientOptions{MaxEventSize: 64 << 10})
	_, err = collect(t, c, 1)
	var tl *eventsource.EventTooLargeError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 64<<10, tl.Limit)
	assert.Equal(t, before+1, conns.Load())
}

func TestClientStopsOnRefusal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		ctype  string
	}{
		{"204 means stop", http.StatusNoContent, ""},
		{"404", http.StatusNotFound, "text/plain"},
		{"not an event stream", http.StatusOK, "text/html"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := serveHandler(t, "HTTP/1.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if c.ctype != "" {
					w.Header().Set("Content-Type", c.ctype)
				}
				w.WriteHeader(c.status)
			}))
			cl := eventsource.NewClient(srv.URL, &eventsource.ClientOptions{Retry: time.Millisecond})
			_, err := collect(t, cl, 1)
			var se *eventsource.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, c.status, se.StatusCode)
			assert.Equal(t, int32(1), n.Load())
		})
	}
}

// Failed connection attempts are retried with a growing delay until ctx ends.
func TestClientRetriesFailedConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	var attempts atomic.Int32
	c := eventsource.NewClient("http://"+addr+"/", &eventsource.ClientOptions{
		Retry: time.Millisecond, MaxRetry: 8 * time.Millisecond,
		OnError: func(error) { attempts.Add(1) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = c.Run(ctx, func(eventsource.Message) {})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Greater(t, attempts.Load(), int32(3))
}

// The client goes through an HTTP proxy chosen by ClientOptions.Proxy: plain proxying for an
// http URL, CONNECT for an https one.
func TestClientProxy(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, proto, nil, func(es *eventsource.EventSource) {
				_ = es.Send("via "+es.Request().Proto, eventsource.Event{ID: "1"})
			})
			proxy, seen := forwardProxy(t)
			tlsConf := srv.srv.Client().Transport.(*http.Transport).TLSClientConfig
			c := eventsource.NewClient(srv.URL+"/p", &eventsource.ClientOptions{
				Proxy:           http.ProxyURL(proxy),
				TLSClientConfig: tlsConf,
			})
			got, err := collect(t, c, 1)
			require.NoError(t, err)
			assert.Equal(t, "via "+map[string]string{"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2.0"}[proto], got[0].Data)
			want := "GET " + srv.URL + "/p"
			if proto == "HTTP/2" {
				want = "CONNECT " + strings.TrimPrefix(srv.URL, "https://")
			}
			assert.Equal(t, []string{want}, seen())
		})
	}
}

// forwardProxy is a minimal HTTP proxy: CONNECT tunnels and absolute-URL GETs. It reports the
// requests it handled.
func forwardProxy(t *testing.T) (*url.URL, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var wg sync.WaitGroup
	var tunnels []net.Conn
	// After the server has closed (cleanups run last first): end the tunnels still open,
	// then wait for their copying goroutines.
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range tunnels {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	srv := serveHandler(t, "HTTP/1.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Method == http.MethodConnect {
			seen = append(seen, "CONNECT "+r.Host)
		} else {
			seen = append(seen, r.Method+" "+r.URL.String())
		}
		mu.Unlock()
		if r.Method == http.MethodConnect {
			up, err := net.Dial("tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusOK)
			wg.Add(2) // before Hijack, while httptest's Close still waits for this connection
			down, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				wg.Add(-2)
				_ = up.Close()
				return
			}
			mu.Lock()
			tunnels = append(tunnels, up, down)
			mu.Unlock()
			if n := brw.Reader.Buffered(); n > 0 {
				b, _ := brw.Reader.Peek(n)
				_, _ = up.Write(b)
			}
			go func() { defer wg.Done(); _, _ = io.Copy(up, down); _ = up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(down, up); _ = down.Close() }()
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
		req.Header = r.Header.Clone()
		resp, err := tr.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		rc := http.NewResponseController(w)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				_ = rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// The Go client against a Stream whose connections the server keeps cutting: every event
// arrives once, in order.
func TestClientResumesStream(t *testing.T) {
	t.Parallel()
	s := eventsource.NewStream(nil)
	var conns atomic.Int32
	srv := newTestServer(t, "HTTP/2", &eventsource.Options{Retry: time.Millisecond}, func(es *eventsource.EventSource) {
		conns.Add(1)
		_ = s.Subscribe(es)
		// Cut each connection after a moment, whatever it was doing.
		time.AfterFunc(5*time.Millisecond, func() { _ = es.Close() })
	})
	const total = 500
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			_, _ = s.Publish(fmt.Sprint("tick ", i), eventsource.Event{})
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)
	// "0" is no event's id: the first connection gets a gap event (the stream cannot know
	// what came before), then the whole history. No other gap may follow.
	c := eventsource.NewClient(srv.URL, &eventsource.ClientOptions{HTTPClient: srv.Client, LastEventID: "0"})
	got, err := collect(t, c, total+1)
	require.NoError(t, err)
	assert.Equal(t, eventsource.Message{Type: "gap", ID: "", Data: "0"}, got[0])
	for i, m := range got[1:] {
		require.Equal(t, strconv.Itoa(i+1), m.ID, "gap or duplicate at %d", i)
	}
	assert.Greater(t, conns.Load(), int32(2), "the server cut connections")
}

// SetRetry changes the retry time in mid-stream: a stream that starts with an hour asks for
// 30 ms before it ends, and the client comes back within well under the hour.
func TestSetRetryInMidStream(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			srv := serveHandler(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(conns.Add(1))
				es, err := eventsource.New(w, r, &eventsource.Options{Retry: time.Hour})
				if err != nil {
					return
				}
				_ = es.Send("tick "+strconv.Itoa(n), eventsource.Event{ID: strconv.Itoa(n)})
				if n == 1 {
					require.NoError(t, es.SetRetry(30*time.Millisecond))
					_ = es.Close()
					return
				}
				<-es.Done()
			}))
			c := eventsource.NewClient(srv.URL+"/s", &eventsource.ClientOptions{HTTPClient: srv.Client})
			start := time.Now()
			got, err := collect(t, c, 2)
			require.NoError(t, err)
			assert.Equal(t, "tick 2", got[1].Data)
			assert.Less(t, time.Since(start), 10*time.Second, "the client waited the new retry time, not the hour")
		})
	}
}
