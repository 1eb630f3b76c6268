package websocket_test

// Limits and timeouts against peers that try to sidestep them: by dribbling bytes, fragmenting,
// compressing or pinging (issue 10).

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
