package main

import (
	"net/http"

	promclient "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-go/herald/metrics/prometheus"
)

// promGatherer is what /metrics and /stats read the numbers from.
type promGatherer = promclient.Gatherer

// newMetrics returns a Prometheus recorder for herald.Options.Metrics and the registry it
// reports to, which /metrics serves.
func newMetrics() (*prometheus.Recorder, *promclient.Registry, error) {
	reg := promclient.NewRegistry()
	rec, err := prometheus.New(reg, nil)
	if err != nil {
		return nil, nil, err
	}
	return rec, reg, nil
}

// stats is GET /stats's answer, the few numbers the page shows, read from the same metrics
// as /metrics, of this node only:
//
//	{"connections": {"websocket": N, "sse": N, "poll": N}, "messagesIn": N, "messagesOut": N,
//	 "publications": N, "deliveries": N}
type stats struct {
	Connections  map[string]float64 `json:"connections"`  // herald_connections, by transport
	MessagesIn   float64            `json:"messagesIn"`   // herald_messages_received_total
	MessagesOut  float64            `json:"messagesOut"`  // herald_messages_sent_total
	Publications float64            `json:"publications"` // herald_publications_total
	Deliveries   float64            `json:"deliveries"`   // herald_deliveries_total
}

// statsHandler answers GET /stats from g.
func statsHandler(g promGatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		families, err := g.Gather()
		if err != nil {
			replyError(w, http.StatusInternalServerError, err.Error())
			return
		}
		s := stats{Connections: map[string]float64{"websocket": 0, "sse": 0, "poll": 0}}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				v := value(m)
				switch f.GetName() {
				case "herald_connections":
					s.Connections[label(m, "transport")] += v
				case "herald_messages_received_total":
					s.MessagesIn += v
				case "herald_messages_sent_total":
					s.MessagesOut += v
				case "herald_publications_total":
					s.Publications += v
				case "herald_deliveries_total":
					s.Deliveries += v
				}
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		replyJSON(w, http.StatusOK, s)
	})
}

// value is a counter's or gauge's value.
func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
