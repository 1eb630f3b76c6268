package fallback_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/fallback"
)

// pollAsync polls from last on a goroutine of its own; the answer comes on the channel.
func pollAsync(t *testing.T, hc *http.Client, base, ticket, last string) <-chan answer {
	done := make(chan answer, 1)
	go func() {
		done <- post(t, hc, base, fallback.EndpointPoll, `{"last":`+last+`}`, "Herald-Ticket", ticket)
	}()
	return done
}

// awaitAnswer waits for a poll's answer, within d.
func awaitAnswer(t *testing.T, c <-chan answer, d time.Duration) answer {
	t.Helper()
	select {
	case a := <-c:
		return a
	case <-time.After(d):
		t.Fatalf("the poll did not answer within %v", d)
		return answer{}
	}
}

// polling waits until s has a poll waiting.
func polling(t *testing.T, s *fallback.Session) {
	t.Helper()
	require.Eventually(t, func() bool { return !s.Detached() }, testTimeout, time.Millisecond)
}

// TestPollTimeout: a poll with nothing to answer waits PollTimeout, then answers empty.
func TestPollTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	h := newHarness(t, "HTTP/1.1", &fallback.Options{PollTimeout: timeout}, idle)
	hc := h.client()
	ticket := openPoll(t, hc, h.base).Ticket
	start := time.Now()
	a := post(t, hc, h.base, fallback.EndpointPoll, `{"last":0}`, "Herald-Ticket", ticket)
	took := time.Since(start)
	require.Empty(t, a.events(t))
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	require.GreaterOrEqual(t, took, timeout)
	require.Less(t, took, timeout+time.Second)
}

// TestPollWaits: a waiting poll answers as soon as a message is sent, a newer poll answers
// the older one empty, and a poll hears the session close.
func TestPollWaits(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, proto, &fallback.Options{PollTimeout: time.Minute}, idle)
			hc := h.client()
			ticket := openPoll(t, hc, h.base).Ticket
			s := h.session()
			ctx := context.Background()

			// Early, at the first message.
			p := pollAsync(t, hc, h.base, ticket, "0")
			polling(t, s)
			time.Sleep(20 * time.Millisecond)
			select {
			case a := <-p:
				t.Fatalf("the poll answered with nothing to say: %d %s", a.status, a.body)
			default:
			}
			require.NoError(t, s.Send(ctx, []byte("one")))
			ev := awaitAnswer(t, p, time.Second).events(t)
			require.Equal(t, []pollEvent{{ID: ticket + ".1", Data: "one"}}, ev)

			// What waits is answered at once, every message after last.
			require.NoError(t, s.Send(ctx, []byte("two")))
			require.NoError(t, s.Send(ctx, []byte("three")))
			ev = awaitAnswer(t, pollAsync(t, hc, h.base, ticket, "1"), time.Second).events(t)
			require.Equal(t, []pollEvent{{ID: ticket + ".2", Data: "two"}, {ID: ticket + ".3", Data: "three"}}, ev)
			// A poll that lost its answer asks again from the same place, and gets it again.
			ev = awaitAnswer(t, pollAsync(t, hc, h.base, ticket, "1"), time.Second).events(t)
			require.Len(t, ev, 2)

			// A newer poll replaces the older one, which answers empty.
			older := pollAsync(t, hc, h.base, ticket, "3")
			polling(t, s)
			time.Sleep(20 * time.Millisecond)
			newer := pollAsync(t, hc, h.base, ticket, "3")
			require.Empty(t, awaitAnswer(t, older, time.Second).events(t))
			polling(t, s)
			require.NoError(t, s.Send(ctx, []byte("four")))
			ev = awaitAnswer(t, newer, time.Second).events(t)
			require.Equal(t, []pollEvent{{ID: ticket + ".4", Data: "four"}}, ev)

			// A waiting poll hears the session close.
			p = pollAsync(t, hc, h.base, ticket, "4")
			polling(t, s)
			require.NoError(t, s.Close(nil))
			ev = awaitAnswer(t, p, time.Second).events(t)
			require.Len(t, ev, 1)
			require.Equal(t, fallback.EventClose, ev[0].Event)
			require.JSONEq(t, `{"code":1000,"reason":""}`, ev[0].Data)
			require.ErrorIs(t, h.endOf(s, testTimeout), fallback.ErrClosed)
		})
	}
}

// TestStreamToPoll moves a session from its stream to polling: the stream ends, and the polls
// carry on from where it was.
func TestStreamToPoll(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "HTTP/1.1", &fallback.Options{PollTimeout: time.Minute}, idle)
	hc := h.client()
	st := openStream(t, hc, h.base)
	ticket := parseOpen(t, st.expect(fallback.EventOpen).Data).Ticket
	s := h.session()
	ctx := context.Background()
	require.NoError(t, s.Send(ctx, []byte("streamed")))
	require.Equal(t, "streamed", st.expect("message").Data)

	p := pollAsync(t, hc, h.base, ticket, "1")
	require.Error(t, st.end(), "the stream did not end when the client polled")
	polling(t, s)
	require.NoError(t, s.Send(ctx, []byte("polled")))
	ev := awaitAnswer(t, p, time.Second).events(t)
	require.Equal(t, []pollEvent{{ID: ticket + ".2", Data: "polled"}}, ev)
}
