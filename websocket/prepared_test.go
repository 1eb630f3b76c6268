package websocket_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/websocket"
)

// TestPreparedMessageToManyConnections writes one prepared message to connections with and
// without compression context and checks what each client receives.
func TestPreparedMessageToManyConnections(t *testing.T) {
	t.Parallel()
	msg := bytes.Repeat([]byte(`{"status":"complete","id":5}`), 200)
	pm, err := websocket.NewPreparedMessage(websocket.MessageText, msg)
	require.NoError(t, err)
	var mu sync.Mutex
	ready := make(chan *websocket.Conn, 4)
	url := serve(t, &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, func(c *websocket.Conn) {
		ready <- c
		_, _, _ = c.Read(context.Background())
	})
	offers := []map[string]string{
		{"server_no_context_takeover": ""}, {"server_no_context_takeover": ""}, nil, {},
	}
	type client struct {
		conn net.Conn
		rd   io.Reader
	}
	var clients []client
	for i, params := range offers {
		d := ws.Dialer{}
		if params != nil {
			d.Extensions = []httphead.Option{httphead.NewOption("permessage-deflate", params)}
		}
		conn, br, _, err := d.Dial(context.Background(), url)
		require.NoError(t, err, "client %d", i)
		t.Cleanup(func() { _ = conn.Close() })
		var rd io.Reader = conn
		if br != nil {
			rd = io.MultiReader(br, conn)
		}
		clients = append(clients, client{conn, rd})
	}
	for range offers {
		c := <-ready
		mu.Lock()
		require.NoError(t, c.WritePrepared(context.Background(), pm))
		mu.Unlock()
	}
	for i, cl := range clients {
		_ = cl.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(cl.rd)
		require.NoError(t, err)
		p := make([]byte, h.Length)
		_, err = io.ReadFull(cl.rd, p)
		require.NoError(t, err)
		if offers[i] == nil {
			assert.Zero(t, h.Rsv, "client %d negotiated nothing: the message goes as it is", i)
			assert.Equal(t, msg, p)
			continue
		}
		require.Equal(t, byte(4), h.Rsv, "client %d: compressed", i)
		got, err := readAllInflate(p)
		require.NoError(t, err)
		assert.Equal(t, msg, got, "client %d", i)
	}
}

func TestWriteUncompressed(t *testing.T) {
	t.Parallel()
	url := serve(t, &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}}, func(c *websocket.Conn) {
		_ = c.WriteUncompressed(context.Background(), websocket.MessageBinary, bytes.Repeat([]byte("z"), 4096))
		_, _, _ = c.Read(context.Background())
	})
	d := ws.Dialer{Extensions: []httphead.Option{httphead.NewOption("permessage-deflate", nil)}}
	conn, br, _, err := d.Dial(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close()
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	h, err := ws.ReadHeader(rd)
	require.NoError(t, err)
	assert.Zero(t, h.Rsv)
	assert.Equal(t, int64(4096), h.Length)
}
