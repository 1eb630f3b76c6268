package herald_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/client"
)

// TestTraceContextReachesTheHandler sends a nes request with W3C trace context headers
// (traceparent, tracestate), as a traced client would, to an application whose handler
// continues the trace as OpenTelemetry's HTTP middleware does (the propagator extracts the
// context from the request's headers, the handler starts a span in it): the span belongs to
// the client's trace, as the child of the client's span.
func TestTraceContextReachesTheHandler(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prop := propagation.TraceContext{}

	app := http.NewServeMux()
	app.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		_, span := tp.Tracer("app").Start(ctx, "GET /items/{id}", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := herald.NewServer(app, &herald.Options{Heartbeat: &herald.Heartbeat{Disabled: true}})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	// The client's side of the trace: a span whose context goes into the request's headers.
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	state, _ := trace.ParseTraceState("vendor=opaque")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID,
		TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true})
	carrier := propagation.MapCarrier{}
	prop.Inject(trace.ContextWithSpanContext(context.Background(), parent), carrier)
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", carrier["traceparent"])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New("ws"+strings.TrimPrefix(hs.URL, "http")+"/", &client.Options{Transports: []string{client.TransportWebSocket}, NoReconnect: true})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Connect(ctx))
	res, err := c.Do(ctx, &client.Request{Path: "/items/5", Headers: carrier})
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	spans := rec.Ended()
	require.Len(t, spans, 1)
	got := spans[0]
	assert.Equal(t, traceID, got.SpanContext().TraceID(), "the handler's span is in the client's trace")
	assert.Equal(t, spanID, got.Parent().SpanID(), "as the child of the client's span")
	assert.True(t, got.Parent().IsRemote())
	assert.Equal(t, "vendor=opaque", got.SpanContext().TraceState().String())
}
