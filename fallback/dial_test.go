package fallback_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/internal/testpeers"
)

// TestDialFails dials what is not a session server: Dial fails at once with an error that says
// why, and leaves nothing running.
func TestDialFails(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent/sse": // a stream that never says open, as behind a buffering proxy
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		case "/silent/poll":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	defer close(hang)

	for _, tc := range []struct {
		name    string
		base    string
		poll    bool
		timeout bool
	}{
		{"not found, sse", ts.URL + "/nothing", false, false},
		{"not found, poll", ts.URL + "/nothing", true, false},
		{"no open event, sse", ts.URL + "/silent", false, true},
		{"no open event, poll", ts.URL + "/silent", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := fallback.Dial(context.Background(), tc.base, &fallback.DialOptions{Poll: tc.poll, OpenTimeout: 300 * time.Millisecond, Proxy: noProxy})
			require.Error(t, err)
			require.Nil(t, c)
			if tc.timeout {
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
			} else {
				require.Less(t, time.Since(start), 300*time.Millisecond, "a 404 waited for the open timeout")
				require.ErrorIs(t, err, fallback.ErrSessionEnded)
				// No session was ever opened: the error says what the first request met.
				endpoint, want := "sse", "eventsource: the server answered 404 Not Found, not an event stream"
				if tc.poll {
					endpoint, want = "poll", "the server answered 404: poll"
				}
				require.EqualError(t, err, "fallback: connecting to "+tc.base+"/"+endpoint+": "+want)
				var se *eventsource.StatusError
				var fe *fallback.StatusError
				require.True(t, errors.As(err, &se) || errors.As(err, &fe), "%T %v", err, err)
			}
		})
	}

	for _, base := range []string{"ws://example.com/nes", "example.com/nes", "://"} {
		_, err := fallback.Dial(context.Background(), base, nil)
		require.ErrorContains(t, err, "http:// or https://", base)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fallback.Dial(ctx, ts.URL+"/silent", &fallback.DialOptions{Proxy: noProxy})
	require.ErrorIs(t, err, context.Canceled)
}

// TestDialRefused: a first connection to a port where nothing listens fails at once with an
// error that says so, naming the URL, not "the session ended" of a session that never was;
// errors.Is finds the refusal (client/ reports it as a transport failure, which it retries)
// and ErrSessionEnded, as before.
func TestDialRefused(t *testing.T) {
	t.Parallel()
	addr := testpeers.ClosedAddr(t)
	for _, poll := range []bool{false, true} {
		endpoint := "sse"
		if poll {
			endpoint = "poll"
		}
		t.Run(endpoint, func(t *testing.T) {
			t.Parallel()
			c, err := fallback.Dial(context.Background(), "http://"+addr+"/nes", &fallback.DialOptions{Poll: poll, OpenTimeout: 5 * time.Second, Proxy: noProxy})
			require.Nil(t, c)
			require.EqualError(t, err, "fallback: connecting to http://"+addr+"/nes/"+endpoint+": dial tcp "+addr+": connect: connection refused")
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
			require.ErrorIs(t, err, fallback.ErrSessionEnded)
			require.NotErrorIs(t, err, context.DeadlineExceeded, "refused at once, not timed out")
			var ue *url.Error
			require.ErrorAs(t, err, &ue)
		})
	}
}

// TestConnCookies carries the binding cookie from DialOptions.Jar and DialOptions.Header on
// every request of the Go client: its session is bound to it, and works.
func TestConnCookies(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "HTTP/1.1", &fallback.Options{BindCookie: "sid"}, echo)
			poll := transport == fallback.TransportPoll
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			u, _ := url.Parse(h.ts.URL)
			jar.SetCookies(u, []*http.Cookie{{Name: "sid", Value: "A", Path: "/"}})
			c := h.dial(poll, &fallback.DialOptions{Jar: jar})
			defer c.Close()
			s := h.session()
			cookie, err := s.Request().Cookie("sid")
			require.NoError(t, err)
			require.Equal(t, "A", cookie.Value)
			require.NoError(t, c.Write(context.Background(), []byte("with the jar")))
			require.Equal(t, []string{"with the jar"}, readN(t, c, 1))

			c2 := h.dial(poll, &fallback.DialOptions{Header: http.Header{"Cookie": {"sid=B"}}})
			defer c2.Close()
			require.NoError(t, c2.Write(context.Background(), []byte("with the header")))
			require.Equal(t, []string{"with the header"}, readN(t, c2, 1))
		})
	}
}

// TestReadContext: a Read whose context ends returns the context's error, and the Conn goes
// on; Receive likewise.
func TestReadContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", nil, func(s *fallback.Session) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := s.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
			return errors.New("Receive did not end with its context")
		}
		return echo(s)
	})
	c := h.dial(false, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Read(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	time.Sleep(30 * time.Millisecond) // past the Receive's timeout
	require.NoError(t, c.Write(context.Background(), []byte("after")))
	require.Equal(t, []string{"after"}, readN(t, c, 1))
}

// TestSessionRequest: the session keeps the request that opened it, headers and cookies,
// without its body; a stream opened with POST works as one opened with GET.
func TestSessionRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", nil, idle)
	hc := h.client()
	req, err := http.NewRequest(http.MethodPost, h.base+"/sse?x=1", nil)
	require.NoError(t, err)
	req.Header.Set("X-Test", "yes")
	req.AddCookie(&http.Cookie{Name: "c", Value: "v"})
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Cache-Control"), "no-transform")
	s := h.session()
	r := s.Request()
	require.Equal(t, "yes", r.Header.Get("X-Test"))
	require.Equal(t, "1", r.URL.Query().Get("x"))
	c, err := r.Cookie("c")
	require.NoError(t, err)
	require.Equal(t, "v", c.Value)
	require.Equal(t, http.NoBody, r.Body)
	require.NotEmpty(t, s.RemoteAddr())
	require.False(t, s.Detached())
}

// TestStreamKeepAlive reads a stream's bytes: its retry time is drawn between RetryMin and
// RetryMax, and an idle stream gets comment lines every KeepAlive.
func TestStreamKeepAlive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{KeepAlive: 30 * time.Millisecond,
		RetryMin: 1500 * time.Millisecond, RetryMax: 2500 * time.Millisecond}, idle)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/sse", nil)
	require.NoError(t, err)
	resp, err := h.client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	sc := bufio.NewScanner(resp.Body)
	retry, comments := -1, 0
	for comments < 3 && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "retry:"):
			retry, err = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "retry:")))
			require.NoError(t, err)
		case strings.HasPrefix(line, ":"):
			comments++
		}
	}
	require.Equal(t, 3, comments, "no keep-alive comments: %v", sc.Err())
	require.GreaterOrEqual(t, retry, 1500)
	require.LessOrEqual(t, retry, 2500)
}
