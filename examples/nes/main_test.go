package main

// The nes demo built once and run as processes: two nodes sharing a real Redis
// (Debian's redis-server) or an embedded nats-server, exercised with herald's Go nes client
// and plain HTTP.
//
//	go test -race -count=1 ./examples/nes/

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

const waitFor = 20 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// node is a running examples/nes.
type node struct {
	*testpeers.Program
	addr string
}

// startNode runs the demo on a free port with args, stopped (SIGTERM) when the test ends.
func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	env := append(os.Environ(), "HERALD_FALLBACK_KEY=examples/nes test key, 32 bytes or more")
	p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/nes"), testpeers.ProgramOptions{
		Name: "examples/nes " + strings.Join(args, " "),
		Args: append([]string{"-addr", "127.0.0.1:0"}, args...),
		Env:  env,
		Wait: waitFor,
	})
	n := &node{Program: p}
	t.Cleanup(func() {
		assert.Equal(t, 0, p.Stop(t, os.Interrupt, waitFor), "a drained node exits 0")
	})
	n.addr = p.Listening(t)
	return n
}

var plain = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

// do sends an HTTP request to the node and returns the status and body.
func (n *node) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.addr+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := plain.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// connect connects a nes client to the node over transport; pushes of no subscription
// (broadcasts) go to broadcasts.
func (n *node) connect(t *testing.T, transport string, broadcasts *heraldtest.Recorder[string]) *client.Client {
	t.Helper()
	c, err := client.New("ws://"+n.addr, &client.Options{
		Transports: []string{transport},
		Dial:       &websocket.DialOptions{Proxy: websocket.NoProxy},
		Timeout:    10 * time.Second,
		OnUpdate:   func(m json.RawMessage) { broadcasts.Add(string(m)) },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	return c
}

// TestCluster: two nodes on one broker; POST /publish and POST /broadcast on node A reach
// clients of node B over each transport, and node A's own; each node serves its metrics and
// its readiness.
func TestCluster(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"redis", "nats"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			var flag []string
			if engine == "redis" {
				flag = []string{"-redis", testpeers.StartRedis(t, nil).Addr()}
			} else {
				flag = []string{"-nats", testpeers.StartNATS(t).URL()}
			}
			a, b := startNode(t, flag...), startNode(t, flag...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			type sub struct {
				name       string
				updates    *heraldtest.Recorder[client.Update]
				broadcasts *heraldtest.Recorder[string]
			}
			var subs []sub
			for _, at := range []struct {
				name string
				n    *node
			}{{"b/websocket", b}, {"b/sse", b}, {"b/poll", b}, {"a/websocket", a}} {
				transport := at.name[2:]
				s := sub{name: at.name, updates: &heraldtest.Recorder[client.Update]{}, broadcasts: &heraldtest.Recorder[string]{}}
				c := at.n.connect(t, transport, s.broadcasts)
				_, err := c.Subscribe(ctx, "/item/5", func(u client.Update) { s.updates.Add(u) })
				require.NoError(t, err, at.name)
				subs = append(subs, s)
			}

			status, body := a.do(t, http.MethodPost, "/publish", `{"path":"/item/5","message":{"n":1,"from":"a"}}`)
			require.Equal(t, http.StatusOK, status, body)
			status, body = a.do(t, http.MethodPost, "/broadcast", `{"message":{"all":true}}`)
			require.Equal(t, http.StatusOK, status, body)
			for _, s := range subs {
				u := s.updates.Next(t)
				assert.Equal(t, "/item/5", u.Path, s.name)
				assert.JSONEq(t, `{"n":1,"from":"a"}`, string(u.Message), s.name)
				assert.JSONEq(t, `{"all":true}`, s.broadcasts.Next(t), s.name)
			}

			// Metrics: node B delivered the publication and the broadcast to its three
			// clients; node A published both.
			var want []string
			for _, tr := range []string{"websocket", "sse", "poll"} {
				want = append(want, `herald_connections{transport="`+tr+`"} 1`, `herald_deliveries_total{transport="`+tr+`"} 2`)
			}
			b.scrape(t, want...)
			a.scrape(t, "herald_publications_total 2", `herald_broker_publish_duration_seconds_count [1-9]\d*`)
			for _, n := range []*node{a, b} {
				status, body := n.do(t, http.MethodGet, "/readyz", "")
				assert.Equal(t, http.StatusOK, status, body)
				assert.Equal(t, "ready\n", body)
				status, _ = n.do(t, http.MethodGet, "/livez", "")
				assert.Equal(t, http.StatusOK, status)
			}
		})
	}
}

// TestOneNode: without -redis or -nats the demo is one node, as before, with its metrics.
func TestOneNode(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	assert.False(t, n.Stderr.Contains("HERALD_FALLBACK_KEY"), "one node needs no shared key")
	var broadcasts heraldtest.Recorder[string]
	n.connect(t, client.TransportWebSocket, &broadcasts)
	status, body := n.do(t, http.MethodPost, "/broadcast", `{"message":"hi"}`)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, `"hi"`, broadcasts.Next(t))
	n.scrape(t, `herald_connections{transport="websocket"} 1`, `herald_deliveries_total{transport="websocket"} 1`)
}

// scrape reads the node's /metrics until it has a line matching each regular expression of
// want (a count is updated once its message is on its way, so it may lag the client by a
// moment), for at most 10 s.
func (n *node) scrape(t *testing.T, want ...string) {
	t.Helper()
	res := make([]*regexp.Regexp, len(want))
	for i, w := range want {
		res[i] = regexp.MustCompile(`(?m)^` + strings.NewReplacer("{", `\{`, "}", `\}`).Replace(w) + `$`)
	}
	var page string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var status int
		status, page = n.do(t, http.MethodGet, "/metrics", "")
		require.Equal(t, http.StatusOK, status)
		missing := false
		for _, re := range res {
			missing = missing || !re.MatchString(page)
		}
		if !missing || time.Now().After(deadline) {
			break
		}
	}
	for _, re := range res {
		assert.Regexp(t, re, page, "%s's /metrics", n.addr)
	}
}

// TestBothBrokers: -redis and -nats together are a usage error.
func TestBothBrokers(t *testing.T) {
	t.Parallel()
	p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/nes"), testpeers.ProgramOptions{
		Name: "examples/nes -redis -nats",
		Args: []string{"-redis", "127.0.0.1:1", "-nats", "nats://127.0.0.1:1"},
	})
	assert.Equal(t, 2, p.Wait(t, waitFor))
	assert.True(t, p.Stderr.Contains("-redis and -nats are exclusive"), p.Stderr.String())
	assert.True(t, p.Stderr.Contains("usage: go run ./examples/nes"), p.Stderr.String())
}

// TestStartupErrors: what a newcomer gets wrong at start is answered with what to do: a
// usage error exits 2 with the usage line, a port in use names the fix and exits 1, and a
// broker that does not answer is named on standard error while the node keeps serving.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	bin := testpeers.BuildProgram(t, "./examples/nes")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-port", "8000"}, "flag provided but not defined: -port"},
		{"bad auth", []string{"-auth", "basic"}, `-auth must be direct, token or cookie, not "basic"`},
		{"bad heartbeat", []string{"-heartbeat-timeout", "20s"}, "-heartbeat-timeout (20s) must be positive and less than -heartbeat-interval (15s)"},
		{"an argument", []string{"127.0.0.1:8000"}, `unexpected argument "127.0.0.1:8000": everything is a flag`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "examples/nes " + strings.Join(tc.args, " "), Args: tc.args, Env: testpeers.CleanEnv()})
			assert.Equal(t, 2, p.Wait(t, waitFor))
			assert.True(t, p.Stderr.Contains(tc.want), p.Stderr.String())
			assert.True(t, p.Stderr.Contains("usage: go run ./examples/nes"), p.Stderr.String())
			assert.Empty(t, p.Stdout.String())
		})
	}

	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		first := startNode(t)
		p := testpeers.StartProgram(t, bin, testpeers.ProgramOptions{Name: "examples/nes on a used port", Args: []string{"-addr", first.addr}, Env: testpeers.CleanEnv()})
		assert.Equal(t, 1, p.Wait(t, waitFor))
		assert.True(t, p.Stderr.Contains("-addr "+first.addr+": "), p.Stderr.String())
		assert.True(t, p.Stderr.Contains("address already in use: another program (another demo?) listens there; stop it, or pass another -addr (port 0 picks a free one)"), p.Stderr.String())
	})

	t.Run("no Redis", func(t *testing.T) {
		t.Parallel()
		addr := testpeers.ClosedAddr(t)
		n := startNode(t, "-redis", addr)
		n.Stderr.WaitFor(t, "nes: no answer from the Redis server at "+addr)
		assert.True(t, n.Stderr.Contains("is it running? (redis-server"), n.Stderr.String())
		status, body := n.do(t, http.MethodGet, "/readyz", "")
		assert.Equal(t, http.StatusServiceUnavailable, status, body)
		status, _ = n.do(t, http.MethodGet, "/livez", "")
		assert.Equal(t, http.StatusOK, status, "the node keeps serving")
	})
}
