package eventsource_test

// Real-peer tests: Node's eventsource package, Chromium's EventSource (playwright-core) and
// r3labs/sse's Go client read streams served by a Stream. The peer scripts in
// internal/testpeers only report what their client observed, one JSON object per line; every
// check is here. Without the peers installed (`make peers`) they skip, or fail under
// HERALD_REQUIRE_PEERS=1.

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sse "github.com/r3labs/sse/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/internal/testpeers"
)

const peerWait = 20 * time.Second

// peerServer serves a Stream at /stream (history of 16 events, retry 300 ms, CORS open) and a
// plain page elsewhere, for a browser to load the origin from.
type peerServer struct {
	*testServer
	stream *eventsource.Stream
	conns  chan *eventsource.EventSource

	mu   sync.Mutex
	open map[*eventsource.EventSource]bool
}

func newPeerServer(t *testing.T, proto string) *peerServer {
	t.Helper()
	ps := &peerServer{
		stream: eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 16}),
		conns:  make(chan *eventsource.EventSource, 16),
		open:   map[*eventsource.EventSource]bool{},
	}
	// Handler returns from ServeHTTP as soon as Accept has on HTTP/1.1: the peers read
	// streams that live on after their handler returned.
	ps.testServer = serveHandler(t, proto, &eventsource.Handler{
		Options: &eventsource.Options{
			Retry:  300 * time.Millisecond,
			Header: http.Header{"Access-Control-Allow-Origin": {"*"}},
		},
		Accept: func(es *eventsource.EventSource) {
			if es.Request().URL.Path != "/stream" {
				_ = es.Close()
				return
			}
			ps.mu.Lock()
			ps.open[es] = true
			ps.mu.Unlock()
			if err := ps.stream.Subscribe(es); err != nil {
				t.Errorf("Subscribe: %v", err)
			}
			ps.conns <- es
			go func() {
				<-es.Done()
				ps.mu.Lock()
				delete(ps.open, es)
				ps.mu.Unlock()
			}()
		},
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<!doctype html><title>herald</title>"))
		}),
	})
	return ps
}

// closeAll ends every open stream: the clients reconnect after 300 ms.
func (ps *peerServer) closeAll() {
	ps.mu.Lock()
	var all []*eventsource.EventSource
	for es := range ps.open {
		all = append(all, es)
	}
	ps.mu.Unlock()
	for _, es := range all {
		_ = es.Close()
	}
}

func (ps *peerServer) publish(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		_, err := ps.stream.Publish(peerData(i), eventsource.Event{})
		require.NoError(t, err)
	}
}

// peerData is event i's data: multi-line and non-ASCII every few events.
func peerData(i int) string {
	switch i % 3 {
	case 1:
		return "tick " + strconv.Itoa(i) + "\nsecond line"
	case 2:
		return "été ✓ 🎉 " + strconv.Itoa(i)
	}
	return "tick " + strconv.Itoa(i)
}

// expectEvents reads the peer's next events, which must be from..to in order.
func expectEvents(t *testing.T, p *testpeers.Proc, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		l := p.WaitES(t, peerWait, "message")
		require.Equal(t, testpeers.ESLine{Kind: "message", Type: "message", ID: strconv.Itoa(i), Data: peerData(i)}, l,
			"event %d: a gap, a duplicate or a changed event", i)
	}
}

// checkStreamHeaders checks the response headers a peer saw.
func checkStreamHeaders(t *testing.T, l testpeers.ESLine) {
	t.Helper()
	assert.Equal(t, 200, l.Status)
	assert.Equal(t, "text/event-stream", l.Headers["content-type"])
	assert.Equal(t, "no-cache, no-transform", l.Headers["cache-control"])
	assert.Equal(t, "no", l.Headers["x-accel-buffering"])
	assert.Equal(t, "*", l.Headers["access-control-allow-origin"])
}

// resumeScenario is what every browser-like peer goes through on one EventSource:
// live events, a reconnect that resumes with Last-Event-ID without gap or duplicate (events
// published while it was away are replayed), and a reconnect after the history has moved past
// it, which it is told of with a gap event before the history that is left.
// The caller has checked the first response, and seen the open event when opened.
func resumeScenario(t *testing.T, ps *peerServer, p *testpeers.Proc, opened bool) {
	if !opened {
		p.WaitES(t, peerWait, "open")
	}
	assert.Equal(t, "", recv(t, ps.conns).LastEventID())
	ps.publish(t, 1, 5)
	expectEvents(t, p, 1, 5)

	// away ends the stream, publishes from..to while the client is away, and checks that it
	// comes back (after retry, 300 ms) with Last-Event-ID lastID.
	away := func(from, to int, lastID string) {
		t.Helper()
		ps.closeAll()
		ps.publish(t, from, to)
		p.WaitES(t, peerWait, "open")
		assert.Equal(t, lastID, recv(t, ps.conns).LastEventID(), "the client resumes with Last-Event-ID")
	}

	// The server ends the stream; events go on; the client comes back.
	away(6, 8, "5")
	ps.publish(t, 9, 9)
	expectEvents(t, p, 6, 9)

	// Away for longer than the history (16 events) reaches: a gap event, then what is left.
	away(10, 29, "9")
	gap := p.WaitES(t, peerWait, "message")
	assert.Equal(t, testpeers.ESLine{Kind: "message", Type: "gap", ID: "13", Data: "9"}, gap)
	expectEvents(t, p, 14, 29)
	ps.publish(t, 30, 30)
	expectEvents(t, p, 30, 30)
}

func TestPeerNodeEventSource(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	ps := newPeerServer(t, "HTTP/1.1")
	p := testpeers.Start(t, "eventsource-client.js", ps.URL+"/stream", "gap")
	checkStreamHeaders(t, p.WaitES(t, peerWait, "response"))
	resumeScenario(t, ps, p, false)

	// The query-parameter fallback: a first connection that names its last event in the URL.
	q := testpeers.Start(t, "eventsource-client.js", ps.URL+"/stream?lastEventId=27", "gap")
	q.WaitES(t, peerWait, "open")
	es := recv(t, ps.conns)
	assert.Equal(t, "27", es.LastEventID())
	expectEvents(t, q, 28, 30)
}

func TestPeerBrowserEventSource(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	chromium := testpeers.Chromium(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ps := newPeerServer(t, proto)
			p := testpeers.Start(t, "eventsource-browser.js", chromium, ps.URL+"/", ps.URL+"/stream", "gap")
			t.Logf("Chromium %s", p.WaitES(t, 30*time.Second, "browser").Version)
			// The response (from CDP) and the open event may come in either order.
			var resp testpeers.ESLine
			for opened := false; resp.Kind == "" || !opened; {
				switch l := p.NextES(t, peerWait); l.Kind {
				case "response":
					resp = l
				case "open":
					opened = true
				}
			}
			want := map[string]string{"HTTP/1.1": "http/1.1", "HTTP/2": "h2"}[proto]
			assert.Equal(t, want, resp.Protocol)
			checkStreamHeaders(t, resp)
			resumeScenario(t, ps, p, true)

			q := testpeers.Start(t, "eventsource-browser.js", chromium, ps.URL+"/", ps.URL+"/stream?lastEventId=27", "gap")
			q.WaitES(t, peerWait, "open")
			es := recv(t, ps.conns)
			assert.Equal(t, "27", es.LastEventID(), "the query-parameter fallback")
			expectEvents(t, q, 28, 30)
		})
	}
}

// stopBackOff makes r3labs/sse try once: its default exponential backoff has no context and
// would keep a cancelled subscription retrying for 15 minutes.
type stopBackOff struct{}

func (stopBackOff) NextBackOff() time.Duration { return -1 }
func (stopBackOff) Reset()                     {}

// r3labs/sse's client, an independent Go reader: headers, the retry field, ids, and resuming
// with Last-Event-ID. It does not reconnect after a clean end of the stream (it returns nil),
// so the test subscribes again on the same client, which keeps the last event id.
func TestPeerR3labsClient(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			ps := newPeerServer(t, proto)
			c := sse.NewClient(ps.URL + "/stream")
			c.Connection = ps.Client
			c.ReconnectStrategy = stopBackOff{}
			var mu sync.Mutex
			var resp *http.Response
			c.ResponseValidator = func(_ *sse.Client, r *http.Response) error {
				mu.Lock()
				resp = r
				mu.Unlock()
				return nil
			}
			events := make(chan *sse.Event, 64)
			subscribe := func() (stop func() error) {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					done <- c.SubscribeRawWithContext(ctx, func(m *sse.Event) {
						e := *m
						e.ID, e.Data, e.Event, e.Retry = clone(m.ID), clone(m.Data), clone(m.Event), clone(m.Retry)
						events <- &e
					})
				}()
				return func() error {
					cancel()
					select {
					case err := <-done:
						return err
					case <-time.After(peerWait):
						t.Fatal("r3labs Subscribe did not return")
						return nil
					}
				}
			}
			stop := subscribe()
			recv(t, ps.conns)
			retry := recv(t, events)
			assert.Equal(t, "300", string(retry.Retry), "the retry field")
			mu.Lock()
			checkStreamHeaders(t, testpeers.ESLine{Status: resp.StatusCode, Headers: lower(resp.Header)})
			assert.Equal(t, map[string]int{"HTTP/1.1": 1, "HTTP/2": 2}[proto], resp.ProtoMajor)
			mu.Unlock()
			ps.publish(t, 1, 5)
			expectR3(t, events, 1, 5)

			ps.closeAll()
			ps.publish(t, 6, 8)
			require.NoError(t, stop(), "r3labs ends its subscription at a clean end of stream")
			stop = subscribe()
			es := recv(t, ps.conns)
			assert.Equal(t, "5", es.LastEventID())
			recv(t, events) // the retry field again
			ps.publish(t, 9, 9)
			expectR3(t, events, 6, 9)
			_ = stop()
		})
	}
}

func expectR3(t *testing.T, events <-chan *sse.Event, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		e := recv(t, events)
		require.Equal(t, strconv.Itoa(i), string(e.ID))
		require.Equal(t, peerData(i), string(e.Data))
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func lower(h http.Header) map[string]string {
	m := map[string]string{}
	for k := range h {
		m[strings.ToLower(k)] = h.Get(k)
	}
	return m
}

// The Go client through a real HTTP proxy (the `proxy` npm package, with Basic credentials in
// the proxy URL): CONNECT to an HTTP/2 server over TLS, plain proxying to an http one. Events
// arrive as they are sent, and the client resumes through the proxy after the server ends a
// stream.
func TestPeerClientThroughProxy(t *testing.T) {
	t.Parallel()
	proxyProc, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "user:secret")
	proxyURL := &url.URL{Scheme: "http", Host: proxyAddr, User: url.UserPassword("user", "secret")}
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			ps := newPeerServer(t, proto)
			var tlsConf *tls.Config
			if tr, ok := ps.Client.Transport.(*http.Transport); ok {
				tlsConf = tr.TLSClientConfig
			}
			events := make(chan eventsource.Message, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			c := eventsource.NewClient(ps.URL+"/stream", &eventsource.ClientOptions{
				Proxy:           http.ProxyURL(proxyURL),
				TLSClientConfig: tlsConf,
			})
			go func() { done <- c.Run(ctx, func(m eventsource.Message) { events <- m }) }()
			defer func() {
				cancel()
				assert.ErrorIs(t, recv(t, done), context.Canceled)
			}()
			es := recv(t, ps.conns)
			assert.Equal(t, proto, map[int]string{1: "HTTP/1.1", 2: "HTTP/2"}[es.Request().ProtoMajor])
			if proto == "HTTP/1.1" {
				assert.Contains(t, es.Request().Header.Get("Via"), "proxy/", "forwarded by the proxy")
			}
			if proto == "HTTP/2" {
				var l struct {
					Connect string            `json:"connect"`
					Headers map[string]string `json:"headers"`
				}
				proxyProc.JSONLine(t, peerWait, &l)
				assert.Equal(t, strings.TrimPrefix(ps.URL, "https://"), l.Connect)
			}
			ps.publish(t, 1, 3)
			for i := 1; i <= 3; i++ {
				m := recv(t, events)
				require.Equal(t, strconv.Itoa(i), m.ID)
				require.Equal(t, peerData(i), m.Data)
			}
			ps.closeAll()
			ps.publish(t, 4, 5)
			es = recv(t, ps.conns)
			assert.Equal(t, "3", es.LastEventID(), "resumed through the proxy")
			for i := 4; i <= 5; i++ {
				require.Equal(t, strconv.Itoa(i), recv(t, events).ID)
			}
		})
	}
}
