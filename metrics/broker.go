package metrics

import (
	"context"
	"time"

	"github.com/herald-go/herald/broker"
)

// Broker returns b reporting to rec: the latency and errors of its publications
// (BrokerPublish) and the discontinuities it hands its Handler (BrokerDiscontinuity). What b
// implements beside broker.Broker (broker.HistoryReader, broker.Leaser) the result implements
// too. A nil rec returns b itself.
func Broker(b broker.Broker, rec Recorder) broker.Broker {
	if rec == nil || b == nil {
		return b
	}
	m := &meteredBroker{Broker: b, rec: rec}
	h, history := b.(broker.HistoryReader)
	l, leaser := b.(broker.Leaser)
	switch {
	case history && leaser:
		return &struct {
			*meteredBroker
			broker.HistoryReader
			broker.Leaser
		}{m, h, l}
	case history:
		return &struct {
			*meteredBroker
			broker.HistoryReader
		}{m, h}
	case leaser:
		return &struct {
			*meteredBroker
			broker.Leaser
		}{m, l}
	}
	return m
}

// meteredBroker is the broker.Broker that Broker returns.
type meteredBroker struct {
	broker.Broker
	rec Recorder
}

// Unwrap returns the broker being measured.
func (m *meteredBroker) Unwrap() broker.Broker { return m.Broker }

func (m *meteredBroker) Start(ctx context.Context, node string, h broker.Handler) error {
	return m.Broker.Start(ctx, node, meteredHandler{Handler: h, rec: m.rec})
}

func (m *meteredBroker) Publish(ctx context.Context, topic string, payload []byte, opts broker.PublishOptions) (broker.Position, error) {
	start := time.Now()
	pos, err := m.Broker.Publish(ctx, topic, payload, opts)
	m.rec.BrokerPublish(time.Since(start), err)
	return pos, err
}

// meteredHandler counts the discontinuities a broker reports.
type meteredHandler struct {
	broker.Handler
	rec Recorder
}

func (h meteredHandler) HandleDiscontinuity(topics []string, err error) {
	h.rec.BrokerDiscontinuity(len(topics))
	h.Handler.HandleDiscontinuity(topics, err)
}
