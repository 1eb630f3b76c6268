package websocket_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/websocket"
)

// wsCounts is a Recorder that keeps what the WebSocket layer reports.
type wsCounts struct {
	metrics.Nop
	mu                            sync.Mutex
	opened, in, out, inB, outB    int
	closed                        map[metrics.Reason]int
	deflateIn, deflateOut, deflts int
}

func (c *wsCounts) ConnOpened(metrics.Transport) { c.mu.Lock(); c.opened++; c.mu.Unlock() }
func (c *wsCounts) ConnClosed(_ metrics.Transport, r metrics.Reason) {
	c.mu.Lock()
	c.closed[r]++
	c.mu.Unlock()
}
func (c *wsCounts) MessageIn(_ metrics.Transport, n int) {
	c.mu.Lock()
	c.in++
	c.inB += n
	c.mu.Unlock()
}
func (c *wsCounts) MessageOut(_ metrics.Transport, n int) {
	c.mu.Lock()
	c.out++
	c.outB += n
	c.mu.Unlock()
}
func (c *wsCounts) Compressed(in, out int) {
	c.mu.Lock()
	c.deflts++
	c.deflateIn += in
	c.deflateOut += out
	c.mu.Unlock()
}

func (c *wsCounts) closes(r metrics.Reason) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed[r]
}

// TestMetricsOfConnections: an echo server with permessage-deflate reports its connection,
// the messages both ways with their bytes, what compression made of them, a normal close,
// and a protocol error's close.
func TestMetricsOfConnections(t *testing.T) {
	rec := &wsCounts{closed: map[metrics.Reason]int{}}
	url := serve(t, &websocket.Options{Metrics: rec, Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}})
	require.NoError(t, err)
	msg := strings.Repeat("herald ", 200) // 1,400 bytes that compress well
	for range 2 {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		_, got, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, msg, string(got))
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return rec.closes(metrics.Normal) == 1 }, 5*time.Second, 10*time.Millisecond)

	rec.mu.Lock()
	assert.Equal(t, 1, rec.opened)
	assert.Equal(t, 2, rec.in)
	assert.Equal(t, 2*len(msg), rec.inB)
	assert.Equal(t, 2, rec.out)
	assert.Equal(t, 2*len(msg), rec.outB)
	assert.Equal(t, 2, rec.deflts)
	assert.Equal(t, 2*len(msg), rec.deflateIn)
	assert.Less(t, rec.deflateOut, rec.deflateIn/4, "what compression made of them")
	rec.mu.Unlock()

	// A client that sends invalid UTF-8 in a text message: the server fails the connection.
	conn, _, _, err := ws.Dial(ctx, url)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(rsvFrame(true, ws.OpText, 0, []byte{'a', 0xff}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.closes(metrics.ProtocolError) == 1 }, 5*time.Second, 10*time.Millisecond)
	rec.mu.Lock()
	assert.Equal(t, 2, rec.opened)
	rec.mu.Unlock()
}
