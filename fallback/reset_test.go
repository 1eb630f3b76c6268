package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// TestStreamReset resumes streams that cannot be resumed: the stream answers with a reset,
// then the open event of a new session (another ticket), whose messages follow on the same
// stream; the old session, when it still lived, ends with ErrReset. Those that can be
// resumed get every message after their Last-Event-ID.
func TestStreamReset(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, proto, &fallback.Options{BufferMessages: 4}, idle)
			hc := h.client()
			ctx := context.Background()

			// resetTo expects a reset and a new session on st, and checks that the new
			// session's messages come down st.
			resetTo := func(st *rawStream, old string) {
				t.Helper()
				st.expect(fallback.EventReset)
				open := st.expect(fallback.EventOpen)
				o := parseOpen(t, open.Data)
				require.NotEqual(t, old, o.Ticket)
				require.False(t, o.Resumed)
				require.Equal(t, o.Ticket+".0", open.ID)
				s := h.session()
				require.NoError(t, s.Send(ctx, []byte("new")))
				m := st.expect("message")
				require.Equal(t, "new", m.Data)
				require.Equal(t, o.Ticket+".1", m.ID)
			}

			// The buffer keeps the last 4 messages that went down a stream: 7 to 10.
			st := openStream(t, hc, h.base)
			ticket := parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
			s := h.session()
			for i := 1; i <= 10; i++ {
				require.NoError(t, s.Send(ctx, []byte(fmt.Sprint(i))))
				m := st.expect("message")
				require.Equal(t, fmt.Sprint(i), m.Data)
				require.Equal(t, fmt.Sprintf("%s.%d", ticket, i), m.ID)
			}
			st.close()
			st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".6")
			open := st.expect(fallback.EventOpen)
			require.True(t, parseOpen(t, open.Data).Resumed)
			require.Equal(t, ticket+".6", open.ID)
			for i := 7; i <= 10; i++ {
				require.Equal(t, fmt.Sprint(i), st.expect("message").Data)
			}
			st.close()
			// From 0, 1 to 6 are missing.
			st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".0")
			resetTo(st, ticket)
			require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrReset)
			st.close()

			// The ticket of a session that ended.
			st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".10")
			resetTo(st, ticket)
			st.close()

			// A seq that was never sent, and ids that are not the server's.
			st = openStream(t, hc, h.base)
			ticket = parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
			s = h.session()
			require.NoError(t, s.Send(ctx, []byte("1")))
			st.expect("message")
			st.close()
			for _, id := range []string{ticket + ".2", ticket + ".99", ticket, ticket + ".", ticket + ".-1", ticket + ".x", "nonsense", "." + ticket} {
				st = openStream(t, hc, h.base, "Last-Event-ID", id)
				resetTo(st, ticket)
				st.close()
			}
		})
	}
}

// TestPollReset polls from before what the buffer still has: the answer is a reset and the
// open event of a new session, and the old session ends with ErrReset.
func TestPollReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{PollTimeout: 50 * time.Millisecond}, idle)
	hc := h.client()
	ctx := context.Background()
	ticket := openPoll(t, hc, h.base).Ticket
	s := h.session()
	for i := 1; i <= 3; i++ {
		require.NoError(t, s.Send(ctx, []byte(fmt.Sprint(i))))
	}
	ev := post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket).events(t)
	require.Len(t, ev, 3)
	require.Equal(t, pollEvent{ID: ticket + ".3", Data: "3"}, ev[2])
	// A poll from 3 confirms 1 to 3, which leave the buffer.
	require.Empty(t, post(t, hc, h.base, fallback.EndpointPoll, `{"last":3}`, "Herald-Ticket", ticket).events(t))

	for _, last := range []string{"0", "4", "1000"} {
		ev = post(t, hc, h.base, fallback.EndpointPoll, `{"last":`+last+`}`, "Herald-Ticket", ticket).events(t)
		require.Len(t, ev, 2, "%+v", ev)
		require.Equal(t, fallback.EventReset, ev[0].Event)
		require.Contains(t, ev[0].Data, `"reason"`)
		require.Equal(t, fallback.EventOpen, ev[1].Event)
		o := parseOpen(t, ev[1].Data)
		require.NotEqual(t, ticket, o.Ticket)
		require.Equal(t, o.Ticket+".0", ev[1].ID)
		require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrReset)

		// The new session works; the old ticket names an ended session.
		ticket, s = o.Ticket, h.session()
		require.NoError(t, s.Send(ctx, []byte("new")))
		ev = post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket).events(t)
		require.Equal(t, []pollEvent{{ID: ticket + ".1", Data: "new"}}, ev)
		if last == "0" {
			require.Empty(t, post(t, hc, h.base, fallback.EndpointPoll, `{"last":1}`, "Herald-Ticket", ticket).events(t))
		}
	}
}

// gate dials connections for an http.Transport, can cut them all, and can hold new ones
// back until it is opened again.
type gate struct {
	cutter
	mu   sync.Mutex
	shut chan struct{} // closed when dials may go on; nil while they may
}

func (g *gate) hold() {
	g.mu.Lock()
	g.shut = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	close(g.shut)
	g.shut = nil
	g.mu.Unlock()
}

func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	shut := g.shut
	g.mu.Unlock()
	if shut != nil {
		select {
		case <-shut:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.cutter.dial(ctx, network, addr)
}

// TestConnReset keeps the Go client away from its session past the grace period (its stream
// cut, its new connection held back): when it comes back, the server answers with a reset,
// and Read fails with ErrSessionEnded (the caller opens a new session).
func TestConnReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{Grace: 100 * time.Millisecond}, idle)
	var g gate
	tr := &http.Transport{DialContext: g.dial}
	defer tr.CloseIdleConnections()
	c := h.dial(false, &fallback.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	defer c.Close()
	s := h.session()
	require.NoError(t, s.Send(context.Background(), []byte("before")))
	require.Equal(t, []string{"before"}, readN(t, c, 1))

	g.hold()
	g.cut()
	require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrExpired)
	streams := h.streamCount()
	g.release()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := c.Read(ctx)
	require.ErrorIs(t, err, fallback.ErrSessionEnded)
	var ce *fallback.CloseError
	require.False(t, errors.As(err, &ce), "a close event, not a reset: %v", err)
	require.True(t, strings.Contains(err.Error(), "resumed") || strings.Contains(err.Error(), "reset"), "%v", err)
	require.Greater(t, h.streamCount(), streams)
	require.ErrorIs(t, c.Write(ctx, []byte("x")), fallback.ErrSessionEnded)
	// The server's new session, left by the client, ends with the test.
}
