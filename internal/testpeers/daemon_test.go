package testpeers_test

// The upstream server and the client-side helpers of squid_test.go and nginx_test.go: what
// the EventSource + POST fallback will rely on when it goes through those proxies.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/websocket"
)

// prompt is how soon an event must arrive through a proxy that streams: far longer than a
// loopback hop, far shorter than anything a buffering proxy would hold an event for.
const prompt = time.Second

// held is how long a buffering proxy must hold a small event to count as buffering it.
const held = 2500 * time.Millisecond

// upstream is a Go server on 127.0.0.1 standing in for herald behind a proxy:
//
//   - GET /events streams text/event-stream through eventsource.New: the event "first" at
//     once, then every string sent on events, until events gets "" (the stream ends);
//   - GET /ws answers a WebSocket handshake (websocket.Upgrade: 101, or 400 to a request
//     without Upgrade) and then closes the connection;
//   - POST /echo answers {"method": ..., "body": <the JSON body>};
//   - GET /poll?delay=D answers {"events":["late"]} after D, as a long-poll does.
//
// It keeps the headers of the last request to each path.
type upstream struct {
	*httptest.Server
	events chan string

	mu   sync.Mutex
	seen map[string]http.Header
	errs []error
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{events: make(chan string), seen: map[string]http.Header{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		es, err := eventsource.New(w, r, nil)
		if err != nil {
			u.fail(err)
			return
		}
		defer es.Close()
		if err := es.Send("first", eventsource.Event{}); err != nil {
			u.fail(err)
			return
		}
		for {
			select {
			case data := <-u.events:
				if data == "" {
					return
				}
				if err := es.Send(data, eventsource.Event{}); err != nil {
					u.fail(err)
					return
				}
			case <-es.Done():
				return
			}
		}
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		ws, err := websocket.Upgrade(w, r, nil)
		if err != nil {
			return // answered 400 or 426
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		var body any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "body": body})
	})
	mux.HandleFunc("GET /poll", func(w http.ResponseWriter, r *http.Request) {
		u.record(r)
		delay, err := time.ParseDuration(r.URL.Query().Get("delay"))
		if err != nil || delay > 10*time.Second {
			http.Error(w, "delay: a duration up to 10s", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"events":["late"]}`)
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(func() { // after u.Close: handlers may not touch t once the test is over
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, err := range u.errs {
			t.Errorf("upstream: %v", err)
		}
	})
	t.Cleanup(u.Close)
	return u
}

// fail records an error of a handler, reported when the test ends.
func (u *upstream) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.errs = append(u.errs, err)
}

func (u *upstream) record(r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen[r.URL.Path] = r.Header.Clone()
}

// header returns the headers of the last request to path, or nil when none arrived.
func (u *upstream) header(path string) http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen[path]
}

// send hands data to the open /events stream (the end of the stream for ""), failing the test
// when no stream takes it within 5 s.
func (u *upstream) send(t *testing.T, data string) {
	t.Helper()
	select {
	case u.events <- data:
	case <-time.After(5 * time.Second):
		t.Fatalf("no open event stream took %q", data)
	}
}

// client returns an HTTP client through proxy (none when proxy is ""), bounded to 30 s a
// request.
func client(t *testing.T, proxy string) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	if proxy != "" {
		u, err := url.Parse(proxy)
		require.NoError(t, err)
		tr.Proxy = http.ProxyURL(u)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// stream is a text/event-stream response, requested and read in the background.
type stream struct {
	opened  chan struct{}  // closed when the response head has arrived or the request failed
	resp    *http.Response // set before opened is closed
	openErr error          // set before opened is closed

	data chan string // each event's data, in order; closed at the end of the response
	err  error       // why the reading stopped, set before data is closed
}

// openStream GETs url as an EventSource would, in the background, and reads the events as
// they come. The request is cancelled when the test ends.
func openStream(t *testing.T, c *http.Client, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	c2 := *c
	c2.Timeout = 0 // the stream lasts; ctx ends it
	s := &stream{opened: make(chan struct{}), data: make(chan string, 16)}
	go func() {
		defer close(s.data)
		s.resp, s.openErr = c2.Do(req)
		close(s.opened)
		if s.openErr != nil {
			s.err = s.openErr
			return
		}
		defer s.resp.Body.Close()
		sc := bufio.NewScanner(s.resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.data <- d
			}
		}
		s.err = sc.Err()
	}()
	return s
}

// requireOpen fails the test unless the response head arrives within d, as 200 with
// Content-Type text/event-stream.
func (s *stream) requireOpen(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.opened:
	case <-time.After(d):
		t.Fatalf("the stream's response head did not arrive within %v", d)
	}
	require.NoError(t, s.openErr)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	require.Equal(t, "text/event-stream", s.resp.Header.Get("Content-Type"))
}

// isOpen tells whether the response head has arrived (or the request failed).
func (s *stream) isOpen() bool {
	select {
	case <-s.opened:
		return true
	default:
		return false
	}
}

// next returns the next event's data and true, or "" and false when none came within d or
// the response ended first (then ended is true, and s.err may be read).
func (s *stream) next(d time.Duration) (data string, ok, ended bool) {
	select {
	case data, ok := <-s.data:
		return data, ok, !ok
	case <-time.After(d):
		return "", false, false
	}
}

// requireEvent fails the test unless the next event is want and arrives within d.
func (s *stream) requireEvent(t *testing.T, want string, d time.Duration) {
	t.Helper()
	start := time.Now()
	data, ok, ended := s.next(d)
	switch {
	case ended:
		t.Fatalf("the stream ended (%v) before the event %q", s.err, want)
	case !ok:
		t.Fatalf("the event %q did not arrive within %v", want, d)
	}
	require.Equal(t, want, data)
	t.Logf("event %q after %v", want, time.Since(start).Round(time.Millisecond))
}

// postJSON POSTs body as JSON to url and returns the decoded answer.
func postJSON(t *testing.T, c *http.Client, url string, body any) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := c.Post(url, "application/json", strings.NewReader(string(b)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	return got
}

// requireLongPoll GETs url, whose answer comes after delay, and checks that it arrives whole,
// soon after.
func requireLongPoll(t *testing.T, c *http.Client, url string, delay time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	took := time.Since(start)
	assert.JSONEq(t, `{"events":["late"]}`, string(body))
	assert.GreaterOrEqual(t, took, delay)
	assert.Less(t, took, delay+5*time.Second)
}
