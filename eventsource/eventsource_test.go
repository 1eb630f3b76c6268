package eventsource_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

func TestIsEventSource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		method string
		accept []string
		want   bool
	}{
		{"plain", "GET", []string{"text/event-stream"}, true},
		{"list", "GET", []string{"text/html, text/event-stream;q=0.9"}, true},
		{"case", "GET", []string{"Text/Event-Stream"}, true},
		{"second header", "GET", []string{"text/html", "text/event-stream"}, true},
		{"none", "GET", nil, false},
		{"other", "GET", []string{"text/html"}, false},
		{"post", "POST", []string{"text/event-stream"}, false},
		{"prefix only", "GET", []string{"text/event-streams"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/", nil)
			r.Header["Accept"] = c.accept
			assert.Equal(t, c.want, eventsource.IsEventSource(r))
		})
	}
}

func TestHeadersRetryAndEvents(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			got := make(chan *eventsource.EventSource, 1)
			srv := newTestServer(t, proto, &eventsource.Options{
				Retry:  10 * time.Second,
				Header: http.Header{"Access-Control-Allow-Origin": {"*"}},
			}, func(es *eventsource.EventSource) { got <- es })
			st := srv.open(t, "/news?x=1", nil)
			es := recv(t, got)

			assert.True(t, strings.HasPrefix(st.Resp.Proto, strings.Replace(proto, "HTTPS", "HTTP", 1)), "proto %s", st.Resp.Proto)
			assert.Equal(t, proto != "HTTP/2", es.Hijacked(), "HTTP/1.x connections are taken over")
			assert.Equal(t, proto != "HTTP/2", st.Resp.Close, "the response ends with the connection")
			assert.Equal(t, 200, st.Resp.StatusCode)
			assert.Equal(t, "text/event-stream", st.Resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache, no-transform", st.Resp.Header.Get("Cache-Control"))
			assert.Equal(t, "no", st.Resp.Header.Get("X-Accel-Buffering"))
			assert.Equal(t, "*", st.Resp.Header.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, "retry: 10000\n\n", st.readN(t, len("retry: 10000\n\n")))

			u := es.URL()
			assert.Equal(t, srv.URL+"/news?x=1", u.String())

			require.NoError(t, es.Send("Breaking News!", eventsource.Event{Type: "notification", ID: "99"}))
			want := "id: 99\nevent: notification\ndata: Breaking News!\n\n"
			assert.Equal(t, want, st.readN(t, len(want)))

			require.NoError(t, es.Send("a\nb\r\nc\rd\n\n e", eventsource.Event{}))
			want = "data: a\ndata: b\ndata: c\ndata: d\ndata\ndata:  e\n\n"
			assert.Equal(t, want, st.readN(t, len(want)))

			require.NoError(t, es.Send("", eventsource.Event{}))
			assert.Equal(t, "data\n\n", st.readN(t, len("data\n\n")))

			require.NoError(t, es.Ping())
			assert.Equal(t, ": ping\n\n", st.readN(t, len(": ping\n\n")))

			// Everything arrives without the server closing anything: flushed per event.
			require.NoError(t, es.Close())
			assert.NoError(t, es.Err())
			assert.ErrorIs(t, es.Send("late", eventsource.Event{}), eventsource.ErrClosed)
		})
	}
}

func TestBadFieldsAreRejected(t *testing.T) {
	t.Parallel()
	st, es := openStream(t, "HTTP/1.1", nil, "/")
	stream := eventsource.NewStream(nil)
	for _, bad := range []eventsource.Event{
		{ID: "1\n2"}, {ID: "1\r"}, {ID: "a\x00b"}, {Type: "x\ny"}, {Type: "x\r"}, {Type: "\x00"},
	} {
		err := es.Send("data", bad)
		var fe *eventsource.FieldError
		require.ErrorAs(t, err, &fe, "%+v", bad)
		assert.Contains(t, err.Error(), "CR, LF or NUL")
		_, err = stream.Publish("data", bad)
		assert.ErrorAs(t, err, &fe, "%+v", bad)
	}
	_, err := stream.Publish("data", eventsource.Event{Type: "gap"})
	assert.Error(t, err, "the gap type is reserved")
	assert.Equal(t, "", stream.LastEventID(), "nothing was published")
	// The stream is intact: the next event is the first thing after the handshake.
	require.NoError(t, es.Send("ok", eventsource.Event{ID: "1"}))
	assert.Equal(t, eventsource.Message{Type: "message", ID: "1", Data: "ok"}, st.next(t))
}

func TestLastEventID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		path   string
		header string
		want   string
	}{
		{"none", "/", "", ""},
		{"header", "/", "42", "42"},
		{"query", "/?lastEventId=17", "", "17"},
		{"header wins", "/?lastEventId=17", "42", "42"},
		{"unicode", "/?lastEventId=%C3%A9t%C3%A9", "", "été"},
	}
	got := make(chan *eventsource.EventSource, 1)
	srv := newTestServer(t, "HTTP/1.1", nil, func(es *eventsource.EventSource) { got <- es })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.header != "" {
				h.Set("Last-Event-ID", c.header)
			}
			st := srv.open(t, c.path, h)
			es := recv(t, got)
			assert.Equal(t, c.want, es.LastEventID())
			st.Close()
			waitDone(t, es, 10*time.Second)
		})
	}
}

func TestAutomaticPing(t *testing.T) {
	t.Parallel()
	st, _ := openStream(t, "HTTP/1.1", &eventsource.Options{PingInterval: 20 * time.Millisecond}, "/")
	assert.Equal(t, ": ping\n\n: ping\n\n", st.readN(t, 2*len(": ping\n\n")))
}

func TestDoneWhenClientGoes(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			st, es := openStream(t, proto, &eventsource.Options{PingInterval: -1}, "/")
			st.Close()
			waitDone(t, es, 10*time.Second)
			assert.ErrorIs(t, es.Err(), eventsource.ErrClientGone)
		})
	}
}

func TestServerCloseEndsStream(t *testing.T) {
	t.Parallel()
	for _, proto := range serverProtos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			st, es := openStream(t, proto, nil, "/")
			require.NoError(t, es.Send("last", eventsource.Event{}))
			require.NoError(t, es.Close())
			assert.Equal(t, "last", st.next(t).Data)
			_, err := st.Dec.Next()
			assert.Error(t, err, "the stream ends")
		})
	}
}

// A client that connects and never reads: Send must not block, the queue stays bounded, and
// the stream ends with ErrSlowClient or the write timeout.
func TestStalledClientDirectSends(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"HTTP/1.1", "HTTPS/1.1"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			got := make(chan *eventsource.EventSource, 1)
			srv := newTestServer(t, proto, &eventsource.Options{QueueLimit: 64 << 10, WriteTimeout: 30 * time.Second},
				func(es *eventsource.EventSource) { got <- es })
			conn := stalledClient(t, srv.URL)
			defer conn.Close()
			es := recv(t, got)
			data := strings.Repeat("x", 16<<10)
			var err error
			for i := 0; i < 100_000 && err == nil; i++ {
				err = es.Send(data, eventsource.Event{})
			}
			require.Error(t, err, "Send must fail once the queue is full")
			select {
			case <-es.Done():
			default:
				// The writer is still stuck on the stalled client (WriteTimeout is far off), and
				// yet Send has returned: it never waits for the client.
			}
			waitDone(t, es, 10*time.Second)
			assert.True(t, errors.Is(es.Err(), eventsource.ErrSlowClient), "err: %v", es.Err())
		})
	}
}

// stalledClient opens an event stream over a raw connection (TLS for an https URL) and never
// reads from it.
func stalledClient(t *testing.T, base string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	// A small receive window (set before connecting), so that the server's writes stall soon.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(setSmallReceiveBuffer)
	}}
	conn, err := d.Dial("tcp", u.Host)
	require.NoError(t, err)
	if u.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // the test server's own certificate
		require.NoError(t, tc.Handshake())
		conn = tc
	}
	_, err = conn.Write([]byte("GET /stalled HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n\r\n"))
	require.NoError(t, err)
	return conn
}
