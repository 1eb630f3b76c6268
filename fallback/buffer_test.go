package fallback_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// smallSocketBuffers gives the server's connections small send buffers, so that a client that
// does not read stalls the server's writes after kilobytes rather than megabytes.
func smallSocketBuffers(srv *http.Server) {
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(16 << 10)
		}
		return ctx
	}
}

// TestStalledStream opens a stream from a raw TCP client that never reads, and sends until
// Send fails: it fails with ErrBufferFull after a bounded number of messages (what the socket
// buffers and the stream's queue take, and then the session's buffer), and the session ends.
func TestStalledStream(t *testing.T) {
	t.Parallel()
	const (
		size     = 8 << 10
		messages = 16
		bytes    = 64 << 10
	)
	h := newHarness(t, "HTTP/1.1", &fallback.Options{BufferMessages: messages, BufferBytes: bytes, Grace: time.Minute}, idle,
		smallSocketBuffers)
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /nes/sse HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", h.ts.Listener.Addr())
	require.NoError(t, err)
	s := h.session()

	// The bound: the stream's queue (as much as the session's buffer, and the events' ids),
	// what the sockets' buffers take (kept small here, 4 MiB allowed for), and the session's
	// buffer.
	const bound = (2*bytes+256*messages+4<<20)/size + messages + 1
	msg := []byte(strings.Repeat("m", size))
	ctx := context.Background()
	sends := 0
	for ; sends < bound; sends++ {
		if err = s.Send(ctx, msg); err != nil {
			break
		}
	}
	t.Logf("Send failed after %d messages of %d bytes: %v", sends, size, err)
	require.ErrorIs(t, err, fallback.ErrBufferFull, "after %d sends", sends)
	require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrBufferFull)
	require.ErrorIs(t, s.Send(ctx, msg), fallback.ErrClosed)
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed")
	}
	tableEmpty(t, h.opts.Sessions, testTimeout)

	// The server let go of the connection: the client reads what was written, then the end.
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := io.Copy(io.Discard, conn)
	require.NoError(t, err, "the server did not close the connection")
	require.Greater(t, n, int64(size))
}

// TestUnpolledSession opens a session with a poll and never polls again: the messages wait in
// the session's buffer, up to its bounds exactly; the Send past them fails with ErrBufferFull
// and ends the session, whose next poll hears it has ended.
func TestUnpolledSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		messages int
		bytes    int
		size     int
		fits     int // messages that fit
	}{
		{"by count", 10, 1 << 20, 10, 10},
		{"by bytes", 1000, 1000, 100, 10},
		{"by bytes, uneven", 1000, 1050, 100, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "HTTP/1.1", &fallback.Options{BufferMessages: tc.messages, BufferBytes: tc.bytes}, idle)
			ticket := openPoll(t, h.client(), h.base).Ticket
			s := h.session()
			msg := []byte(strings.Repeat("p", tc.size))
			for i := range tc.fits {
				require.NoError(t, s.Send(context.Background(), msg), "message %d", i+1)
			}
			require.ErrorIs(t, s.Send(context.Background(), msg), fallback.ErrBufferFull)
			require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrBufferFull)
			a := post(t, h.client(), h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket)
			require.Equal(t, http.StatusGone, a.status, "%s", a.body)
		})
	}
}

// TestAckFreesBuffer confirms messages with a batch's ack and a poll's last: what was
// confirmed leaves the buffer, so that as many messages again fit.
func TestAckFreesBuffer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{BufferMessages: 4}, idle)
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket
	s := h.session()
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		require.NoError(t, s.Send(ctx, []byte(fmt.Sprint(i))))
	}
	// An ack in a batch confirms 1 and 2.
	a := post(t, hc, h.base, fallback.EndpointSend, `{"seq":1,"messages":[],"ack":2}`, "Herald-Ticket", ticket)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	require.NoError(t, s.Send(ctx, []byte("5")))
	require.NoError(t, s.Send(ctx, []byte("6")))
	// A poll from 4 confirms 3 and 4, and answers 5 and 6.
	ev := post(t, hc, h.base, fallback.EndpointPoll, `{"last":4}`, "Herald-Ticket", ticket).events(t)
	require.Equal(t, []pollEvent{{ID: ticket + ".5", Data: "5"}, {ID: ticket + ".6", Data: "6"}}, ev)
	require.NoError(t, s.Send(ctx, []byte("7")))
	require.NoError(t, s.Send(ctx, []byte("8")))
	// 5 to 8 wait: the buffer is full again.
	require.ErrorIs(t, s.Send(ctx, []byte("9")), fallback.ErrBufferFull)
}
