package eventsource_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/eventsource"
	"github.com/herald-go/herald/metrics"
)

// esCounts is a Recorder that keeps what the EventSource layer reports.
type esCounts struct {
	metrics.Nop
	mu                   sync.Mutex
	opened, closed, sent int
	resumes              map[metrics.Resume]int
}

func (c *esCounts) ConnOpened(metrics.Transport) { c.mu.Lock(); c.opened++; c.mu.Unlock() }
func (c *esCounts) ConnClosed(metrics.Transport, metrics.Reason) {
	c.mu.Lock()
	c.closed++
	c.mu.Unlock()
}
func (c *esCounts) MessageOut(metrics.Transport, int) { c.mu.Lock(); c.sent++; c.mu.Unlock() }
func (c *esCounts) Resumed(r metrics.Resume)          { c.mu.Lock(); c.resumes[r]++; c.mu.Unlock() }

// TestMetricsOfStreams: a Stream's subscribers report their streams, the events sent, and how
// their Last-Event-IDs resumed: one found in the history (a hit), one that is not (a reset,
// with the gap event), and none (nothing to count).
func TestMetricsOfStreams(t *testing.T) {
	rec := &esCounts{resumes: map[metrics.Resume]int{}}
	stream := eventsource.NewStream(nil)
	defer stream.Close()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		es, err := eventsource.New(w, r, &eventsource.Options{Metrics: rec})
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		if err := es.Send("welcome", eventsource.Event{Type: "welcome"}); err != nil {
			return
		}
		if err := stream.Subscribe(es); err != nil {
			return
		}
		<-es.Done()
	}))
	defer srv.Close()
	defer wg.Wait()
	first, err := stream.Publish("one", eventsource.Event{})
	require.NoError(t, err)
	_, err = stream.Publish("two", eventsource.Event{})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(lastID string, want ...string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for _, w := range want {
			found := false
			for !found && sc.Scan() {
				found = strings.TrimSpace(sc.Text()) == w
			}
			require.True(t, found, "%s never came", w)
		}
	}
	read(first, "data: two")                          // a hit: the event after first
	read("not-in-history", "event: gap", "data: one") // a reset: the gap, then the history
	read("", "event: welcome")                        // no Last-Event-ID: not a resume
	_, err = stream.Publish("three", eventsource.Event{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.closed == 3
	}, 5*time.Second, 10*time.Millisecond, "the streams did not end")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 3, rec.opened)
	assert.Equal(t, 1, rec.resumes[metrics.ResumeHit])
	assert.Equal(t, 1, rec.resumes[metrics.ResumeReset])
	assert.Zero(t, rec.resumes[metrics.ResumeMiss])
	assert.Equal(t, 3, rec.sent, "one Send on each stream (a Stream's own events are not counted per stream)")
}
