package main

// The chat on several nodes: two or three processes sharing a real Redis (Debian's
// redis-server) or an embedded nats-server.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
)

// testFallbackKey is the HERALD_FALLBACK_KEY the tests give every node.
const testFallbackKey = "examples/chat test key, 32 bytes or more"

// startNode runs one node of a chat with args (-redis or -nats among them) and the shared
// fallback key, on addr ("127.0.0.1:0" for a free port).
func startNode(t *testing.T, addr string, args ...string) *chatProc {
	t.Helper()
	p := &chatProc{Program: testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/chat"), testpeers.ProgramOptions{
		Name: "examples/chat " + strings.Join(args, " "),
		Args: append([]string{"-addr", addr}, args...),
		Env:  append(os.Environ(), "HERALD_FALLBACK_KEY="+testFallbackKey),
		Wait: waitFor,
	})}
	t.Cleanup(func() { assert.Equal(t, 0, p.stop(t), "a drained node exits 0") })
	p.addr = p.Listening(t)
	p.URL = "http://" + p.addr
	return p
}

// httpGet GETs path on the node over plain HTTP, as name, and decodes the JSON answer into v.
func (p *chatProc) httpGet(t *testing.T, path, name string, v any) {
	t.Helper()
	status, body := p.tryGet(t, path, name, v)
	require.Equal(t, http.StatusOK, status, "GET %s: %s", path, body)
}

// tryGet is httpGet, returning the status and body instead of requiring 200 (v is set only
// with 200).
func (p *chatProc) tryGet(t *testing.T, path, name string, v any) (int, string) {
	t.Helper()
	hc := httpClient(nil)
	defer hc.CloseIdleConnections()
	u := p.URL + path
	if name != "" {
		u += "?name=" + url.QueryEscape(name)
	}
	res, err := hc.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if res.StatusCode == http.StatusOK && v != nil {
		require.NoError(t, json.Unmarshal(b, v), "GET %s: %s", path, b)
	}
	return res.StatusCode, string(b)
}

// eventually retries check, which reports what it saw and whether it is what the test waits
// for, for at most 10 s, and fails the test with the last thing seen.
func eventually(t *testing.T, what string, check func() (any, bool)) {
	t.Helper()
	var seen any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if seen, ok = check(); ok {
			return
		}
	}
	t.Fatalf("%s: still %v after 10 s", what, seen)
}

// membersOn waits until the node shows users as room's members.
func membersOn(t *testing.T, p *chatProc, room string, users ...string) {
	t.Helper()
	eventually(t, p.addr+"'s members of "+room, func() (any, bool) {
		var m members
		if status, body := p.tryGet(t, "/rooms/"+room+"/members", "observer", &m); status != http.StatusOK {
			return body, false // a room this node has not heard of yet
		}
		return m.Members, slices.Equal(m.Members, users)
	})
}

// history is GET /rooms/{room}/messages's answer.
type history struct {
	Room     string   `json:"room"`
	Messages []update `json:"messages"`
}

// TestCluster: two nodes of one chat. Alice on node A and Bob on node B see each other join,
// talk, and leave; both nodes show the same members, lobby and history; a node started later
// shows who is there, and, with Redis, the history. Each node's /stats and /metrics count its
// own connections.
func TestCluster(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"redis", "nats"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			var flags []string
			if engine == "redis" {
				flags = []string{"-redis", testpeers.StartRedis(t, nil).Addr()}
			} else {
				flags = []string{"-nats", testpeers.StartNATS(t).URL()}
			}
			a := startNode(t, "127.0.0.1:0", flags...)
			b := startNode(t, "127.0.0.1:0", flags...)
			assert.False(t, a.Stderr.Contains(fallbackKeyEnv+" is unset"), "the key is set")
			const room = "lounge"

			alice := a.signIn(t, "Alice", client.TransportWebSocket)
			aliceFeed := heraldtest.Subscribe(t, alice, "/rooms/"+room)
			membersOn(t, b, room, "Alice") // node B heard of her joining on node A

			bob := b.signIn(t, "Bob", client.TransportSSE)
			bobFeed := heraldtest.Subscribe(t, bob, "/rooms/"+room)
			join := next(t, aliceFeed)
			assert.Equal(t, update{Type: "presence", Room: room, Seq: join.Seq, Event: "join", User: "Bob", Members: []string{"Alice", "Bob"}}, join)
			membersOn(t, a, room, "Alice", "Bob")
			membersOn(t, b, room, "Alice", "Bob")

			// The lobby counts both, on both nodes.
			for _, p := range []*chatProc{a, b} {
				eventually(t, p.addr+"'s lobby", func() (any, bool) {
					var l update
					p.httpGet(t, "/rooms", "observer", &l)
					for _, r := range l.Rooms {
						if r.Name == room {
							return l.Rooms, r.Members == 2
						}
					}
					return l.Rooms, false
				})
			}

			// A message posted on node A reaches Bob on node B, and one posted on B Alice.
			res, err := post(alice, room, map[string]string{"text": "Hi Bob, from node A"})
			require.NoError(t, err)
			var fromAlice update
			require.NoError(t, json.Unmarshal(res.Payload, &fromAlice))
			assert.Equal(t, fromAlice, next(t, bobFeed))
			assert.Equal(t, fromAlice, next(t, aliceFeed))
			res, err = post(bob, room, map[string]string{"text": "Hi Alice, from node B"})
			require.NoError(t, err)
			var fromBob update
			require.NoError(t, json.Unmarshal(res.Payload, &fromBob))
			assert.Equal(t, fromBob, next(t, aliceFeed))
			assert.Equal(t, fromBob, next(t, bobFeed))
			assert.Greater(t, fromBob.ID, fromAlice.ID, "ids grow across nodes")

			// Both nodes show the same history.
			want := []update{fromAlice, fromBob}
			for _, p := range []*chatProc{a, b} {
				eventually(t, p.addr+"'s history", func() (any, bool) {
					var h history
					p.httpGet(t, "/rooms/"+room+"/messages", "observer", &h)
					return h.Messages, assert.ObjectsAreEqual(want, h.Messages)
				})
			}

			// A node started now learns who is there; with Redis it shows the history too,
			// NATS keeping none.
			c := startNode(t, "127.0.0.1:0", flags...)
			membersOn(t, c, room, "Alice", "Bob")
			var h history
			c.httpGet(t, "/rooms/"+room+"/messages", "observer", &h)
			if engine == "redis" {
				assert.Equal(t, want, h.Messages, "node C reads the history Redis keeps")
			} else {
				assert.Empty(t, h.Messages, "NATS keeps no history: node C starts without")
			}

			// Each node counts its own connections.
			var s stats
			a.httpGet(t, "/stats", "", &s)
			assert.Equal(t, map[string]float64{"websocket": 1, "sse": 0, "poll": 0}, s.Connections, "node A")
			b.httpGet(t, "/stats", "", &s)
			assert.Equal(t, map[string]float64{"websocket": 0, "sse": 1, "poll": 0}, s.Connections, "node B")
			assert.Positive(t, s.Deliveries, "node B delivered the messages to Bob")
			metrics := scrape(t, b)
			assert.Contains(t, metrics, "\nherald_connections{transport=\"sse\"} 1\n")
			assert.Regexp(t, `\nherald_broker_publish_duration_seconds_count [1-9]`, metrics)

			// Bob leaves from node B: Alice hears it, and every node shows her alone.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, bob.Unsubscribe(ctx, "/rooms/"+room))
			leave := next(t, aliceFeed)
			assert.Equal(t, update{Type: "presence", Room: room, Seq: leave.Seq, Event: "leave", User: "Bob", Members: []string{"Alice"}}, leave)
			for _, p := range []*chatProc{a, b, c} {
				membersOn(t, p, room, "Alice")
			}
		})
	}
}

// scrape returns the node's /metrics page.
func scrape(t *testing.T, p *chatProc) string {
	t.Helper()
	hc := httpClient(nil)
	defer hc.CloseIdleConnections()
	res, err := hc.Get(p.URL + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	return string(b)
}

// TestBothBrokers: -redis and -nats together are a usage error.
func TestBothBrokers(t *testing.T) {
	t.Parallel()
	p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/chat"), testpeers.ProgramOptions{
		Name: "examples/chat -redis -nats",
		Args: []string{"-redis", "127.0.0.1:1", "-nats", "nats://127.0.0.1:1"},
	})
	assert.Equal(t, 2, p.Wait(t, waitFor))
	assert.True(t, p.Stderr.Contains("-redis and -nats are exclusive"), p.Stderr.String())
	assert.True(t, p.Stderr.Contains(usage), p.Stderr.String())
}

// ready waits until the node's /readyz answers want (200 or 503).
func ready(t *testing.T, p *chatProc, want int) {
	t.Helper()
	eventually(t, p.addr+"'s /readyz", func() (any, bool) {
		status, body := p.tryGet(t, "/readyz", "", nil)
		return body, status == want
	})
}

// TestClusterRecovery: what the nodes missed is made up for. A leave that happened while
// Redis was down reaches the other node once it is back; the people of a node killed without
// a goodbye are announced as gone by the others.
func TestClusterRecovery(t *testing.T) {
	t.Parallel()
	t.Run("broker restart", func(t *testing.T) {
		t.Parallel()
		redis := testpeers.StartRedis(t, nil)
		a := startNode(t, "127.0.0.1:0", "-redis", redis.Addr())
		b := startNode(t, "127.0.0.1:0", "-redis", redis.Addr())
		alice := a.signIn(t, "Alice", client.TransportWebSocket)
		aliceFeed := heraldtest.Subscribe(t, alice, "/rooms/general")
		bob := b.signIn(t, "Bob", client.TransportWebSocket)
		heraldtest.Subscribe(t, bob, "/rooms/general")
		assert.Equal(t, "Bob", next(t, aliceFeed).User, "Bob's joining")
		membersOn(t, a, "general", "Alice", "Bob")

		redis.Kill()
		ready(t, a, http.StatusServiceUnavailable)
		ready(t, b, http.StatusServiceUnavailable)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, bob.Unsubscribe(ctx, "/rooms/general"), "leaving needs no broker")
		membersOn(t, b, "general", "Alice")
		redis.Restart()
		ready(t, a, http.StatusOK)
		ready(t, b, http.StatusOK)

		// Node A hears from node B who is present through it, and announces Bob's leaving.
		membersOn(t, a, "general", "Alice")
		leave := next(t, aliceFeed)
		assert.Equal(t, update{Type: "presence", Room: "general", Seq: leave.Seq, Event: "leave", User: "Bob", Members: []string{"Alice"}}, leave)
	})
	t.Run("node killed", func(t *testing.T) {
		t.Parallel()
		redis := testpeers.StartRedis(t, nil)
		a := startNode(t, "127.0.0.1:0", "-redis", redis.Addr())
		alice := a.signIn(t, "Alice", client.TransportWebSocket)
		aliceFeed := heraldtest.Subscribe(t, alice, "/rooms/general")
		aliceFeed.Timeout = 20 * time.Second // Carol's leaving comes ~5 s after her node's death
		c := &chatProc{Program: testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/chat"), testpeers.ProgramOptions{
			Name: "examples/chat (killed)",
			Args: []string{"-addr", "127.0.0.1:0", "-redis", redis.Addr()},
			Env:  append(os.Environ(), "HERALD_FALLBACK_KEY="+testFallbackKey),
		})}
		c.addr = c.Listening(t)
		c.URL = "http://" + c.addr
		carol := c.signIn(t, "Carol", client.TransportWebSocket)
		heraldtest.Subscribe(t, carol, "/rooms/general")
		assert.Equal(t, "Carol", next(t, aliceFeed).User, "Carol's joining")

		c.Stop(t, syscall.SIGKILL, waitFor) // no goodbye: node A forgets Carol within ~5 s
		leave := next(t, aliceFeed)
		assert.Equal(t, update{Type: "presence", Room: "general", Seq: leave.Seq, Event: "leave", User: "Carol", Members: []string{"Alice"}}, leave)
		membersOn(t, a, "general", "Alice")
	})
}

// TestRecord: a room's history is kept in the order of ids whatever order the messages come
// in from the nodes, each message once, the newest keep of them.
func TestRecord(t *testing.T) {
	t.Parallel()
	r := &room{history: []message{}}
	for _, id := range []int64{10, 30, 20, 30, 5, 40} {
		r.record(message{ID: id}, 3)
	}
	var ids []int64
	for _, m := range r.history {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []int64{20, 30, 40}, ids)
	r.record(message{ID: 50}, 0)
	assert.Len(t, r.history, 3, "-history 0 keeps nothing more")
}
