package eventsource_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
)

// streamServer serves one Stream: every request subscribes with its Last-Event-ID.
func streamServer(t *testing.T, proto string, s *eventsource.Stream, opts *eventsource.Options) (*testServer, <-chan *eventsource.EventSource) {
	t.Helper()
	got := make(chan *eventsource.EventSource, 16)
	srv := newTestServer(t, proto, opts, func(es *eventsource.EventSource) {
		if err := s.Subscribe(es); err != nil {
			t.Errorf("Subscribe: %v", err)
		}
		got <- es
	})
	return srv, got
}

func publish(t *testing.T, s *eventsource.Stream, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		id, err := s.Publish("tick "+strconv.Itoa(i), eventsource.Event{})
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i), id)
	}
}

func TestStreamReplay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    eventsource.StreamOptions
		last    string // the client's Last-Event-ID
		want    []int  // events replayed before the live event 11
		gap     bool
		gapID   string
		gapData string
	}{
		{name: "fresh", last: "", want: nil},
		{name: "newest", last: "10", want: nil},
		{name: "middle", last: "4", want: []int{5, 6, 7, 8, 9, 10}},
		{name: "oldest kept", opts: eventsource.StreamOptions{HistoryLimit: 3}, last: "8", want: []int{9, 10}},
		{name: "just dropped", opts: eventsource.StreamOptions{HistoryLimit: 3}, last: "7", want: []int{8, 9, 10}},
		{name: "too old", opts: eventsource.StreamOptions{HistoryLimit: 3}, last: "2", want: []int{8, 9, 10},
			gap: true, gapID: "7", gapData: "2"},
		{name: "by bytes", opts: eventsource.StreamOptions{HistoryBytes: 2 * len("id: 10\ndata: tick 10\n\n")}, last: "5",
			want: []int{9, 10}, gap: true, gapID: "8", gapData: "5"},
		{name: "unknown", last: "nope", want: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, gap: true, gapData: "nope"},
		{name: "custom gap type", opts: eventsource.StreamOptions{HistoryLimit: 1, GapEvent: "reset"}, last: "1",
			want: []int{10}, gap: true, gapID: "9", gapData: "1"},
	}
	for _, c := range cases {
		for _, proto := range protos {
			t.Run(c.name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				s := eventsource.NewStream(&c.opts)
				srv, got := streamServer(t, proto, s, nil)
				publish(t, s, 1, 10)
				h := http.Header{}
				if c.last != "" {
					h.Set("Last-Event-ID", c.last)
				}
				st := srv.open(t, "/", h)
				recv(t, got)
				// The replay is read before publishing again: a history this small could
				// otherwise drop the replayed events before they are written, which ends the
				// stream (see TestStreamSlowClient).
				if c.gap {
					m := st.next(t)
					gapType := c.opts.GapEvent
					if gapType == "" {
						gapType = "gap"
					}
					assert.Equal(t, eventsource.Message{Type: gapType, ID: c.gapID, Data: c.gapData}, m)
				}
				for i, n := range append(c.want, 11) {
					if i == len(c.want) {
						publish(t, s, 11, 11)
					}
					m := st.next(t)
					require.Equal(t, eventsource.Message{Type: "message", ID: strconv.Itoa(n), Data: "tick " + strconv.Itoa(n)}, m)
				}
			})
		}
	}
}

func TestStreamHistoryAge(t *testing.T) {
	t.Parallel()
	s := eventsource.NewStream(&eventsource.StreamOptions{HistoryAge: 50 * time.Millisecond})
	srv, got := streamServer(t, "HTTP/1.1", s, nil)
	publish(t, s, 1, 3)
	time.Sleep(100 * time.Millisecond)
	publish(t, s, 4, 4)
	st := srv.open(t, "/", http.Header{"Last-Event-Id": {"1"}})
	recv(t, got)
	assert.Equal(t, eventsource.Message{Type: "gap", ID: "3", Data: "1"}, st.next(t))
	assert.Equal(t, "4", st.next(t).ID)
}

// A client resumes from its last event while events are being published without pause: the
// events it receives over both connections are 1..N, each once.
func TestStreamResumeUnderLoad(t *testing.T) {
	t.Parallel()
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 4096})
			srv, got := streamServer(t, proto, s, nil)
			const total = 2000
			first := srv.open(t, "/", nil)
			recv(t, got)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= total; i++ {
					if _, err := s.Publish("tick "+strconv.Itoa(i), eventsource.Event{}); err != nil {
						t.Error(err)
						return
					}
					if i%100 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			var seen []int
			last := ""
			for conn := 0; len(seen) < total; conn++ {
				require.Less(t, conn, 50, "too many reconnections")
				h := http.Header{}
				if last != "" {
					h.Set("Last-Event-ID", last)
				}
				st := first
				if conn > 0 {
					st = srv.open(t, "/", h)
					recv(t, got)
				}
				for range 300 {
					if len(seen) == total {
						break
					}
					m := st.next(t)
					n, err := strconv.Atoi(m.ID)
					require.NoError(t, err)
					seen = append(seen, n)
					last = m.ID
				}
				st.Close()
			}
			wg.Wait()
			for i, n := range seen {
				require.Equal(t, i+1, n, "event %d: gap or duplicate", i)
			}
		})
	}
}

// A client that stops reading does not delay the others: they receive every event while its
// writer is stuck (its write timeout is far off).
func TestStreamStalledClientDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	s := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 4096, HistoryBytes: 64 << 20})
	srv, got := streamServer(t, "HTTP/1.1", s, &eventsource.Options{WriteTimeout: 60 * time.Second})
	slow := stalledClient(t, srv.URL)
	slowES := recv(t, got)
	fastDone := fanOut(t, s, srv, got, 300, false)
	require.NoError(t, recv(t, fastDone))
	select {
	case <-slowES.Done():
		t.Fatalf("the stalled client ended (%v): it should still be stuck", slowES.Err())
	default:
	}
	slow.Close()
	waitDone(t, slowES, 10*time.Second)
}

// A client that stops reading costs no memory beyond the shared history and is disconnected
// with ErrSlowClient as soon as its next event leaves the history.
func TestStreamStalledClientFallsOutOfHistory(t *testing.T) {
	t.Parallel()
	s := eventsource.NewStream(&eventsource.StreamOptions{HistoryLimit: 64})
	srv, got := streamServer(t, "HTTP/1.1", s, &eventsource.Options{WriteTimeout: 60 * time.Second})
	slow := stalledClient(t, srv.URL)
	defer slow.Close()
	slowES := recv(t, got)
	fastDone := fanOut(t, s, srv, got, 300, true)
	require.NoError(t, recv(t, fastDone))
	waitDone(t, slowES, 10*time.Second)
	assert.ErrorIs(t, slowES.Err(), eventsource.ErrSlowClient)
	assert.Equal(t, 4, s.Len(), "the slow subscriber has left the stream")
}

// fanOut opens 4 clients that read, publishes total events of 8 KiB and returns a channel
// that gets nil once every client has received them all in order. paced keeps the readers
// within 32 events of the publisher, so that only a stalled client falls out of a small
// history (a publisher much faster than every client would leave them all behind).
func fanOut(t *testing.T, s *eventsource.Stream, srv *testServer, got <-chan *eventsource.EventSource, total int, paced bool) <-chan error {
	t.Helper()
	const fast = 4
	streams := make([]*stream, fast)
	for i := range streams {
		streams[i] = srv.open(t, "/", nil)
		recv(t, got)
	}
	data := strings.Repeat("y", 8<<10)
	errs := make(chan error, fast)
	progress := make([]atomic.Int64, fast)
	for k, st := range streams {
		go func() {
			for i := 1; i <= total; i++ {
				m, err := st.Dec.Next()
				if err != nil {
					errs <- err
					return
				}
				if m.ID != strconv.Itoa(i) || len(m.Data) != len(data) {
					errs <- fmt.Errorf("event %d: got id %s, %d bytes", i, m.ID, len(m.Data))
					return
				}
				progress[k].Store(int64(i))
			}
			errs <- nil
		}()
	}
	for i := 1; i <= total; i++ {
		_, err := s.Publish(data, eventsource.Event{})
		require.NoError(t, err)
		for k := range progress {
			for deadline := time.Now().Add(10 * time.Second); paced && progress[k].Load() < int64(i-32) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	done := make(chan error, 1)
	go func() {
		var first error
		for range fast {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		done <- first
	}()
	return done
}

func TestStreamClose(t *testing.T) {
	t.Parallel()
	s := eventsource.NewStream(nil)
	srv, got := streamServer(t, "HTTP/1.1", s, nil)
	st := srv.open(t, "/", nil)
	es := recv(t, got)
	publish(t, s, 1, 1)
	assert.Equal(t, "1", st.next(t).ID)
	s.Close()
	waitDone(t, es, 10*time.Second)
	_, err := s.Publish("x", eventsource.Event{})
	assert.ErrorIs(t, err, eventsource.ErrClosed)
	assert.Equal(t, 0, s.Len())
}

func TestSubscribeTwice(t *testing.T) {
	t.Parallel()
	s1, s2 := eventsource.NewStream(nil), eventsource.NewStream(nil)
	st, es := openStream(t, "HTTP/1.1", nil, "/")
	require.NoError(t, s1.Subscribe(es))
	assert.ErrorIs(t, s2.Subscribe(es), eventsource.ErrSubscribed)
	s1.Unsubscribe(es)
	require.NoError(t, s2.Subscribe(es))
	_, err := s2.Publish("two", eventsource.Event{ID: "b"})
	require.NoError(t, err)
	assert.Equal(t, eventsource.Message{Type: "message", ID: "b", Data: "two"}, st.next(t))
	st.Close()
	waitDone(t, es, 10*time.Second)
	assert.ErrorIs(t, s1.Subscribe(es), eventsource.ErrClosed)
}
