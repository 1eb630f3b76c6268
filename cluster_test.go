package herald

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/broker"
	natsbroker "github.com/herald-go/herald/broker/nats"
	redisbroker "github.com/herald-go/herald/broker/redis"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// testCluster is a few herald nodes linked by one broker engine, behind a reverse proxy that
// round-robins every request (WebSocket upgrades included): no stickiness, as behind a
// plain load balancer.
type testCluster struct {
	t       *testing.T
	nodes   []*Server
	brokers []broker.Broker
	url     string // ws:// URL of the proxy
	hub     *broker.MemoryHub
}

// clusterAuth authenticates "authorization: <user>[ <group>]" hellos; OnConnection puts the
// socket in the group. An empty header is anonymous.
func clusterAuth(o *Options) {
	o.Auth = &AuthOptions{Index: true, Authenticate: func(r *http.Request) (*Credentials, error) {
		user, group, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if user == "" {
			return nil, nil
		}
		c := &Credentials{User: user}
		if group != "" {
			c.Data = map[string]any{"group": group}
		}
		return c, nil
	}}
	o.OnConnection = func(ctx context.Context, s *Socket) error {
		if c := s.Credentials(); c != nil && c.Data["group"] != nil {
			return s.Join(ctx, c.Data["group"].(string))
		}
		return nil
	}
}

// newTestCluster starts n nodes on a memory hub. configure sets each node's options and
// declares its subscriptions (the same on every node, as an application does).
func newTestCluster(t *testing.T, n int, options func(i int, o *Options), declare func(i int, s *Server)) *testCluster {
	t.Helper()
	hub := broker.NewMemoryHub()
	return newTestClusterOn(t, n, func(int) broker.Broker { return hub.Broker() }, hub, options, declare)
}

func newTestClusterOn(t *testing.T, n int, newBroker func(i int) broker.Broker, hub *broker.MemoryHub, options func(i int, o *Options), declare func(i int, s *Server)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, hub: hub}
	var targets []*url.URL
	for i := range n {
		b := newBroker(i)
		o := &Options{Broker: b, Node: fmt.Sprintf("n%d", i), Heartbeat: &Heartbeat{Disabled: true}}
		clusterAuth(o)
		if options != nil {
			options(i, o)
		}
		srv := NewServer(nil, o)
		if declare != nil {
			declare(i, srv)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			srv.Close()
			hs.Close()
		})
		u, _ := url.Parse(hs.URL)
		targets = append(targets, u)
		tc.nodes = append(tc.nodes, srv)
		tc.brokers = append(tc.brokers, b)
	}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(targets[int(next.Add(1)-1)%len(targets)])
	}}
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	tc.url = "ws" + strings.TrimPrefix(ps.URL, "http")
	return tc
}

// nodeOf returns the index of the node holding the socket with id.
func (tc *testCluster) nodeOf(id string) int {
	tc.t.Helper()
	for i, srv := range tc.nodes {
		found := false
		srv.EachSocket(func(s *Socket) bool {
			found = s.ID == id
			return !found
		})
		if found {
			return i
		}
	}
	tc.t.Fatalf("socket %s is on no node", id)
	return -1
}

// dial connects a raw nes client through the proxy, says hello as user (empty: anonymous),
// and returns it with the node it landed on.
func (tc *testCluster) dial(user string) (*rawClient, int) {
	tc.t.Helper()
	c := dialRaw(tc.t, tc.url, nil)
	var auth any
	if user != "" {
		auth = map[string]any{"headers": map[string]string{"authorization": user}}
	}
	reply := c.hello(auth)
	require.Equal(tc.t, "hello", reply["type"], reply)
	return c, tc.nodeOf(reply["socket"].(string))
}

// sub subscribes a raw client and waits for the acknowledgement, returning the messages
// that came before it (a presence event may overtake it).
func (c *rawClient) sub(path string) []map[string]any {
	c.t.Helper()
	c.send(map[string]any{"type": "sub", "id": 2, "path": path})
	var before []map[string]any
	for {
		m := c.next(5 * time.Second)
		if m["type"] == "sub" {
			return before
		}
		require.Equal(c.t, "pub", m["type"], m)
		before = append(before, m)
	}
}

// nextPresence returns the next presence event, counting those sub returned first.
func (c *rawClient) nextPresence(early *[]map[string]any) map[string]any {
	c.t.Helper()
	var m map[string]any
	if len(*early) > 0 {
		m, *early = (*early)[0], (*early)[1:]
	} else {
		m = c.next(waitMsg)
	}
	require.Equal(c.t, "pub", m["type"], m)
	return m["message"].(map[string]any)
}

const waitMsg = 5 * time.Second

// closeCode waits for the server's close frame and returns its code, reading frames itself:
// gobwas/ws's reader refuses 1012 as a code it does not know.
func (c *rawClient) closeCode(timeout time.Duration) int {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		h, err := ws.ReadHeader(c.rw)
		require.NoError(c.t, err, "no close frame")
		if h.OpCode != ws.OpClose {
			_, err := io.CopyN(io.Discard, c.rw, h.Length)
			require.NoError(c.t, err)
			continue
		}
		require.True(c.t, h.Length >= 2 && h.Length <= 125, "close frame of %d bytes", h.Length)
		payload := make([]byte, h.Length)
		_, err = io.ReadFull(c.rw, payload)
		require.NoError(c.t, err)
		return int(binary.BigEndian.Uint16(payload))
	}
}

func TestClusterPublishRunsFiltersWhereTheSocketIs(t *testing.T) {
	t.Parallel()
	type run struct {
		node     int
		socket   string
		message  any
		internal any
	}
	var mu sync.Mutex
	var runs []run
	tc := newTestCluster(t, 3, nil, func(i int, s *Server) {
		s.Subscription("/item/{id}", &SubscriptionOptions{
			Filter: func(path string, message any, info FilterInfo) (bool, any) {
				mu.Lock()
				runs = append(runs, run{i, info.Socket.ID, message, info.Internal})
				mu.Unlock()
				skip, _ := info.Internal.(map[string]any)["skip"].(string)
				return info.Socket.ID != skip, nil
			},
		})
	})
	// Three Go clients through the proxy: one lands on each node.
	type sub struct {
		c       *client.Client
		updates chan client.Update
		node    int
	}
	var subs []sub
	for range 3 {
		c, err := client.New(tc.url, &client.Options{Transports: []string{client.TransportWebSocket}, NoReconnect: true,
			Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), waitMsg)
		require.NoError(t, c.Connect(ctx))
		updates := make(chan client.Update, 16)
		_, err = c.Subscribe(ctx, "/item/5", func(u client.Update) { updates <- u })
		cancel()
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		subs = append(subs, sub{c, updates, tc.nodeOf(c.ID())})
	}
	require.ElementsMatch(t, []int{0, 1, 2}, []int{subs[0].node, subs[1].node, subs[2].node}, "round robin spreads the clients")

	// Published on node 1, skipping (in the filter, by Internal) the client of node 2.
	var skipped sub
	for _, s := range subs {
		if s.node == 2 {
			skipped = s
		}
	}
	require.NoError(t, tc.nodes[1].Publish("/item/5", map[string]any{"n": 1}, &PublishOptions{Internal: map[string]any{"skip": skipped.c.ID()}}))
	require.NoError(t, tc.nodes[1].Publish("/item/5", map[string]any{"n": 2}, &PublishOptions{Internal: map[string]any{"skip": "nobody"}}))
	for _, s := range subs {
		first := <-s.updates
		if s.node == 2 {
			require.JSONEq(t, `{"n":2}`, string(first.Message), "the filter on node 2 skipped the first publication")
			continue
		}
		require.JSONEq(t, `{"n":1}`, string(first.Message))
		require.JSONEq(t, `{"n":2}`, string((<-s.updates).Message))
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs, 6)
	for _, r := range runs {
		require.Equal(t, tc.nodeOf(r.socket), r.node, "the filter ran on the socket's node")
		require.IsType(t, map[string]any{}, r.message, "filters see the message decoded from JSON")
		require.IsType(t, map[string]any{}, r.internal)
	}
}

func TestClusterUserTargeting(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, nil, func(_ int, s *Server) {
		s.Subscription("/inbox", &SubscriptionOptions{Auth: &SubscriptionAuth{Index: true}})
	})
	alice, an := tc.dial("alice")
	bob, bn := tc.dial("bob")
	require.NotEqual(t, an, bn)
	alice.sub("/inbox")
	bob.sub("/inbox")

	// From alice's node to bob, who is on the other.
	require.NoError(t, tc.nodes[an].Broadcast("for bob", &BroadcastOptions{User: "bob"}))
	require.NoError(t, tc.nodes[an].Publish("/inbox", "bob's mail", &PublishOptions{User: "bob"}))
	require.NoError(t, tc.nodes[an].Broadcast("everyone", nil))
	require.Equal(t, map[string]any{"type": "update", "message": "for bob"}, bob.next(waitMsg))
	require.Equal(t, map[string]any{"type": "pub", "path": "/inbox", "message": "bob's mail"}, bob.next(waitMsg))
	require.Equal(t, map[string]any{"type": "update", "message": "everyone"}, bob.next(waitMsg))
	require.Equal(t, map[string]any{"type": "update", "message": "everyone"}, alice.next(waitMsg), "alice got nothing meant for bob")

	// A user's disconnection reaches the node that holds the user's socket.
	require.NoError(t, tc.nodes[an].DisconnectUser("bob"))
	require.Equal(t, 1005, int(bob.closed(waitMsg)))
}

func TestClusterRevoke(t *testing.T) {
	t.Parallel()
	var unsubscribed atomic.Int32
	tc := newTestCluster(t, 2, nil, func(_ int, s *Server) {
		s.Subscription("/item/{id}", &SubscriptionOptions{
			OnUnsubscribe: func(context.Context, *Socket, string, map[string]string) { unsubscribed.Add(1) },
		})
	})
	a, an := tc.dial("")
	b, bn := tc.dial("")
	require.NotEqual(t, an, bn)
	a.sub("/item/1")
	b.sub("/item/1")
	// The revocation travels behind the publication on the path's topic.
	require.NoError(t, tc.nodes[an].Publish("/item/1", "last", nil))
	require.NoError(t, tc.nodes[an].Revoke("/item/1", "gone", nil))
	for _, c := range []*rawClient{a, b} {
		require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": "last"}, c.next(waitMsg))
		require.Equal(t, map[string]any{"type": "revoke", "path": "/item/1", "message": "gone"}, c.next(waitMsg))
	}
	require.Eventually(t, func() bool { return unsubscribed.Load() == 2 }, waitMsg, 5*time.Millisecond)
	// Nothing more reaches them on the path, and presence is empty everywhere.
	require.NoError(t, tc.nodes[bn].Publish("/item/1", "after", nil))
	require.NoError(t, tc.nodes[bn].Broadcast("marker", nil))
	for _, c := range []*rawClient{a, b} {
		require.Equal(t, map[string]any{"type": "update", "message": "marker"}, c.next(waitMsg))
	}
	p, err := tc.nodes[an].Presence(context.Background(), "/item/1")
	require.NoError(t, err)
	require.Empty(t, p.Entries)
}

func TestClusterRevokeUser(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, nil, nil)
	_, an := tc.dial("alice")
	bob, bn := tc.dial("bob")
	require.NotEqual(t, an, bn)
	require.NoError(t, tc.nodes[an].RevokeUser("bob"))
	require.Equal(t, 1005, int(bob.closed(waitMsg)), "bob's socket on the other node closed")
}

func TestClusterGroups(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3, nil, nil)
	red1, n1 := tc.dial("ann red")
	blue, _ := tc.dial("bea blue")
	red2, n2 := tc.dial("cid red")
	require.NotEqual(t, n1, n2)
	require.NoError(t, tc.nodes[1].BroadcastGroup("red", "to red"))
	require.NoError(t, tc.nodes[1].Broadcast("marker", nil))
	for _, c := range []*rawClient{red1, red2} {
		require.Equal(t, map[string]any{"type": "update", "message": "to red"}, c.next(waitMsg))
		require.Equal(t, map[string]any{"type": "update", "message": "marker"}, c.next(waitMsg))
	}
	require.Equal(t, map[string]any{"type": "update", "message": "marker"}, blue.next(waitMsg), "blue is not in red")

	// The sockets survey sees the groups of every node's sockets.
	survey, err := tc.nodes[0].Sockets(context.Background(), &SocketsQuery{Group: "red"})
	require.NoError(t, err)
	require.Equal(t, 2, survey.Count())
	require.Empty(t, survey.Missing)
	for _, ns := range survey.Nodes {
		for _, s := range ns.Sockets {
			require.Equal(t, []string{"red"}, s.Groups)
		}
	}
}

func TestClusterPresence(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, nil, func(_ int, s *Server) {
		s.Subscription("/room/{id}", &SubscriptionOptions{PresenceEvents: true})
	})
	ann, an := tc.dial("ann")
	early := ann.sub("/room/1")
	require.Equal(t, "join", ann.nextPresence(&early)["presence"], "ann hears her own join")
	bob, bn := tc.dial("bob")
	require.NotEqual(t, an, bn)
	bob.sub("/room/1")
	require.Equal(t, map[string]any{"presence": "join", "socket": tc.socketID(bn, "bob"), "user": "bob"}, ann.nextPresence(&early))
	anon, _ := tc.dial("")
	anon.sub("/room/1")

	p, err := tc.nodes[an].Presence(context.Background(), "/room/1")
	require.NoError(t, err)
	require.Equal(t, []string{"ann", "bob"}, p.Users)
	require.Equal(t, 3, p.Sockets)
	require.Empty(t, p.Missing)
	nodes := map[string]int{}
	for _, e := range p.Entries {
		nodes[e.Node]++
	}
	require.Len(t, nodes, 2, "entries of both nodes")

	// bob leaves by closing: ann hears it.
	_ = bob.conn.Close()
	for {
		m := ann.nextPresence(&early)
		if m["presence"] == "leave" && m["user"] == "bob" {
			break
		}
	}
	p, err = tc.nodes[bn].Presence(context.Background(), "/room/1")
	require.NoError(t, err)
	require.Equal(t, []string{"ann"}, p.Users)
}

// socketID returns the id of user's (one) socket on node i.
func (tc *testCluster) socketID(i int, user string) string {
	var id string
	tc.nodes[i].EachSocket(func(s *Socket) bool {
		if s.user() == user {
			id = s.ID
		}
		return id == ""
	})
	return id
}

func TestClusterUserLimit(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3, func(_ int, o *Options) {
		o.Auth.MaxConnectionsPerUserCluster = 2
	}, nil)
	first, _ := tc.dial("ann")
	tc.dial("ann")
	third := dialRaw(t, tc.url, nil)
	reply := third.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})
	require.Equal(t, float64(503), reply["statusCode"], "the third socket of ann, on the third node, is past the limit: %v", reply)
	tc.dial("bob") // other users are not affected

	// The lease goes with the socket.
	_ = first.conn.Close()
	require.Eventually(t, func() bool {
		c := dialRaw(t, tc.url, nil)
		defer func() { _ = c.conn.Close() }()
		return c.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})["type"] == "hello"
	}, waitMsg, 20*time.Millisecond)
}

func TestClusterBrokerDownFailsFast(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, func(_ int, o *Options) { o.CloseOnDiscontinuity = true }, func(_ int, s *Server) {
		s.Subscription("/item/{id}", nil)
	})
	// herald's own WebSocket client, which knows close code 1012 (gobwas/ws's does not).
	ctx, cancel := context.WithTimeout(context.Background(), waitMsg)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, tc.url, &websocket.DialOptions{Proxy: websocket.NoProxy})
	require.NoError(t, err)
	defer func() { _ = ws.CloseNow() }()
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","id":1,"version":"2","subs":["/item/1"]}`)))
	_, hello, err := ws.Read(ctx)
	require.NoError(t, err)
	var reply struct{ Socket string }
	require.NoError(t, json.Unmarshal(hello, &reply))
	n := tc.nodeOf(reply.Socket)
	require.NoError(t, tc.nodes[n].brokerErr())

	tc.hub.Kill()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv := tc.nodes[1-n]
		require.ErrorIs(t, srv.Publish("/item/1", "x", nil), broker.ErrUnavailable)
		require.ErrorIs(t, srv.Broadcast("x", nil), broker.ErrUnavailable)
		require.ErrorIs(t, srv.BroadcastGroup("g", "x"), broker.ErrUnavailable)
		require.ErrorIs(t, srv.Revoke("/item/1", nil, nil), broker.ErrUnavailable)
		require.Error(t, srv.brokerErr())
		_, err := srv.Presence(context.Background(), "/item/1")
		require.ErrorIs(t, err, broker.ErrUnavailable)
	}()
	select {
	case <-done:
	case <-time.After(waitMsg):
		t.Fatal("calls hang while the broker is down")
	}
	// A new subscription cannot be heard across nodes: it is refused rather than left deaf.
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"sub","id":3,"path":"/item/2"}`)))
	_, refusal, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Contains(t, string(refusal), `"statusCode":503`)

	tc.hub.Restart()
	require.Eventually(t, func() bool { return tc.nodes[n].Discontinuities() == 1 }, waitMsg, 5*time.Millisecond)
	_, _, err = ws.Read(ctx)
	require.Equal(t, websocket.StatusServiceRestart, websocket.CloseStatus(err), "CloseOnDiscontinuity closes with 1012: %v", err)
	require.NoError(t, tc.nodes[n].brokerErr())
}

func TestClusterSocketsSurveyMissingNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3, nil, nil)
	for _, u := range []string{"ann", "bob", "cid"} {
		tc.dial(u)
	}
	all, err := tc.nodes[0].Sockets(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 3, all.Count())
	require.Len(t, all.Nodes, 3)
	require.Empty(t, all.Missing)

	counted, err := tc.nodes[0].Sockets(context.Background(), &SocketsQuery{User: "bob", CountOnly: true})
	require.NoError(t, err)
	require.Equal(t, 1, counted.Count())
	for _, ns := range counted.Nodes {
		require.Empty(t, ns.Sockets)
	}

	// A node whose link is cut does not answer, and is named.
	tc.hub.Disconnect(tc.brokers[2])
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	part, err := tc.nodes[0].Sockets(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"n2"}, part.Missing)
	require.Equal(t, 2, part.Count())
	tc.hub.Reconnect(tc.brokers[2])
}

func TestClusterWithoutBrokerIsLocal(t *testing.T) {
	t.Parallel()
	srv := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}})
	url := newTestServer(t, srv)
	srv.Subscription("/room/{id}", &SubscriptionOptions{PresenceEvents: true})
	c := dialRaw(t, url, nil)
	c.hello(nil)
	early := c.sub("/room/1")
	require.Equal(t, "join", c.nextPresence(&early)["presence"])
	p, err := srv.Presence(context.Background(), "/room/1")
	require.NoError(t, err)
	require.Equal(t, 1, p.Sockets)
	require.Equal(t, "", srv.NodeName())
	require.NoError(t, srv.brokerErr())
	require.NoError(t, srv.Revoke("/room/1", nil, nil))
	require.Equal(t, map[string]any{"type": "revoke", "path": "/room/1"}, c.next(waitMsg))
	survey, err := srv.Sockets(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, survey.Count())
}

// testClusterCore runs the core of the cluster's promise on two nodes: a publication on one
// node reaches the subscribers of both, with the filter run where each socket is; a
// broadcast to a user reaches that user only; presence and the sockets survey see both
// nodes.
//
// With kill and restart (the engine's), it then checks the failure behaviour: while the
// engine is down, publishing fails fast with broker.ErrUnavailable and nothing hangs; once it
// is back, each node counts a discontinuity, closes its sockets with 1012
// (CloseOnDiscontinuity), and publications flow again.
func testClusterCore(t *testing.T, newBroker func(i int) broker.Broker, kill, restart func()) {
	var filtered sync.Map // socket id → node that ran the filter
	tc := newTestClusterOn(t, 2, newBroker, nil, func(_ int, o *Options) { o.CloseOnDiscontinuity = true }, func(i int, s *Server) {
		s.Subscription("/item/{id}", &SubscriptionOptions{
			Auth: &SubscriptionAuth{Index: true},
			Filter: func(path string, message any, info FilterInfo) (bool, any) {
				filtered.Store(info.Socket.ID, i)
				if m, _ := message.(map[string]any); m["only"] != nil {
					return m["only"] == info.Credentials.User, nil
				}
				return true, nil
			},
		})
	})
	ann, an := tc.dial("ann")
	bob, bn := tc.dial("bob")
	require.NotEqual(t, an, bn)
	ann.sub("/item/1")
	bob.sub("/item/1")

	require.NoError(t, tc.nodes[an].Publish("/item/1", map[string]any{"only": "bob"}, nil))
	require.NoError(t, tc.nodes[an].Publish("/item/1", map[string]any{"all": true}, nil))
	require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": map[string]any{"only": "bob"}}, bob.next(waitMsg))
	require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": map[string]any{"all": true}}, bob.next(waitMsg))
	require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": map[string]any{"all": true}}, ann.next(waitMsg), "the filter on ann's node dropped bob's message")
	node, _ := filtered.Load(tc.socketID(bn, "bob"))
	require.Equal(t, bn, node, "bob's filter ran on bob's node")

	// Two topics (u:bob and b): no order between them.
	require.NoError(t, tc.nodes[an].Broadcast("psst", &BroadcastOptions{User: "bob"}))
	require.NoError(t, tc.nodes[bn].Broadcast("all", nil))
	require.ElementsMatch(t, []any{"psst", "all"}, []any{bob.next(waitMsg)["message"], bob.next(waitMsg)["message"]})
	require.Equal(t, map[string]any{"type": "update", "message": "all"}, ann.next(waitMsg), "ann got nothing meant for bob")

	// The nodes know each other once their heartbeats met: at start, each says hello.
	require.Eventually(t, func() bool {
		p, err := tc.nodes[an].Presence(context.Background(), "/item/1")
		return err == nil && p.Sockets == 2 && len(p.Missing) == 0
	}, waitMsg, 20*time.Millisecond)
	survey, err := tc.nodes[bn].Sockets(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 2, survey.Count())
	require.Empty(t, survey.Missing)
	if kill == nil {
		return
	}

	kill()
	// The link's loss is noticed (a publish may still go out into a dying connection).
	require.Eventually(t, func() bool { return tc.nodes[an].brokerErr() != nil }, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	require.ErrorIs(t, tc.nodes[an].Publish("/item/1", "lost", nil), broker.ErrUnavailable)
	require.ErrorIs(t, tc.nodes[an].Broadcast("lost", nil), broker.ErrUnavailable)
	require.Less(t, time.Since(start), clusterPublishTimeout, "publishing fails fast while the broker is down")
	restart()
	for _, c := range []*rawClient{ann, bob} {
		require.Equal(t, 1012, c.closeCode(10*time.Second), "told to reconnect")
	}
	require.Eventually(t, func() bool { return tc.nodes[an].brokerErr() == nil && tc.nodes[bn].brokerErr() == nil }, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, tc.nodes[an].Discontinuities(), uint64(1))
	// The clients come back (through the proxy, to any node) and hear publications again.
	ann2, _ := tc.dial("ann")
	ann2.sub("/item/1")
	require.Eventually(t, func() bool {
		return tc.nodes[bn].Publish("/item/1", map[string]any{"again": true}, nil) == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": map[string]any{"again": true}}, ann2.next(waitMsg))
}

func TestClusterCoreMemory(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	testClusterCore(t, func(int) broker.Broker { return hub.Broker() }, hub.Kill, hub.Restart)
}

func TestClusterCoreNATS(t *testing.T) {
	t.Parallel()
	ns := testpeers.StartNATS(t)
	testClusterCore(t, func(int) broker.Broker { return natsbroker.New(ns.URL(), nil) }, ns.Shutdown, ns.Restart)
}

func TestClusterCoreRedis(t *testing.T) {
	t.Parallel()
	r := testpeers.StartRedis(t, nil)
	testClusterCore(t, func(int) broker.Broker {
		b, err := redisbroker.New(redisbroker.Options{Addrs: []string{r.Addr()}})
		require.NoError(t, err)
		return b
	}, r.Kill, r.Restart)
}

func TestClusterStartsOnceTheBrokerIsUp(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	hub.Kill()
	srv := NewServer(nil, &Options{Broker: hub.Broker(), Heartbeat: &Heartbeat{Disabled: true}})
	defer srv.Close()
	require.ErrorIs(t, srv.brokerErr(), broker.ErrUnavailable)
	require.ErrorIs(t, srv.Broadcast("x", nil), broker.ErrUnavailable)
	hub.Restart()
	require.Eventually(t, func() bool { return srv.brokerErr() == nil }, waitMsg, 10*time.Millisecond)
	require.NoError(t, srv.Broadcast("x", nil))
}

func TestClusterUserLeasesRenewAndExpireWithTheirNode(t *testing.T) {
	t.Parallel()
	// A short heartbeat makes short leases (three intervals); the Go client answers pings.
	hb := &Heartbeat{Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond}
	tc := newTestCluster(t, 2, func(_ int, o *Options) {
		o.Heartbeat = hb
		o.Auth.MaxConnectionsPerUserCluster = 1
	}, nil)
	connect := func() (*client.Client, error) {
		c, err := client.New(tc.url, &client.Options{Transports: []string{client.TransportWebSocket}, NoReconnect: true,
			Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}, Auth: &client.Auth{Headers: map[string]string{"authorization": "ann"}}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), waitMsg)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, nil
	}
	first, err := connect()
	require.NoError(t, err)
	holder := tc.nodeOf(first.ID())

	// Past two lease lifetimes, the lease is still held: the node renewed it.
	time.Sleep(2 * 3 * hb.Interval)
	for range 2 { // one attempt on each node
		_, err := connect()
		require.Equal(t, 503, client.StatusCode(err), "ann's second socket is refused: %v", err)
	}

	// The holder's link is cut: it can neither renew nor release, and its lease expires.
	tc.hub.Disconnect(tc.brokers[holder])
	require.Eventually(t, func() bool {
		c, err := connect()
		return err == nil && tc.nodeOf(c.ID()) != holder
	}, waitMsg, 50*time.Millisecond)
	tc.hub.Reconnect(tc.brokers[holder])
}

func TestClusterRevokeOfOneUserAndGroupLeave(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, nil, func(_ int, s *Server) {
		s.Subscription("/item/{id}", &SubscriptionOptions{Auth: &SubscriptionAuth{Index: true}})
	})
	ann, an := tc.dial("ann red")
	bob, bn := tc.dial("bob red")
	require.NotEqual(t, an, bn)
	ann.sub("/item/1")
	bob.sub("/item/1")

	// Only bob's subscription goes.
	require.NoError(t, tc.nodes[an].Revoke("/item/1", nil, &RevokeOptions{User: "bob"}))
	require.Equal(t, map[string]any{"type": "revoke", "path": "/item/1"}, bob.next(waitMsg))
	require.NoError(t, tc.nodes[an].Publish("/item/1", "still", nil))
	require.Equal(t, map[string]any{"type": "pub", "path": "/item/1", "message": "still"}, ann.next(waitMsg))

	// bob leaves red: the group's broadcasts no longer reach him.
	var bobSock *Socket
	tc.nodes[bn].EachSocket(func(s *Socket) bool { bobSock = s; return false })
	require.Equal(t, []string{"red"}, bobSock.Groups())
	bobSock.Leave("red")
	require.Empty(t, bobSock.Groups())
	require.NoError(t, tc.nodes[an].BroadcastGroup("red", "red only"))
	require.NoError(t, tc.nodes[an].Broadcast("marker", nil))
	require.Equal(t, map[string]any{"type": "update", "message": "red only"}, ann.next(waitMsg))
	require.Equal(t, map[string]any{"type": "update", "message": "marker"}, bob.next(waitMsg), "bob got nothing from red")

	// A node that closes takes its entries with it, and is not reported missing.
	_ = bob.conn.Close() // else the node's Close waits for bob's close frame
	tc.nodes[bn].Close()
	p, err := tc.nodes[an].Presence(context.Background(), "/item/1")
	require.NoError(t, err)
	require.Empty(t, p.Missing)
	require.Equal(t, []string{"ann"}, p.Users)
}

func TestClusterUserLimitRedis(t *testing.T) {
	t.Parallel()
	r := testpeers.StartRedis(t, nil)
	tc := newTestClusterOn(t, 2, func(int) broker.Broker {
		b, err := redisbroker.New(redisbroker.Options{Addrs: []string{r.Addr()}})
		require.NoError(t, err)
		return b
	}, nil, func(_ int, o *Options) { o.Auth.MaxConnectionsPerUserCluster = 1 }, nil)
	first, _ := tc.dial("ann")
	second := dialRaw(t, tc.url, nil)
	reply := second.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})
	require.Equal(t, float64(503), reply["statusCode"], "ann's second socket, on the other node, is past the limit: %v", reply)

	// Closing the first gives its lease back in Redis.
	_ = first.conn.Close()
	require.Eventually(t, func() bool {
		c := dialRaw(t, tc.url, nil)
		defer func() { _ = c.conn.Close() }()
		return c.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})["type"] == "hello"
	}, waitMsg, 20*time.Millisecond)
}

func TestClusterUserLeasesSurviveAnEngineRestart(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 2, func(_ int, o *Options) { o.Auth.MaxConnectionsPerUserCluster = 1 }, nil)
	tc.dial("ann")
	// The engine restarts and loses every lease (as Redis without persistence does); the
	// nodes take theirs again once they hear of the discontinuity.
	tc.hub.Kill()
	tc.hub.Restart()
	require.Eventually(t, func() bool {
		return tc.nodes[0].Discontinuities() == 1 && tc.nodes[1].Discontinuities() == 1
	}, waitMsg, 5*time.Millisecond)
	tc.nodes[0].cluster.work.drain() // the leases are taken again on the work queue
	tc.nodes[1].cluster.work.drain()
	for range 2 { // one attempt on each node
		c := dialRaw(t, tc.url, nil)
		reply := c.hello(map[string]any{"headers": map[string]string{"authorization": "ann"}})
		require.Equal(t, float64(503), reply["statusCode"], "ann's second socket is still past the limit: %v", reply)
	}
}

// TestClusterSurveyOfACrashedNode checks that with a node crashed (its link cut without a
// goodbye, so that the others still count it alive until NodeExpiry), Sockets and Presence
// without a deadline of their own return after the survey's 2 s, well before NodeExpiry
// (7 s), and name that node Missing.
func TestClusterSurveyOfACrashedNode(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3, nil, func(_ int, s *Server) {
		s.Subscription("/room/{id}", nil)
	})
	for _, u := range []string{"ann", "bob", "cid"} {
		c, _ := tc.dial(u)
		c.sub("/room/1")
	}
	require.Eventually(t, func() bool {
		p, err := tc.nodes[0].Presence(context.Background(), "/room/1")
		return err == nil && p.Sockets == 3 && len(p.Missing) == 0
	}, waitMsg, 20*time.Millisecond)

	tc.hub.Disconnect(tc.brokers[2])
	defer tc.hub.Reconnect(tc.brokers[2])
	type result struct {
		missing []string
		count   int
		err     error
	}
	sockets, presence := make(chan result, 1), make(chan result, 1)
	go func() {
		s, err := tc.nodes[0].Sockets(context.Background(), nil)
		sockets <- result{s.Missing, s.Count(), err}
	}()
	go func() {
		p, err := tc.nodes[1].Presence(context.Background(), "/room/1")
		presence <- result{p.Missing, p.Sockets, err}
	}()
	for name, ch := range map[string]chan result{"Sockets": sockets, "Presence": presence} {
		select {
		case r := <-ch:
			require.NoError(t, r.err, name)
			require.Equal(t, []string{"n2"}, r.missing, name)
			require.Equal(t, 2, r.count, name)
		case <-time.After(2*defaultSurveyTimeout + time.Second):
			t.Fatalf("%s waits for a crashed node past its timeout", name)
		}
	}
}

// FuzzEnvelope checks that decoding what the broker delivers never panics, and that what
// decodes encodes back to the same bytes.
func FuzzEnvelope(f *testing.F) {
	f.Add((&envelope{kind: kindPub, path: "/item/1", user: "ann", internal: []byte(`{"a":1}`), message: []byte(`"hi"`)}).encode())
	f.Add((&envelope{kind: kindRevokeUser, user: "bob"}).encode())
	f.Add([]byte{})
	f.Add([]byte{'p', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{'p', 5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := decodeEnvelope(e.encode())
		if err != nil {
			t.Fatalf("re-decoding %q: %v", b, err)
		}
		if again.kind != e.kind || again.path != e.path || again.user != e.user || string(again.internal) != string(e.internal) || string(again.message) != string(e.message) {
			t.Fatalf("%q decodes to %+v, which encodes to %+v", b, e, again)
		}
	})
}

// TestSerialQueueStop checks that a stopped queue runs what was queued before stop returns,
// and drops (and starts no goroutine for) what is pushed afterwards.
func TestSerialQueueStop(t *testing.T) {
	var wg sync.WaitGroup
	q := serialQueue{wg: &wg}
	release := make(chan struct{})
	var ran atomic.Int32
	q.push(func() { <-release; ran.Add(1) })
	q.push(func() { ran.Add(1) })
	stopped := make(chan struct{})
	go func() {
		q.stop()
		close(stopped)
	}()
	close(release)
	<-stopped
	require.Equal(t, int32(2), ran.Load(), "stop returned before the queued functions ran")
	require.False(t, q.pushOrDrop(func() { ran.Add(1) }, false), "a push after stop is taken")
	wg.Wait()
	require.Equal(t, int32(2), ran.Load())
	q.mu.Lock()
	defer q.mu.Unlock()
	require.False(t, q.running, "a goroutine started after stop")
}
