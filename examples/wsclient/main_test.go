package main

// The wsclient program, built once and run as a process, against real peers: Node's ws server
// (internal/testpeers/ws-server-dial.js), herald's own server, the `proxy` package as an HTTP
// CONNECT proxy with credentials, and over wss:// with a test certificate.
//
//	HERALD_REQUIRE_PEERS=1 go test -race -count=1 ./examples/wsclient/

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// runWait bounds each run of the program.
const runWait = 30 * time.Second

// result is what one run of the program did.
type result struct {
	code           int
	stdout, stderr string
}

// runClient runs the program with args and stdin, with a clean proxy environment plus env.
func runClient(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	return runWith(t, strings.NewReader(stdin), env, args...)
}

// runWith is runClient with any standard input.
func runWith(t *testing.T, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	p := testpeers.StartProgram(t, testpeers.BuildProgram(t, "./examples/wsclient"), testpeers.ProgramOptions{
		Name:  fmt.Sprint("wsclient ", args),
		Args:  args,
		Env:   append(testpeers.CleanEnv(), env...),
		Stdin: stdin,
	})
	r := result{code: p.Wait(t, runWait), stdout: p.Stdout.String(), stderr: p.Stderr.String()}
	t.Logf("wsclient %v: exit %d\nstderr:\n%s", args, r.code, r.stderr)
	return r
}

func TestPeerWSClientEcho(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "ws-server-dial.js")
	input := "first line\nsecond — ünïcode 🎉\n\nlast\n"
	r := runClient(t, input, nil, "ws://"+addr+"/echo")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, input, r.stdout, "every line echoed, in order, each on its own line")
	assert.Contains(t, r.stderr, "wsclient: closed by us: 1000 (normal closure), end of input")
	assert.NotContains(t, r.stderr, "closed by peer", "the client closed, not the server")
}

func TestPeerWSClientProtocolsAndHeaders(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "ws-server-dial.js")
	r := runClient(t, "", nil, "-protocol", "foo", "-protocol", "amqp", "-H", "X-Herald: yes", "-H", "Origin: https://app.example", "ws://"+addr+"/headers")
	require.Equal(t, 0, r.code)
	var h map[string]string
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &h), r.stdout)
	assert.Equal(t, "yes", h["x-herald"])
	assert.Equal(t, "https://app.example", h["origin"])
	assert.Equal(t, "foo, amqp", h["sec-websocket-protocol"])
	assert.Contains(t, r.stderr, `subprotocol "amqp"`)
}

func TestPeerWSClientThroughProxy(t *testing.T) {
	t.Parallel()
	p, proxyAddr := testpeers.Listen(t, "proxy-server.js", "http", "--auth", "user:pw")
	_, addr := testpeers.Listen(t, "ws-server-dial.js")
	// tunneled checks that the proxy was asked for a tunnel to the server: a client that went
	// direct would echo as well.
	tunneled := func() {
		t.Helper()
		var seen struct{ Connect string }
		p.JSONLine(t, 5*time.Second, &seen)
		assert.Equal(t, addr, seen.Connect)
	}
	r := runClient(t, "via proxy\n", nil, "-proxy", "http://user:pw@"+proxyAddr, "ws://"+addr+"/echo")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "via proxy\n", r.stdout)
	tunneled()

	// From the environment, and its refusal of missing credentials.
	r = runClient(t, "via env\n", []string{"HTTP_PROXY=http://user:pw@" + proxyAddr}, "ws://"+addr+"/echo")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "via env\n", r.stdout)
	tunneled()
	r = runClient(t, "x\n", []string{"HTTP_PROXY=http://" + proxyAddr}, "ws://"+addr+"/echo")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "407")
	assert.Empty(t, r.stdout)
	r = runClient(t, "direct\n", []string{"HTTP_PROXY=http://" + proxyAddr}, "-proxy", "direct", "ws://"+addr+"/echo")
	assert.Equal(t, 0, r.code)
}

func TestPeerWSClientTLS(t *testing.T) {
	t.Parallel()
	cert := testpeers.NewCert(t)
	_, addr := testpeers.Listen(t, "ws-server-dial.js", "--tls", cert.CertFile, cert.KeyFile)
	r := runClient(t, "secure\n", nil, "-cacert", cert.CertFile, "wss://"+addr+"/hello")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "hello from ws\nsecure\n", r.stdout)
}

func TestWSClientRefusedHandshake(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&websocket.Handler{
		Accept: func(*websocket.Conn) {},
		Options: &websocket.Options{Verify: func(*http.Request) error {
			return &websocket.HTTPError{Status: http.StatusForbidden, Message: "not you"}
		}},
	})
	defer srv.Close()
	r := runClient(t, "hello\n", nil, "ws"+strings.TrimPrefix(srv.URL, "http"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "handshake refused: 403 Forbidden")
	assert.Empty(t, r.stdout)
}

func TestWSClientServerCloses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&websocket.Handler{Accept: func(c *websocket.Conn) {
		_ = c.Write(context.Background(), websocket.MessageText, []byte("bye now"))
		_ = c.Close(4001, "go away")
	}})
	defer srv.Close()
	// Standard input stays open: the server's close ends the program.
	stdin, keep, err := os.Pipe()
	require.NoError(t, err)
	defer stdin.Close()
	defer keep.Close()
	r := runWith(t, stdin, nil, "ws"+strings.TrimPrefix(srv.URL, "http"))
	assert.Equal(t, 1, r.code, "4001 is no normal closure")
	assert.Equal(t, "bye now\n", r.stdout)
	assert.Contains(t, r.stderr, "4001")
}

func TestWSClientUsage(t *testing.T) {
	t.Parallel()
	r := runClient(t, "", nil)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "usage: wsclient")
	r = runClient(t, "", nil, "-H", "no colon", "ws://127.0.0.1:1/")
	assert.Equal(t, 2, r.code)
	r = runClient(t, "", nil, "127.0.0.1:1")
	assert.Equal(t, 2, r.code, "a URL without its scheme")
	assert.Contains(t, r.stderr, `wsclient: "127.0.0.1:1" is not a URL: want ws://HOST:PORT/PATH (or wss://), such as ws://127.0.0.1:1`)
	r = runClient(t, "", nil, "-h")
	assert.Equal(t, 0, r.code, "-h asks for the usage")
	assert.Contains(t, r.stderr, "usage: wsclient")
	assert.Contains(t, r.stderr, "-proxy-cacert")
}
