package fallback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/herald-go/herald/fallback"
)

// TestGraceExpires abandons sessions (a stream dropped, a poll never repeated): each ends
// with ErrExpired once Options.Grace has passed, not before, and leaves nothing behind: the
// table is empty, the Session is garbage, and no goroutine is left (the test does not run in
// parallel, for goleak).
func TestGraceExpires(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	const grace = 200 * time.Millisecond
	table := fallback.NewMemorySessions()
	type ended struct {
		s   weak.Pointer[fallback.Session]
		err error
		at  time.Time
	}
	accepted := make(chan weak.Pointer[fallback.Session], 2)
	ends := make(chan ended, 2)
	srv, err := fallback.NewServer(&fallback.Options{Grace: grace, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, Sessions: table, Accept: func(s *fallback.Session) {
		w := weak.Make(s)
		accepted <- w
		for {
			if _, err := s.Receive(context.Background()); err != nil {
				ends <- ended{w, err, time.Now()}
				return
			}
		}
	}})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	hc := ts.Client()

	// A stream, dropped.
	st := openStream(t, hc, ts.URL+"/nes")
	st.expect(fallback.EventOpen)
	sess := <-accepted
	st.close()
	dropped := time.Now()
	// A poll's session, never polled again.
	opened := time.Now() // before: the grace period starts before the answer is sent
	openPoll(t, hc, ts.URL+"/nes")
	psess := <-accepted
	require.Equal(t, 2, tableLen(table))

	for range 2 {
		select {
		case e := <-ends:
			require.ErrorIs(t, e.err, fallback.ErrExpired)
			since := map[weak.Pointer[fallback.Session]]time.Time{sess: dropped, psess: opened}[e.s]
			require.False(t, since.IsZero())
			require.GreaterOrEqual(t, e.at.Sub(since), grace, "a session ended before its grace period")
			require.Less(t, e.at.Sub(since), grace+time.Second, "a session outlived its grace period")
		case <-time.After(testTimeout):
			t.Fatal("a session never expired")
		}
	}
	require.Equal(t, 0, tableLen(table))
	srv.Close()
	ts.Close()
	require.Eventually(t, func() bool {
		runtime.GC()
		return sess.Value() == nil && psess.Value() == nil
	}, testTimeout, 10*time.Millisecond, "an expired Session is still referenced")
}

// TestGraceResume comes back within the grace period, by stream and by poll, several times in
// a row: the session lives on, each return starting the grace period afresh.
func TestGraceResume(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	h := newHarness(t, "HTTP/1.1", &fallback.Options{Grace: grace, PollTimeout: grace / 6}, idle)
	hc := h.client()
	st := openStream(t, hc, h.base)
	ticket := parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
	s := h.session()
	st.close()
	for range 3 { // 3 × 2/3 of the grace: longer than one grace period in all
		time.Sleep(grace / 3)
		require.Empty(t, post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket).events(t))
		time.Sleep(grace / 3)
		st = openStream(t, hc, h.base, "Last-Event-ID", ticket+".0")
		o := parseOpen(t, st.expect(fallback.EventOpen).Data)
		require.True(t, o.Resumed)
		require.Equal(t, ticket, o.Ticket)
		st.close()
	}
	select {
	case <-s.Done():
		t.Fatal("the session ended although its client came back within the grace period")
	default:
	}
	require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrExpired)
	a := post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket)
	require.Equal(t, http.StatusGone, a.status)
}
