package metrics_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/metrics"
)

// brokerCounts is a Recorder that counts the broker's events.
type brokerCounts struct {
	metrics.Nop
	publishes, failures, gaps, gapTopics atomic.Int64
}

func (c *brokerCounts) BrokerPublish(d time.Duration, err error) {
	c.publishes.Add(1)
	if err != nil {
		c.failures.Add(1)
	}
}

func (c *brokerCounts) BrokerDiscontinuity(topics int) {
	c.gaps.Add(1)
	c.gapTopics.Add(int64(topics))
}

// handler hands on a broker's discontinuities (its messages are not looked at).
type handler struct {
	gaps chan []string
}

func (h *handler) HandleMessage(string, []byte, broker.Position) {}
func (h *handler) HandleNode(string, []byte)                     {}
func (h *handler) HandleDiscontinuity(topics []string, err error) {
	h.gaps <- topics
}

func TestBrokerReportsPublishesFailuresAndDiscontinuities(t *testing.T) {
	hub := broker.NewMemoryHub()
	inner := hub.Broker()
	counts := &brokerCounts{}
	b := metrics.Broker(inner, counts)
	_, history := b.(broker.HistoryReader)
	_, leaser := b.(broker.Leaser)
	assert.True(t, history && leaser, "what the broker implements besides Broker stays visible")
	assert.Same(t, inner, metrics.Broker(inner, nil), "no Recorder, no wrapper")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &handler{gaps: make(chan []string, 4)}
	require.NoError(t, b.Start(ctx, "n1", h))
	defer b.Close()
	require.NoError(t, b.Subscribe(ctx, "a", "b"))

	_, err := b.Publish(ctx, "a", []byte("one"), broker.PublishOptions{})
	require.NoError(t, err)
	_, err = b.Publish(ctx, "b", []byte("two"), broker.PublishOptions{})
	require.NoError(t, err)
	hub.Disconnect(inner)
	_, err = b.Publish(ctx, "a", []byte("lost"), broker.PublishOptions{})
	require.ErrorIs(t, err, broker.ErrUnavailable)
	hub.Reconnect(inner)
	select {
	case topics := <-h.gaps:
		assert.Nil(t, topics, "every topic") // the memory hub's way
	case <-ctx.Done():
		t.Fatal("no discontinuity after Reconnect")
	}

	assert.Equal(t, int64(3), counts.publishes.Load())
	assert.Equal(t, int64(1), counts.failures.Load())
	assert.Equal(t, int64(1), counts.gaps.Load())
	assert.Equal(t, int64(0), counts.gapTopics.Load(), "0 for every topic")
}
