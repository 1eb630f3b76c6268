package prometheus_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/metrics"
	heraldprom "github.com/herald-go/herald/metrics/prometheus"
)

// TestRecorderReportsWhatItIsTold drives the Recorder directly, each call a known number of
// times, and reads the figures back through the registry, as a scrape does.
func TestRecorderReportsWhatItIsTold(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := heraldprom.New(reg, nil)
	require.NoError(t, err)

	rec.ConnOpened(metrics.WebSocket)
	rec.ConnOpened(metrics.WebSocket)
	rec.ConnOpened(metrics.Poll)
	rec.ConnClosed(metrics.WebSocket, metrics.SlowConsumer)
	rec.MessageIn(metrics.WebSocket, 10)
	rec.MessageIn(metrics.WebSocket, 5)
	rec.MessageOut(metrics.Poll, 7)
	rec.Published()
	rec.Delivered(metrics.WebSocket)
	rec.Request("hello", 200, 3*time.Millisecond)
	rec.Request("hello", 200, 4*time.Millisecond)
	rec.Request("other", 404, time.Millisecond)
	rec.Request("hello", 99, time.Millisecond)
	rec.Request("hello", 600, time.Millisecond)
	rec.Request("hello", -1, time.Millisecond)
	rec.Resumed(metrics.ResumeHit)
	rec.Resumed(metrics.ResumeReset)
	rec.BrokerPublish(time.Millisecond, nil)
	rec.BrokerPublish(time.Millisecond, errors.New("down"))
	rec.BrokerDiscontinuity(2)
	rec.Compressed(1000, 250)

	text := scrape(t, reg)
	for _, want := range []string{
		`herald_connections{transport="websocket"} 1`,
		`herald_connections{transport="poll"} 1`,
		`herald_connects_total{transport="websocket"} 2`,
		`herald_disconnects_total{reason="slow_consumer",transport="websocket"} 1`,
		`herald_messages_received_total{transport="websocket"} 2`,
		`herald_received_bytes_total{transport="websocket"} 15`,
		`herald_messages_sent_total{transport="poll"} 1`,
		`herald_sent_bytes_total{transport="poll"} 7`,
		`herald_publications_total 1`,
		`herald_deliveries_total{transport="websocket"} 1`,
		`herald_request_duration_seconds_count{route="hello",status="200"} 2`,
		`herald_request_duration_seconds_count{route="other",status="404"} 1`,
		`herald_request_duration_seconds_count{route="hello",status="other"} 3`,
		`herald_resumes_total{result="hit"} 1`,
		`herald_resumes_total{result="reset"} 1`,
		`herald_resumes_total{result="miss"} 0`,
		`herald_broker_publish_duration_seconds_count 2`,
		`herald_broker_publish_errors_total 1`,
		`herald_deflate_in_bytes_total 1000`,
		`herald_deflate_out_bytes_total 250`,
	} {
		assert.Contains(t, text, want+"\n")
	}
	assert.Contains(t, text, "herald_broker_discontinuities_total 1\n", "one discontinuity (of two topics) counts once")
}

// TestCountsHandedOverAtEachScrape checks the bulk path that connections use: counts kept by a
// connection reach the registry when a scrape runs the functions given to AddFlush, and not
// after their remove.
func TestCountsHandedOverAtEachScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := heraldprom.New(reg, nil)
	require.NoError(t, err)
	pending := metrics.Counts{MessagesIn: 3, BytesIn: 30, MessagesOut: 4, BytesOut: 40, Deliveries: 2}
	flushes := 0
	remove := rec.AddFlush(func() {
		flushes++
		rec.AddCounts(metrics.SSE, pending)
		pending = metrics.Counts{}
	})
	text := scrape(t, reg)
	assert.Equal(t, 1, flushes)
	assert.Contains(t, text, `herald_messages_received_total{transport="sse"} 3`+"\n")
	assert.Contains(t, text, `herald_sent_bytes_total{transport="sse"} 40`+"\n")
	assert.Contains(t, text, `herald_deliveries_total{transport="sse"} 2`+"\n")

	remove()
	_ = scrape(t, reg)
	assert.Equal(t, 1, flushes, "a removed flush does not run")
}

// TestNamespace checks Options.Namespace and that the labels stay bounded: an unknown
// transport is ignored rather than given a label of its own.
func TestNamespace(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := heraldprom.New(reg, &heraldprom.Options{Namespace: "push"})
	require.NoError(t, err)
	rec.ConnOpened(metrics.SSE)
	rec.ConnOpened(metrics.NumTransports) // out of range: ignored
	text := scrape(t, reg)
	assert.Contains(t, text, `push_connections{transport="sse"} 1`+"\n")
	assert.NotContains(t, text, "herald_")
	n, err := testutil.GatherAndCount(reg, "push_connections")
	require.NoError(t, err)
	assert.Equal(t, int(metrics.NumTransports), n, "one series per transport, no more")
}

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	w := httptest.NewRecorder()
	heraldprom.Handler(reg).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, w.Code)
	b, err := io.ReadAll(w.Body)
	require.NoError(t, err)
	return string(b)
}
