package websocket_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

// broadcastClients opens n raw clients to a server that adds every connection to b and then
// reads from it until it closes, and then sends to ended.
func broadcastClients(t *testing.T, b *websocket.Broadcaster, opts *websocket.Options, n int, ended chan<- struct{}) []net.Conn {
	t.Helper()
	joined := make(chan struct{}, n)
	url := serve(t, opts, func(c *websocket.Conn) {
		b.Add(c)
		joined <- struct{}{}
		_, _, _ = c.Read(context.Background())
		b.Remove(c)
		if ended != nil {
			ended <- struct{}{}
		}
	})
	var conns []net.Conn
	for range n {
		conn, br, _, err := ws.Dial(context.Background(), url)
		require.NoError(t, err)
		require.Nil(t, br, "the server sent nothing before the first broadcast")
		t.Cleanup(func() { _ = conn.Close() })
		conns = append(conns, conn)
		<-joined
	}
	return conns
}

// TestBroadcasterKeepsOrder broadcasts numbered messages to several connections and checks that
// each receives all of them, in order.
func TestBroadcasterKeepsOrder(t *testing.T) {
	t.Parallel()
	b := websocket.NewBroadcaster(nil)
	defer b.Close()
	conns := broadcastClients(t, b, &websocket.Options{PingInterval: -1}, 8, nil)
	const count = 500
	errs := make(chan error, len(conns))
	for _, conn := range conns {
		go func() {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := range count {
				h, err := ws.ReadHeader(conn)
				if err == nil && h.Length != 300 {
					err = io.ErrUnexpectedEOF
				}
				p := make([]byte, h.Length)
				if err == nil {
					_, err = io.ReadFull(conn, p)
				}
				if err == nil && binary.BigEndian.Uint64(p) != uint64(i) {
					err = assert.AnError
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range count {
		p := make([]byte, 300)
		binary.BigEndian.PutUint64(p, uint64(i))
		pm, err := websocket.NewPreparedMessage(websocket.MessageBinary, p)
		require.NoError(t, err)
		b.Broadcast(pm)
	}
	for range conns {
		assert.NoError(t, <-errs, "a client missed a message or got them out of order")
	}
}

// TestBroadcasterClosesSlowMember broadcasts to a client that never reads beside one that does,
// one message at a time: the slow one is closed once its queue passes WriteQueueLimit (after
// the kernel's buffers filled), and the other gets everything without waiting for it.
func TestBroadcasterClosesSlowMember(t *testing.T) {
	t.Parallel()
	b := websocket.NewBroadcaster(&websocket.BroadcasterOptions{WriteTimeout: time.Hour})
	defer b.Close()
	ended := make(chan struct{}, 2)
	conns := broadcastClients(t, b, &websocket.Options{PingInterval: -1, WriteQueueLimit: 1 << 20}, 2, ended)
	fast := conns[1]
	pm, err := websocket.NewPreparedMessage(websocket.MessageBinary, make([]byte, 16<<10))
	require.NoError(t, err)
	_ = fast.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; b.Len() > 1; i++ {
		require.Less(t, i, 10000, "160 MiB broadcast and the client that never reads is still a member")
		b.Broadcast(pm)
		h, err := ws.ReadHeader(fast)
		require.NoError(t, err, "message %d", i)
		_, err = io.CopyN(io.Discard, fast, h.Length)
		require.NoError(t, err, "message %d", i)
	}
	assert.Equal(t, 1, b.Len(), "the client that reads is still a member")
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection that left the broadcaster")
	}
}

// A Broadcaster sends what any client says to every client: a chat room. Broadcast returns at
// once; a client too slow to keep up is closed rather than holding up the room.
func ExampleBroadcaster() {
	room := websocket.NewBroadcaster(nil)
	http.HandleFunc("/room", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		room.Add(c)
		go func() {
			defer c.Close(websocket.StatusNormalClosure, "")
			defer room.Remove(c)
			for {
				typ, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				pm, err := websocket.NewPreparedMessage(typ, data) // framed once for everyone
				if err != nil {
					return
				}
				room.Broadcast(pm)
			}
		}()
	})
}

// TestBroadcasterClosesMemberPastWriteTimeout broadcasts to a client that never reads, with a
// queue limit too large to matter: the write that blocks is bounded by WriteTimeout.
func TestBroadcasterClosesMemberPastWriteTimeout(t *testing.T) {
	t.Parallel()
	b := websocket.NewBroadcaster(&websocket.BroadcasterOptions{WriteTimeout: 100 * time.Millisecond})
	defer b.Close()
	ended := make(chan struct{}, 1)
	broadcastClients(t, b, &websocket.Options{PingInterval: -1, WriteQueueLimit: 1 << 30}, 1, ended)
	pm, err := websocket.NewPreparedMessage(websocket.MessageBinary, make([]byte, 1<<20))
	require.NoError(t, err)
	for range 64 { // 64 MiB: more than the kernel's buffers take
		b.Broadcast(pm)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("a member blocked in a write was not closed after WriteTimeout")
	}
	assert.Zero(t, b.Len())
}
