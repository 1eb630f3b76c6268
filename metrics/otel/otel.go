// Package otel reports herald's metrics (package metrics) as OpenTelemetry instruments: New
// returns a metrics.Recorder that records on instruments made from a metric.Meter.
//
// The instruments have the names of package metrics/prometheus's collectors, with dots:
// herald.connections, herald.connects, herald.disconnects, herald.messages.received,
// herald.messages.sent, herald.received.bytes, herald.sent.bytes, herald.send_queue.bytes,
// herald.publications, herald.deliveries, herald.request.duration (s), herald.resumes,
// herald.broker.publish.duration (s), herald.broker.publish.errors,
// herald.broker.discontinuities, herald.deflate.in.bytes and herald.deflate.out.bytes; their
// attributes are transport, reason, route, status and result, as there. status is a string,
// as there: the HTTP status code in decimal, or "other" for a code outside 100-599. (A nes
// request is a call over the socket, not an HTTP exchange: it follows OpenTelemetry's RPC
// conventions, whose status code attribute is a string, rather than the HTTP ones, whose
// http.response.status_code is an int; one type in every data point keeps "other" and the
// codes in one attribute.)
package otel

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/herald-go/herald/metrics"
)

// Recorder is the metrics.Recorder that New returns.
type Recorder struct {
	conns        metric.Int64UpDownCounter
	connects     metric.Int64Counter
	disconnects  metric.Int64Counter
	msgsIn       metric.Int64Counter
	msgsOut      metric.Int64Counter
	bytesIn      metric.Int64Counter
	bytesOut     metric.Int64Counter
	queue        metric.Int64Histogram
	publications metric.Int64Counter
	deliveries   metric.Int64Counter
	requests     metric.Float64Histogram
	resumes      metric.Int64Counter
	brokerPub    metric.Float64Histogram
	brokerErrs   metric.Int64Counter
	brokerGaps   metric.Int64Counter
	deflateIn    metric.Int64Counter
	deflateOut   metric.Int64Counter

	// The attribute sets of bounded labels, made once: recording then allocates nothing.
	byTransport [metrics.NumTransports][]metric.AddOption
	byReason    [metrics.NumTransports][metrics.NumReasons][]metric.AddOption
	queueOpts   [metrics.NumTransports][]metric.RecordOption
	byResume    [metrics.NumResumes][]metric.AddOption

	// The attribute sets of the request histogram, one per route and status, made on first use
	// (routes are route ids or "other", statuses are few): Request reads the map without a
	// lock, and requestMu serializes its replacements.
	requestMu   sync.Mutex
	requestOpts atomic.Pointer[map[requestKey][]metric.RecordOption]
}

// requestKey names an attribute set of the request histogram. status is 0 for every code
// outside 100-599, which share the set with status "other".
type requestKey struct {
	route  string
	status int
}

var _ metrics.Recorder = (*Recorder)(nil)

// New makes herald's instruments from meter and returns the Recorder that records on them:
// give it to herald.Options.Metrics (or to the websocket or eventsource layer's
// Options.Metrics, or metrics.Broker).
func New(meter metric.Meter) (*Recorder, error) {
	r := &Recorder{}
	var errs []error
	i64 := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	var err error
	r.conns, err = meter.Int64UpDownCounter("herald.connections", metric.WithUnit("{connection}"), metric.WithDescription("Open connections."))
	errs = append(errs, err)
	r.connects = i64("herald.connects", "{connection}", "Connections opened.")
	r.disconnects = i64("herald.disconnects", "{connection}", "Connections closed, by reason.")
	r.msgsIn = i64("herald.messages.received", "{message}", "Messages received from clients.")
	r.msgsOut = i64("herald.messages.sent", "{message}", "Messages sent to clients.")
	r.bytesIn = i64("herald.received.bytes", "By", "Bytes of the messages received from clients.")
	r.bytesOut = i64("herald.sent.bytes", "By", "Bytes of the messages sent to clients.")
	r.queue, err = meter.Int64Histogram("herald.send_queue.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes waiting to be sent to one connection, observed when a message queues behind others."),
		metric.WithExplicitBucketBoundaries(256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304))
	errs = append(errs, err)
	r.publications = i64("herald.publications", "{message}", "Publications and broadcasts.")
	r.deliveries = i64("herald.deliveries", "{message}", "Publication and broadcast messages sent to connections.")
	r.requests, err = meter.Float64Histogram("herald.request.duration", metric.WithUnit("s"), metric.WithDescription("nes requests, by route id (\"other\" for paths) and status."))
	errs = append(errs, err)
	r.resumes = i64("herald.resumes", "{resume}", "Clients that came back for the messages they missed, by result.")
	r.brokerPub, err = meter.Float64Histogram("herald.broker.publish.duration", metric.WithUnit("s"), metric.WithDescription("Publications through the broker."))
	errs = append(errs, err)
	r.brokerErrs = i64("herald.broker.publish.errors", "{message}", "Publications through the broker that failed.")
	r.brokerGaps = i64("herald.broker.discontinuities", "{event}", "Gaps in what the broker delivered.")
	r.deflateIn = i64("herald.deflate.in.bytes", "By", "Bytes of messages before permessage-deflate.")
	r.deflateOut = i64("herald.deflate.out.bytes", "By", "Bytes of messages after permessage-deflate.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for t := range metrics.NumTransports {
		tr := attribute.String("transport", t.String())
		byTransport := metric.WithAttributeSet(attribute.NewSet(tr)) // an AddOption and a RecordOption
		r.byTransport[t] = []metric.AddOption{byTransport}
		r.queueOpts[t] = []metric.RecordOption{byTransport}
		for reason := range metrics.NumReasons {
			r.byReason[t][reason] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(tr, attribute.String("reason", reason.String())))}
		}
	}
	for res := range metrics.NumResumes {
		r.byResume[res] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("result", res.String())))}
	}
	r.requestOpts.Store(&map[requestKey][]metric.RecordOption{})
	return r, nil
}

var bg = context.Background()

// ConnOpened counts an opened connection: herald.connects, and herald.connections up by one
// (metrics.Recorder).
func (r *Recorder) ConnOpened(t metrics.Transport) {
	if t < metrics.NumTransports {
		r.conns.Add(bg, 1, r.byTransport[t]...)
		r.connects.Add(bg, 1, r.byTransport[t]...)
	}
}

// ConnClosed counts a closed connection by reason: herald.disconnects, and herald.connections
// down by one.
func (r *Recorder) ConnClosed(t metrics.Transport, reason metrics.Reason) {
	if t < metrics.NumTransports && reason < metrics.NumReasons {
		r.conns.Add(bg, -1, r.byTransport[t]...)
		r.disconnects.Add(bg, 1, r.byReason[t][reason]...)
	}
}

// MessageIn counts a message from a client and its bytes: herald.messages.received,
// herald.received.bytes.
func (r *Recorder) MessageIn(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.msgsIn.Add(bg, 1, r.byTransport[t]...)
		r.bytesIn.Add(bg, int64(n), r.byTransport[t]...)
	}
}

// MessageOut counts a message to a client and its bytes: herald.messages.sent,
// herald.sent.bytes.
func (r *Recorder) MessageOut(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.msgsOut.Add(bg, 1, r.byTransport[t]...)
		r.bytesOut.Add(bg, int64(n), r.byTransport[t]...)
	}
}

// QueueDepth records a connection's send queue in herald.send_queue.bytes.
func (r *Recorder) QueueDepth(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.queue.Record(bg, int64(n), r.queueOpts[t]...)
	}
}

// Published counts a publication or broadcast made on this node: herald.publications.
func (r *Recorder) Published() { r.publications.Add(bg, 1) }

// Delivered counts a publication or broadcast message sent to a connection: herald.deliveries.
func (r *Recorder) Delivered(t metrics.Transport) {
	if t < metrics.NumTransports {
		r.deliveries.Add(bg, 1, r.byTransport[t]...)
	}
}

// Request records a nes request in herald.request.duration, by route and status ("other"
// outside 100-599).
func (r *Recorder) Request(route string, status int, d time.Duration) {
	if status < 100 || status >= 600 {
		status = 0
	}
	k := requestKey{route, status}
	opts, ok := (*r.requestOpts.Load())[k]
	if !ok {
		opts = r.requestSet(k)
	}
	r.requests.Record(bg, d.Seconds(), opts...)
}

// requestSet returns the request histogram's attribute set for k, adding it to the map that
// Request reads without a lock (copied on each addition: the sets are few).
func (r *Recorder) requestSet(k requestKey) []metric.RecordOption {
	r.requestMu.Lock()
	defer r.requestMu.Unlock()
	old := *r.requestOpts.Load()
	if opts, ok := old[k]; ok {
		return opts
	}
	status := "other"
	if k.status != 0 {
		status = strconv.Itoa(k.status)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("route", k.route), attribute.String("status", status)))}
	m := maps.Clone(old)
	m[k] = opts
	r.requestOpts.Store(&m)
	return opts
}

// Resumed counts a resume by result: herald.resumes.
func (r *Recorder) Resumed(res metrics.Resume) {
	if res < metrics.NumResumes {
		r.resumes.Add(bg, 1, r.byResume[res]...)
	}
}

// BrokerPublish records a publication through the broker in herald.broker.publish.duration, and
// counts it in herald.broker.publish.errors if it failed.
func (r *Recorder) BrokerPublish(d time.Duration, err error) {
	r.brokerPub.Record(bg, d.Seconds())
	if err != nil {
		r.brokerErrs.Add(bg, 1)
	}
}

// BrokerDiscontinuity counts a discontinuity, once whatever its topics:
// herald.broker.discontinuities.
func (r *Recorder) BrokerDiscontinuity(int) { r.brokerGaps.Add(bg, 1) }

// Compressed adds a compressed message's bytes to herald.deflate.in.bytes and
// herald.deflate.out.bytes.
func (r *Recorder) Compressed(in, out int) {
	r.deflateIn.Add(bg, int64(in))
	r.deflateOut.Add(bg, int64(out))
}
