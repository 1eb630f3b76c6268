package websocket_test

// Limits and timeouts against peers that try to sidestep them: by dribbling bytes, fragmenting,
// compressing or pinging (issue 10).

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
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
