package deflate_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// countingListener counts the bytes that cross the server's sockets, to see compression on
// the wire.
type countingListener struct {
	net.Listener
	in, out atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{TCPConn: c.(*net.TCPConn), l: l}, nil
}

// countingConn keeps *net.TCPConn's methods (so the socket stays pollable) and counts.
type countingConn struct {
	*net.TCPConn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.l.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.l.out.Add(int64(n))
	return n, err
}

// echoServer serves a compressed echo with opts and reports what was negotiated.
type echoServer struct {
	url, origin string
	l           *countingListener
	mu          sync.Mutex
	negotiated  []string
}

func startEcho(t *testing.T, opts deflate.Options) *echoServer {
	t.Helper()
	return startEchoLimit(t, opts, 0)
}

// startEchoLimit is startEcho with websocket.Options.MaxLength set to maxLength.
func startEchoLimit(t *testing.T, opts deflate.Options, maxLength int64) *echoServer {
	t.Helper()
	s := &echoServer{}
	var wg sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocket(r) {
			_, _ = w.Write([]byte("<!doctype html><title>deflate</title>"))
			return
		}
		c, err := websocket.Upgrade(w, r, &websocket.Options{Extensions: []websocket.Extension{deflate.New(opts)}, PingInterval: -1, MaxLength: maxLength})
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		s.mu.Lock()
		s.negotiated = append(s.negotiated, c.Extensions())
		s.mu.Unlock()
		ctx := context.Background()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				return
			}
			if c.Write(ctx, typ, data) != nil {
				return
			}
		}
	}))
	s.l = &countingListener{Listener: srv.Listener}
	srv.Listener = s.l
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	s.origin = srv.URL
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
	return s
}

type message struct {
	Type string `json:"type"`
	Size int    `json:"size"`
	Kind string `json:"kind"`
}

type peerResult struct {
	Error      string `json:"error"`
	Extensions string `json:"extensions"`
	CloseCode  int    `json:"closeCode"`
	Results    []struct {
		I      int  `json:"i"`
		OK     bool `json:"ok"`
		Len    int  `json:"len"`
		Binary bool `json:"binary"`
	} `json:"results"`
}

// runDeflateClient runs deflate-client.js with cfg and msgs against s, within timeout, and
// returns what it saw.
func runDeflateClient(t *testing.T, s *echoServer, cfg map[string]any, msgs []message, timeout time.Duration) peerResult {
	t.Helper()
	cfg["url"] = s.url
	cfg["origin"] = s.origin
	cfg["messages"] = msgs
	arg, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := testpeers.Run(ctx, t, "deflate-client.js", string(arg))
	var r peerResult
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// runPeer runs deflate-client.js with cfg against s and checks every echo.
func runPeer(t *testing.T, s *echoServer, cfg map[string]any, msgs []message) peerResult {
	t.Helper()
	r := runDeflateClient(t, s, cfg, msgs, 60*time.Second)
	require.Empty(t, r.Error)
	require.Len(t, r.Results, len(msgs))
	for i, m := range msgs {
		assert.True(t, r.Results[i].OK, "message %d (%s %d bytes) echoed differently", i, m.Type, m.Size)
		assert.Equal(t, m.Type == "binary", r.Results[i].Binary, "message %d type", i)
	}
	assert.Equal(t, 1000, r.CloseCode)
	return r
}

// mixed is text and binary, compressible and not, up to 1 MiB.
var mixed = []message{
	{"text", 16 << 10, "json"}, {"binary", 16 << 10, "json"}, {"text", 10, "json"},
	{"binary", 100 << 10, "random"}, {"text", 1 << 20, "json"}, {"binary", 1 << 20, "json"},
	{"text", 200, "json"}, {"text", 300, "json"}, {"binary", 0, "json"},
}

func payloadBytes(msgs []message) int64 {
	var n int64
	for _, m := range msgs {
		n += int64(m.Size)
	}
	return n
}

// TestPeerWSSettings runs Node's ws client through each of its perMessageDeflate settings.
func TestPeerWSSettings(t *testing.T) {
	testpeers.Node(t)
	cases := []struct {
		name string
		pmd  map[string]any
		want string // the negotiated Sec-WebSocket-Extensions, as the server reports it
	}{
		// ws offers client_max_window_bits; the server asks for 12 bits while it keeps the
		// client's context.
		{"defaults", map[string]any{"threshold": 0}, "permessage-deflate; client_max_window_bits=12"},
		{"server_no_context_takeover", map[string]any{"serverNoContextTakeover": true, "threshold": 0}, "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"},
		{"client_no_context_takeover", map[string]any{"clientNoContextTakeover": true, "threshold": 0}, "permessage-deflate; client_no_context_takeover"},
		{"client_max_window_bits=9", map[string]any{"clientMaxWindowBits": 9, "threshold": 0}, "permessage-deflate; client_max_window_bits=9"},
		{"client_max_window_bits=12", map[string]any{"clientMaxWindowBits": 12, "threshold": 0}, "permessage-deflate; client_max_window_bits=12"},
		{"both no context takeover", map[string]any{"serverNoContextTakeover": true, "clientNoContextTakeover": true, "threshold": 0},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	}
	for bits := 9; bits <= 15; bits++ {
		cases = append(cases, struct {
			name string
			pmd  map[string]any
			want string
		}{"server_max_window_bits=" + itoa(bits), map[string]any{"serverMaxWindowBits": bits, "threshold": 0},
			"permessage-deflate; server_max_window_bits=" + itoa(bits) + "; client_max_window_bits=12"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startEcho(t, deflate.Options{})
			r := runPeer(t, s, map[string]any{"peer": "ws", "pmd": tc.pmd}, mixed)
			assert.Equal(t, tc.want, r.Extensions)
			s.mu.Lock()
			assert.Equal(t, []string{tc.want}, s.negotiated)
			s.mu.Unlock()
			total := payloadBytes(mixed)
			// Everything but 100 KiB of random bytes is about 3x compressible, both ways.
			assert.Less(t, s.l.in.Load(), total/2, "client to server is not compressed")
			assert.Less(t, s.l.out.Load(), total/2, "server to client is not compressed")
		})
	}
}

func TestPeerWSServerChoices(t *testing.T) {
	testpeers.Node(t)
	cases := []struct {
		name string
		opts deflate.Options
		want string
	}{
		{"server requires client_no_context_takeover", deflate.Options{ClientNoContextTakeover: true}, "permessage-deflate; client_no_context_takeover"},
		{"server keeps no context", deflate.Options{ServerNoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"},
		{"server window 10", deflate.Options{ServerMaxWindowBits: 10}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"},
		{"server keeps the client's full window", deflate.Options{ClientMaxWindowBits: 15}, "permessage-deflate"},
		{"client window 11", deflate.Options{ClientMaxWindowBits: 11}, "permessage-deflate; client_max_window_bits=11"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startEcho(t, tc.opts)
			r := runPeer(t, s, map[string]any{"peer": "ws", "pmd": map[string]any{"threshold": 0}}, mixed)
			assert.Equal(t, tc.want, r.Extensions)
			assert.Less(t, s.l.out.Load(), payloadBytes(mixed)/2)
		})
	}
}

func TestPeerFaye(t *testing.T) {
	testpeers.Node(t)
	for _, tc := range []struct {
		name string
		faye map[string]any
		want string
	}{
		{"defaults", nil, "permessage-deflate; client_max_window_bits=12"},
		{"no context takeover", map[string]any{"noContextTakeover": true, "requestNoContextTakeover": true},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"max window bits", map[string]any{"maxWindowBits": 10, "requestMaxWindowBits": 11},
			"permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startEcho(t, deflate.Options{})
			cfg := map[string]any{"peer": "faye"}
			if tc.faye != nil {
				cfg["faye"] = tc.faye
			}
			r := runPeer(t, s, cfg, mixed)
			assert.Equal(t, tc.want, r.Extensions)
			assert.Less(t, s.l.in.Load(), payloadBytes(mixed)/2)
			assert.Less(t, s.l.out.Load(), payloadBytes(mixed)/2)
		})
	}
}

func TestPeerChromium(t *testing.T) {
	chromium := testpeers.Chromium(t)
	s := startEcho(t, deflate.Options{})
	r := runPeer(t, s, map[string]any{"peer": "chromium", "chromium": chromium}, mixed)
	// Chromium offers "permessage-deflate; client_max_window_bits"; with the defaults the
	// server keeps context both ways and asks the browser for a 12-bit window.
	assert.Equal(t, "permessage-deflate; client_max_window_bits=12", r.Extensions)
	assert.Less(t, s.l.in.Load(), payloadBytes(mixed)/2, "Chromium's messages are not compressed")
	assert.Less(t, s.l.out.Load(), payloadBytes(mixed)/2)
}

func itoa(n int) string { return strconv.Itoa(n) }
