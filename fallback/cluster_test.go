package fallback_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/broker"
	redisbroker "github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/internal/testpeers"
)

// testCluster is a few fallback servers on one memory hub, each on a node of its own, behind
// a reverse proxy that sends every request to the next live node in turn (no stickiness).
type testCluster struct {
	t     *testing.T
	nodes []*testNode
	proxy *httptest.Server
	base  string // the proxy's endpoints: proxy URL + "/nes"

	mu   sync.Mutex
	next int
	hits map[string]map[string]int // node name -> endpoint -> requests
}

type testNode struct {
	name string
	node *broker.Node
	h    *harness
	up   bool
}

// newTestCluster starts n nodes, each serving its sessions with serve and opts (a shared key
// and the node are set here).
func newTestCluster(t *testing.T, n int, opts *fallback.Options, serve serveFunc) *testCluster {
	t.Helper()
	hub := broker.NewMemoryHub()
	return newTestClusterOn(t, n, opts, serve, hub.Broker, "HTTP/1.1")
}

// newTestClusterOn is newTestCluster with each node's broker link made by link, and the nodes
// served over proto ("HTTP/1.1", or "HTTP/2" with TLS between the proxy and the nodes).
func newTestClusterOn(t *testing.T, n int, opts *fallback.Options, serve serveFunc, link func() broker.Broker, proto string) *testCluster {
	t.Helper()
	transports := byHost{}
	key := []byte("a key that every node of the test cluster shares")
	c := &testCluster{t: t, hits: map[string]map[string]int{}}
	for i := range n {
		name := string(rune('a' + i))
		node := broker.NewNode(link(), &broker.NodeOptions{Name: name,
			HeartbeatInterval: 100 * time.Millisecond, NodeExpiry: 3 * time.Second})
		t.Cleanup(func() { _ = node.Close() }) // after the harness's cleanup: it uses the node
		var o fallback.Options
		if opts != nil {
			o = *opts
		}
		o.Key, o.Broker = key, node
		h := newHarness(t, proto, &o, serve)
		transports[h.ts.Listener.Addr().String()] = h.ts.Client().Transport
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		require.NoError(t, node.Start(ctx))
		cancel()
		c.nodes = append(c.nodes, &testNode{name: name, node: node, h: h, up: true})
		c.hits[name] = map[string]int{}
	}
	require.Eventually(t, func() bool {
		for _, tn := range c.nodes {
			if len(tn.node.Nodes()) != n {
				return false
			}
		}
		return true
	}, testTimeout, 10*time.Millisecond, "the nodes did not hear each other")

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			tn := c.pick(pr.In)
			u, _ := url.Parse(tn.h.ts.URL)
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		Transport:     transports,
	}
	c.proxy = httptest.NewServer(rp)
	c.proxy.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(c.proxy.Close)
	c.base = c.proxy.URL + "/nes"
	return c
}

// byHost sends each request with the transport of its host: each node's test server has
// its own certificate.
type byHost map[string]http.RoundTripper

func (b byHost) RoundTrip(r *http.Request) (*http.Response, error) { return b[r.URL.Host].RoundTrip(r) }

// pick returns the next live node, round robin, and counts the request.
func (c *testCluster) pick(r *http.Request) *testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		tn := c.nodes[c.next%len(c.nodes)]
		c.next++
		if tn.up {
			c.hits[tn.name][r.URL.Path[len("/nes/"):]]++
			return tn
		}
	}
}

// hitsOn returns how many requests for endpoint reached each node.
func (c *testCluster) hitsOn(endpoint string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for name, m := range c.hits {
		if m[endpoint] > 0 {
			out[name] = m[endpoint]
		}
	}
	return out
}

// kill takes a node out of the proxy's rotation and stops it as a crash would: its node
// first (the others hear it has left), so that its server can tell no client anything, then
// its server and its streams.
func (c *testCluster) kill(tn *testNode) {
	c.mu.Lock()
	tn.up = false
	c.mu.Unlock()
	require.NoError(c.t, tn.node.Close())
	tn.h.ts.CloseClientConnections()
	tn.h.ts.Close()
	tn.h.srv.Close()
}

// owner returns the node whose harness accepted a session, waiting for it.
func (c *testCluster) owner() (*testNode, *fallback.Session) {
	c.t.Helper()
	deadline := time.After(testTimeout)
	for {
		for _, tn := range c.nodes {
			select {
			case s := <-tn.h.accepted:
				return tn, s
			default:
			}
		}
		select {
		case <-deadline:
			c.t.Fatal("no node accepted a session")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// dial opens a Conn through the proxy.
func (c *testCluster) dial(poll bool) *fallback.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := fallback.Dial(ctx, c.base, &fallback.DialOptions{Poll: poll, Proxy: noProxy})
	require.NoError(c.t, err)
	return conn
}

// TestClusterEcho runs the echo test's messages through three nodes that take turns at every
// request: the POSTs land on every node and are forwarded to the session's, and the stream,
// which ends every 100 ms (MaxStreamAge), is resumed on other nodes and relayed from the
// session's; long-polls too; streams over HTTP/2 between the proxy and the nodes (where a
// stream is not taken over from net/http) too. Every message comes back once and in order, and the session is
// the one opened first (no reset).
func TestClusterEcho(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ transport, proto string }{{fallback.TransportSSE, "HTTP/1.1"},
		{fallback.TransportPoll, "HTTP/1.1"}, {fallback.TransportSSE, "HTTP/2"}} {
		transport := tc.transport
		t.Run(transport+"/"+tc.proto, func(t *testing.T) {
			t.Parallel()
			hub := broker.NewMemoryHub()
			c := newTestClusterOn(t, 3, &fallback.Options{MaxStreamAge: 100 * time.Millisecond,
				KeepAlive: 200 * time.Millisecond}, echo, hub.Broker, tc.proto)
			conn := c.dial(transport == fallback.TransportPoll)
			defer conn.Close()
			owner, _ := c.owner()

			var msgs []string
			for i := range 100 {
				msgs = append(msgs, fmt.Sprintf(`{"type":"ping","id":%d}`, i))
			}
			msgs = append(msgs, echoMessages()[300:]...) // the long ones and beyond ASCII
			for i, m := range msgs {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				require.NoError(t, conn.Write(ctx, []byte(m)))
				got, err := conn.Read(ctx)
				cancel()
				require.NoError(t, err, "message %d", i)
				require.Equal(t, m, string(got), "message %d", i)
				if i%20 == 0 {
					time.Sleep(120 * time.Millisecond) // let a stream rotate, most times
				}
			}
			for _, tn := range c.nodes {
				select {
				case s := <-tn.h.accepted:
					t.Fatalf("node %s accepted a second session %p: the first was reset", tn.name, s)
				default:
				}
			}
			posts := c.hitsOn(fallback.EndpointSend)
			require.Len(t, posts, 3, "POSTs by node: %v", posts)
			if tc.proto == "HTTP/2" {
				h2 := 0
				for _, tn := range c.nodes {
					tn.h.mu.Lock()
					h2 += tn.h.protos[2]
					tn.h.mu.Unlock()
				}
				require.Positive(t, h2, "streams over HTTP/2")
			}
			if transport == fallback.TransportSSE {
				streams := c.hitsOn(fallback.EndpointStream)
				require.GreaterOrEqual(t, len(streams), 2, "streams by node (the owner is %s): %v", owner.name, streams)
			} else {
				polls := c.hitsOn(fallback.EndpointPoll)
				require.Len(t, polls, 3, "polls by node: %v", polls)
			}
		})
	}
}

// TestClusterEchoRedis is TestClusterEcho's stream case with the nodes linked by Debian's
// redis-server (broker/redis): forwarded POSTs and relayed streams ride on Redis pub/sub.
func TestClusterEchoRedis(t *testing.T) {
	t.Parallel()
	rs := testpeers.StartRedis(t, nil)
	c := newTestClusterOn(t, 3, &fallback.Options{MaxStreamAge: 100 * time.Millisecond}, echo, func() broker.Broker {
		b, err := redisbroker.New(redisbroker.Options{Addrs: []string{rs.Addr()}, Prefix: "fallback-test:"})
		require.NoError(t, err)
		return b
	}, "HTTP/1.1")
	conn := c.dial(false)
	defer conn.Close()
	for i := range 100 {
		m := fmt.Sprintf(`{"type":"ping","id":%d}`, i)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		require.NoError(t, conn.Write(ctx, []byte(m)))
		got, err := conn.Read(ctx)
		cancel()
		require.NoError(t, err, "message %d", i)
		require.Equal(t, m, string(got), "message %d", i)
		if i%25 == 0 {
			time.Sleep(120 * time.Millisecond) // let the stream rotate
		}
	}
	require.Len(t, c.hitsOn(fallback.EndpointSend), 3, "POSTs by node: %v", c.hitsOn(fallback.EndpointSend))
	require.GreaterOrEqual(t, len(c.hitsOn(fallback.EndpointStream)), 2, "streams by node: %v", c.hitsOn(fallback.EndpointStream))
}

// TestClusterRetriedBatch posts one batch to two nodes that do not hold the session, as a
// client retrying a POST whose answer it lost through another node would: both are
// acknowledged and the session receives it once; a batch posted ahead is a gap (409) through
// another node too, and the session's cookie binding holds through other nodes.
func TestClusterRetriedBatch(t *testing.T) {
	t.Parallel()
	got := make(chan string, 16)
	c := newTestCluster(t, 3, &fallback.Options{BindCookie: "nes"}, collect(got))
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	hc := http.DefaultClient
	o := openPoll(t, hc, a.h.base, "Cookie", "nes=alice")
	ticket := []string{"Herald-Ticket", o.Ticket, "Cookie", "nes=alice"}

	require.Equal(t, http.StatusNoContent, post(t, hc, b.h.base, fallback.EndpointSend, batchBody(o.Seq, "x"), ticket...).status)
	require.Equal(t, http.StatusNoContent, post(t, hc, cc.h.base, fallback.EndpointSend, batchBody(o.Seq, "x"), ticket...).status)
	gap := post(t, hc, b.h.base, fallback.EndpointSend, batchBody(o.Seq+2, "z"), ticket...)
	require.Equal(t, http.StatusConflict, gap.status, "%s", gap.body)
	require.Equal(t, strconv.FormatUint(o.Seq+1, 10), gap.header.Get("Herald-Expected-Seq"))
	require.Equal(t, http.StatusNoContent, post(t, hc, cc.h.base, fallback.EndpointSend, batchBody(o.Seq+1, "y"), ticket...).status)
	require.Equal(t, http.StatusNoContent, post(t, hc, a.h.base, fallback.EndpointSend, batchBody(o.Seq+2, "end"), ticket...).status)
	var seen []string
	for len(seen) < 3 {
		select {
		case m := <-got:
			seen = append(seen, m)
		case <-time.After(testTimeout):
			t.Fatalf("received %v", seen)
		}
	}
	require.Equal(t, []string{"x", "y", "end"}, seen)

	// With another cookie than the session's, the session's node refuses the batch, the
	// poll and the resumed stream that other nodes forward.
	mallory := []string{"Herald-Ticket", o.Ticket, "Cookie", "nes=mallory"}
	forbidden := post(t, hc, b.h.base, fallback.EndpointSend, batchBody(o.Seq+3, "w"), mallory...)
	require.Equal(t, http.StatusForbidden, forbidden.status, "%s", forbidden.body)
	forbidden = post(t, hc, cc.h.base, fallback.EndpointPoll, `{"last":0}`, mallory...)
	require.Equal(t, http.StatusForbidden, forbidden.status, "%s", forbidden.body)
	_, status := tryStream(t, hc, b.h.base, "Last-Event-ID", o.Ticket+".0", "Cookie", "nes=mallory")
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, http.StatusNoContent, post(t, hc, b.h.base, fallback.EndpointSend, batchBody(o.Seq+3, "w"), ticket...).status)
	select {
	case m := <-got:
		require.Equal(t, "w", m)
	case <-time.After(testTimeout):
		t.Fatal("the session did not receive the batch after the refused ones")
	}
}

// TestClusterRelayedStream resumes a session's stream on another node: it is relayed from the
// session's node, with what the client missed first; messages posted to a third node come
// down it. When the session's node leaves, the relayed stream ends within KeepAlive, and the
// next resume gets a reset and a new session (of the node it landed on), as do POSTs (404).
func TestClusterRelayedStream(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, &fallback.Options{KeepAlive: 100 * time.Millisecond}, echo)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	hc := http.DefaultClient

	st := openStream(t, hc, a.h.base)
	o := parseOpen(t, st.expect(fallback.EventOpen).Data)
	ticket := []string{"Herald-Ticket", o.Ticket}
	require.Equal(t, http.StatusNoContent, post(t, hc, cc.h.base, fallback.EndpointSend, batchBody(o.Seq, "one", "two"), ticket...).status)
	one := st.next()
	require.Equal(t, "one", one.Data)
	st.close() // "two" is sent, or not, on this stream: the client did not read it

	relayed := openStream(t, hc, b.h.base, "Last-Event-ID", one.ID)
	reopened := parseOpen(t, relayed.expect(fallback.EventOpen).Data)
	require.True(t, reopened.Resumed)
	require.Equal(t, o.Ticket, reopened.Ticket)
	two := relayed.next()
	require.Equal(t, "two", two.Data)
	require.Equal(t, o.Ticket+".2", two.ID)
	require.Equal(t, http.StatusNoContent, post(t, hc, cc.h.base, fallback.EndpointSend, batchBody(reopened.Seq, "three"), ticket...).status)
	three := relayed.next()
	require.Equal(t, "three", three.Data)
	require.Equal(t, o.Ticket+".3", three.ID)

	// The session's node leaves: the relayed stream ends (its check fails), and nothing of
	// the session can be resumed.
	c.kill(a)
	require.Eventually(t, func() bool { // the others have heard it leave
		return len(b.node.Nodes()) == 2 && len(cc.node.Nodes()) == 2
	}, testTimeout, 5*time.Millisecond)
	for {
		m, err := relayed.dec.Next()
		if err != nil {
			break
		}
		require.Empty(t, m.Data, "an event after the session's node left: %+v", m)
	}
	gone := post(t, hc, cc.h.base, fallback.EndpointSend, batchBody(reopened.Seq+1, "four"), ticket...)
	require.Equal(t, http.StatusNotFound, gone.status, "%s", gone.body)
	poll := post(t, hc, b.h.base, fallback.EndpointPoll, `{"last":3}`, ticket...)
	require.Equal(t, http.StatusNotFound, poll.status, "%s", poll.body)

	reset := openStream(t, hc, cc.h.base, "Last-Event-ID", three.ID)
	reset.expect(fallback.EventReset)
	fresh := parseOpen(t, reset.expect(fallback.EventOpen).Data)
	require.False(t, fresh.Resumed)
	require.NotEqual(t, o.Ticket, fresh.Ticket)
	require.Equal(t, http.StatusNoContent, post(t, hc, b.h.base, fallback.EndpointSend, batchBody(fresh.Seq, "hello again"), "Herald-Ticket", fresh.Ticket).status)
	require.Equal(t, "hello again", reset.next().Data)
}

// TestClusterOwnerLeaves kills the node that holds a Go client's session: the client is told
// (Read fails with ErrSessionEnded), and a new session through the same proxy works.
func TestClusterOwnerLeaves(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			c := newTestCluster(t, 3, &fallback.Options{KeepAlive: 100 * time.Millisecond}, echo)
			conn := c.dial(transport == fallback.TransportPoll)
			defer conn.Close()
			owner, _ := c.owner()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			require.NoError(t, conn.Write(ctx, []byte("before")))
			m, err := conn.Read(ctx)
			require.NoError(t, err)
			require.Equal(t, "before", string(m))

			c.kill(owner)
			_ = conn.Write(ctx, []byte("after")) // may fail at once, or be refused (404)
			_, err = conn.Read(ctx)
			require.ErrorIs(t, err, fallback.ErrSessionEnded)

			again := c.dial(transport == fallback.TransportPoll)
			defer again.Close()
			require.NoError(t, again.Write(ctx, []byte("again")))
			m, err = again.Read(ctx)
			require.NoError(t, err)
			require.Equal(t, "again", string(m))
		})
	}
}

// TestClusterPeerNodeEventSource has Node's eventsource package read a session's stream
// through three nodes that take turns: the stream ends every 100 ms (MaxStreamAge), and the
// client's own reconnection, with its Last-Event-ID, lands on another node, which relays the
// session from its node. Every message arrives once and in order, and every reconnection
// resumes the session (no reset).
func TestClusterPeerNodeEventSource(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	const total = 150
	c := newTestCluster(t, 3, &fallback.Options{MaxStreamAge: 100 * time.Millisecond}, func(s *fallback.Session) error {
		for i := 1; i <= total; i++ {
			if err := s.Send(context.Background(), []byte(fmt.Sprintf("message %d", i))); err != nil {
				return err
			}
			time.Sleep(3 * time.Millisecond)
		}
		return idle(s)
	})
	p := testpeers.Start(t, "eventsource-client.js", c.base+"/sse",
		fallback.EventOpen, fallback.EventReset, fallback.EventRotate, fallback.EventClose)
	ticket, opens := "", 0
	for i := 1; i <= total; {
		l := p.NextES(t, testTimeout)
		switch {
		case l.Kind != "message" || l.Type == fallback.EventRotate:
			continue
		case l.Type == fallback.EventOpen:
			o := parseOpen(t, l.Data)
			if opens == 0 {
				ticket = o.Ticket
			}
			require.Equal(t, ticket, o.Ticket, "a new session")
			require.Equal(t, opens > 0, o.Resumed)
			opens++
			continue
		}
		require.Equal(t, testpeers.ESLine{Kind: "message", Type: "message", ID: ticket + "." + strconv.Itoa(i),
			Data: fmt.Sprintf("message %d", i)}, l, "message %d", i)
		i++
	}
	require.GreaterOrEqual(t, opens, 3, "streams opened")
	require.GreaterOrEqual(t, len(c.hitsOn(fallback.EndpointStream)), 2, "streams by node: %v", c.hitsOn(fallback.EndpointStream))
}
