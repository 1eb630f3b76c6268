package eventsource_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/broker"
	natsbroker "github.com/herald-go/herald/broker/nats"
	redisbroker "github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/internal/testpeers"
)

// sharedNode is one node of a cluster that shares a Stream: its broker link, its Stream and
// a server that subscribes each request with its Last-Event-ID.
type sharedNode struct {
	link   broker.Broker
	node   *broker.Node
	stream *eventsource.Stream
	srv    *testServer
	got    chan *eventsource.EventSource
}

// joinNode starts a node on the engine b and joins the Stream "news" there with opts.
func joinNode(t *testing.T, b broker.Broker, opts eventsource.StreamOptions) *sharedNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := &sharedNode{link: b, node: broker.NewNode(b, &broker.NodeOptions{Linger: -1}), got: make(chan *eventsource.EventSource, 16)}
	require.NoError(t, n.node.Start(ctx))
	t.Cleanup(func() { _ = n.node.Close() })
	opts.Broker = n.node
	s, err := eventsource.JoinStream(ctx, "news", &opts)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	n.stream = s
	n.srv = newTestServer(t, "HTTP/1.1", nil, func(es *eventsource.EventSource) {
		if err := s.Subscribe(es); err != nil {
			t.Errorf("Subscribe: %v", err)
		}
		n.got <- es
	})
	return n
}

// open opens a stream on the node, resuming after last ("" for none).
func (n *sharedNode) open(t *testing.T, last string) (*stream, *eventsource.EventSource) {
	t.Helper()
	h := http.Header{}
	if last != "" {
		h.Set("Last-Event-ID", last)
	}
	st := n.srv.open(t, "/", h)
	return st, recv(t, n.got)
}

// publishShared publishes "tick FROM" to "tick TO" on s and returns their ids.
func publishShared(t *testing.T, s *eventsource.Stream, from, to int) []string {
	t.Helper()
	var ids []string
	for i := from; i <= to; i++ {
		id, err := s.Publish(fmt.Sprintf("tick %d", i), eventsource.Event{Type: "tick"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// expectTicks reads ticks from to to, with the ids the publications returned.
func expectTicks(t *testing.T, st *stream, ids map[int]string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		require.Equal(t, eventsource.Message{Type: "tick", ID: ids[i], Data: fmt.Sprintf("tick %d", i)}, st.next(t), "tick %d", i)
	}
}

// TestJoinStreamFanOut publishes on every node of three in turn: a client of each node gets
// every event once, in the broker's order, with ids "OFFSET:EPOCH".
func TestJoinStreamFanOut(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	nodes := []*sharedNode{joinNode(t, hub.Broker(), eventsource.StreamOptions{}),
		joinNode(t, hub.Broker(), eventsource.StreamOptions{}), joinNode(t, hub.Broker(), eventsource.StreamOptions{})}
	var clients []*stream
	for _, n := range nodes {
		st, _ := n.open(t, "")
		clients = append(clients, st)
	}
	ids := map[int]string{}
	for i := 1; i <= 30; i++ {
		ids[i] = publishShared(t, nodes[i%3].stream, i, i)[0]
		require.True(t, strings.HasPrefix(ids[i], fmt.Sprintf("%d:", i)), "id %q", ids[i])
	}
	for _, st := range clients {
		expectTicks(t, st, ids, 1, 30)
	}
	_, err := nodes[0].stream.Publish("x", eventsource.Event{ID: "7"})
	require.Error(t, err, "a shared Stream's ids are the broker's")
}

// TestJoinStreamResume resumes with a Last-Event-ID on nodes whose own copy of the history
// reaches back that far, or not at all (a node that joined after the events), or not far
// enough (a small HistoryBytes): the replay is exact every time, from the broker's history
// where needed, then live events follow. Where the broker's history does not reach back
// either, or the id is not one of the stream's, the client gets the gap event first.
func TestJoinStreamResume(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		opts   eventsource.StreamOptions // of every node
		local  eventsource.StreamOptions // of the node resumed on, when it joined before
		late   bool                      // the node resumed on joins after the publications
		last   int                       // the tick the client has; 0: lastID
		lastID string
		from   int // the first tick replayed
		gap    bool
	}{
		{name: "node's copy", last: 4, from: 5},
		{name: "late node", late: true, last: 4, from: 5},
		{name: "late node, newest", late: true, last: 10, from: 11},
		{name: "small copy", local: eventsource.StreamOptions{HistoryBytes: 1}, last: 2, from: 3},
		{name: "trimmed", opts: eventsource.StreamOptions{HistoryLimit: 3}, late: true, last: 2, from: 11, gap: true},
		{name: "not an id", lastID: "7", from: 11, gap: true, late: true},
		{name: "future", lastID: "99:nope", from: 11, gap: true, late: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			hub := broker.NewMemoryHub()
			pub := joinNode(t, hub.Broker(), c.opts)
			var on *sharedNode
			if !c.late {
				local := c.local
				local.HistoryLimit = c.opts.HistoryLimit
				on = joinNode(t, hub.Broker(), local)
			}
			ids := map[int]string{}
			for i, id := range publishShared(t, pub.stream, 1, 10) {
				ids[i+1] = id
			}
			if c.late {
				on = joinNode(t, hub.Broker(), c.opts)
			}
			last := c.lastID
			if last == "" {
				last = ids[c.last]
			}
			st, _ := on.open(t, last)
			if c.gap {
				m := st.next(t)
				require.Equal(t, "gap", m.Type, "%+v", m)
				require.Equal(t, last, m.Data)
			}
			// Read the replay before publishing more: the node's copy may be too small to
			// hold it and the live event too (see TestStreamSlowClient).
			expectTicks(t, st, ids, c.from, 10)
			ids[11] = publishShared(t, pub.stream, 11, 11)[0]
			expectTicks(t, st, ids, 11, 11)
		})
	}
}

// TestJoinStreamEpoch kills the engine, losing the history: a client that resumes from an
// event of before gets the gap event, then what was published since.
func TestJoinStreamEpoch(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	a := joinNode(t, hub.Broker(), eventsource.StreamOptions{})
	old := publishShared(t, a.stream, 1, 3)
	hub.Kill()
	hub.Restart()
	b := joinNode(t, hub.Broker(), eventsource.StreamOptions{})
	var id string
	require.Eventually(t, func() bool { // the node's link comes back by itself
		var err error
		id, err = a.stream.Publish("tick 4", eventsource.Event{Type: "tick"})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NotEqual(t, strings.SplitN(old[0], ":", 2)[1], strings.SplitN(id, ":", 2)[1], "a new epoch")
	st, _ := b.open(t, old[2])
	m := st.next(t)
	require.Equal(t, "gap", m.Type, "%+v", m)
	require.Equal(t, old[2], m.Data)
	require.Equal(t, eventsource.Message{Type: "tick", ID: id, Data: "tick 4"}, st.next(t))
}

// TestJoinStreamDiscontinuity cuts one node's link while events are published elsewhere: its
// subscriber is disconnected when the link is back, and resuming from its last event (on the
// same node) gives exactly the events it missed.
func TestJoinStreamDiscontinuity(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	a := joinNode(t, hub.Broker(), eventsource.StreamOptions{})
	b := joinNode(t, hub.Broker(), eventsource.StreamOptions{})
	st, es := b.open(t, "")
	ids := map[int]string{}
	for i, id := range publishShared(t, a.stream, 1, 3) {
		ids[i+1] = id
	}
	expectTicks(t, st, ids, 1, 3)
	hub.Disconnect(b.link)
	for i, id := range publishShared(t, a.stream, 4, 6) {
		ids[i+4] = id
	}
	hub.Reconnect(b.link)
	waitDone(t, es, 10*time.Second)
	st2, _ := b.open(t, ids[3])
	expectTicks(t, st2, ids, 4, 6)
	for i, id := range publishShared(t, a.stream, 7, 7) {
		ids[i+7] = id
	}
	expectTicks(t, st2, ids, 7, 7)
}

// noHistory is a broker that keeps no history (as broker/nats): it hides the HistoryReader.
type noHistory struct{ broker.Broker }

// TestJoinStreamNoHistory: a broker without history (broker/nats, with an embedded
// nats-server) is refused at once, and a Stream made by
// NewStream with a Broker refuses to publish rather than staying on one node unnoticed.
func TestJoinStreamNoHistory(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	node := broker.NewNode(noHistory{hub.Broker()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, node.Start(ctx))
	defer node.Close()
	_, err := eventsource.JoinStream(ctx, "news", &eventsource.StreamOptions{Broker: node})
	require.ErrorIs(t, err, broker.ErrHistoryUnsupported)

	// Core NATS (broker/nats) keeps no history.
	ns := testpeers.StartNATS(t)
	natsNode := broker.NewNode(natsbroker.New(ns.URL(), nil), nil)
	require.NoError(t, natsNode.Start(ctx))
	defer natsNode.Close()
	_, err = eventsource.JoinStream(ctx, "news", &eventsource.StreamOptions{Broker: natsNode})
	require.ErrorIs(t, err, broker.ErrHistoryUnsupported)

	s := eventsource.NewStream(&eventsource.StreamOptions{Broker: node})
	_, err = s.Publish("x", eventsource.Event{})
	require.ErrorContains(t, err, "JoinStream")
	_, err = eventsource.JoinStream(ctx, "news", nil)
	require.Error(t, err)
}

// TestJoinStreamPeerNodeEventSource has Node's eventsource package read a Stream shared by
// three nodes behind a proxy that sends each request to the next node: every stream is ended
// by its node after 100 ms, so the client reconnects, each time to another node, with its
// Last-Event-ID, while events are published on every node in turn. It receives every event
// once, in order, and no gap event.
func TestJoinStreamPeerNodeEventSource(t *testing.T) {
	t.Parallel()
	testpeers.Node(t)
	hub := broker.NewMemoryHub()
	var backends []*url.URL
	var nodes []*sharedNode
	for range 3 {
		n := joinNode(t, hub.Broker(), eventsource.StreamOptions{})
		nodes = append(nodes, n)
		srv := newTestServer(t, "HTTP/1.1", &eventsource.Options{Retry: 10 * time.Millisecond}, func(es *eventsource.EventSource) {
			if err := n.stream.Subscribe(es); err != nil {
				t.Errorf("Subscribe: %v", err)
			}
			time.AfterFunc(100*time.Millisecond, func() { _ = es.Close() })
		})
		u, _ := url.Parse(srv.URL)
		backends = append(backends, u)
	}
	var next atomic.Int64
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backends[int(next.Add(1))%len(backends)])
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	})
	t.Cleanup(proxy.Close)

	// The client starts after tick 1 (the lastEventId parameter): a first stream that ends
	// before any event is resumed from there, not from nothing.
	first, err := nodes[0].stream.Publish("tick 1", eventsource.Event{Type: "tick"})
	require.NoError(t, err)
	p := testpeers.Start(t, "eventsource-client.js", proxy.URL+"/?lastEventId="+url.QueryEscape(first), "tick", "gap")
	p.WaitES(t, 10*time.Second, "open")
	const total = 150
	ids := make(chan string, total)
	go func() {
		defer close(ids)
		for i := 2; i <= total; i++ {
			id, err := nodes[i%3].stream.Publish(fmt.Sprintf("tick %d", i), eventsource.Event{Type: "tick"})
			if err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
			ids <- id
			time.Sleep(3 * time.Millisecond)
		}
	}()
	opens := 1
	for i := 2; i <= total; {
		l := p.NextES(t, 10*time.Second)
		switch l.Kind {
		case "open":
			opens++
			continue
		case "response", "error":
			continue
		}
		id := recv(t, ids)
		require.Equal(t, testpeers.ESLine{Kind: "message", Type: "tick", ID: id, Data: fmt.Sprintf("tick %d", i)}, l, "event %d", i)
		i++
	}
	require.GreaterOrEqual(t, opens, 3, "the client connected %d times", opens)
}

// TestJoinStreamRedis runs the resume through Debian's redis-server (broker/redis, history in
// Redis Streams): a node that joined after the events replays them exactly from Redis; after
// Redis restarts without persistence (a new epoch) an old id gets the gap event.
func TestJoinStreamRedis(t *testing.T) {
	t.Parallel()
	rs := testpeers.StartRedis(t, nil)
	link := func() broker.Broker {
		b, err := redisbroker.New(redisbroker.Options{Addrs: []string{rs.Addr()}, Prefix: "test:"})
		require.NoError(t, err)
		return b
	}
	pub := joinNode(t, link(), eventsource.StreamOptions{HistoryLimit: 20})
	ids := map[int]string{}
	for i, id := range publishShared(t, pub.stream, 1, 10) {
		ids[i+1] = id
	}
	late := joinNode(t, link(), eventsource.StreamOptions{HistoryLimit: 20})
	st, _ := late.open(t, ids[4])
	expectTicks(t, st, ids, 5, 10)
	ids[11] = publishShared(t, pub.stream, 11, 11)[0]
	expectTicks(t, st, ids, 11, 11)

	rs.Kill()
	rs.Restart()
	var id string
	require.Eventually(t, func() bool { // the link comes back by itself
		var err error
		id, err = pub.stream.Publish("tick 12", eventsource.Event{Type: "tick"})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.NotEqual(t, strings.SplitN(ids[11], ":", 2)[1], strings.SplitN(id, ":", 2)[1], "a new epoch")
	other := joinNode(t, link(), eventsource.StreamOptions{HistoryLimit: 20})
	again, _ := other.open(t, ids[11])
	m := again.next(t)
	require.Equal(t, "gap", m.Type, "%+v", m)
	require.Equal(t, ids[11], m.Data)
	require.Eventually(t, func() bool { // the link's other connections may still be coming back
		var err error
		ids[13], err = pub.stream.Publish("tick 13", eventsource.Event{Type: "tick"})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, eventsource.Message{Type: "tick", ID: ids[13], Data: "tick 13"}, again.next(t))
}

// ExampleJoinStream shares a Stream among the nodes of a cluster. Here the engine is a
// MemoryHub (nodes of one process, for tests); a real cluster gives each node a link to Redis
// (broker/redis), which keeps the history that lets a client resume on any node.
func ExampleJoinStream() {
	ctx := context.Background()
	hub := broker.NewMemoryHub()
	node := broker.NewNode(hub.Broker(), &broker.NodeOptions{Name: "node-1"})
	if err := node.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()

	news, err := eventsource.JoinStream(ctx, "news", &eventsource.StreamOptions{Broker: node, HistoryLimit: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer news.Close()
	mux := http.NewServeMux() // every node serves the stream; a client resumes on any of them
	mux.Handle("/news", &eventsource.Handler{Accept: func(es *eventsource.EventSource) { _ = news.Subscribe(es) }})

	id, err := news.Publish(`{"headline":"..."}`, eventsource.Event{Type: "news"})
	if err != nil {
		fmt.Println(err) // the broker is unreachable: nothing was sent
		return
	}
	offset, _, _ := strings.Cut(id, ":")
	fmt.Println("published at offset", offset)
	// Output: published at offset 1
}
