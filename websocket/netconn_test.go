package websocket_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/websocket"
)

func TestNetConnPipesAStream(t *testing.T) {
	t.Parallel()
	url := serve(t, nil, func(c *websocket.Conn) {
		nc := websocket.NetConn(context.Background(), c, websocket.MessageText)
		// A line-based protocol over the stream: answer each line.
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			if _, err := io.WriteString(nc, "got "+sc.Text()+"\n"); err != nil {
				return
			}
		}
	})
	conn, br := dial(t, url)
	rw := clientReader(conn, br)
	// Lines split across messages and several in one message.
	for _, m := range []string{"hel", "lo\nwor", "ld\n", "a\nb\n"} {
		require.NoError(t, wsutil.WriteClientText(conn, []byte(m)))
	}
	var got []string
	for len(got) < 4 {
		p, _, err := wsutil.ReadServerData(rw)
		require.NoError(t, err)
		got = append(got, string(p))
	}
	assert.Equal(t, []string{"got hello\n", "got world\n", "got a\n", "got b\n"}, got)
}

func TestNetConnDeadlineAndEOF(t *testing.T) {
	t.Parallel()
	results := make(chan error, 2)
	url := serve(t, nil, func(c *websocket.Conn) {
		nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := nc.Read(make([]byte, 10))
		results <- err
		_ = nc.SetReadDeadline(time.Time{})
		_, err = io.ReadAll(nc)
		results <- err
	})
	conn, _ := dial(t, url)
	err := <-results
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
	require.NoError(t, wsutil.WriteClientMessage(conn, 0x8, []byte{0x03, 0xe8}))
	assert.NoError(t, <-results, "a normal close reads as EOF")
}
