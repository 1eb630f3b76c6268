package fallback_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
