package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

// serve starts a test server that upgrades every request with opts and runs fn on the
// connection. It returns the ws:// URL.
func serve(t *testing.T, opts *websocket.Options, fn func(c *websocket.Conn)) string {
	return serveTB(t, opts, fn)
}

// serveTB is serve for tests and benchmarks.
func serveTB(t testing.TB, opts *websocket.Options, fn func(c *websocket.Conn)) string {
	t.Helper()
	// httptest.Server does not wait for hijacked connections: track the handlers here.
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		closed bool
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if closed {
			mu.Unlock()
			return
		}
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		c, err := websocket.Upgrade(w, r, opts)
		if err != nil {
			return
		}
		defer c.Close(websocket.StatusNormalClosure, "")
		fn(c)
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		closed = true
		mu.Unlock()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dial connects with gobwas/ws's client, an implementation independent of ours.
func dial(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, br
}

// clientReader reads server frames from the buffered handshake reader and then the conn.
func clientReader(conn net.Conn, br *bufio.Reader) io.ReadWriter {
	if br == nil {
		return conn
	}
	return struct {
		io.Reader
		io.Writer
	}{io.MultiReader(br, conn), conn}
}

func echo(c *websocket.Conn) {
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
}

func TestEchoThroughGobwasClient(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, echo)
	conn, br := dial(t, url)
	rw := clientReader(conn, br)
	for _, size := range []int{0, 1, 125, 126, 127, 4096, 65535, 65536, 1 << 20} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		require.NoError(t, wsutil.WriteClientBinary(conn, msg))
		got, op, err := wsutil.ReadServerData(rw)
		require.NoError(t, err, "size %d", size)
		assert.Equal(t, ws.OpBinary, op)
		assert.True(t, bytes.Equal(msg, got), "size %d: echo differs", size)
	}
	require.NoError(t, wsutil.WriteClientText(conn, []byte("héllo 🌍")))
	got, op, err := wsutil.ReadServerData(rw)
	require.NoError(t, err)
	assert.Equal(t, ws.OpText, op)
	assert.Equal(t, "héllo 🌍", string(got))
}

// writeOneWay writes msg whole with Write or, fragmented, in three frames with a Writer.
func writeOneWay(c *websocket.Conn, msg []byte, fragmented bool) error {
	ctx := context.Background()
	if !fragmented {
		return c.Write(ctx, websocket.MessageBinary, msg)
	}
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		return err
	}
	third := len(msg) / 3
	for _, part := range [][]byte{msg[:third], msg[third : 2*third], msg[2*third:]} {
		if _, err := w.Write(part); err != nil {
			return err
		}
		time.Sleep(50 * time.Microsecond) // as a producer of fragments would: others get to write meanwhile
	}
	return w.Close()
}

// readWholeStrictly reads the frames of one server message, failing the test when a data
// frame other than a continuation comes inside it.
func readWholeStrictly(t *testing.T, rw io.Reader) []byte {
	t.Helper()
	var msg []byte
	for first := true; ; first = false {
		h, err := ws.ReadHeader(rw)
		require.NoError(t, err)
		require.False(t, h.OpCode.IsControl(), "no control frame expected")
		if first {
			require.Equal(t, ws.OpBinary, h.OpCode)
		} else {
			require.Equal(t, ws.OpContinuation, h.OpCode, "a frame of another message came inside a fragmented one")
		}
		p := make([]byte, h.Length)
		_, err = io.ReadFull(rw, p)
		require.NoError(t, err)
		msg = append(msg, p...)
		if h.Fin {
			return msg
		}
	}
}

// TestConcurrentWritesStayWhole has goroutines write whole messages and fragmented ones at
// once: no frame of one message may land between the frames of another.
func TestConcurrentWritesStayWhole(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 50
	url := serve(t, nil, func(c *websocket.Conn) {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				msg := bytes.Repeat([]byte{byte('a' + w)}, 3000+w*1000)
				for range each {
					if err := writeOneWay(c, msg, w%2 == 0); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		_, _, _ = c.Read(context.Background())
	})
	conn, br := dial(t, url)
	rw := clientReader(conn, br)
	counts := map[byte]int{}
	for range writers * each {
		got := readWholeStrictly(t, rw)
		require.NotEmpty(t, got)
		w := got[0]
		require.Len(t, got, 3000+int(w-'a')*1000)
		require.Equal(t, bytes.Repeat([]byte{w}, len(got)), got, "interleaved frames")
		counts[w]++
	}
	for w := range writers {
		assert.Equal(t, each, counts[byte('a'+w)])
	}
}

func TestPingReturnsOnPong(t *testing.T) {
	t.Parallel()
	pinged := make(chan error, 1)
	url := serve(t, nil, func(c *websocket.Conn) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pinged <- c.Ping(ctx, []byte("Mic check"))
		}()
		_, _, _ = c.Read(context.Background())
	})
	conn, br := dial(t, url)
	// wsutil answers the ping with a pong while reading.
	go func() { _, _, _ = wsutil.ReadServerData(clientReader(conn, br)) }()
	select {
	case err := <-pinged:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Ping did not return after the pong")
	}
}

// clientFrame builds one masked client frame.
func clientFrame(fin bool, op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	f := ws.NewFrame(op, fin, bytes.Clone(payload))
	f = ws.MaskFrame(f)
	_ = ws.WriteFrame(&b, f)
	return b.Bytes()
}

func TestPongSettlesEarlierPings(t *testing.T) {
	t.Parallel()
	results := make(chan error, 2)
	started := make(chan struct{})
	url := serve(t, nil, func(c *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, p := range []string{"one", "two"} {
			wg.Go(func() { results <- c.Ping(ctx, []byte(p)) })
			time.Sleep(50 * time.Millisecond)
		}
		close(started)
		_, _, _ = c.Read(ctx)
		wg.Wait()
	})
	conn, _ := dial(t, url)
	<-started
	// Answer only the second ping, as RFC 6455 §5.5.3 allows.
	_, err := conn.Write(clientFrame(true, ws.OpPong, []byte("two")))
	require.NoError(t, err)
	for range 2 {
		select {
		case err := <-results:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a ping was not settled by the later pong")
		}
	}
}

func TestPongTimeoutCloses(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	url := serve(t, &websocket.Options{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		_, _, err := c.Read(context.Background())
		done <- err
	})
	conn, _ := dial(t, url) // never answers pings
	select {
	case err := <-done:
		assert.ErrorIs(t, err, websocket.ErrPongTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived its pong timeout")
	}
	_ = conn
}

func TestAutomaticPingsKeepLivePeer(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	url := serve(t, &websocket.Options{PingInterval: 20 * time.Millisecond, PongTimeout: 100 * time.Millisecond}, func(c *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		_, _, err := c.Read(ctx)
		done <- err
	})
	conn, br := dial(t, url)
	go func() { _, _, _ = wsutil.ReadServerData(clientReader(conn, br)) }() // answers pings
	assert.ErrorIs(t, <-done, context.DeadlineExceeded, "a peer answering pings must not be dropped")
}

func TestFirstFrameTimeout(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	url := serve(t, &websocket.Options{FirstFrameTimeout: 100 * time.Millisecond, PingInterval: -1}, func(c *websocket.Conn) {
		_, _, err := c.Read(context.Background())
		done <- err
	})
	conn, br := dial(t, url)
	select {
	case err := <-done:
		var pe *websocket.ProtocolError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, websocket.StatusPolicyViolation, pe.Code)
	case <-time.After(5 * time.Second):
		t.Fatal("a silent peer outlived FirstFrameTimeout")
	}
	_, _, err := wsutil.ReadServerData(clientReader(conn, br))
	var ce wsutil.ClosedError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.StatusPolicyViolation, ce.Code)
}

func TestReadContextCancelKeepsConnection(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	url := serve(t, nil, func(c *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := c.Read(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read: %v, want deadline exceeded", err)
		}
		_, data, err := c.Read(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- string(data)
	})
	conn, _ := dial(t, url)
	// Half a frame before the deadline, the rest after: the message must survive.
	frame := clientFrame(true, ws.OpText, []byte("resumed after a timeout"))
	_, err := conn.Write(frame[:10])
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	_, err = conn.Write(frame[10:])
	require.NoError(t, err)
	select {
	case s := <-got:
		assert.Equal(t, "resumed after a timeout", s)
	case <-time.After(5 * time.Second):
		t.Fatal("no message after the cancelled Read")
	}
}

// TestReadAppend checks that ReadAppend appends to the buffer it is given, reuses its room,
// and completes a message cut short by a context into the dst of the call that finishes it.
func TestReadAppend(t *testing.T) {
	t.Parallel()
	type result struct {
		typ  websocket.MessageType
		data string
		same bool // the message went into the given buffer's own array
		err  error
	}
	got := make(chan result, 4)
	url := serve(t, nil, func(c *websocket.Conn) {
		buf := make([]byte, 0, 64)
		typ, out, err := c.ReadAppend(context.Background(), append(buf, "prefix:"...))
		got <- result{typ, string(out), &out[0] == &buf[:1][0], err}

		typ, out, err = c.ReadAppend(context.Background(), buf[:0])
		got <- result{typ, string(out), &out[0] == &buf[:1][0], err}

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, out, err = c.ReadAppend(ctx, []byte("lost:"))
		got <- result{0, string(out), false, err}

		typ, out, err = c.ReadAppend(context.Background(), []byte("kept:"))
		got <- result{typ, string(out), false, err}
	})
	conn, _ := dial(t, url)
	_, err := conn.Write(clientFrame(true, ws.OpText, []byte("one")))
	require.NoError(t, err)
	_, err = conn.Write(append(clientFrame(false, ws.OpBinary, []byte("tw")), clientFrame(true, ws.OpContinuation, []byte("o"))...))
	require.NoError(t, err)
	frame := clientFrame(true, ws.OpText, []byte("three, in two halves"))
	_, err = conn.Write(frame[:12])
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	_, err = conn.Write(frame[12:])
	require.NoError(t, err)

	want := []result{
		{websocket.MessageText, "prefix:one", true, nil},
		{websocket.MessageBinary, "two", true, nil},
		{0, "lost:", false, context.DeadlineExceeded},
		{websocket.MessageText, "kept:three, in two halves", false, nil},
	}
	for i, w := range want {
		select {
		case r := <-got:
			assert.ErrorIs(t, r.err, w.err, "read %d", i)
			if w.err == nil {
				assert.NoError(t, r.err, "read %d", i)
			}
			assert.Equal(t, w.typ, r.typ, "read %d", i)
			assert.Equal(t, w.data, r.data, "read %d", i)
			assert.Equal(t, w.same, r.same, "read %d: reused the buffer", i)
		case <-time.After(5 * time.Second):
			t.Fatalf("read %d did not return", i)
		}
	}
}

func TestCloseHandshakeFromServer(t *testing.T) {
	t.Parallel()
	closed := make(chan error, 1)
	url := serve(t, nil, func(c *websocket.Conn) {
		go func() { closed <- c.Close(4000, "done here") }()
		_, _, err := c.Read(context.Background())
		if websocket.CloseStatus(err) != 4000 {
			t.Errorf("Read after Close: %v, want the peer's echo of 4000", err)
		}
	})
	conn, br := dial(t, url)
	_, _, err := wsutil.ReadServerData(clientReader(conn, br)) // replies to the close frame
	var ce wsutil.ClosedError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.StatusCode(4000), ce.Code)
	assert.Equal(t, "done here", ce.Reason)
	select {
	case err := <-closed:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the handshake")
	}
}

func TestCloseTimesOutOnSilentPeer(t *testing.T) {
	t.Parallel()
	took := make(chan time.Duration, 1)
	url := serve(t, &websocket.Options{CloseTimeout: 200 * time.Millisecond}, func(c *websocket.Conn) {
		start := time.Now()
		_ = c.Close(websocket.StatusNormalClosure, "")
		took <- time.Since(start)
	})
	dial(t, url) // never reads, never answers
	select {
	case d := <-took:
		assert.GreaterOrEqual(t, d, 150*time.Millisecond)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not give up after CloseTimeout")
	}
}

func TestCloseRejectsCodesNeverSent(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, func(c *websocket.Conn) {
		for _, code := range []websocket.StatusCode{0, 999, 1004, 1006, 1015, 1016, 2999, 5000} {
			if err := c.Close(code, ""); err == nil {
				t.Errorf("Close(%d) succeeded", code)
			}
		}
	})
	dial(t, url)
}

func TestWriteQueueLimit(t *testing.T) {
	t.Parallel()
	full := make(chan error, 1)
	url := serve(t, &websocket.Options{WriteQueueLimit: 1 << 20}, func(c *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		big := make([]byte, 1<<20)
		// The peer never reads: writes pile up until the queue refuses them.
		var wg sync.WaitGroup
		defer wg.Wait()
		for {
			if c.BufferedAmount() > 0 {
				err := c.Write(ctx, websocket.MessageBinary, big)
				full <- err
				cancel()
				return
			}
			wg.Go(func() { _ = c.Write(ctx, websocket.MessageBinary, big) })
			time.Sleep(20 * time.Millisecond)
		}
	})
	dial(t, url)
	select {
	case err := <-full:
		assert.ErrorIs(t, err, websocket.ErrWriteQueueFull)
	case <-time.After(10 * time.Second):
		t.Fatal("writes never hit the queue limit")
	}
}

func TestStreamingReaderAndWriter(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, func(c *websocket.Conn) {
		ctx := context.Background()
		typ, r, err := c.Reader(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		w, err := c.Writer(ctx, typ)
		if err != nil {
			t.Error(err)
			return
		}
		buf := make([]byte, 1000) // copy in 1000-byte fragments
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			t.Error(err)
		}
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		_, _, _ = c.Read(ctx)
	})
	conn, br := dial(t, url)
	msg := bytes.Repeat([]byte("0123456789"), 10000)
	// Send it fragmented, with a ping in between.
	_, err := conn.Write(append(append(clientFrame(false, ws.OpText, msg[:50000]), clientFrame(true, ws.OpPing, []byte("p"))...), clientFrame(true, ws.OpContinuation, msg[50000:])...))
	require.NoError(t, err)
	var frames int
	var got []byte
	rd := clientReader(conn, br)
	for {
		h, err := ws.ReadHeader(rd)
		require.NoError(t, err)
		p := make([]byte, h.Length)
		_, err = io.ReadFull(rd, p)
		require.NoError(t, err)
		if h.OpCode == ws.OpPong {
			assert.Equal(t, "p", string(p))
			continue
		}
		frames++
		got = append(got, p...)
		if h.Fin {
			break
		}
	}
	assert.Equal(t, msg, got)
	assert.Greater(t, frames, 50, "the writer should have sent one frame per Write")
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, &websocket.Options{
			OriginPatterns: []string{"*.example.com"},
			Verify: func(r *http.Request) error {
				if r.URL.Query().Get("banned") != "" {
					return &websocket.HTTPError{Status: http.StatusUnauthorized, Message: "who are you?", Header: http.Header{"Www-Authenticate": {"Basic"}}}
				}
				return nil
			},
		})
		if err == nil {
			_ = c.Close(websocket.StatusNormalClosure, "")
		}
	}))
	defer srv.Close()
	good := func() http.Header {
		return http.Header{
			"Connection":            {"keep-alive, Upgrade"},
			"Upgrade":               {"websocket"},
			"Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		}
	}
	cases := []struct {
		name   string
		method string
		query  string
		edit   func(h http.Header)
		status int
		header string // a response header that must be present, "Name: value"
	}{
		{name: "valid", edit: func(http.Header) {}, status: 101},
		{name: "POST", method: "POST", edit: func(http.Header) {}, status: 400},
		{name: "no upgrade token", edit: func(h http.Header) { h.Set("Connection", "keep-alive") }, status: 400},
		{name: "wrong upgrade", edit: func(h http.Header) { h.Set("Upgrade", "h2c") }, status: 400},
		{name: "no version", edit: func(h http.Header) { h.Del("Sec-Websocket-Version") }, status: 400},
		{name: "version 8", edit: func(h http.Header) { h.Set("Sec-Websocket-Version", "8") }, status: 426, header: "Sec-Websocket-Version: 13"},
		{name: "no key", edit: func(h http.Header) { h.Del("Sec-Websocket-Key") }, status: 400},
		{name: "short key", edit: func(h http.Header) { h.Set("Sec-Websocket-Key", "c2hvcnQ=") }, status: 400},
		{name: "two keys", edit: func(h http.Header) { h.Add("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==") }, status: 400},
		{name: "cross-site origin", edit: func(h http.Header) { h.Set("Origin", "https://evil.test") }, status: 403},
		{name: "null origin", edit: func(h http.Header) { h.Set("Origin", "null") }, status: 403},
		{name: "allowed origin pattern", edit: func(h http.Header) { h.Set("Origin", "https://app.example.com") }, status: 101},
		{name: "verify refuses", query: "?banned=1", edit: func(http.Header) {}, status: 401, header: "Www-Authenticate: Basic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequest(method, srv.URL+tc.query, nil)
			require.NoError(t, err)
			req.Header = good()
			tc.edit(req.Header)
			resp, err := http.DefaultTransport.RoundTrip(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 101 {
				assert.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp.Header.Get("Sec-Websocket-Accept"))
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				assert.Equal(t, value, resp.Header.Get(name))
			}
		})
	}
}

func TestSameHostOriginPasses(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, echo)
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {"http" + strings.TrimPrefix(url, "ws")}})}
	conn, _, _, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	_ = conn.Close()
}

func TestSubprotocolSelection(t *testing.T) {
	t.Parallel()
	url := serve(t, &websocket.Options{Protocols: []string{"irc", "amqp"}}, func(c *websocket.Conn) {})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"foo", "amqp", "irc"}, "amqp"},
		{[]string{"irc", "amqp"}, "irc"},
		{[]string{"foo"}, ""},
		{nil, ""},
	} {
		d := ws.Dialer{Protocols: tc.offer}
		conn, _, hs, err := d.Dial(context.Background(), url)
		if tc.want == "" && len(tc.offer) > 0 {
			// gobwas's client, like browsers, refuses a response that selects nothing.
			if err == nil {
				_ = conn.Close()
			}
			continue
		}
		require.NoError(t, err, "offer %v", tc.offer)
		assert.Equal(t, tc.want, hs.Protocol, "offer %v", tc.offer)
		_ = conn.Close()
	}
}

func TestHandlerFallbackAndRegistryShutdown(t *testing.T) {
	t.Parallel()
	reg := &websocket.Registry{}
	srv := httptest.NewServer(&websocket.Handler{
		Accept:   echo,
		Options:  &websocket.Options{Registry: reg},
		Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "plain") }),
	})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "plain", string(body))

	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var conns []io.ReadWriter
	for range 3 {
		conn, br := dial(t, url)
		conns = append(conns, clientReader(conn, br))
	}
	require.Eventually(t, func() bool { return reg.Len() == 3 }, 5*time.Second, 10*time.Millisecond)
	done := make(chan struct{})
	go func() { reg.Shutdown(); close(done) }()
	for _, rw := range conns {
		_, _, err := wsutil.ReadServerData(rw)
		var ce wsutil.ClosedError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, ws.StatusGoingAway, ce.Code)
	}
	<-done
	assert.Equal(t, 0, reg.Len())
	_, _, _, err = ws.Dial(context.Background(), url)
	assert.Error(t, err, "a shut-down registry refuses new upgrades")
}

func TestCloseKeepsMessagesForLaterReads(t *testing.T) {
	t.Parallel()
	got := make(chan []string, 1)
	sent := make(chan struct{})
	url := serve(t, nil, func(c *websocket.Conn) {
		<-sent // the client's messages are on their way; nobody is reading
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		var msgs []string
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				break
			}
			msgs = append(msgs, string(data))
		}
		got <- msgs
	})
	conn, br := dial(t, url)
	for _, m := range []string{"one", "two", "three"} {
		require.NoError(t, wsutil.WriteClientText(conn, []byte(m)))
	}
	close(sent)
	_, _, err := wsutil.ReadServerData(clientReader(conn, br)) // answers the close
	var ce wsutil.ClosedError
	require.ErrorAs(t, err, &ce)
	select {
	case msgs := <-got:
		assert.Equal(t, []string{"one", "two", "three"}, msgs)
	case <-time.After(5 * time.Second):
		t.Fatal("no messages after Close")
	}
}

func TestCloseEndsAWriteStuckOnAPeerThatStoppedReading(t *testing.T) {
	t.Parallel()
	results := make(chan error, 2)
	url := serve(t, &websocket.Options{CloseTimeout: 200 * time.Millisecond}, func(c *websocket.Conn) {
		big := make([]byte, 8<<20)
		go func() { results <- c.Write(context.Background(), websocket.MessageBinary, big) }() // never completes
		time.Sleep(200 * time.Millisecond)
		_ = c.Close(websocket.StatusGoingAway, "")
		results <- nil
	})
	conn, _ := dial(t, url)
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10) // the client never reads
	for range 2 {
		select {
		case <-results:
		case <-time.After(10 * time.Second):
			t.Fatal("Close waited forever behind a stuck write")
		}
	}
}

func TestCloseNowDropsTheConnection(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	url := serve(t, nil, func(c *websocket.Conn) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = c.CloseNow()
		}()
		_, _, err := c.Read(context.Background())
		done <- err
	})
	conn, br := dial(t, url)
	_, _, err := wsutil.ReadServerData(clientReader(conn, br))
	var ce wsutil.ClosedError
	assert.False(t, errors.As(err, &ce), "no close frame is sent: %v", err)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, websocket.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after CloseNow")
	}
}
