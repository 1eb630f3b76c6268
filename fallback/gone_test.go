package fallback_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// TestReplyBeforeCloseIsNotLost: the application answers a message and closes the session,
// and the client, not knowing yet, posts another message: that POST gets 410. The 410 must not
// hide what the server sent before the close: the client reads the reply, then the close. The
// polls are held back a little so that the 410 always comes first.
func TestReplyBeforeCloseIsNotLost(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 1)
	answerAndClose := func(s *fallback.Session) error {
		m, err := s.Receive(context.Background())
		if err != nil {
			return err
		}
		if err := s.Send(context.Background(), append([]byte("reply to "), m...)); err != nil {
			return err
		}
		err = s.Close(nil)
		closed <- struct{}{}
		return err
	}
	slowPolls := func(srv *http.Server) {
		next := srv.Handler
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/poll") && r.Header.Get("Herald-Ticket") != "" {
				time.Sleep(300 * time.Millisecond)
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarness(t, "HTTP/1.1", nil, answerAndClose, slowPolls)
	c := h.dial(true, nil)
	defer c.Close()
	require.NoError(t, c.Write(context.Background(), []byte("first")))
	<-closed
	require.NoError(t, c.Write(context.Background(), []byte("second"))) // answered 410
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.Read(ctx)
	require.NoError(t, err, "the reply was lost")
	require.Equal(t, "reply to first", string(m))
	_, err = c.Read(ctx)
	var ce *fallback.CloseError
	require.True(t, errors.As(err, &ce), "%v, want the close event", err)
	require.Equal(t, 1000, ce.Code)
}

// TestGraceLongerThanRetry: a grace period no longer than the longest retry time would end the
// sessions of browsers that wait that long before they resume: NewServer refuses it.
func TestGraceLongerThanRetry(t *testing.T) {
	t.Parallel()
	_, err := fallback.NewServer(&fallback.Options{Accept: func(*fallback.Session) {}, Grace: 3 * time.Second})
	require.ErrorContains(t, err, "Options.Grace (3s) must be longer than RetryMax (4s)")
	srv, err := fallback.NewServer(&fallback.Options{Accept: func(*fallback.Session) {}, Grace: 3 * time.Second, RetryMax: 2 * time.Second})
	require.NoError(t, err)
	srv.Close()
}

// TestGatewayErrorsAreRetried: a proxy between client and server whose own connection to the
// server is down answers 502 (or 504) to the resumed stream, the polls and the POSTs. That says
// nothing of the session: the client keeps trying within the grace period, and once the proxy
// gets through again, nothing is lost or repeated either way.
func TestGatewayErrorsAreRetried(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{fallback.TransportSSE, fallback.TransportPoll} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			var down atomic.Bool
			gateway := func(srv *http.Server) {
				next := srv.Handler
				srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if down.Load() && (r.Header.Get("Herald-Ticket") != "" || r.Header.Get("Last-Event-ID") != "") {
						w.WriteHeader(http.StatusBadGateway)
						return
					}
					next.ServeHTTP(w, r)
				})
			}
			up := make(chan string, 16)
			h := newHarness(t, "HTTP/1.1", &fallback.Options{Grace: 5 * time.Second}, collect(up), gateway)
			var cuts cutter
			hc := cuts.httpClient(nil)
			defer hc.CloseIdleConnections()
			c := h.dial(transport == fallback.TransportPoll, &fallback.DialOptions{HTTPClient: hc})
			defer c.Close()
			s := h.session()
			ctx := context.Background()
			require.NoError(t, s.Send(ctx, []byte("1")))
			require.Equal(t, []string{"1"}, readN(t, c, 1))

			down.Store(true)
			cuts.cut() // the stream or the poll in flight goes; what comes back is 502s
			require.NoError(t, s.Send(ctx, []byte("2")))
			require.NoError(t, c.Write(ctx, []byte("up 1")))
			time.Sleep(700 * time.Millisecond) // several refused retries
			down.Store(false)
			require.NoError(t, s.Send(ctx, []byte("3")))
			require.Equal(t, []string{"2", "3"}, readN(t, c, 2))
			select {
			case m := <-up:
				require.Equal(t, "up 1", m)
			case <-time.After(testTimeout):
				t.Fatal("the message posted while the gateway was down never arrived")
			}
			require.NoError(t, c.Write(ctx, []byte("up 2")))
			require.Equal(t, "up 2", <-up)
		})
	}
}
