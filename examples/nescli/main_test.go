package main

// The nescli program, built once and run as a process, against herald's nes demo
// (examples/nes, which testpeers.StartNes builds once too and runs as a process) and, for what
// the demo cannot do (revoke a path everywhere, refuse a resubscription, token auth, hang),
// against nes servers in this test process (heraldtest). Nothing here needs Node.
//
//	go test -race -count=1 ./examples/nescli/

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/heraldtest"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// runWait bounds each run of the program.
const runWait = 30 * time.Second

// johnBasic is the demo's account, john:secret, as a Basic authorization header.
var johnBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte("john:secret"))

// TestMain fails the tests when a goroutine outlives them: the servers run in this process
// (heraldtest, the proxy) must leave nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// proc is a running nescli.
type proc struct {
	*testpeers.Program
	t    *testing.T
	args []string
}

// start starts nescli with args, in a clean proxy environment plus env. The test's end kills
// it if it is still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/nescli"), testpeers.ProgramOptions{
		Name: fmt.Sprint("nescli ", args),
		Args: args,
		Env:  append(testpeers.CleanEnv(), env...),
	})
	return &proc{Program: p, t: t, args: args}
}

// wait waits for the program to exit and returns its exit code, after checking that the race
// detector had nothing to say.
func (p *proc) wait() int {
	p.t.Helper()
	code := p.Wait(p.t, runWait)
	p.t.Logf("nescli %v: exit %d\nstderr:\n%s", p.args, code, p.Stderr.String())
	return code
}

// result is what one run of the program did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs nescli to its end.
func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	p := start(t, env, args...)
	code := p.wait()
	return result{code: code, stdout: p.Stdout.String(), stderr: p.Stderr.String()}
}

// startDemo starts herald's nes demo (examples/nes) with its defaults on a free port; the
// test's end stops it.
func startDemo(t *testing.T) *testpeers.NesServer {
	t.Helper()
	return testpeers.StartNes(t, testpeers.HeraldNes, testpeers.NesOptions{})
}

// publish publishes message on path through the demo's POST /publish, over plain HTTP.
func publish(t *testing.T, d *testpeers.NesServer, path string, message any) {
	t.Helper()
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // what the test sends is what nescli should print
	require.NoError(t, enc.Encode(map[string]any{"path": path, "message": message}))
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(d.HTTPURL+"/publish", "application/json", &body)
	require.NoError(t, err)
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", reply)
}

func TestRequestAndMessage(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, tc := range []struct {
		name   string
		args   []string // before the URL: flags; after it: the command
		cmd    []string
		code   int
		stdout string
		stderr []string
	}{
		{name: "route id", cmd: []string{"request", "hello"}, stdout: `"world!"` + "\n"},
		{name: "path", cmd: []string{"request", "/h"}, stdout: `"world!"` + "\n"},
		{name: "POST with a payload, re-encoded compactly as it was",
			args: []string{"-method", "POST", "-payload", `{ "a" : [1, 2.50, "<&>"], "b": {"c": null} }`},
			cmd:  []string{"request", "/echo"}, stdout: `{"a":[1,2.50,"<&>"],"b":{"c":null}}` + "\n"},
		{name: "lower-case method", args: []string{"-method", "post", "-payload", `[true]`},
			cmd: []string{"request", "/echo"}, stdout: `[true]` + "\n"},
		{name: "no content", args: []string{"-method", "POST"}, cmd: []string{"request", "/echo"}, stdout: "null\n"},
		{name: "404", cmd: []string{"request", "/nope"}, code: 1, stderr: []string{"404", "Not Found"}},
		{name: "404 by id", cmd: []string{"request", "nope"}, code: 1, stderr: []string{"404", "Not Found"}},
		{name: "500", cmd: []string{"request", "/boom"}, code: 1,
			stderr: []string{"500", "An internal server error occurred"}},
		{name: "direct auth", args: []string{"-H", "Authorization: " + johnBasic},
			cmd: []string{"request", "authhello"}, stdout: `"Hello John Doe"` + "\n"},
		{name: "no auth", cmd: []string{"request", "authhello"}, code: 1, stderr: []string{"401"}},
		{name: "wrong password", args: []string{"-H", "authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("john:nope"))},
			cmd: []string{"request", "authhello"}, code: 1, stderr: []string{"connect to ", "401", "Bad username or password"}},
		{name: "message", cmd: []string{"message", `{"hi": [1, 2]}`}, stdout: `{"echo":{"hi":[1,2]}}` + "\n"},
		{name: "message string", cmd: []string{"message", `"-x"`}, stdout: `{"echo":"-x"}` + "\n"},
		{name: "proxy direct", args: []string{"-proxy", "direct"}, cmd: []string{"request", "hello"}, stdout: `"world!"` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, append(append(tc.args, d.URL), tc.cmd...)...)
			assert.Equal(t, tc.code, r.code)
			assert.Equal(t, tc.stdout, r.stdout, "standard output holds the JSON line only")
			for _, s := range tc.stderr {
				assert.Contains(t, r.stderr, s)
			}
			if !slices.Contains(tc.stderr, "connect to ") {
				assert.Contains(t, r.stderr, "nescli: connected to "+d.URL+" (socket ")
				assert.Contains(t, r.stderr, ", websocket)")
			}
		})
	}
}

// TestTransports: -transport picks what carries the connection, and standard error names it;
// the answers are the same over each.
func TestTransports(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, tr := range []string{"websocket", "sse", "poll"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, "-transport", tr, d.URL, "request", "hello")
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, `"world!"`+"\n", r.stdout)
			assert.Contains(t, r.stderr, ", "+tr+")")
			r = runCLI(t, nil, "-transport", tr, "-method", "POST", "-payload", `{"n":[1,2]}`, d.URL, "request", "/echo")
			assert.Equal(t, `{"n":[1,2]}`+"\n", r.stdout)
		})
	}
	r := runCLI(t, nil, "-transport", "carrier-pigeon", d.URL, "request", "hello")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "want auto, websocket, sse or poll")
}

// TestThroughSquid: Debian's squid as the environment's HTTP_PROXY refuses the WebSocket
// tunnel, and nescli ends up on the event stream through it, saying so on standard error.
func TestThroughSquid(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	squid := testpeers.StartSquid(t)
	r := runCLI(t, []string{"HTTP_PROXY=" + squid}, d.URL, "request", "hello")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, `"world!"`+"\n", r.stdout)
	assert.Contains(t, r.stderr, ", sse)", "the connection ended up on the event stream")

	r = runCLI(t, []string{"HTTP_PROXY=" + squid}, "-transport", "websocket", d.URL, "request", "hello")
	assert.Equal(t, 1, r.code, "WebSocket alone cannot pass squid")
	assert.Contains(t, r.stderr, "403")
}

func TestSubscribeCount(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	p := start(t, nil, "-count", "2", d.URL, "subscribe", "/item/5")
	p.Stderr.WaitFor(t, "subscribed to /item/5")
	// Published by a second nescli over nes, and over plain HTTP.
	r := runCLI(t, nil, "-method", "POST", "-payload", `{"path": "/item/5", "message": {"id": 5, "status": "<pending>"}}`, d.URL, "request", "/publish")
	require.Equal(t, 0, r.code)
	assert.Equal(t, `{"ok":true}`+"\n", r.stdout)
	publish(t, d, "/item/6", "not this one")
	publish(t, d, "/item/5", []any{"complete", 1.50})
	assert.Equal(t, 0, p.wait(), "exits after -count updates")
	assert.Equal(t, `{"path":"/item/5","message":{"id":5,"status":"<pending>"}}`+"\n"+
		`{"path":"/item/5","message":["complete",1.5]}`+"\n", p.Stdout.String())
}

func TestSubscribeSeveralPaths(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	p := start(t, nil, "-count", "3", d.URL, "subscribe", "/items", "/item/1", "/items")
	p.Stderr.WaitFor(t, "subscribed to /items")
	p.Stderr.WaitFor(t, "subscribed to /item/1")
	publish(t, d, "/item/1", 1)
	publish(t, d, "/items", "all")
	publish(t, d, "/item/2", 2)
	publish(t, d, "/item/1", "again")
	require.Equal(t, 0, p.wait())
	// Each path's updates come in order; the two paths' lines may interleave either way.
	lines := strings.Split(strings.TrimSuffix(p.Stdout.String(), "\n"), "\n")
	assert.ElementsMatch(t, []string{`{"path":"/item/1","message":1}`, `{"path":"/items","message":"all"}`,
		`{"path":"/item/1","message":"again"}`}, lines, "a path given twice is subscribed once")
	assert.Less(t, slices.Index(lines, `{"path":"/item/1","message":1}`), slices.Index(lines, `{"path":"/item/1","message":"again"}`))
}

func TestSubscribeAcrossRestarts(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	p := start(t, nil, "-count", "2", d.URL, "subscribe", "/item/7")
	p.Stderr.WaitFor(t, "subscribed to /item/7")
	publish(t, d, "/item/7", "before")
	assert.Equal(t, []string{`{"path":"/item/7","message":"before"}`}, p.Stdout.WaitLines(t, 1))

	d.Stop(t) // the server goes away; nescli keeps trying
	p.Stderr.WaitFor(t, "; reconnecting")
	d.Start(t) // back on the same port
	p.Stderr.WaitFor(t, "nescli: reconnected (socket ")
	publish(t, d, "/item/7", "after")
	assert.Equal(t, 0, p.wait())
	assert.Equal(t, `{"path":"/item/7","message":"before"}`+"\n"+`{"path":"/item/7","message":"after"}`+"\n", p.Stdout.String())
	assert.Contains(t, p.Stderr.String(), "nescli: disconnected: ")
}

func TestSubscribeUntilInterrupted(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	p := start(t, nil, d.URL, "subscribe", "/items")
	p.Stderr.WaitFor(t, "subscribed to /items")
	publish(t, d, "/items", map[string]string{"html": "<b>&</b>"})
	assert.Equal(t, []string{`{"path":"/items","message":{"html":"<b>&</b>"}}`}, p.Stdout.WaitLines(t, 1))
	require.NoError(t, p.Signal(os.Interrupt))
	assert.Equal(t, 0, p.wait(), "an interrupt ends a subscription normally")
	assert.Equal(t, `{"path":"/items","message":{"html":"<b>&</b>"}}`+"\n", p.Stdout.String())
	assert.NotContains(t, p.Stderr.String(), "disconnected", "nescli's own close is not reported as a loss")
}

// gated is a nes server whose /gate/{id} subscriptions are refused while closed is set.
func gated(t *testing.T) (*heraldtest.Server, *atomic.Bool) {
	var closed atomic.Bool
	nes := herald.NewServer(http.NotFoundHandler(), nil)
	nes.Subscription("/gate/{id}", &herald.SubscriptionOptions{
		OnSubscribe: func(ctx context.Context, s *herald.Socket, path string, params map[string]string) error {
			if closed.Load() {
				return herald.NewError(http.StatusForbidden, "The gate is closed")
			}
			return nil
		},
	})
	return heraldtest.NewServer(t, nes), &closed
}

func TestSubscribeRevoked(t *testing.T) {
	t.Parallel()
	srv, _ := gated(t)
	p := start(t, nil, srv.URL, "subscribe", "/gate/1", "/gate/2")
	p.Stderr.WaitFor(t, "subscribed to /gate/2")
	revoke := func(path string, message any) {
		n := 0
		srv.Nes.EachSubscriber(path, "", func(s *herald.Socket) bool {
			require.NoError(t, s.Revoke(context.Background(), path, message))
			n++
			return true
		})
		require.Equal(t, 1, n)
	}
	revoke("/gate/1", map[string]any{"bye": true, "why": "<closed>"})
	assert.Equal(t, []string{`{"path":"/gate/1","revoked":true,"message":{"bye":true,"why":"<closed>"}}`}, p.Stdout.WaitLines(t, 1))
	revoke("/gate/2", nil)
	assert.Equal(t, 0, p.wait(), "no subscription is left, and the server ended them")
	assert.Equal(t, `{"path":"/gate/1","revoked":true,"message":{"bye":true,"why":"<closed>"}}`+"\n"+
		`{"path":"/gate/2","revoked":true}`+"\n", p.Stdout.String())
	assert.Contains(t, p.Stderr.String(), "no subscription left")
}

func TestSubscribeRefusedOnReconnect(t *testing.T) {
	t.Parallel()
	srv, closed := gated(t)
	p := start(t, nil, srv.URL, "subscribe", "/gate/1")
	p.Stderr.WaitFor(t, "subscribed to /gate/1")
	closed.Store(true)
	srv.DisconnectAll()
	assert.Equal(t, 1, p.wait(), "the one subscription was refused")
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(p.Stdout.String()), &line), p.Stdout.String())
	assert.Equal(t, "/gate/1", line["path"])
	assert.Equal(t, true, line["revoked"])
	assert.Contains(t, line["error"], "403")
	assert.Contains(t, line["error"], "The gate is closed")
	assert.NotContains(t, line, "message")
	assert.Contains(t, p.Stderr.String(), "; reconnecting")
}

func TestSubscribeRefused(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	r := runCLI(t, nil, d.URL, "subscribe", "/items", "/nowhere")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "subscribe to /nowhere: 404")
}

func TestToken(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	nes := herald.NewServer(mux, &herald.Options{Auth: &herald.AuthOptions{
		Type:     "token",
		Password: "a password of at least thirty-two bytes",
		Authenticate: func(r *http.Request) (*herald.Credentials, error) {
			if r.Header.Get("Authorization") != johnBasic {
				return nil, nil
			}
			return &herald.Credentials{User: "john"}, nil
		},
	}})
	mux.Handle("GET /who", nes.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"user": herald.CredentialsFrom(r.Context()).User})
	})))
	srv := heraldtest.NewServer(t, nes)

	req, err := http.NewRequest(http.MethodGet, srv.HTTPURL+"/nes/auth", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", johnBasic)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	var answer struct{ Status, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	resp.Body.Close()
	require.Equal(t, "authenticated", answer.Status)

	r := runCLI(t, nil, "-token", answer.Token, srv.URL, "request", "/who")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, `{"user":"john"}`+"\n", r.stdout)
	r = runCLI(t, nil, "-token", answer.Token+"x", srv.URL, "request", "/who")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "401")
	assert.Contains(t, r.stderr, "Invalid token")
	assert.Empty(t, r.stdout)
}

// connectProxy is an HTTP CONNECT proxy that records the targets it was asked for.
type connectProxy struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func startProxy(t *testing.T) *connectProxy {
	p := &connectProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.seen = append(p.seen, r.Host)
		p.mu.Unlock()
		upstream, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		_, _ = down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() {
			_, _ = io.Copy(upstream, buf)
			upstream.Close()
		}()
		_, _ = io.Copy(down, upstream)
		down.Close()
	}))
	t.Cleanup(srv.Close)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *connectProxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func TestProxy(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	target := strings.TrimPrefix(d.URL, "ws://")
	proxy := startProxy(t)
	deadProxy := "http://" + testpeers.ClosedAddr(t)

	r := runCLI(t, nil, "-proxy", "http://"+proxy.addr, d.URL, "request", "hello")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, `"world!"`+"\n", r.stdout)
	assert.Equal(t, []string{target}, proxy.targets(), "-proxy was used")

	r = runCLI(t, []string{"HTTP_PROXY=http://" + proxy.addr}, d.URL, "request", "hello")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, []string{target, target}, proxy.targets(), "the environment's proxy was used")

	r = runCLI(t, []string{"HTTP_PROXY=" + deadProxy}, d.URL, "request", "hello")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "connect to "+d.URL)
	assert.Contains(t, r.stderr, "proxy")
	assert.Empty(t, r.stdout)

	r = runCLI(t, []string{"HTTP_PROXY=" + deadProxy}, "-proxy", "direct", d.URL, "request", "hello")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, `"world!"`+"\n", r.stdout)
	assert.Len(t, proxy.targets(), 2, "-proxy direct ignores the environment")
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	// A WebSocket server that reads and never answers, the hello included.
	silent := httptest.NewServer(&websocket.Handler{Accept: func(c *websocket.Conn) {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}})
	t.Cleanup(silent.Close)
	silentURL := "ws" + strings.TrimPrefix(silent.URL, "http")

	// A nes server whose /slow route answers when the test ends.
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := heraldtest.NewServer(t, herald.NewServer(mux, nil))
	t.Cleanup(func() { close(release) })

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "hello", args: []string{silentURL, "request", "hello"}, want: "connect to " + silentURL},
		{name: "subscribe's hello", args: []string{silentURL, "subscribe", "/items"}, want: "connect to " + silentURL},
		{name: "request", args: []string{srv.URL, "request", "/slow"}, want: "GET /slow: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			begin := time.Now()
			r := runCLI(t, nil, append([]string{"-timeout", "300ms"}, tc.args...)...)
			assert.Equal(t, 1, r.code)
			assert.Less(t, time.Since(begin), 10*time.Second)
			assert.Contains(t, r.stderr, tc.want)
			assert.Contains(t, r.stderr, "timed out")
			assert.Empty(t, r.stdout)
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	t.Run("-h", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, nil, "-h")
		assert.Equal(t, 0, r.code, "-h asks for the usage")
		assert.Contains(t, r.stderr, "usage: nescli [-H 'Name: value']...")
		assert.Contains(t, r.stderr, "-transport string")
		assert.Empty(t, r.stdout)
	})
	const u = "ws://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		want string // in standard error, besides the usage line
	}{
		{name: "nothing"},
		{name: "no command", args: []string{u}},
		{name: "unknown command", args: []string{u, "publish", "/x"}},
		{name: "request without a path", args: []string{u, "request"}},
		{name: "request with two paths", args: []string{u, "request", "/a", "/b"}},
		{name: "message without JSON", args: []string{u, "message"}},
		{name: "message not JSON", args: []string{u, "message", "{oops"}},
		{name: "subscribe without a path", args: []string{u, "subscribe"}},
		{name: "subscribe to no path", args: []string{u, "subscribe", "items"}},
		{name: "payload not JSON", args: []string{"-payload", "{", u, "request", "/echo"}},
		{name: "payload for a message", args: []string{"-payload", "1", u, "message", "1"}},
		{name: "method for subscribe", args: []string{"-method", "POST", u, "subscribe", "/a"}},
		{name: "count for a request", args: []string{"-count", "1", u, "request", "/a"}},
		{name: "negative count", args: []string{"-count", "-1", u, "subscribe", "/a"}},
		{name: "zero timeout", args: []string{"-timeout", "0s", u, "request", "/a"}},
		{name: "header without a colon", args: []string{"-H", "authorization Basic x", u, "request", "/a"}},
		{name: "token and headers", args: []string{"-token", "t", "-H", "a: b", u, "request", "/a"}},
		{name: "unknown flag", args: []string{"-x", u, "request", "/a"}},
		{name: "flag after the URL", args: []string{u, "-count", "1", "subscribe", "/a"}, want: "nescli: -count: flags go before the URL"},
		{name: "flag after the command", args: []string{u, "request", "/a", "-method=POST"}, want: "nescli: -method=POST: flags go before the URL"},
		{name: "a negative number is a message", args: []string{u, "message", "-1", "x"}, want: "message takes one JSON value"},
		{name: "not a nes URL", args: []string{"ftp://127.0.0.1:1", "request", "/a"}},
		{name: "no scheme", args: []string{"127.0.0.1:1", "request", "/a"}, want: `nescli: "127.0.0.1:1" is not a URL: want ws://HOST:PORT (or wss://, http://, https://), such as ws://127.0.0.1:1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, tc.args...)
			assert.Equal(t, 2, r.code)
			assert.Contains(t, r.stderr, "usage: nescli [-H 'Name: value']...")
			assert.Contains(t, r.stderr, tc.want)
			assert.Empty(t, r.stdout)
		})
	}
}

// TestNothingListens: a URL where no server runs says so, and how to start one, on every
// transport.
func TestNothingListens(t *testing.T) {
	t.Parallel()
	url := "ws://" + testpeers.ClosedAddr(t) // connections are refused
	for _, transport := range []string{"auto", "websocket", "sse", "poll"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, nil, "-transport", transport, url, "request", "hello")
			assert.Equal(t, 1, r.code)
			assert.Contains(t, r.stderr, "connection refused")
			assert.Contains(t, r.stderr, "nescli: nothing listens at "+url+": is the server running? (go run ./examples/nes starts one")
			assert.Empty(t, r.stdout)
		})
	}
}
