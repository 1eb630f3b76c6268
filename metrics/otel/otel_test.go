package otel_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
	"github.com/herald-go/herald/metrics"
	heraldotel "github.com/herald-go/herald/metrics/otel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// point is one data point read back: an instrument, its attributes, and its value (a sum's
// value or a histogram's count).
type point struct {
	name  string
	attrs string
}

// collect reads every data point from the reader.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[point]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[point]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, p.Attributes.Encoded(attribute.DefaultEncoder())}] = float64(p.Value)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, p.Attributes.Encoded(attribute.DefaultEncoder())}] = float64(p.Count)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[point{m.Name, p.Attributes.Encoded(attribute.DefaultEncoder())}] = float64(p.Count)
				}
			}
		}
	}
	return out
}

// TestRecorderWithTheSDKsReader serves a WebSocket client (a request answered 200, one
// answered 404, a publication) through a server reporting to the adapter, reports the events
// no server makes here (resumes, the broker, compression) directly, and reads every figure
// back with the SDK's ManualReader.
func TestRecorderWithTheSDKsReader(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	rec, err := heraldotel.New(provider.Meter("github.com/herald-go/herald"))
	require.NoError(t, err)

	app := http.NewServeMux()
	app.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") })
	srv := herald.NewServer(app, &herald.Options{Metrics: rec, NoFallback: true, Heartbeat: &herald.Heartbeat{Disabled: true}})
	srv.Route("hello", "GET", "/hello")
	srv.Subscription("/feed", nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New("ws"+strings.TrimPrefix(hs.URL, "http")+"/", &client.Options{NoReconnect: true})
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	got := make(chan struct{}, 1)
	_, err = c.Subscribe(ctx, "/feed", func(client.Update) { got <- struct{}{} })
	require.NoError(t, err)
	_, err = c.Request(ctx, "hello")
	require.NoError(t, err)
	_, err = c.Request(ctx, "/nowhere")
	require.Error(t, err)
	require.NoError(t, srv.Publish("/feed", 1, nil))
	<-got
	require.NoError(t, c.Close())

	rec.Resumed(metrics.ResumeHit)
	rec.Resumed(metrics.ResumeReset)
	rec.BrokerPublish(time.Millisecond, nil)
	rec.BrokerPublish(time.Millisecond, errors.New("down"))
	rec.BrokerDiscontinuity(0)
	rec.Compressed(1000, 250)

	ws := "transport=websocket"
	want := map[point]float64{
		{"herald.connects", ws}:                                     1,
		{"herald.messages.received", ws}:                            4, // hello, sub, 2 requests
		{"herald.messages.sent", ws}:                                5, // their replies, the publication
		{"herald.deliveries", ws}:                                   1,
		{"herald.publications", ""}:                                 1,
		{"herald.request.duration", "route=hello,status=200"}:       1,
		{"herald.request.duration", "route=other,status=404"}:       1,
		{"herald.resumes", "result=hit"}:                            1,
		{"herald.resumes", "result=reset"}:                          1,
		{"herald.broker.publish.duration", ""}:                      2,
		{"herald.broker.publish.errors", ""}:                        1,
		{"herald.broker.discontinuities", ""}:                       1,
		{"herald.deflate.in.bytes", ""}:                             1000,
		{"herald.deflate.out.bytes", ""}:                            250,
		{"herald.disconnects", "reason=normal,transport=websocket"}: 1,
		{"herald.connections", ws}:                                  0,
	}
	// The server counts a message once written, so the client may read the publication (and
	// close) before the server counted it: wait for the figures to settle, then compare.
	var points map[point]float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		points = collect(t, reader)
		settled := true
		for p, v := range want {
			settled = settled && points[p] == v
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for p, v := range want {
		assert.Equal(t, v, points[p], "%s{%s}", p.name, p.attrs)
	}
}

// TestRequestStatusOther checks the request histogram's attributes, read back with the SDK's
// ManualReader: a status outside 100-599 is recorded as "other", as the Prometheus adapter
// does, so that a broken status cannot add a series per value; and status is a string in
// every data point, so that "other" and the codes share one attribute type.
func TestRequestStatusOther(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	rec, err := heraldotel.New(provider.Meter("github.com/herald-go/herald"))
	require.NoError(t, err)

	for _, status := range []int{200, 200, 404, 99, 600, 0, -1, 1 << 20} {
		rec.Request("hello", status, time.Millisecond)
	}
	rec.Request("other", 1000, time.Millisecond)

	points := collect(t, reader)
	assert.Equal(t, map[point]float64{
		{"herald.request.duration", "route=hello,status=200"}:   2,
		{"herald.request.duration", "route=hello,status=404"}:   1,
		{"herald.request.duration", "route=hello,status=other"}: 5,
		{"herald.request.duration", "route=other,status=other"}: 1,
	}, points)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok || m.Name != "herald.request.duration" {
				continue
			}
			for _, p := range h.DataPoints {
				v, ok := p.Attributes.Value("status")
				assert.True(t, ok && v.Type() == attribute.STRING, "status of %s is a %v", p.Attributes.Encoded(attribute.DefaultEncoder()), v.Type())
			}
		}
	}
}
