package eventsource

import (
	"errors"

	"github.com/herald-go/herald/metrics"
)

// meterOpen counts a stream that started (Options.Metrics).
func (es *EventSource) meterOpen() {
	if es.metrics != nil {
		es.metrics.ConnOpened(metrics.SSE)
	}
}

// meterClose counts a stream that ended, once: a client that fell behind is a slow consumer.
func (es *EventSource) meterClose() {
	if es.metrics == nil {
		return
	}
	es.mu.Lock()
	err := es.err
	es.mu.Unlock()
	reason := metrics.Normal
	if errors.Is(err, ErrSlowClient) {
		reason = metrics.SlowConsumer
	}
	es.metrics.ConnClosed(metrics.SSE, reason)
}

// meterSent counts an event of n bytes that Send queued, unless err; it returns err.
func (es *EventSource) meterSent(n int, err error) error {
	if es.metrics != nil && err == nil {
		es.metrics.MessageOut(metrics.SSE, n)
	}
	return err
}

// meterResume counts a subscriber that came back with a Last-Event-ID (asked): a hit when the
// history had every event after it, a reset when it did not (the client gets the gap event).
func (es *EventSource) meterResume(asked, gap bool) {
	switch {
	case es.metrics == nil || !asked:
	case gap:
		es.metrics.Resumed(metrics.ResumeReset)
	default:
		es.metrics.Resumed(metrics.ResumeHit)
	}
}
