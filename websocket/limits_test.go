package websocket_test

// Limits and timeouts against peers that try to sidestep them: by dribbling bytes, fragmenting,
// compressing or pinging (issue 10).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// dribble writes b one byte every interval until it is all out or a write fails.
func dribble(conn net.Conn, b []byte, interval time.Duration) {
	for i := range b {
		if _, err := conn.Write(b[i : i+1]); err != nil {
			return
		}
		time.Sleep(interval)
	}
}

// TestFirstFrameTimeoutBoundsWholeFrame: a client that sends its first frame's header at once
// and then its payload a byte at a time must be dropped when FirstFrameTimeout passes, not when
// the frame is complete (or when pings time out). Each case dribbles for about 4 s against a
// 300 ms limit; failing the connection then lingers up to a second for the peer to take the
// close frame.
func TestFirstFrameTimeoutBoundsWholeFrame(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	payload := []byte("twenty bytes of data")
	cases := []struct {
		name   string
		frame  []byte
		split  int // bytes sent at once; the rest is dribbled
		reader bool
	}{
		{"data payload dribbled after the header", clientFrame(true, ws.OpBinary, payload), 6, false},
		{"data payload dribbled, read with Reader", clientFrame(true, ws.OpBinary, payload), 6, true},
		{"header dribbled byte by byte", clientFrame(true, ws.OpBinary, payload), 0, false},
		{"ping payload dribbled", clientFrame(true, ws.OpPing, payload), 6, false},
		{"first fragment dribbled", clientFrame(false, ws.OpText, payload), 6, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			url := serve(t, &websocket.Options{FirstFrameTimeout: limit, PingInterval: -1}, func(c *websocket.Conn) {
				ctx := context.Background()
				if tc.reader {
					_, r, err := c.Reader(ctx)
					if err == nil {
						_, err = io.ReadAll(r)
					}
					done <- err
					return
				}
				_, _, err := c.Read(ctx)
				done <- err
			})
			conn, br := dial(t, url)
			start := time.Now()
			_, err := conn.Write(tc.frame[:tc.split])
			require.NoError(t, err)
			go dribble(conn, tc.frame[tc.split:], 4*time.Second/time.Duration(len(tc.frame)-tc.split))
			select {
			case err := <-done:
				var pe *websocket.ProtocolError
				require.ErrorAs(t, err, &pe, "a first frame dribbled past FirstFrameTimeout was accepted")
				assert.Equal(t, websocket.StatusPolicyViolation, pe.Code)
				assert.Contains(t, pe.Reason, "FirstFrameTimeout")
				assert.Less(t, time.Since(start), limit+2*time.Second, "dropped only when the frame was done")
			case <-time.After(8 * time.Second):
				t.Fatal("a dribbling peer outlived FirstFrameTimeout")
			}
			_, _, err = wsutil.ReadServerData(clientReader(conn, br))
			var ce wsutil.ClosedError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, ws.StatusPolicyViolation, ce.Code)
		})
	}
}

// TestFirstFrameTimeoutEndsWithFirstFrame: once a whole first frame has come in time, the limit
// is over: the next frame may take longer.
func TestFirstFrameTimeoutEndsWithFirstFrame(t *testing.T) {
	t.Parallel()
	const limit = 200 * time.Millisecond
	got := make(chan string, 2)
	url := serve(t, &websocket.Options{FirstFrameTimeout: limit, PingInterval: -1}, func(c *websocket.Conn) {
		for range 2 {
			_, data, err := c.Read(context.Background())
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(data)
		}
	})
	conn, _ := dial(t, url)
	_, err := conn.Write(clientFrame(true, ws.OpText, []byte("first")))
	require.NoError(t, err)
	assert.Equal(t, "first", <-got)
	frame := clientFrame(true, ws.OpText, []byte("second, slowly"))
	dribble(conn, frame, 3*limit/time.Duration(len(frame)))
	assert.Equal(t, "second, slowly", <-got)
}

// fixedHuffman encodes p as permessage-deflate data (RFC 7692 §7.2.1) in one fixed-Huffman
// block: every byte a literal of 8 or 9 bits, as a simple deflate encoder writes it. Random
// data grows by about 5%, which is what incompressible messages look like from peers that
// compress everything (Node's ws, faye-websocket and browsers through zlib grow them less).
func fixedHuffman(p []byte) []byte {
	var out []byte
	var acc uint64
	var n uint
	put := func(v uint64, bits uint) { // LSB first, as deflate packs bits
		acc |= v << n
		n += bits
		for n >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	code := func(c uint64, bits uint) { // Huffman codes go most significant bit first
		var r uint64
		for i := uint(0); i < bits; i++ {
			r = r<<1 | c>>i&1
		}
		put(r, bits)
	}
	put(0, 1) // not the final block
	put(1, 2) // fixed Huffman codes
	for _, b := range p {
		if b < 144 {
			code(0x30+uint64(b), 8)
		} else {
			code(0x190+uint64(b-144), 9)
		}
	}
	code(0, 7) // end of block
	put(0, 3)  // the empty stored block of the sync flush, whose 00 00 ff ff is stripped
	if n > 0 {
		put(0, 8-n)
	}
	return out
}

// compressedEcho dials a server with permessage-deflate and MaxLength, sends frames and
// returns the echoed message, or the close code the server answered with.
func compressedEcho(t *testing.T, maxLength int64, frames []byte) ([]byte, ws.StatusCode) {
	t.Helper()
	url := serve(t, &websocket.Options{MaxLength: maxLength, PingInterval: -1,
		Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, echo)
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
	conn, br, _, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	go func() { _, _ = conn.Write(frames) }()
	rd := clientReader(conn, br)
	h, err := ws.ReadHeader(rd)
	require.NoError(t, err)
	p := make([]byte, h.Length)
	_, err = io.ReadFull(rd, p)
	require.NoError(t, err)
	if h.OpCode == ws.OpClose {
		code, _ := ws.ParseCloseFrameData(p)
		return nil, code
	}
	require.Zero(t, h.Rsv, "random data should come back uncompressed")
	return p, 0
}

// TestMaxLengthIsOnInflatedData: MaxLength bounds the message, not its compressed frames. A
// message of random bytes up to MaxLength passes though its compressed form is larger; one
// byte more is refused with 1009; compressed data past what deflate can expand a MaxLength
// message to is refused at its header, however little it inflates to.
func TestMaxLengthIsOnInflatedData(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	// padded is a message of one byte behind more empty stored blocks than any encoder writes.
	padded := fixedHuffman([]byte("x"))
	padded = append(bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, limit/4), padded...)
	cases := []struct {
		name string
		msg  []byte // what the frames carry, nil when refused
		raw  []byte
		want ws.StatusCode
	}{
		{"random, at the limit", nil, nil, 0},
		{"random, a byte under the limit", nil, nil, 0},
		{"random, a byte over the limit", nil, nil, ws.StatusMessageTooBig},
		{"random, at the limit, in 64 fragments", nil, nil, 0},
		{"padded past any encoder's expansion", nil, rsvFrame(true, ws.OpBinary, 4, padded), ws.StatusMessageTooBig},
	}
	for i := range cases {
		tc := &cases[i]
		switch i {
		case 0, 3:
			tc.msg = random(limit)
		case 1:
			tc.msg = random(limit - 1)
		case 2:
			tc.msg = random(limit + 1)
		}
		if tc.raw != nil {
			continue
		}
		enc := fixedHuffman(tc.msg)
		require.Greater(t, len(enc), len(tc.msg)+len(tc.msg)/32, "the encoding should grow random data")
		if i != 3 {
			tc.raw = rsvFrame(true, ws.OpBinary, 4, enc)
			continue
		}
		step := len(enc)/64 + 1
		for off := 0; off < len(enc); off += step {
			op, rsv := ws.OpContinuation, byte(0)
			if off == 0 {
				op, rsv = ws.OpBinary, 4
			}
			tc.raw = append(tc.raw, rsvFrame(off+step >= len(enc), op, rsv, enc[off:min(off+step, len(enc))])...)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, code := compressedEcho(t, limit, tc.raw)
			assert.Equal(t, tc.want, code)
			if tc.want == 0 {
				assert.True(t, bytes.Equal(tc.msg, got), "the echo differs")
			}
		})
	}
}

// slowConsumer serves a connection whose writers fill the write queue; the first
// ErrWriteQueueFull closes it with 1008, as an application drops a slow consumer. It reports
// the messages whose Write returned nil and what Close returned, and how long it took.
type slowConsumer struct {
	written   chan uint32
	closeErr  chan error
	closeTook chan time.Duration
}

// With stall > 0 it closes only once no write has succeeded for stall: the peer's socket is
// full and the frame being written is stuck.
func serveSlowConsumer(t *testing.T, closeTimeout time.Duration, compress bool, stall time.Duration) (string, *slowConsumer) {
	t.Helper()
	sc := &slowConsumer{written: make(chan uint32, 1<<16), closeErr: make(chan error, 1), closeTook: make(chan time.Duration, 1)}
	opts := &websocket.Options{WriteQueueLimit: 256 << 10, CloseTimeout: closeTimeout, PingInterval: -1}
	if compress {
		opts.Extensions = []websocket.Extension{deflate.New(deflate.Options{})}
	}
	url := serve(t, opts, func(c *websocket.Conn) {
		var seq atomic.Uint32
		var lastOK atomic.Int64
		lastOK.Store(time.Now().UnixNano())
		var once sync.Once
		var wg sync.WaitGroup
		for range 16 { // 16 messages of 32 KiB: twice the queue's limit
			wg.Go(func() {
				for {
					n := seq.Add(1)
					msg := make([]byte, 32<<10)
					binary.BigEndian.PutUint32(msg, n)
					_, _ = rand.Read(msg[4:]) // incompressible: compression does not shrink the queue
					err := c.Write(context.Background(), websocket.MessageBinary, msg)
					if err == nil {
						lastOK.Store(time.Now().UnixNano())
						sc.written <- n
						continue
					}
					if errors.Is(err, websocket.ErrWriteQueueFull) && time.Since(time.Unix(0, lastOK.Load())) < stall {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if errors.Is(err, websocket.ErrWriteQueueFull) {
						once.Do(func() {
							start := time.Now()
							sc.closeErr <- c.Close(websocket.StatusPolicyViolation, "slow consumer")
							sc.closeTook <- time.Since(start)
						})
					}
					if c.Err() != nil || errors.Is(err, websocket.ErrCloseSent) {
						return
					}
				}
			})
		}
		wg.Wait()
		close(sc.written)
	})
	return url, sc
}

// readAllFrames reads server frames until EOF or the close frame, which it answers; it reports
// the data messages' sequence numbers, the close code (-1 for none) and whether a frame was
// cut short.
func readAllFrames(t *testing.T, conn net.Conn, rd io.Reader, pace time.Duration) (got []uint32, code int, truncated bool) {
	t.Helper()
	if pace > 0 {
		rd = &pacedReader{r: rd, pace: pace}
	}
	for {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return got, -1, !errors.Is(err, io.EOF)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(rd, p); err != nil {
			return got, -1, true
		}
		switch h.OpCode {
		case ws.OpClose:
			c, _ := ws.ParseCloseFrameData(p)
			_, _ = conn.Write(clientFrame(true, ws.OpClose, p))
			return got, int(c), false
		case ws.OpBinary:
			require.Zero(t, h.Rsv, "random data is sent uncompressed")
			got = append(got, binary.BigEndian.Uint32(p))
		}
	}
}

// pacedReader reads at most 16 KiB at a time, pausing before each read: a slow consumer.
type pacedReader struct {
	r    io.Reader
	pace time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	time.Sleep(p.pace)
	return p.r.Read(b[:min(len(b), 16<<10)])
}

// TestSlowConsumerGetsCloseFrame: a consumer too slow for the write queue, dropped with
// Close(1008), receives the close frame right after the frame that was being written, ahead of
// every message still queued: it gets every message whose Write succeeded, none whose Write
// was still waiting, then 1008.
func TestSlowConsumerGetsCloseFrame(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			t.Parallel()
			url, sc := serveSlowConsumer(t, 10*time.Second, compress, 0)
			var conn net.Conn
			var br *bufio.Reader
			if compress {
				d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
				var err error
				conn, br, _, err = d.Dial(context.Background(), url)
				require.NoError(t, err)
				t.Cleanup(func() { _ = conn.Close() })
			} else {
				conn, br = dial(t, url)
			}
			got, code, truncated := readAllFrames(t, conn, clientReader(conn, br), time.Millisecond)
			require.NoError(t, <-sc.closeErr)
			assert.Equal(t, int(websocket.StatusPolicyViolation), code, "the slow consumer got no close frame")
			assert.False(t, truncated)
			var written []uint32
			for n := range sc.written {
				written = append(written, n)
			}
			assert.ElementsMatch(t, written, got, "the messages written are the messages received")
		})
	}
}

// TestStoppedConsumerSeesConnectionEnd: a consumer that reads nothing at all cannot be sent a
// close frame: the frame being written when Close is called cannot finish. Close gives up
// after CloseTimeout and closes the connection; the peer, reading later, finds whole frames,
// then the connection's end (1006), with no close frame. (Options.WriteQueueLimit says so.)
func TestStoppedConsumerSeesConnectionEnd(t *testing.T) {
	t.Parallel()
	const closeTimeout = 500 * time.Millisecond
	url, sc := serveSlowConsumer(t, closeTimeout, false, 300*time.Millisecond)
	conn, br := dial(t, url)
	var err error
	select {
	case err = <-sc.closeErr:
	case <-time.After(10 * time.Second):
		t.Fatal("the write queue never filled")
	}
	took := <-sc.closeTook
	assert.Equal(t, websocket.StatusAbnormalClosure, websocket.CloseStatus(err), "Close: %v", err)
	assert.InDelta(t, closeTimeout.Seconds(), took.Seconds(), 0.4)
	got, code, _ := readAllFrames(t, conn, clientReader(conn, br), 0)
	assert.Equal(t, -1, code, "a close frame passed a frame the peer never read")
	assert.NotEmpty(t, got, "whole frames come first")
}

// TestCompressedWriteCutShortKeepsContext: a compressed Write whose context has ended before
// its frame goes out must not leave the compression context holding a message the peer never
// got: the next message would inflate to garbage on the peer. The connection closes instead.
func TestCompressedWriteCutShortKeepsContext(t *testing.T) {
	t.Parallel()
	first := bytes.Repeat([]byte("the first message, which never goes out. "), 50)
	second := append(bytes.Clone(first), "and the second, which refers to it"...)
	errs := make(chan error, 2)
	url := serve(t, &websocket.Options{PingInterval: -1, Extensions: []websocket.Extension{deflate.New(deflate.Options{})}},
		func(c *websocket.Conn) {
			past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			errs <- c.Write(past, websocket.MessageText, first)
			errs <- c.Write(context.Background(), websocket.MessageText, second)
		})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{PingInterval: -1})
	require.NoError(t, err)
	defer c.CloseNow()
	assert.ErrorIs(t, <-errs, context.DeadlineExceeded)
	<-errs
	_, got, err := c.Read(ctx)
	if err == nil {
		assert.Equal(t, string(second), string(got), "the peer inflated the second message against a context it never saw")
		return
	}
	assert.Equal(t, websocket.StatusAbnormalClosure, websocket.CloseStatus(err), "Read: %v", err)
}

// TestDialBoundsDribbledHandshake: a server that sends its 101 response a header line at a
// time, forever, is cut off by HandshakeTimeout, which bounds the whole response, not each
// read.
func TestDialBoundsDribbledHandshake(t *testing.T) {
	t.Parallel()
	url := "ws://" + requestServer(t, func(conn net.Conn, _ *bufio.Reader, r *http.Request) {
		if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
			accept(r.Header.Get("Sec-WebSocket-Key"))+"\r\n"); err != nil {
			return
		}
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(conn, "X-Dribble-%d: x\r\n", i); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	start := time.Now()
	_, _, err := websocket.Dial(context.Background(), url, direct(websocket.DialOptions{HandshakeTimeout: 300 * time.Millisecond}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "a dribbled handshake outlived HandshakeTimeout")
}

// TestPongTimeoutBoundsDribbledFrame: after the first frame, a frame whose payload is dribbled
// cannot be interrupted by the peer's pong, so the automatic ping's PongTimeout bounds it.
func TestPongTimeoutBoundsDribbledFrame(t *testing.T) {
	t.Parallel()
	done := make(chan error, 2)
	url := serve(t, &websocket.Options{PingInterval: 100 * time.Millisecond, PongTimeout: 200 * time.Millisecond}, func(c *websocket.Conn) {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				done <- err
				return
			}
		}
	})
	conn, br := dial(t, url)
	go func() { // answers pings, as a client library does
		rd := clientReader(conn, br)
		for {
			h, err := ws.ReadHeader(rd)
			if err != nil {
				return
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(rd, p); err != nil || h.OpCode != ws.OpPing {
				continue
			}
			_, _ = conn.Write(clientFrame(true, ws.OpPong, p))
		}
	}()
	_, err := conn.Write(clientFrame(true, ws.OpText, []byte("first")))
	require.NoError(t, err)
	frame := clientFrame(true, ws.OpBinary, make([]byte, 100))
	_, err = conn.Write(frame[:8])
	require.NoError(t, err)
	start := time.Now()
	go dribble(conn, frame[8:], 100*time.Millisecond) // 10 s
	select {
	case err := <-done:
		assert.ErrorIs(t, err, websocket.ErrPongTimeout)
		assert.Less(t, time.Since(start), 3*time.Second)
	case <-time.After(8 * time.Second):
		t.Fatal("a dribbled frame outlived PongTimeout")
	}
}

// TestCloseBoundedAgainstChattyPeer: a peer that never answers the close frame but keeps
// sending (pings, data fragments of a message it never ends) cannot hold Close past
// CloseTimeout, whether Close reads itself or another goroutine is reading.
func TestCloseBoundedAgainstChattyPeer(t *testing.T) {
	t.Parallel()
	const closeTimeout = 300 * time.Millisecond
	for _, reading := range []bool{false, true} {
		for _, what := range []string{"pings", "fragments"} {
			t.Run(fmt.Sprintf("%s, reader=%v", what, reading), func(t *testing.T) {
				t.Parallel()
				took := make(chan time.Duration, 1)
				url := serve(t, &websocket.Options{CloseTimeout: closeTimeout, PingInterval: -1}, func(c *websocket.Conn) {
					if reading {
						go func() {
							for {
								if _, _, err := c.Read(context.Background()); err != nil {
									return
								}
							}
						}()
					}
					time.Sleep(100 * time.Millisecond)
					start := time.Now()
					_ = c.Close(websocket.StatusNormalClosure, "")
					took <- time.Since(start)
				})
				conn, _ := dial(t, url)
				go func() {
					if what == "fragments" {
						if _, err := conn.Write(clientFrame(false, ws.OpBinary, []byte("a"))); err != nil {
							return
						}
					}
					for {
						f := clientFrame(true, ws.OpPing, []byte("ping"))
						if what == "fragments" {
							f = clientFrame(false, ws.OpContinuation, []byte("b"))
						}
						if _, err := conn.Write(f); err != nil {
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
				select {
				case d := <-took:
					assert.Less(t, d, closeTimeout+time.Second)
				case <-time.After(5 * time.Second):
					t.Fatal("a chatty peer held Close past CloseTimeout")
				}
			})
		}
	}
}

// TestAnnouncedLengthIsNotAllocated: a frame header announcing a large payload makes the reader
// hold room for a bounded part of it, not for all of it: peers announcing 48 MiB frames and
// then sending a byte of them must not make the server allocate 48 MiB each. (Not parallel:
// it measures the process's allocations.)
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	const conns, announced = 8, 48 << 20
	reading := make(chan struct{}, conns)
	url := serve(t, &websocket.Options{PingInterval: -1}, func(c *websocket.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		reading <- struct{}{}
		_, _, _ = c.Read(ctx)
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		conn, _ := dial(t, url)
		hdr := clientFrame(true, ws.OpBinary, nil)[:2]
		hdr[1] = 0x80 | 127
		hdr = binary.BigEndian.AppendUint64(hdr, announced)
		hdr = append(hdr, 1, 2, 3, 4, 0) // the mask, one payload byte
		_, err := conn.Write(hdr)
		require.NoError(t, err)
		<-reading
	}
	time.Sleep(200 * time.Millisecond)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(announced), "%d connections announcing %d-byte frames made the server allocate %d bytes", conns, announced, allocated)
}
