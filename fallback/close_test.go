package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/websocket"
)

// TestRotation ends streams on purpose, by age and by size, while messages flow: the Go client
// resumes each time and reads every message once, in order.
func TestRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  fallback.Options
		n     int
		pause time.Duration
	}{
		{"bytes", fallback.Options{MaxStreamBytes: 2000}, 400, 0},
		{"age", fallback.Options{MaxStreamAge: 60 * time.Millisecond}, 60, 8 * time.Millisecond},
		// The client comes back at once after a rotation, not after the stream's retry time.
		{"retry", fallback.Options{MaxStreamBytes: 2000, RetryMin: time.Minute, RetryMax: time.Minute, Grace: 2 * time.Minute}, 400, 0},
	} {
		for _, proto := range protos {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, proto, &tc.opts, idle)
				c := h.dial(false, nil)
				defer c.Close()
				s := h.session()
				sent := make(chan error, 1)
				go func() {
					for i := range tc.n {
						if err := s.Send(context.Background(), []byte(fmt.Sprintf("message %03d %s", i, strings.Repeat(".", 30)))); err != nil {
							sent <- err
							return
						}
						time.Sleep(tc.pause)
					}
					sent <- nil
				}()
				got := readN(t, c, tc.n)
				require.NoError(t, <-sent)
				for i, m := range got {
					require.True(t, strings.HasPrefix(m, fmt.Sprintf("message %03d ", i)), "message %d is %q", i, m)
				}
				require.GreaterOrEqual(t, h.streamCount(), 4, "too few rotations")
				t.Logf("%d streams", h.streamCount())
			})
		}
	}
}

// TestRotateEvent reads a rotation by hand: a rotate event ends the stream, and the resumed
// stream brings what follows.
func TestRotateEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{MaxStreamBytes: 10}, idle)
	hc := h.client()
	st := openStream(t, hc, h.base)
	ticket := parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
	s := h.session()
	ctx := context.Background()
	require.NoError(t, s.Send(ctx, []byte("0123456789ab"))) // past 10 bytes
	require.NoError(t, s.Send(ctx, []byte("next")))
	require.Equal(t, "0123456789ab", st.expect("message").Data)
	require.Equal(t, `{}`, st.expect(fallback.EventRotate).Data)
	require.Error(t, st.end())
	st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".1")
	require.True(t, parseOpen(t, st.expect(fallback.EventOpen).Data).Resumed)
	m := st.expect("message")
	require.Equal(t, "next", m.Data)
	require.Equal(t, ticket+".2", m.ID)
}

// TestConnClose closes the Go client: its last messages and its goodbye reach the server,
// whose session ends at once (not after the grace period), and Read and Write fail.
func TestConnClose(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
			t.Run(proto+"/"+transport, func(t *testing.T) {
				t.Parallel()
				got := make(chan string, 10)
				h := newHarness(t, proto, &fallback.Options{Grace: time.Minute}, collect(got))
				c := h.dial(transport == fallback.TransportPoll, nil)
				s := h.session()
				ctx := context.Background()
				require.NoError(t, c.Write(ctx, []byte("last words")))
				start := time.Now()
				require.NoError(t, c.Close())
				require.Less(t, time.Since(start), 2*time.Second, "Close took long")
				require.ErrorIs(t, h.endOf(s, 2*time.Second), fallback.ErrClientClosed)
				require.Equal(t, []string{"last words"}, received(t, got, 1))
				tableEmpty(t, h.opts.Sessions, time.Second)

				_, err := c.Read(ctx)
				require.ErrorIs(t, err, fallback.ErrSessionEnded)
				require.ErrorIs(t, c.Write(ctx, []byte("x")), fallback.ErrSessionEnded)
				require.NoError(t, c.Close(), "a second Close")
			})
		}
	}
}

// TestServerCloses ends sessions from the server: the Go client reads the messages sent
// before, then a *CloseError with the code that says why. A poll that comes after the session
// ended still hears it, except after Server.Close, which forgets every session (the poll then
// gets 410).
func TestServerCloses(t *testing.T) {
	t.Parallel()
	errShutdown := errors.New("shutting down")
	for _, tc := range []struct {
		name  string
		close func(h *harness, s *fallback.Session)
		code  int
	}{
		{"normal", func(_ *harness, s *fallback.Session) { _ = s.Close(nil) }, 1000},
		{"error", func(_ *harness, s *fallback.Session) { _ = s.Close(errors.New("boom")) }, 1011},
		{"shutdown", func(_ *harness, s *fallback.Session) { _ = s.Close(fmt.Errorf("nes: %w", errShutdown)) }, 1001},
		{"server", func(h *harness, _ *fallback.Session) { h.srv.Close() }, 1001},
	} {
		for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
			t.Run(tc.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, "HTTP/1.1", &fallback.Options{
					IsShutdown: func(err error) bool { return errors.Is(err, errShutdown) },
				}, idle)
				c := h.dial(transport == fallback.TransportPoll, nil)
				defer c.Close()
				s := h.session()
				require.NoError(t, s.Send(context.Background(), []byte("before")))
				if transport == fallback.TransportSSE {
					require.Equal(t, []string{"before"}, readN(t, c, 1))
				}
				tc.close(h, s)
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				forgets := tc.name == "server" && transport == fallback.TransportPoll
				if transport == fallback.TransportPoll && !forgets {
					require.Equal(t, []string{"before"}, readN(t, c, 1))
				}
				m, err := c.Read(ctx)
				if forgets && err == nil { // the poll came before Server.Close
					require.Equal(t, "before", string(m))
					_, err = c.Read(ctx)
				}
				require.ErrorIs(t, err, fallback.ErrSessionEnded)
				var ce *fallback.CloseError
				var se *fallback.StatusError
				if forgets && errors.As(err, &se) {
					require.Equal(t, 410, se.StatusCode)
					return
				}
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tc.code, ce.Code)
				require.ErrorIs(t, err, fallback.ErrSessionEnded)
				require.Equal(t, websocket.StatusCode(tc.code), websocket.CloseStatus(err), "the code as a WebSocket's")
			})
		}
	}
}

// TestCloseWhileAway closes sessions whose client is away (its stream dropped, or between two
// polls): the client, coming back within the grace period, gets the messages sent before the
// close, then the close; after that the session is gone (410, or a reset for a stream).
func TestCloseWhileAway(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{PollTimeout: 50 * time.Millisecond}, idle)
	hc := h.client()
	ctx := context.Background()

	st := openStream(t, hc, h.base)
	ticket := parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
	s := h.session()
	require.NoError(t, s.Send(ctx, []byte("1")))
	st.expect("message")
	st.close()
	require.Eventually(t, s.Detached, testTimeout, time.Millisecond)
	require.NoError(t, s.Send(ctx, []byte("2")))
	require.NoError(t, s.Close(errors.New("boom")))
	require.Equal(t, 1, tableLen(h.opts.Sessions), "the closed session did not wait for its client")
	st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".1")
	m := st.expect("message")
	require.Equal(t, "2", m.Data)
	require.Equal(t, ticket+".2", m.ID)
	require.JSONEq(t, `{"code":1011,"reason":"internal error"}`, st.expect(fallback.EventClose).Data)
	require.Error(t, st.end())
	tableEmpty(t, h.opts.Sessions, time.Second)
	st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".2")
	st.expect(fallback.EventReset)
	st.expect(fallback.EventOpen)
	st.close()
	h.session()

	ticket = openPoll(t, hc, h.base).Ticket
	s = h.session()
	require.NoError(t, s.Send(ctx, []byte("a")))
	require.NoError(t, s.Close(nil))
	ev := post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket).events(t)
	require.Len(t, ev, 2)
	require.Equal(t, pollEvent{ID: ticket + ".1", Data: "a"}, ev[0])
	require.Equal(t, fallback.EventClose, ev[1].Event)
	a := post(t, hc, h.base, fallback.EndpointPoll, `{"last":1}`, "Herald-Ticket", ticket)
	require.Equal(t, 410, a.status, "%s", a.body)
}

// TestServerClosed: after Server.Close, no new session opens (503 for a stream and for a
// poll), so nothing outlives Close; sessions that were open have ended.
func TestServerClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", nil, idle)
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket
	s := h.session()
	h.srv.Close()
	require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrClosed)
	_, status := tryStream(t, hc, h.base)
	require.Equal(t, 503, status)
	a := post(t, hc, h.base, fallback.EndpointPoll, `{}`)
	require.Equal(t, 503, a.status, "%s", a.body)
	a = post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket)
	require.Equal(t, 410, a.status, "%s", a.body)
	require.Equal(t, 0, tableLen(h.opts.Sessions))
	select {
	case s := <-h.accepted:
		t.Fatalf("a session opened after Close: %v", s.RemoteAddr())
	default:
	}
}

// slowAnswers keeps the status of an answer of the send endpoint, to be sent later, after the batch was applied: the
// client cannot tell whether a POST it gives up on was applied.
type slowAnswers struct {
	http.ResponseWriter
	status int
}

func (w *slowAnswers) WriteHeader(status int) { w.status = status }

// TestConnCloseInFlight closes the Go client while a batch it posted is applied but not yet
// answered, with another message written after that batch: the goodbye must not take the
// later message for part of a retry of the applied batch.
func TestConnCloseInFlight(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	applied := make(chan struct{}, 10)
	var first atomic.Bool // only the first POST's answer is held back
	first.Store(true)
	h := newHarness(t, "HTTP/1.1", &fallback.Options{Grace: time.Minute}, collect(got), func(hs *http.Server) {
		inner := hs.Handler
		hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/"+fallback.EndpointSend) || !first.CompareAndSwap(true, false) {
				inner.ServeHTTP(w, r)
				return
			}
			sw := &slowAnswers{ResponseWriter: w, status: http.StatusOK}
			inner.ServeHTTP(sw, r)
			applied <- struct{}{}
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
			}
			w.WriteHeader(sw.status)
		})
	})
	c := h.dial(false, nil)
	s := h.session()
	ctx := context.Background()
	require.NoError(t, c.Write(ctx, []byte("A")))
	<-applied // batch 1, [A], applied; its answer is held back
	require.Equal(t, "A", <-got)
	require.NoError(t, c.Write(ctx, []byte("B")))
	require.NoError(t, c.Close())
	require.ErrorIs(t, h.endOf(s, 3*time.Second), fallback.ErrClientClosed)
	require.Equal(t, []string{"B"}, received(t, got, 1))
}
