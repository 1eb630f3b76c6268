package websocket_test

// Tests of Dial against herald's own server, hand-written servers for the edge cases of the
// handshake, and real peers: Node's ws and faye-websocket servers (internal/testpeers), over
// ws:// and wss://. The client-side conformance cases at the end send crafted frames from ws's
// server and check what our client answers, as conformance_test.go does for the server side.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/internal/testpeers"
	"github.com/herald-go/herald/websocket"
)

// dialWait bounds every wait in these tests.
const dialWait = 10 * time.Second

// direct is the base of the options of tests that must not go through a proxy from the
// environment of whoever runs them.
func direct(o websocket.DialOptions) *websocket.DialOptions {
	if o.Proxy == nil {
		o.Proxy = websocket.NoProxy
	}
	return &o
}

// mustDial dials url and closes the connection when the test ends.
func mustDial(t *testing.T, url string, o *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(websocket.StatusNormalClosure, "") })
	return c, resp
}

// roundTrip writes a message and reads the echo.
func roundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	require.NoError(t, c.Write(ctx, typ, msg))
	gotTyp, got, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, typ, gotTyp)
	assert.True(t, bytes.Equal(msg, got), "echo of %d bytes differs", len(msg))
}

// readText reads one message and returns it as text.
func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	typ, got, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageText, typ)
	return string(got)
}

// closeNormally runs the closing handshake from the client and checks the server's reply.
func closeNormally(t *testing.T, c *websocket.Conn) {
	t.Helper()
	assert.NoError(t, c.Close(websocket.StatusNormalClosure, "done"))
	assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(c.Err()), "the server's reply: %v", c.Err())
}

func TestDialEchoHerald(t *testing.T) {
	t.Parallel()
	url := serve(t, &websocket.Options{Protocols: []string{"irc", "amqp"}}, echo)
	c, resp := mustDial(t, url+"/chat?x=1", direct(websocket.DialOptions{Protocols: []string{"amqp", "irc"}}))
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "amqp", resp.Header.Get("Sec-WebSocket-Protocol"))
	assert.Equal(t, http.NoBody, resp.Body)
	assert.Equal(t, "amqp", c.Protocol())
	assert.Equal(t, "", c.Extensions())
	assert.Equal(t, "/chat?x=1", c.Request().URL.RequestURI())
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		roundTrip(t, c, websocket.MessageBinary, bytes.Repeat([]byte{byte(n)}, n))
	}
	roundTrip(t, c, websocket.MessageText, []byte("héllo 🌍"))
	closeNormally(t, c)
}

func TestDialRefusalCarriesResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&websocket.Handler{
		Accept: echo,
		Options: &websocket.Options{Verify: func(r *http.Request) error {
			return &websocket.HTTPError{Status: http.StatusUnauthorized, Message: "who are you?",
				Header: http.Header{"Www-Authenticate": {`Basic realm="chat"`}}}
		}},
	})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/x", direct(websocket.DialOptions{}))
	require.Error(t, err)
	assert.Nil(t, c)
	require.NotNil(t, resp, "a refused handshake returns the response")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Basic realm="chat"`, resp.Header.Get("Www-Authenticate"))
	body, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(body), "who are you?")
	var he *websocket.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Same(t, resp, he.Response)
	assert.Contains(t, err.Error(), "401")
}

// requestServer accepts connections on loopback, reads one HTTP request from each and hands
// the connection to serve, with the whole exchange bounded by dialWait. It returns the address.
func requestServer(t *testing.T, serve func(conn net.Conn, br *bufio.Reader, r *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(dialWait))
				br := bufio.NewReader(conn)
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				serve(conn, br, r)
			})
		}
	})
	return ln.Addr().String()
}

// rawServer answers each handshake with respond(key, request), written in one write. It
// returns the ws:// URL.
func rawServer(t *testing.T, respond func(key string, r *http.Request) string) string {
	t.Helper()
	return "ws://" + requestServer(t, func(conn net.Conn, br *bufio.Reader, r *http.Request) {
		if _, err := io.WriteString(conn, respond(r.Header.Get("Sec-WebSocket-Key"), r)); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, br) // until the client closes
	})
}

// accept computes Sec-WebSocket-Accept for key, independently of the package.
func accept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestDialChecksHandshakeResponse(t *testing.T) {
	t.Parallel()
	ok := func(extra string) func(string, *http.Request) string {
		return func(key string, _ *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
				accept(key) + "\r\n" + extra + "\r\n"
		}
	}
	cases := []struct {
		name    string
		respond func(string, *http.Request) string
		offer   []string
		noExt   bool   // offer no extension (Extensions: empty, not nil)
		reason  string // in the HandshakeError; "" for a valid handshake
		status  int
	}{
		{name: "valid", respond: ok(""), status: 101},
		{name: "valid, protocol offered", respond: ok("Sec-WebSocket-Protocol: amqp\r\n"), offer: []string{"irc", "amqp"}, status: 101},
		{name: "valid, protocol offered but none selected", respond: ok(""), offer: []string{"irc"}, status: 101},
		{name: "header case and token lists", respond: func(key string, _ *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\nsec-websocket-accept: " + accept(key) + "\r\n\r\n"
		}, status: 101},
		{name: "wrong accept", respond: func(string, *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
		}, reason: "Sec-WebSocket-Accept", status: 101},
		{name: "no accept", respond: func(string, *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}, reason: "Sec-WebSocket-Accept", status: 101},
		{name: "no upgrade", respond: func(key string, _ *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n"
		}, reason: "Upgrade", status: 101},
		{name: "upgrade to something else", respond: func(key string, _ *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n"
		}, reason: "Upgrade", status: 101},
		{name: "no connection upgrade", respond: func(key string, _ *http.Request) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: " + accept(key) + "\r\n\r\n"
		}, reason: "Connection", status: 101},
		{name: "protocol not offered", respond: ok("Sec-WebSocket-Protocol: chat\r\n"), offer: []string{"irc"}, reason: "not offered", status: 101},
		{name: "protocol when none offered", respond: ok("Sec-WebSocket-Protocol: irc\r\n"), reason: "not offered", status: 101},
		{name: "two protocols", respond: ok("Sec-WebSocket-Protocol: irc\r\nSec-WebSocket-Protocol: amqp\r\n"), offer: []string{"irc", "amqp"}, reason: "several", status: 101},
		{name: "extension not offered", respond: ok("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"), reason: "not offered", status: 101},
		{name: "deflate, offered by default", respond: ok("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"), status: 101},
		{name: "deflate, parameter not allowed", respond: ok("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"), reason: "client_max_window_bits", status: 101},
		{name: "deflate twice", respond: ok("Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n"), reason: "twice", status: 101},
		{name: "deflate when none offered", respond: ok("Sec-WebSocket-Extensions: permessage-deflate\r\n"), noExt: true, reason: "not offered", status: 101},
		{name: "200 instead of 101", respond: func(string, *http.Request) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello"
		}, status: 200},
		{name: "426 with a chunked body", respond: func(string, *http.Request) string {
			return "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n"
		}, status: 426},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := rawServer(t, tc.respond)
			ctx, cancel := context.WithTimeout(context.Background(), dialWait)
			defer cancel()
			o := direct(websocket.DialOptions{Protocols: tc.offer, CloseTimeout: 100 * time.Millisecond})
			if tc.noExt {
				o.Extensions = []websocket.Extension{}
			}
			c, resp, err := websocket.Dial(ctx, url, o)
			require.NotNil(t, resp, "the response comes back, valid or not (err %v)", err)
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 101 && tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, resp.Header.Get("Sec-WebSocket-Protocol"), c.Protocol())
				assert.Equal(t, resp.Header.Get("Sec-WebSocket-Extensions"), c.Extensions())
				_ = c.Close(websocket.StatusNormalClosure, "")
				return
			}
			var he *websocket.HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Nil(t, c)
			assert.Contains(t, he.Reason, tc.reason)
			if tc.status != 101 {
				body, _ := io.ReadAll(resp.Body)
				assert.Equal(t, "Hello", string(body))
			}
		})
	}
}

func TestDialKeepsBytesSentWithThe101(t *testing.T) {
	t.Parallel()
	// The 101 and two frames in one write: the frames sit in the handshake's read buffer.
	url := rawServer(t, func(key string, _ *http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			accept(key) + "\r\n\r\n" + "\x81\x05first" + "\x81\x06second"
	})
	c, _ := mustDial(t, url, direct(websocket.DialOptions{CloseTimeout: 100 * time.Millisecond}))
	assert.Equal(t, "first", readText(t, c))
	assert.Equal(t, "second", readText(t, c))
}

func TestDialResponseHeadIsBounded(t *testing.T) {
	t.Parallel()
	url := rawServer(t, func(key string, _ *http.Request) string {
		return "HTTP/1.1 101 Switching Protocols\r\nX-Big: " + strings.Repeat("a", 300<<10) + "\r\n\r\n"
	})
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url, direct(websocket.DialOptions{}))
	require.Error(t, err)
	assert.Nil(t, resp)
	assert.Contains(t, err.Error(), "response head longer than")
}

func TestDialContextBoundsTheHandshake(t *testing.T) {
	t.Parallel()
	// A server that accepts the connection and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	defer func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	url := "ws://" + ln.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = websocket.Dial(ctx, url, direct(websocket.DialOptions{}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), dialWait)

	start = time.Now()
	_, _, err = websocket.Dial(context.Background(), url, direct(websocket.DialOptions{HandshakeTimeout: 200 * time.Millisecond}))
	assert.ErrorIs(t, err, context.DeadlineExceeded, "HandshakeTimeout bounds the dial too")
	assert.Less(t, time.Since(start), dialWait)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, _, err = websocket.Dial(ctx, url, direct(websocket.DialOptions{}))
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDialCancelAfterwardsKeepsConnection(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, echo)
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := websocket.Dial(ctx, url, direct(websocket.DialOptions{}))
	require.NoError(t, err)
	cancel()
	roundTrip(t, c, websocket.MessageText, []byte("still here"))
	closeNormally(t, c)
}

func TestDialCustomDialContext(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, echo)
	addr := strings.TrimPrefix(url, "ws://")
	var asked []string
	var mu sync.Mutex
	o := direct(websocket.DialOptions{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		asked = append(asked, network+" "+a)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr) // "chat.invalid" lives here
	}})
	c, _ := mustDial(t, "ws://chat.invalid:8080/room", o)
	assert.Equal(t, "chat.invalid:8080", c.Request().Host)
	roundTrip(t, c, websocket.MessageText, []byte("over my own network"))
	closeNormally(t, c)
	mu.Lock()
	assert.Equal(t, []string{"tcp chat.invalid:8080"}, asked)
	mu.Unlock()

	failing := direct(websocket.DialOptions{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no network today")
	}})
	_, _, err := websocket.Dial(context.Background(), "ws://chat.invalid/", failing)
	assert.ErrorContains(t, err, "no network today")
}

func TestDialRequestHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
		c, err := websocket.Upgrade(w, r, &websocket.Options{OriginPatterns: []string{"app.example"}})
		if err == nil {
			echo(c)
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}))
	defer srv.Close()
	url := "ws://alice:s3cret@" + strings.TrimPrefix(srv.URL, "http://") + "/h"
	c, _ := mustDial(t, url, direct(websocket.DialOptions{Header: http.Header{
		"Origin":   {"https://app.example"},
		"X-Trace":  {"one", "two"},
		"Host":     {"chat.example"},
		"X-Inject": {"a\r\nX-Evil: 1"},
	}}))
	h := <-got
	assert.Equal(t, "https://app.example", h.Get("Origin"))
	assert.Equal(t, []string{"one", "two"}, h.Values("X-Trace"))
	assert.Equal(t, "chat.example", h.Get("Host"))
	assert.Equal(t, "Basic YWxpY2U6czNjcmV0", h.Get("Authorization"), "credentials in the URL become Basic auth")
	assert.Empty(t, h.Get("X-Evil"), "header values cannot inject lines")
	assert.Equal(t, "13", h.Get("Sec-WebSocket-Version"))
	assert.Nil(t, c.Request().URL.User, "the request keeps no credentials in its URL")
	closeNormally(t, c)

	for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "sec-websocket-extensions"} {
		_, _, err := websocket.Dial(context.Background(), "ws://127.0.0.1:1/", direct(websocket.DialOptions{Header: http.Header{name: {"x"}}}))
		assert.ErrorContains(t, err, "may not set", name)
	}
}

func TestDialRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url   string
		offer []string
		want  string
	}{
		{url: "ftp://example.com/", want: "scheme"},
		{url: "ws:///path", want: "no host"},
		{url: "ws://example.com/#frag", want: "fragment"},
		{url: "ws://exa mple.com/", want: "invalid"},
		{url: "ws://example.com/", offer: []string{"a b"}, want: "token"},
		{url: "ws://example.com/", offer: []string{""}, want: "token"},
	} {
		_, resp, err := websocket.Dial(context.Background(), tc.url, direct(websocket.DialOptions{Protocols: tc.offer}))
		assert.ErrorContains(t, err, tc.want, tc.url)
		assert.Nil(t, resp)
	}
}

// TestDialClientFramesAreMasked checks, on the wire, that every frame the client sends is
// masked, with a fresh key, including control frames.
func TestDialClientFramesAreMasked(t *testing.T) {
	t.Parallel()
	frames := make(chan []byte, 16)
	url := rawServerConn(t, func(conn net.Conn, br *bufio.Reader) {
		// Read three frames: a text, a ping and the close.
		for range 3 {
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			n := int(h[1] & 0x7f)
			rest := make([]byte, 4+n)
			if _, err := io.ReadFull(br, rest); err != nil {
				return
			}
			frames <- append(h[:], rest...)
		}
		_, _ = conn.Write([]byte{0x88, 0x02, 0x03, 0xe8})
	})
	c, _ := mustDial(t, url, direct(websocket.DialOptions{}))
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("hello hello")))
	go func() { _ = c.Ping(ctx, []byte("ping")) }()
	require.Eventually(t, func() bool { return len(frames) == 2 }, dialWait, 5*time.Millisecond)
	closeNormally(t, c)
	var keys [][]byte
	for range 3 {
		f := <-frames
		assert.NotZero(t, f[1]&0x80, "frame % x is not masked", f)
		keys = append(keys, f[2:6])
	}
	assert.NotEqual(t, keys[0], keys[1], "each frame has its own masking key")
}

// rawServerConn completes handshakes itself and hands each connection to fn.
func rawServerConn(t *testing.T, fn func(conn net.Conn, br *bufio.Reader)) string {
	t.Helper()
	return "ws://" + requestServer(t, func(conn net.Conn, br *bufio.Reader, r *http.Request) {
		_, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
			accept(r.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		if err == nil {
			fn(conn, br)
		}
	})
}

// TestDialTLS: wss:// with the test authority as roots, a server name other than the
// address, and a server that demands a client certificate.
func TestDialTLS(t *testing.T) {
	t.Parallel()
	cert := testpeers.NewCert(t, "chat.example")
	srv := httptest.NewUnstartedServer(&websocket.Handler{Accept: echo})
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, ClientCAs: cert.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	url := "wss://" + addr + "/secure"

	c, _ := mustDial(t, url, direct(websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool}}))
	roundTrip(t, c, websocket.MessageText, []byte("over TLS"))
	closeNormally(t, c)

	// The server name: the certificate holds chat.example, which the address is not.
	o := direct(websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool, ServerName: "chat.example"}})
	c, _ = mustDial(t, url, o)
	closeNormally(t, c)

	// Unknown roots fail.
	_, _, err := websocket.Dial(context.Background(), url, direct(websocket.DialOptions{}))
	assert.ErrorContains(t, err, "TLS handshake")

	// A client certificate reaches the server.
	var seen []string
	var mu sync.Mutex
	srv2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
		if c, err := websocket.Upgrade(w, r, nil); err == nil {
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}))
	srv2.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}, ClientCAs: cert.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv2.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv2.StartTLS()
	defer srv2.Close()
	url2 := "wss://" + srv2.Listener.Addr().String()
	c, _ = mustDial(t, url2, direct(websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool, Certificates: []tls.Certificate{cert.TLS}}}))
	_ = c.Close(websocket.StatusNormalClosure, "")
	mu.Lock()
	assert.Equal(t, []string{"herald test"}, seen)
	mu.Unlock()
	_, _, err = websocket.Dial(context.Background(), url2, direct(websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool}}))
	assert.Error(t, err, "a server that requires a client certificate refuses a client without one")
}

func TestDialOptionsReachTheConnection(t *testing.T) {
	t.Parallel()
	// MaxLength: a 1025-byte message over a 1024 limit fails the connection with 1009.
	url := serve(t, nil, func(c *websocket.Conn) {
		ctx := context.Background()
		_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 1024))
		_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 1025))
		_, _, _ = c.Read(ctx)
	})
	c, _ := mustDial(t, url, direct(websocket.DialOptions{MaxLength: 1024}))
	ctx, cancel := context.WithTimeout(context.Background(), dialWait)
	defer cancel()
	_, msg, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Len(t, msg, 1024)
	_, _, err = c.Read(ctx)
	var pe *websocket.ProtocolError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, websocket.StatusMessageTooBig, pe.Code)

	// PingInterval and PongTimeout: a server that never reads leaves the pings unanswered.
	url = rawServerConn(t, func(_ net.Conn, br *bufio.Reader) { _, _ = io.Copy(io.Discard, br) })
	c, _ = mustDial(t, url, direct(websocket.DialOptions{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}))
	_, _, err = c.Read(ctx)
	assert.ErrorIs(t, err, websocket.ErrPongTimeout)

	// No FirstFrameTimeout on a client: a silent server is fine.
	url = serve(t, &websocket.Options{PingInterval: -1}, func(c *websocket.Conn) { _, _, _ = c.Read(context.Background()) })
	c, _ = mustDial(t, url, direct(websocket.DialOptions{PingInterval: -1}))
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	_, _, err = c.Read(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	closeNormally(t, c)
}

// Real peers: Node's ws and faye-websocket servers.

func TestPeerDialWSServer(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "ws-server-dial.js")
	base := "ws://" + addr
	t.Run("echo", func(t *testing.T) {
		c, resp := mustDial(t, base+"/echo", direct(websocket.DialOptions{}))
		assert.Equal(t, 101, resp.StatusCode)
		for _, n := range []int{0, 125, 126, 65535, 65536, 1<<20 - 1<<10} {
			roundTrip(t, c, websocket.MessageBinary, bytes.Repeat([]byte("x"), n))
			roundTrip(t, c, websocket.MessageText, bytes.Repeat([]byte("é"), n/2))
		}
		closeNormally(t, c)
	})
	t.Run("subprotocols", func(t *testing.T) {
		for _, tc := range []struct {
			offer []string
			want  string
		}{{[]string{"foo", "amqp", "irc"}, "amqp"}, {[]string{"irc", "amqp"}, "irc"}, {[]string{"foo"}, ""}, {nil, ""}} {
			c, resp := mustDial(t, base+"/echo", direct(websocket.DialOptions{Protocols: tc.offer}))
			assert.Equal(t, tc.want, c.Protocol(), "offer %v", tc.offer)
			assert.Equal(t, tc.want, resp.Header.Get("Sec-WebSocket-Protocol"))
			closeNormally(t, c)
		}
	})
	t.Run("message right after the handshake", func(t *testing.T) {
		c, _ := mustDial(t, base+"/hello", direct(websocket.DialOptions{}))
		assert.Equal(t, "hello from ws", readText(t, c))
		closeNormally(t, c)
	})
	t.Run("headers", func(t *testing.T) {
		c, _ := mustDial(t, base+"/headers", direct(websocket.DialOptions{Header: http.Header{"X-Herald": {"yes"}, "Origin": {"https://app.example"}}}))
		var h map[string]string
		require.NoError(t, json.Unmarshal([]byte(readText(t, c)), &h))
		assert.Equal(t, "yes", h["x-herald"])
		assert.Equal(t, "https://app.example", h["origin"])
		assert.Equal(t, addr, h["host"])
		closeNormally(t, c)
	})
	t.Run("no deflate when the server has none", func(t *testing.T) {
		c, resp := mustDial(t, base+"/echo", direct(websocket.DialOptions{}))
		assert.Contains(t, c.Request().Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate", "offered by default")
		assert.Empty(t, resp.Header.Get("Sec-WebSocket-Extensions"))
		assert.Empty(t, c.Extensions())
		closeNormally(t, c)
	})
}

// countingDialer dials with a net.Dialer and counts the bytes written to the connections.
type countingDialer struct {
	mu      sync.Mutex
	written int64
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

func (d *countingDialer) Written() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.written
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.d.mu.Lock()
	c.d.written += int64(n)
	c.d.mu.Unlock()
	return n, err
}

// checkDeflate dials a server that speaks permessage-deflate: negotiated by default, messages
// compressed on the wire (the client's bytes counted) and decompressed by the server, whose
// echo comes back intact.
func checkDeflate(t *testing.T, url string, o websocket.DialOptions) {
	t.Helper()
	counter := &countingDialer{}
	o.DialContext = counter.DialContext
	c, resp := mustDial(t, url, direct(o))
	assert.Contains(t, resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	assert.Equal(t, resp.Header.Get("Sec-WebSocket-Extensions"), c.Extensions())
	before := counter.Written()
	text := bytes.Repeat([]byte("compressible text, again and again. "), 30000) // ~1 MiB
	roundTrip(t, c, websocket.MessageText, text)
	assert.Less(t, counter.Written()-before, int64(len(text)/10), "a 1 MiB repetitive message goes out compressed")
	random := make([]byte, 200000)
	_, _ = rand.Read(random)
	roundTrip(t, c, websocket.MessageBinary, random)
	for i := range 20 { // context takeover across messages
		roundTrip(t, c, websocket.MessageText, []byte(strings.Repeat(fmt.Sprint(i), 100+i)))
	}
	roundTrip(t, c, websocket.MessageBinary, nil)
	closeNormally(t, c)
}

func TestPeerDialWSServerDeflate(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "ws-server-dial.js", "--deflate")
	checkDeflate(t, "ws://"+addr+"/echo", websocket.DialOptions{})
	c, resp := mustDial(t, "ws://"+addr+"/echo", direct(websocket.DialOptions{Extensions: []websocket.Extension{}}))
	assert.Empty(t, resp.Header.Get("Sec-WebSocket-Extensions"), "an empty Extensions offers nothing")
	closeNormally(t, c)
	checkDeflate(t, "ws://"+addr+"/echo", websocket.DialOptions{Extensions: []websocket.Extension{
		deflate.New(deflate.Options{ClientMaxWindowBits: 10, ServerNoContextTakeover: true, ClientNoContextTakeover: true, Level: 9}),
	}})
}

func TestPeerDialWSServerTLS(t *testing.T) {
	t.Parallel()
	cert := testpeers.NewCert(t)
	_, addr := testpeers.Listen(t, "ws-server-dial.js", "--tls", cert.CertFile, cert.KeyFile)
	c, _ := mustDial(t, "wss://"+addr+"/hello", direct(websocket.DialOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool}, Protocols: []string{"irc"}}))
	assert.Equal(t, "irc", c.Protocol())
	assert.Equal(t, "hello from ws", readText(t, c))
	roundTrip(t, c, websocket.MessageBinary, bytes.Repeat([]byte{1, 2, 3}, 100000))
	closeNormally(t, c)
}

func TestPeerDialFayeServer(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "faye-server-dial.js")
	c, resp := mustDial(t, "ws://"+addr+"/hello", direct(websocket.DialOptions{Protocols: []string{"foo", "amqp"}}))
	assert.Equal(t, 101, resp.StatusCode)
	assert.Equal(t, "amqp", c.Protocol())
	assert.Equal(t, "hello from faye", readText(t, c))
	for _, n := range []int{0, 125, 126, 65536, 1 << 20} {
		roundTrip(t, c, websocket.MessageBinary, bytes.Repeat([]byte{7}, n))
		roundTrip(t, c, websocket.MessageText, bytes.Repeat([]byte("ü"), n/2))
	}
	closeNormally(t, c)

}

func TestPeerDialFayeServerDeflate(t *testing.T) {
	t.Parallel()
	_, addr := testpeers.Listen(t, "faye-server-dial.js", "--deflate")
	checkDeflate(t, "ws://"+addr+"/echo", websocket.DialOptions{Protocols: []string{"irc"}})
	checkDeflate(t, "ws://"+addr+"/echo", websocket.DialOptions{Extensions: []websocket.Extension{
		deflate.New(deflate.Options{ServerMaxWindowBits: 9, ClientMaxWindowBits: 9}),
	}})
}

// Client-side conformance: ws's server sends crafted frames (ws-server-dial.js CASES) and
// reports the close code our client answered with. The client must fail the connection with
// the code RFC 6455 names, as the server side does for the same faults.

type clientCase struct {
	name string
	rfc  string
	// want is the close code the client must send; 1005 means a close frame without code.
	want int
	// messages the client must have delivered before closing.
	messages []string
	// readErr is the code Read reports: a *ProtocolError's for failures, a *CloseError's for a
	// close from the server.
	readErr int
	// wsDiffers says how Node's ws client answers differently, and why herald's answer is the
	// one RFC 6455 names; without it, both must send the same close code.
	wsDiffers string
}

func clientCases() []clientCase {
	return []clientCase{
		{name: "text-then-close", rfc: "5.5.1: the client echoes the server's close code", want: 1000, messages: []string{"hello"}, readErr: 1000},
		{name: "ping-then-close", rfc: "5.5.2/5.5.1: pong, then the close echoed", want: 4000, readErr: 4000},
		{name: "close-no-code", rfc: "5.5.1: a close without code is answered without code", want: 1005, readErr: 1005},
		{name: "masked-text", rfc: "5.1: a client MUST close on a masked server frame: 1002", want: 1002, readErr: 1002},
		{name: "masked-close", rfc: "5.1: a masked close too: 1002", want: 1002, readErr: 1002},
		{name: "rsv1-without-extension", rfc: "5.2: RSV1 without a negotiated extension: 1002", want: 1002, readErr: 1002},
		{name: "rsv3", rfc: "5.2: RSV3: 1002", want: 1002, readErr: 1002},
		{name: "reserved-opcode-3", rfc: "5.2: reserved data opcode: 1002", want: 1002, readErr: 1002},
		{name: "reserved-opcode-11", rfc: "5.2: reserved control opcode: 1002", want: 1002, readErr: 1002},
		{name: "fragmented-ping", rfc: "5.5: control frames are not fragmented: 1002", want: 1002, readErr: 1002},
		{name: "ping-126-bytes", rfc: "5.5: control payloads are at most 125 bytes: 1002", want: 1002, readErr: 1002},
		{name: "continuation-without-start", rfc: "5.4: a continuation with nothing to continue: 1002", want: 1002, readErr: 1002},
		{name: "text-inside-fragmented", rfc: "5.4: a new message inside a fragmented one: 1002", want: 1002, readErr: 1002},
		{name: "invalid-utf8", rfc: "8.1: invalid UTF-8 text: 1007", want: 1007, readErr: 1007},
		{name: "invalid-utf8-fragmented", rfc: "8.1: invalid UTF-8 across fragments: 1007", want: 1007, readErr: 1007},
		{name: "close-invalid-code-999", rfc: "7.4.1: close code 999 is invalid: 1002", want: 1002, readErr: 1002},
		{name: "close-reserved-code-1005", rfc: "7.4.1: 1005 is never sent: 1002", want: 1002, readErr: 1002},
		{name: "close-one-byte", rfc: "5.5.1: a one-byte close payload: 1002", want: 1002, readErr: 1002},
		{name: "close-invalid-utf8-reason", rfc: "5.5.1: a close reason is UTF-8: 1007", want: 1007, readErr: 1007},
		{name: "over-max-length-1025", rfc: "10.4: a message over MaxLength (1024): 1009", want: 1009, readErr: 1009},
		{name: "at-max-length-1024", rfc: "10.4: a message of exactly MaxLength is delivered", want: 1000, messages: []string{strings.Repeat("\x07", 1024)}, readErr: 1000},
		{name: "over-max-length-fragmented", rfc: "10.4: fragments adding up past MaxLength: 1009", want: 1009, readErr: 1009},
		{name: "length-msb-set", rfc: "5.2: a 64-bit length with the top bit set: 1002", want: 1002, readErr: 1002,
			wsDiffers: "ws closes with 1009 (its check that a length fits in 2^53 - 1), as its server does (conformance_test.go)"},
	}
}

// TestDifferentialClientConformance runs each case with herald's client, then all of them with
// Node's ws client (ws-client-dial-cases.js), and compares the close codes ws's server received
// from each.
func TestDifferentialClientConformance(t *testing.T) {
	p, addr := testpeers.Listen(t, "ws-server-dial.js")
	cases := clientCases()
	heraldSent := map[string]int{}
	type seenLine struct {
		Case      string
		CloseCode int
		Pongs     []string
		Messages  int
	}
	// Sequential: each case is a few milliseconds, and ws prints one line per case in order.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("RFC 6455 %s", tc.rfc)
			c, _ := mustDial(t, "ws://"+addr+"/raw/"+tc.name, direct(websocket.DialOptions{MaxLength: 1024, PingInterval: -1, Extensions: []websocket.Extension{}}))
			ctx, cancel := context.WithTimeout(context.Background(), dialWait)
			defer cancel()
			var got []string
			var err error
			for {
				var msg []byte
				if _, msg, err = c.Read(ctx); err != nil {
					break
				}
				got = append(got, string(msg))
			}
			assert.Equal(t, tc.messages, got)
			var pe *websocket.ProtocolError
			switch {
			case errors.As(err, &pe):
				assert.Equal(t, tc.readErr, int(pe.Code), "Read: %v", err)
			default:
				assert.Equal(t, tc.readErr, int(websocket.CloseStatus(err)), "Read: %v", err)
			}
			var seen seenLine
			p.JSONLine(t, dialWait, &seen)
			require.Equal(t, tc.name, seen.Case)
			heraldSent[tc.name] = seen.CloseCode
			assert.Equal(t, tc.want, seen.CloseCode, "the close code ws's server received from herald's client")
			if tc.name == "ping-then-close" {
				assert.Equal(t, []string{fmt.Sprintf("%x", "are you there")}, seen.Pongs)
			}
		})
	}

	names := make([]string, len(cases))
	for i, tc := range cases {
		names[i] = tc.name
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testpeers.Run(ctx, t, "ws-client-dial-cases.js", append([]string{"ws://" + addr}, names...)...)
	wsSent := map[string]int{}
	for range cases {
		var seen seenLine
		p.JSONLine(t, dialWait, &seen)
		wsSent[seen.Case] = seen.CloseCode
	}
	for _, tc := range cases {
		t.Run("vs-ws/"+tc.name, func(t *testing.T) {
			t.Logf("herald's client sent %d, ws's client %d", heraldSent[tc.name], wsSent[tc.name])
			if tc.wsDiffers != "" {
				t.Logf("ws differs, as noted: %s", tc.wsDiffers)
				assert.NotEqual(t, heraldSent[tc.name], wsSent[tc.name], "ws now agrees: drop the wsDiffers note")
				return
			}
			assert.Equal(t, heraldSent[tc.name], wsSent[tc.name], "herald's client and ws's differ")
		})
	}
}
