package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/internal/leakcheck"
	"github.com/herald-go/herald/websocket"
)

// idleServer serves every upgrade with Serve in idle mode and records each connection's end.
type idleServer struct {
	url    string
	conns  chan *websocket.Conn // each served connection, as it is served
	closed chan error           // each OnClose's error
	wg     sync.WaitGroup       // one per connection until OnClose
}

// serveIdleMode starts a server whose connections are served with ev (IdleMode is set), after
// Upgrade with opts. onMessage nil echoes. When the test ends every connection still open is
// closed and its OnClose awaited.
func serveIdleMode(t testing.TB, opts *websocket.Options, onMessage func(c *websocket.Conn, typ websocket.MessageType, data []byte)) *idleServer {
	t.Helper()
	if onMessage == nil {
		onMessage = func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			_ = c.Write(context.Background(), typ, data)
		}
	}
	s := &idleServer{conns: make(chan *websocket.Conn, 2000), closed: make(chan error, 2000)}
	reg := &websocket.Registry{}
	o := websocket.Options{}
	if opts != nil {
		o = *opts
	}
	o.Registry = reg
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, &o)
		if err != nil {
			return
		}
		s.wg.Add(1)
		c.Serve(&websocket.Events{
			IdleMode:  true,
			OnMessage: onMessage,
			OnClose: func(c *websocket.Conn, err error) {
				s.closed <- err
				s.wg.Done()
			},
		})
		s.conns <- c
	}))
	t.Cleanup(func() {
		srv.Close()
		reg.Shutdown()
		s.wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

// next returns the next served connection.
func (s *idleServer) next(t testing.TB) *websocket.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection was served")
		return nil
	}
}

// closeErr returns the next OnClose error.
func (s *idleServer) closeErr(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.closed:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose was not called")
		return nil
	}
}

func TestIdleModeEcho(t *testing.T) {
	t.Parallel()
	s := serveIdleMode(t, nil, nil)
	conn, br := dial(t, s.url)
	c := s.next(t)
	require.True(t, c.IdleMode(), "a plain TCP connection on Linux must be served in idle mode")
	rw := clientReader(conn, br)
	for _, n := range []int{0, 1, 125, 126, 4096, 65535, 65536, 1 << 20} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		require.NoError(t, wsutil.WriteClientBinary(rw, msg))
		got, op, err := wsutil.ReadServerData(rw)
		require.NoError(t, err, "size %d", n)
		assert.Equal(t, ws.OpBinary, op)
		assert.True(t, bytes.Equal(msg, got), "size %d: echo differs", n)
	}
	// Many messages in one write, and a fragmented message split across writes with a ping
	// in the middle.
	var burst bytes.Buffer
	for i := range 50 {
		require.NoError(t, wsutil.WriteClientText(&burst, fmt.Appendf(nil, "m%d", i)))
	}
	_, err := conn.Write(burst.Bytes())
	require.NoError(t, err)
	for i := range 50 {
		got, op, err := wsutil.ReadServerData(rw)
		require.NoError(t, err)
		assert.Equal(t, ws.OpText, op)
		assert.Equal(t, fmt.Sprintf("m%d", i), string(got))
	}
	_, err = conn.Write(clientFrame(false, ws.OpText, []byte("frag")))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = conn.Write(clientFrame(true, ws.OpPing, []byte("p")))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = conn.Write(clientFrame(true, ws.OpContinuation, []byte("mented")))
	require.NoError(t, err)
	f, err := readControlFrame(rw)
	require.NoError(t, err)
	assert.Equal(t, ws.OpPong, f.Header.OpCode)
	assert.Equal(t, "p", string(f.Payload))
	got, _, err := wsutil.ReadServerData(rw)
	require.NoError(t, err)
	assert.Equal(t, "fragmented", string(got))
}

func TestIdleModePeerClose(t *testing.T) {
	t.Parallel()
	s := serveIdleMode(t, nil, nil)
	conn, br := dial(t, s.url)
	s.next(t)
	_, err := conn.Write(clientFrame(true, ws.OpClose, append([]byte{0x0f, 0xa1}, "bye"...)))
	require.NoError(t, err)
	f, err := readControlFrame(clientReader(conn, br))
	require.NoError(t, err)
	assert.Equal(t, ws.OpClose, f.Header.OpCode)
	assert.Equal(t, append([]byte{0x0f, 0xa1}, "bye"...), f.Payload, "the close reply echoes code and reason")
	err = s.closeErr(t)
	assert.Equal(t, websocket.StatusCode(4001), websocket.CloseStatus(err))
}

func TestIdleModeServerCloseWhileIdle(t *testing.T) {
	t.Parallel()
	s := serveIdleMode(t, nil, nil)
	conn, br := dial(t, s.url)
	c := s.next(t)
	rw := clientReader(conn, br)
	go func() {
		// The client answers the close frame, as a peer does.
		f, err := readControlFrame(rw)
		if err == nil && f.Header.OpCode == ws.OpClose {
			_, _ = conn.Write(clientFrame(true, ws.OpClose, ws.UnmaskFrame(f).Payload))
		}
	}()
	require.NoError(t, c.Close(4002, "server says bye"))
	assert.Equal(t, websocket.StatusCode(4002), websocket.CloseStatus(s.closeErr(t)),
		"OnClose reports the peer's reply to the server's close frame")
}

func TestIdleModeLimits(t *testing.T) {
	t.Parallel()
	s := serveIdleMode(t, &websocket.Options{MaxLength: 1024}, nil)
	conn, br := dial(t, s.url)
	s.next(t)
	rw := clientReader(conn, br)
	require.NoError(t, wsutil.WriteClientBinary(rw, make([]byte, 1024)))
	got, _, err := wsutil.ReadServerData(rw)
	require.NoError(t, err)
	assert.Len(t, got, 1024)
	require.NoError(t, wsutil.WriteClientBinary(rw, make([]byte, 1025)))
	_, _, err = wsutil.ReadServerData(rw)
	var ce wsutil.ClosedError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.StatusMessageTooBig, ce.Code)
	var pe *websocket.ProtocolError
	require.ErrorAs(t, s.closeErr(t), &pe)
	assert.Equal(t, websocket.StatusMessageTooBig, pe.Code)

	// Invalid UTF-8 in a text message: 1007.
	conn2, br2 := dial(t, s.url)
	s.next(t)
	_, err = conn2.Write(clientFrame(true, ws.OpText, []byte{0xff, 0xfe}))
	require.NoError(t, err)
	_, _, err = wsutil.ReadServerData(clientReader(conn2, br2))
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.StatusInvalidFramePayloadData, ce.Code)
	require.ErrorAs(t, s.closeErr(t), &pe)
	assert.Equal(t, websocket.StatusInvalidFramePayload, pe.Code)
}

func TestIdleModeFirstFrameTimeout(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"silent", "dribbled"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := serveIdleMode(t, &websocket.Options{FirstFrameTimeout: 150 * time.Millisecond, PingInterval: -1}, nil)
			conn, br := dial(t, s.url)
			s.next(t)
			if name == "dribbled" {
				frame := clientFrame(true, ws.OpBinary, []byte("twenty bytes of data"))
				_, err := conn.Write(frame[:6])
				require.NoError(t, err)
				go dribble(conn, frame[6:], 200*time.Millisecond)
			}
			var pe *websocket.ProtocolError
			require.ErrorAs(t, s.closeErr(t), &pe)
			assert.Equal(t, websocket.StatusPolicyViolation, pe.Code)
			_, _, err := wsutil.ReadServerData(clientReader(conn, br))
			var ce wsutil.ClosedError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, ws.StatusPolicyViolation, ce.Code)
		})
	}
}

func TestIdleModePings(t *testing.T) {
	t.Parallel()
	t.Run("pong timeout", func(t *testing.T) {
		t.Parallel()
		s := serveIdleMode(t, &websocket.Options{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond}, nil)
		_, _ = dial(t, s.url) // never answers
		s.next(t)
		assert.ErrorIs(t, s.closeErr(t), websocket.ErrPongTimeout)
	})
	t.Run("live peer kept", func(t *testing.T) {
		t.Parallel()
		s := serveIdleMode(t, &websocket.Options{PingInterval: 20 * time.Millisecond, PongTimeout: 2 * time.Second}, nil)
		conn, br := dial(t, s.url)
		c := s.next(t)
		pongs := make(chan int, 1)
		go func() {
			// Answer pings (wsutil's reader does), counting them, until the connection ends.
			n := 0
			rw := clientReader(conn, br)
			rd := wsutil.NewClientSideReader(rw)
			handle := wsutil.ControlFrameHandler(conn, ws.StateClientSide)
			for {
				h, err := rd.NextFrame()
				if err == nil && h.OpCode.IsControl() {
					if h.OpCode == ws.OpPing {
						n++
					}
					err = handle(h, rd)
				}
				if err != nil {
					pongs <- n
					return
				}
			}
		}()
		time.Sleep(400 * time.Millisecond)
		require.NoError(t, c.Err(), "a peer answering pings must not be dropped")
		// And the server's own Ping returns on the pong, which only the poller can deliver.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, c.Ping(ctx, []byte("are you there")))
		require.NoError(t, c.CloseNow())
		assert.GreaterOrEqual(t, <-pongs, 2, "automatic pings go on after the first pong")
		assert.ErrorIs(t, s.closeErr(t), websocket.ErrClosed)
	})
}

func TestIdleModeOnMessagePanic(t *testing.T) {
	t.Parallel()
	s := serveIdleMode(t, nil, func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
		panic("boom")
	})
	conn, br := dial(t, s.url)
	s.next(t)
	rw := clientReader(conn, br)
	require.NoError(t, wsutil.WriteClientText(rw, []byte("hi")))
	f, err := readControlFrame(rw)
	require.NoError(t, err)
	require.Equal(t, ws.OpClose, f.Header.OpCode)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	assert.Equal(t, ws.StatusInternalServerError, code)
	_, _ = conn.Write(clientFrame(true, ws.OpClose, f.Payload))
	err = s.closeErr(t)
	assert.ErrorContains(t, err, "boom")
}

// TestIdleModeHasNoGoroutinePerConnection opens 1,000 connections, has each echo once (so that
// each was read, and parked again), and counts goroutines: idle connections must have none.
func TestIdleModeHasNoGoroutinePerConnection(t *testing.T) {
	const n = 1000
	s := serveIdleMode(t, nil, nil)
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, br, _, err := ws.Dial(ctx, s.url)
		cancel()
		require.NoError(t, err)
		require.Nil(t, br, "the server sent nothing before the first message")
		conns = append(conns, conn)
		s.next(t)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i, conn := range conns {
		require.NoError(t, wsutil.WriteClientText(conn, fmt.Appendf(nil, "%d", i)))
	}
	for i, conn := range conns {
		got, _, err := wsutil.ReadServerData(conn)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(got))
	}
	// The last echoes' workers leave 200 ms after their last task: give them a moment.
	during := leakcheck.Settle(before, 10)
	t.Logf("goroutines: %d before, %d with %d idle connections", before, during, n)
	assert.Less(t, during-before, 10, "idle connections must not keep goroutines")
}

// readControlFrame reads one server frame of at most 125 bytes of payload.
func readControlFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 125 {
		return ws.Frame{}, fmt.Errorf("a frame of %d bytes where a control frame was expected", h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return ws.Frame{}, err
	}
	return ws.Frame{Header: h, Payload: p}, nil
}
