package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
)

// demoGuide is the page whose nginx configuration TestNginx runs.
const demoGuide = "../../docs/several-nodes-demo.md"

// startDemoNginx runs the guide's configuration in Debian's nginx in front of the nodes at
// addrs (two): its http context's map, upstream and server, with the nodes' addresses and a
// free port put in, and without the lines that place its files (StartNginxSite places them).
// Every line it replaces must be in the guide exactly once.
func startDemoNginx(t *testing.T, addrs [2]string) string {
	t.Helper()
	conf := testpeers.CodeBlock(t, demoGuide, "nginx")
	_, httpCtx, ok := strings.Cut(conf, "http {\n")
	require.True(t, ok, "the guide's configuration has no http block:\n%s", conf)
	httpCtx = strings.TrimSpace(httpCtx)
	httpCtx = strings.TrimSuffix(httpCtx, "}") // the http block's end
	var kept []string
	for _, line := range strings.Split(httpCtx, "\n") {
		if !strings.Contains(line, "/tmp/herald-demo") && !strings.Contains(line, "mime.types") {
			kept = append(kept, line)
		}
	}
	site := testpeers.Substitute(t, strings.Join(kept, "\n"),
		"server 127.0.0.1:8001;", "server "+addrs[0]+";",
		"server 127.0.0.1:8002;", "server "+addrs[1]+";",
		"listen 127.0.0.1:8000;", "listen 127.0.0.1:{{PORT}};",
	)
	return testpeers.StartNginxSite(t, site)
}

// TestNginx: two chat nodes over Redis behind the guide's nginx, which sends each request to
// the next node. Carol (WebSocket), Bob (event stream) and Alice (long-polls), all through
// nginx, talk in one room: the fallback's sessions work with their requests spread over both
// nodes, and the history read through nginx, from either node, is the same.
func TestNginx(t *testing.T) {
	t.Parallel()
	redis := testpeers.StartRedis(t, nil)
	a := startNode(t, "127.0.0.1:0", "-redis", redis.Addr())
	b := startNode(t, "127.0.0.1:0", "-redis", redis.Addr())
	base := startDemoNginx(t, [2]string{a.addr, b.addr})
	proxy := &chatProc{addr: strings.TrimPrefix(base, "http://"), URL: base}
	const room = "behind-nginx"

	type person struct {
		name string
		c    *client.Client
		feed *heraldtest.Recorder[client.Update]
	}
	var people []person
	for _, p := range []struct{ name, transport string }{
		{"Carol", client.TransportWebSocket}, {"Bob", client.TransportSSE}, {"Alice", client.TransportPoll},
	} {
		c := proxy.signIn(t, p.name, p.transport)
		people = append(people, person{p.name, c, heraldtest.Subscribe(t, c, "/rooms/"+room)})
	}
	for _, p := range []*chatProc{a, b} {
		membersOn(t, p, room, "Alice", "Bob", "Carol")
	}

	// Each posts in turn; everyone hears each message, in order.
	var sent []update
	for _, from := range people {
		res, err := post(from.c, room, map[string]string{"text": "Hello from " + from.name})
		require.NoError(t, err, from.name)
		assert.Equal(t, http.StatusCreated, res.StatusCode)
		var m update
		require.NoError(t, json.Unmarshal(res.Payload, &m))
		sent = append(sent, m)
	}
	for _, p := range people {
		var got []update
		for len(got) < len(sent) {
			if u := next(t, p.feed); u.Type == "message" {
				got = append(got, u)
			}
		}
		assert.Equal(t, sent, got, "%s's feed", p.name)
	}

	// The history is the same on both nodes, read directly and through nginx (which sends
	// each read to the next node).
	for _, p := range []*chatProc{a, b} {
		var h history
		p.httpGet(t, "/rooms/"+room+"/messages", "observer", &h)
		assert.Equal(t, sent, h.Messages, "%s's history", p.addr)
	}
	for range 2 {
		var h history
		get(t, people[2].c, "/rooms/"+room+"/messages", &h)
		assert.Equal(t, sent, h.Messages, "through nginx")
	}

	// Each connection is counted once, by the node that holds it.
	var total stats
	total.Connections = map[string]float64{}
	for _, p := range []*chatProc{a, b} {
		var s stats
		p.httpGet(t, "/stats", "", &s)
		for k, v := range s.Connections {
			total.Connections[k] += v
		}
	}
	assert.Equal(t, map[string]float64{"websocket": 1, "sse": 1, "poll": 1}, total.Connections)
}
