package herald

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/websocket"
)

// TestFallbackAcrossNodes runs the Go client over the fallback (an event stream down, POSTs
// up) through three herald nodes that a proxy takes in turn for every request: requests and
// publications on every node reach it while its stream ends every 150 ms and resumes on
// another node (relayed from the session's node); then the session's node drops off the
// broker and the network, and the client reconnects through the others with its
// subscription.
func TestFallbackAcrossNodes(t *testing.T) {
	t.Parallel()
	hub := broker.NewMemoryHub()
	type node struct {
		srv  *Server
		hs   *httptest.Server
		link broker.Broker
		up   bool
	}
	var (
		mu      sync.Mutex
		nodes   []*node
		next    int
		streams = map[int]int{} // stream requests by node
	)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "pong") })
	for i := range 3 {
		link := hub.Broker()
		srv := NewServer(app, &Options{Broker: link, Node: fmt.Sprintf("f%d", i), Heartbeat: &Heartbeat{Disabled: true},
			Fallback: &fallback.Options{Key: []byte("the fallback key of every node of the test"),
				MaxStreamAge: 150 * time.Millisecond, KeepAlive: 100 * time.Millisecond,
				RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}})
		srv.Subscription("/items", nil)
		hs := httptest.NewServer(srv)
		hs.Config.ErrorLog = log.New(io.Discard, "", 0)
		t.Cleanup(func() {
			srv.Close()
			hs.Close()
		})
		nodes = append(nodes, &node{srv: srv, hs: hs, link: link, up: true})
	}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			mu.Lock()
			defer mu.Unlock()
			for {
				n := nodes[next%len(nodes)]
				next++
				if n.up {
					if strings.HasSuffix(pr.In.URL.Path, "/nes/sse") {
						streams[(next-1)%len(nodes)]++
					}
					u, _ := url.Parse(n.hs.URL)
					pr.SetURL(u)
					return
				}
			}
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	})
	t.Cleanup(proxy.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { // every node's link is up and hears the others
		for _, n := range nodes {
			if n.srv.brokerErr() != nil || len(n.srv.cluster.node.Nodes()) != len(nodes) {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond)

	connects := make(chan client.ConnectEvent, 16)
	c, err := client.New("ws"+strings.TrimPrefix(proxy.URL, "http")+"/", &client.Options{
		Transports: []string{client.TransportSSE},
		Dial:       &websocket.DialOptions{Proxy: websocket.NoProxy},
		Backoff:    client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		OnConnect:  func(e client.ConnectEvent) { connects <- e },
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Connect(ctx))
	<-connects
	items := make(chan string, 256)
	_, err = c.Subscribe(ctx, "/items", func(u client.Update) {
		var s string
		_ = json.Unmarshal(u.Message, &s)
		items <- s
	})
	require.NoError(t, err)
	// A subscription is confirmed on the socket's node; the others hear of the path through
	// the broker once that node has joined its topic, which the publications below wait for.

	for i := range 60 {
		res, err := c.Request(ctx, "/ping")
		require.NoError(t, err, "request %d", i)
		require.JSONEq(t, `"pong"`, string(res.Payload))
		item := fmt.Sprintf("item %d", i)
		require.NoError(t, nodes[i%3].srv.Publish("/items", item, nil))
		select {
		case got := <-items:
			require.Equal(t, item, got)
		case <-ctx.Done():
			t.Fatalf("item %d did not arrive", i)
		}
		if i%10 == 0 {
			time.Sleep(160 * time.Millisecond) // the stream rotates, and resumes elsewhere
		}
	}

	mu.Lock()
	require.GreaterOrEqual(t, len(streams), 2, "stream requests by node: %v", streams)
	mu.Unlock()

	// The session's node falls off the broker and the network.
	owner := -1
	for i, n := range nodes {
		n.srv.EachSocket(func(s *Socket) bool {
			if s.ID == c.ID() {
				owner = i
			}
			return owner < 0
		})
	}
	require.GreaterOrEqual(t, owner, 0, "the client's socket is on no node")
	mu.Lock()
	nodes[owner].up = false
	mu.Unlock()
	hub.Disconnect(nodes[owner].link)
	nodes[owner].hs.CloseClientConnections()
	select {
	case e := <-connects:
		require.True(t, e.Reconnect)
	case <-ctx.Done():
		t.Fatal("the client did not reconnect after its node was lost")
	}
	survivor := (owner + 1) % 3
	require.Eventually(t, func() bool {
		require.NoError(t, nodes[survivor].srv.Publish("/items", "after", nil))
		select {
		case got := <-items:
			return got == "after"
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond, "the subscription did not come back")
}
