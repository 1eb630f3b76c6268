package herald

// Hostile nes clients over real sockets, each against a server that a well-behaved client (the
// Go nes client) uses at the same time: the hostile one gets the close code or the error reply
// the specs name, its socket is gone from the server when it should be, and the well-behaved
// client still gets its publications and its replies afterwards.

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// hardenedLimit is the MaxRequestBytes of the servers below.
const hardenedLimit = 1 << 20

// hardened is a nes server under attack, with a well-behaved client connected to it.
type hardened struct {
	srv  *Server
	url  string
	log  *panicLog
	gone chan string // the ids of the sockets the server let go, in order
	why  sync.Map    // socket id → the error the server closed it with (nil for none)

	good    *client.Client
	updates chan client.Update
	n       int // publications so far
}

// gateSize is how many requests /gate holds until all have arrived: they are answered only
// if the server processes that many of one socket's requests at once.
const gateSize = 8

// startHardened starts a server with opts (MaxRequestBytes, OnDisconnection, Logger and the
// heartbeat set here unless set) serving /h ("world!"), /echo (its query), /big (32 KiB) and /gate, with a
// subscription /feed, and connects the well-behaved client to it, subscribed to /feed. With
// token set, the client authenticates with a token of the server's.
func startHardened(t *testing.T, opts Options, token bool) *hardened {
	t.Helper()
	h := &hardened{gone: make(chan string, 64), updates: make(chan client.Update, 64), log: &panicLog{errors: true}}
	var gateMu sync.Mutex
	gateN, gateOpen := 0, make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/h", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("world!")) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.URL.RawQuery)) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bytes.Repeat([]byte("b"), 32<<10)) })
	mux.HandleFunc("/gate", func(w http.ResponseWriter, r *http.Request) {
		gateMu.Lock()
		if gateN++; gateN == gateSize {
			close(gateOpen)
		}
		gateMu.Unlock()
		select {
		case <-gateOpen:
			_, _ = w.Write([]byte(r.URL.RawQuery))
		case <-time.After(5 * time.Second):
			http.Error(w, "the other requests of the socket never came in", http.StatusGatewayTimeout)
		}
	})
	opts.MaxRequestBytes = hardenedLimit
	opts.Logger = slog.New(h.log)
	opts.OnDisconnection = func(s *Socket) {
		s.mu.Lock()
		h.why.Store(s.ID, s.closeErr)
		s.mu.Unlock()
		h.gone <- s.ID
	}
	if opts.Heartbeat == nil {
		opts.Heartbeat = &Heartbeat{Disabled: true}
	}
	h.srv = NewServer(mux, &opts)
	h.srv.Route("hello", "GET", "/h")
	h.srv.Subscription("/feed", nil)
	h.url = newTestServer(t, h.srv)

	copts := &client.Options{Transports: []string{client.TransportWebSocket}, NoReconnect: true,
		Dial: &websocket.DialOptions{Proxy: websocket.NoProxy}}
	if token {
		copts.Auth = &client.Auth{Token: hardenedToken(t, h.srv, "good", time.Hour)}
	}
	c, err := client.New(h.url, copts)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Subscribe(ctx, "/feed", func(u client.Update) { h.updates <- u })
	require.NoError(t, err)
	h.good = c
	h.stillServes(t)
	return h
}

// hardenedToken seals a token for user with the server's password, valid for ttl (negative:
// expired that long ago).
func hardenedToken(t *testing.T, srv *Server, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := srv.auth.sealer.seal(&Credentials{User: user}, ttl)
	require.NoError(t, err)
	return tok
}

// stillServes checks the well-behaved client: the next publication reaches it, and a request
// is answered. It checks that the server logged no panic and no error too.
func (h *hardened) stillServes(t *testing.T) {
	t.Helper()
	h.n++
	require.NoError(t, h.srv.Publish("/feed", h.n, nil))
	select {
	case u := <-h.updates:
		assert.Equal(t, fmt.Sprint(h.n), string(u.Message), "the well-behaved client's publication")
	case <-time.After(5 * time.Second):
		t.Fatal("the well-behaved client got no publication")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := h.good.Request(ctx, "hello")
	require.NoError(t, err, "the well-behaved client's request")
	assert.Equal(t, `"world!"`, string(res.Payload))
	assert.Empty(t, h.log.take(), "the server logged")
}

// let waits until the server has let the socket id go.
func (h *hardened) let(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-h.gone:
		assert.Equal(t, id, got, "the socket the server let go")
	case <-time.After(5 * time.Second):
		t.Fatal("the server still holds the hostile socket")
	}
}

// hostileFrame is a client frame with every field under the caller's control.
func hostileFrame(fin bool, op ws.OpCode, rsv byte, masked bool, payload []byte) []byte {
	f := ws.NewFrame(op, fin, bytes.Clone(payload))
	if masked {
		f = ws.MaskFrame(f)
	}
	f.Header.Rsv = rsv
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, f)
	return b.Bytes()
}

// silentEnd reads what the server sends until it closes, answering nothing (not even pings,
// whose pong would land inside a half-sent frame), and returns the close frame's code, or 1006
// when TCP ends without one.
func silentEnd(t *testing.T, c *rawClient) ws.StatusCode {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		hd, err := ws.ReadHeader(c.rw)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
		if err != nil {
			return ws.StatusAbnormalClosure
		}
		p := make([]byte, hd.Length)
		if _, err := io.ReadFull(c.rw, p); err != nil {
			return ws.StatusAbnormalClosure
		}
		if hd.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(p)
			return code
		}
	}
}

// TestHostileNesClientsGetTheirCloseCode: frames RFC 6455 forbids, from a socket that said
// hello, fail that socket with the code the RFC names; the well-behaved client is not touched.
func TestHostileNesClientsGetTheirCloseCode(t *testing.T) {
	t.Parallel()
	h := startHardened(t, Options{}, false)
	request := func(payload string) []byte {
		return []byte(`{"type":"request","id":2,"method":"POST","path":"/echo","payload":"` + payload + `"}`)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want ws.StatusCode
	}{
		{"a 2 MiB message over the 1 MiB limit", hostileFrame(true, ws.OpText, 0, true, request(strings.Repeat("a", 2<<20))), ws.StatusMessageTooBig},
		{"fragments adding up past the limit", append(hostileFrame(false, ws.OpText, 0, true, request(strings.Repeat("a", hardenedLimit/2+1))),
			hostileFrame(true, ws.OpContinuation, 0, true, []byte(strings.Repeat("b", hardenedLimit/2)))...), ws.StatusMessageTooBig},
		{"invalid UTF-8 in a text frame", hostileFrame(true, ws.OpText, 0, true, request("\xff\xfe")), ws.StatusInvalidFramePayloadData},
		{"a UTF-16 surrogate in a text frame", hostileFrame(true, ws.OpText, 0, true, request("\xed\xa0\x80")), ws.StatusInvalidFramePayloadData},
		{"reserved opcode 3", hostileFrame(true, 0x3, 0, true, request("x")), ws.StatusProtocolError},
		{"reserved control opcode 0xB", hostileFrame(true, 0xB, 0, true, nil), ws.StatusProtocolError},
		{"RSV1 with no extension negotiated", hostileFrame(true, ws.OpText, 4, true, request("x")), ws.StatusProtocolError},
		{"an unmasked frame", hostileFrame(true, ws.OpText, 0, false, request("x")), ws.StatusProtocolError},
		{"a continuation with no message", hostileFrame(true, ws.OpContinuation, 0, true, request("x")), ws.StatusProtocolError},
		{"a close frame with code 1005", hostileFrame(true, ws.OpClose, 0, true, []byte{0x03, 0xed}), ws.StatusProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := dialRaw(t, h.url, nil)
			id := a.hello(nil)["socket"].(string)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer a.conn.Close() // ends a write the server no longer reads, before the Wait
			wg.Go(func() { _, _ = a.conn.Write(tc.raw) })
			assert.Equal(t, tc.want, a.closed(5*time.Second), "the close code the hostile client got")
			_ = a.conn.Close() // as a client does when the server has closed: the server lingers until then (up to 1 s)
			h.let(t, id)
			h.stillServes(t)
		})
	}
}

// TestDecompressionBombIsCutAtTheLimit: with permessage-deflate, MaxRequestBytes bounds the
// inflated message: 8 MiB of zeros in a frame of a few KiB is cut at the 1 MiB limit with
// 1009, and the well-behaved client (whose connection is compressed too) is served.
func TestDecompressionBombIsCutAtTheLimit(t *testing.T) {
	t.Parallel()
	h := startHardened(t, Options{WebSocket: &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}}, false)
	var zeros bytes.Buffer
	w, _ := flate.NewWriter(&zeros, flate.BestSpeed)
	_, _ = w.Write([]byte(`{"type":"request","id":2,"method":"POST","path":"/echo","payload":"`))
	_, _ = w.Write(make([]byte, 8<<20))
	_ = w.Flush()
	bomb := bytes.TrimSuffix(zeros.Bytes(), []byte{0, 0, 0xff, 0xff})
	require.Less(t, len(bomb), hardenedLimit/16, "the frame itself is small: only inflating crosses the limit")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
	conn, br, hs, err := d.Dial(ctx, h.url)
	require.NoError(t, err)
	require.Len(t, hs.Extensions, 1, "permessage-deflate negotiated")
	a := &rawClient{t: t, conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{io.MultiReader(br, conn), conn}}
	t.Cleanup(func() { _ = conn.Close() })
	if br == nil {
		a.rw = conn
	}
	id := a.hello(nil)["socket"].(string)
	_, err = conn.Write(hostileFrame(true, ws.OpText, 4, true, bomb))
	require.NoError(t, err)
	assert.Equal(t, ws.StatusMessageTooBig, a.closed(5*time.Second))
	_ = conn.Close()
	h.let(t, id)
	h.stillServes(t)
}

// TestHostileNesMessagesAreAnswered: nes messages a client may send but should not (nested
// 100,000 deep, not JSON, of an unknown type, without an id) are answered with the error the
// reference gives, and the socket goes on serving, as does the well-behaved client's.
func TestHostileNesMessagesAreAnswered(t *testing.T) {
	t.Parallel()
	h := startHardened(t, Options{}, false)
	a := dialRaw(t, h.url, nil)
	a.hello(nil)
	const depth = 100_000
	cannotParse := map[string]any{"error": "Bad Request", "message": "Cannot parse message"}
	for i, tc := range []struct {
		name string
		msg  string
		want map[string]any // of the reply
	}{
		{"a payload nested 100,000 deep", `{"type":"request","id":7,"method":"POST","path":"/echo","payload":` +
			strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
			map[string]any{"statusCode": float64(400), "payload": cannotParse}},
		{"100,000 '[' never closed", strings.Repeat("[", depth),
			map[string]any{"statusCode": float64(400), "payload": cannotParse}},
		{"objects nested 100,000 deep", `{"type":"message","id":7,"message":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat("}", depth) + `}`,
			map[string]any{"statusCode": float64(400), "payload": cannotParse}},
		{"not JSON", `this is not json {{{`,
			map[string]any{"statusCode": float64(400), "payload": cannotParse}},
		{"an unknown type", `{"type":"bogus","id":7}`,
			map[string]any{"type": "bogus", "id": float64(7), "statusCode": float64(400),
				"payload": map[string]any{"error": "Bad Request", "message": "Unknown message type"}}},
		{"no id", `{"type":"request","method":"GET","path":"/h"}`,
			map[string]any{"type": "request", "statusCode": float64(400),
				"payload": map[string]any{"error": "Bad Request", "message": "Message missing id"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.sendText(tc.msg)
			got := a.next(5 * time.Second)
			for k, v := range tc.want {
				assert.Equal(t, v, got[k], "reply field %q: %v", k, got)
			}
			if tc.want["id"] == nil {
				assert.NotContains(t, got, "id", "a message not parsed has no id to echo")
			}
			a.send(map[string]any{"type": "request", "id": 100 + i, "method": "GET", "path": "hello"})
			assert.Equal(t, "world!", a.next(5 * time.Second)["payload"], "the hostile socket still serves")
			h.stillServes(t)
		})
	}
}

// TestConcurrentRequestsOnOneSocket: requests sent at once on one socket are processed at
// once (/gate answers only when gateSize of them are in the handler together) and each reply
// carries its own request's id and answer.
func TestConcurrentRequestsOnOneSocket(t *testing.T) {
	t.Parallel()
	h := startHardened(t, Options{}, false)
	a := dialRaw(t, h.url, nil)
	a.hello(nil)
	const count = 64 // more than MaxInFlight (32): the rest wait for room
	var burst []byte
	for i := 1; i <= count; i++ { // id 0 is "Message missing id", as in the reference
		path := fmt.Sprintf("/echo?i=%d", i)
		if i <= gateSize {
			path = fmt.Sprintf("/gate?i=%d", i)
		}
		burst = append(burst, hostileFrame(true, ws.OpText, 0, true,
			fmt.Appendf(nil, `{"type":"request","id":%d,"method":"GET","path":%q}`, i, path))...)
	}
	_, err := a.conn.Write(burst)
	require.NoError(t, err)
	seen := map[int]bool{}
	for range count {
		m := a.next(10 * time.Second)
		id := int(m["id"].(float64))
		assert.False(t, seen[id], "two replies to request %d", id)
		seen[id] = true
		assert.Equal(t, float64(200), m["statusCode"], "request %d: %v", id, m)
		assert.Equal(t, fmt.Sprintf("i=%d", id), m["payload"], "request %d got another's answer", id)
	}
	h.stillServes(t)
}

// TestClientThatNeverReadsIsDropped: a client that keeps sending messages and never reads
// their replies fills its send queue: the server lets it go (ErrSlowConsumer) rather than
// hold the replies, or stop reading the other sockets, and the well-behaved client is served.
// The replies are those of requests (processed, with the reading handed over when one takes
// long) and those of messages refused on arrival (of an unknown type, answered as they are
// read).
func TestClientThatNeverReadsIsDropped(t *testing.T) {
	t.Parallel()
	// SendTimeout far past let's 5 s: only the queue limit can let the socket go in time.
	h := startHardened(t, Options{SendQueueLimit: 256 << 10, SendTimeout: time.Minute}, false)
	unknown := strings.Repeat("x", 32<<10) // echoed in the error reply
	for _, tc := range []struct {
		name string
		msg  func(i int) []byte
	}{
		{"requests", func(i int) []byte {
			return fmt.Appendf(nil, `{"type":"request","id":%d,"method":"GET","path":"/big"}`, i)
		}},
		{"refused on arrival", func(i int) []byte { return fmt.Appendf(nil, `{"type":%q,"id":%d}`, unknown, i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := dialRaw(t, h.url, nil)
			require.NoError(t, a.conn.(*net.TCPConn).SetReadBuffer(4<<10)) // keep the kernel from taking it all
			id := a.hello(nil)["socket"].(string)
			// 400 replies of 32 KiB: 12.5 MiB, far past the queue's 256 KiB and the sockets' buffers.
			var burst []byte
			for i := 1; i <= 400; i++ {
				burst = append(burst, hostileFrame(true, ws.OpText, 0, true, tc.msg(i))...)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer a.conn.Close() // ends the write once the server stopped reading, before the Wait
			wg.Go(func() { _, _ = a.conn.Write(burst) })
			h.let(t, id)
			why, _ := h.why.Load(id)
			err, _ := why.(error)
			assert.ErrorIs(t, err, ErrSlowConsumer, "why the server let the socket go")
			h.stillServes(t)
		})
	}
}

// TestForgedAndExpiredTokens: a hello with a token the server did not seal, or sealed and
// since expired, is answered 401 and its socket let go; the well-behaved client,
// authenticated with a good token, is served throughout.
func TestForgedAndExpiredTokens(t *testing.T) {
	t.Parallel()
	h := startHardened(t, Options{Auth: &AuthOptions{Type: "token", Password: testPassword, Required: true}}, true)
	good := hardenedToken(t, h.srv, "mallory", time.Hour)
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 1
	other := NewServer(nil, &Options{Heartbeat: &Heartbeat{Disabled: true}, Auth: &AuthOptions{Type: "token", Password: strings.Repeat("other-", 6)}})
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		name  string
		token any
	}{
		{"expired a second ago", hardenedToken(t, h.srv, "mallory", -time.Second)},
		{"expired as it was sealed", hardenedToken(t, h.srv, "mallory", time.Nanosecond)},
		{"one bit flipped", string(flipped)},
		{"sealed with another password", hardenedToken(t, other, "mallory", time.Hour)},
		{"cut short", good[:len(good)-4]},
		{"random", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"64 KiB of junk", strings.Repeat("x", 64<<10)},
		{"not a string", map[string]any{"user": "admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := dialRaw(t, h.url, nil)
			a.send(map[string]any{"type": "hello", "id": 1, "version": "2", "auth": tc.token})
			m := a.next(5 * time.Second)
			assert.Equal(t, float64(401), m["statusCode"], "%v", m)
			assert.Equal(t, map[string]any{"error": "Unauthorized", "message": "Invalid token"}, m["payload"])
			a.closed(5 * time.Second)
			select {
			case <-h.gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the server still holds the refused socket")
			}
			h.stillServes(t)
		})
	}
	// The token itself was good: the refusals were about the tokens, not the client.
	a := dialRaw(t, h.url, nil)
	assert.Equal(t, "hello", a.hello(good)["type"])
}

// TestHalfFrameThenSilenceIsFreed: a socket that sends part of a frame and then nothing (a
// client gone without closing TCP) is let go by the WebSocket's deadlines, FirstFrameTimeout
// before its first frame and the automatic ping's PongTimeout after it, with nothing of it
// left running on the server, while the well-behaved client, whose client answers pings,
// stays. Not parallel: it checks that no goroutine is left.
func TestHalfFrameThenSilenceIsFreed(t *testing.T) {
	h := startHardened(t, Options{WebSocket: &websocket.Options{PingInterval: 50 * time.Millisecond,
		PongTimeout: 400 * time.Millisecond, FirstFrameTimeout: 150 * time.Millisecond}}, false)
	for _, afterHello := range []bool{false, true} {
		t.Run(fmt.Sprintf("after hello %v", afterHello), func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			a := dialRaw(t, h.url, nil)
			var id string
			if afterHello {
				id = a.hello(nil)["socket"].(string)
			}
			whole := hostileFrame(true, ws.OpText, 0, true, []byte(`{"type":"request","id":2,"method":"GET","path":"hello"}`))
			_, err := a.conn.Write(whole[:len(whole)/2])
			require.NoError(t, err)
			code := silentEnd(t, a)
			if afterHello {
				assert.Equal(t, ws.StatusGoingAway, code, "the pong timeout's close frame")
				h.let(t, id)
			} else {
				assert.Equal(t, ws.StatusPolicyViolation, code, "FirstFrameTimeout")
				select {
				case <-h.gone:
				case <-time.After(5 * time.Second):
					t.Fatal("the server still holds the socket")
				}
			}
			goleak.VerifyNone(t, baseline)
			h.stillServes(t)
		})
	}
}
