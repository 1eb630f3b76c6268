// Package prometheus reports herald's metrics (package metrics) to Prometheus: New returns a
// metrics.Recorder that updates collectors registered on a prometheus.Registerer, and Handler
// serves them at /metrics.
//
// Every name starts with "herald_" (Options.Namespace changes it):
//
//	herald_connections{transport}                      open connections (gauge)
//	herald_connects_total{transport}                   connections opened
//	herald_disconnects_total{transport,reason}         connections closed, by reason
//	herald_messages_received_total{transport}          messages from clients
//	herald_messages_sent_total{transport}              messages to clients
//	herald_received_bytes_total{transport}             their bytes
//	herald_sent_bytes_total{transport}
//	herald_send_queue_bytes{transport}                 per connection with a backlog, its deepest send queue since the previous scrape (histogram)
//	herald_publications_total                          publications and broadcasts made on this node
//	herald_deliveries_total{transport}                 publication and broadcast messages sent to connections
//	herald_request_duration_seconds{route,status}      nes requests (histogram; route is a route id or "other")
//	herald_resumes_total{result}                       resumes: hit, miss, reset
//	herald_broker_publish_duration_seconds             publications through the broker (histogram)
//	herald_broker_publish_errors_total                 those that failed
//	herald_broker_discontinuities_total                gaps the broker reported
//	herald_deflate_in_bytes_total                      bytes before permessage-deflate
//	herald_deflate_out_bytes_total                     and after (the ratio is out/in)
//
// transport is websocket, sse or poll; reason is normal, slow_consumer, heartbeat_timeout,
// protocol_error or shutdown.
package prometheus

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-go/herald/metrics"
)

// Options configures New. A nil *Options means all defaults.
type Options struct {
	// Namespace prefixes every name. Empty means "herald".
	Namespace string
	// RequestBuckets are the bounds, in seconds, of the request duration histogram. Nil means
	// prometheus.DefBuckets.
	RequestBuckets []float64
	// QueueBuckets are the bounds, in bytes, of the send queue histogram. Nil means powers of
	// 4 from 256 B to 4 MiB.
	QueueBuckets []float64
}

// Without metrics.Nop embedded, a method added to metrics.Recorder must be added here.
var _ metrics.Recorder = (*Recorder)(nil)

// Recorder is the metrics.Recorder that New returns.
type Recorder struct {
	conns        [metrics.NumTransports]prometheus.Gauge
	connects     [metrics.NumTransports]prometheus.Counter
	disconnects  [metrics.NumTransports][metrics.NumReasons]prometheus.Counter
	msgsIn       [metrics.NumTransports]prometheus.Counter
	msgsOut      [metrics.NumTransports]prometheus.Counter
	bytesIn      [metrics.NumTransports]prometheus.Counter
	bytesOut     [metrics.NumTransports]prometheus.Counter
	queue        [metrics.NumTransports]prometheus.Observer
	publications prometheus.Counter
	deliveries   [metrics.NumTransports]prometheus.Counter
	requests     *prometheus.HistogramVec
	requestsMu   sync.Mutex                                         // for additions to requestObs
	requestObs   atomic.Pointer[map[requestKey]prometheus.Observer] // requests' children, made once each
	resumes      [metrics.NumResumes]prometheus.Counter
	brokerPub    prometheus.Histogram
	brokerErrs   prometheus.Counter
	brokerGaps   prometheus.Counter
	deflateIn    prometheus.Counter
	deflateOut   prometheus.Counter

	collectors []prometheus.Collector
	flushMu    sync.Mutex
	flushes    map[int]func()
	flushID    int
}

var (
	_ metrics.Recorder     = (*Recorder)(nil)
	_ metrics.Flusher      = (*Recorder)(nil)
	_ prometheus.Collector = (*Recorder)(nil)
)

// New registers herald's collectors on reg (prometheus.DefaultRegisterer when nil) and returns
// the Recorder that updates them: give it to herald.Options.Metrics (or to the websocket or
// eventsource layer's Options.Metrics, or metrics.Broker). It fails when reg already has
// collectors of these names (two Recorders on one registry need two namespaces).
func New(reg prometheus.Registerer, opts *Options) (*Recorder, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "herald"
	}
	if o.RequestBuckets == nil {
		o.RequestBuckets = prometheus.DefBuckets
	}
	if o.QueueBuckets == nil {
		o.QueueBuckets = prometheus.ExponentialBuckets(256, 4, 8)
	}
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	ns := o.Namespace
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	}
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "connections", Help: "Open connections."}, []string{"transport"})
	connects := counterVec("connects_total", "Connections opened.", "transport")
	disconnects := counterVec("disconnects_total", "Connections closed, by reason.", "transport", "reason")
	msgsIn := counterVec("messages_received_total", "Messages received from clients.", "transport")
	msgsOut := counterVec("messages_sent_total", "Messages sent to clients.", "transport")
	bytesIn := counterVec("received_bytes_total", "Bytes of the messages received from clients.", "transport")
	bytesOut := counterVec("sent_bytes_total", "Bytes of the messages sent to clients.", "transport")
	queue := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "send_queue_bytes",
		Help: "Per connection with a backlog, the most bytes waiting to be sent to it since the previous scrape.", Buckets: o.QueueBuckets}, []string{"transport"})
	deliveries := counterVec("deliveries_total", "Publication and broadcast messages sent to connections.", "transport")
	resumes := counterVec("resumes_total", "Clients that came back for the messages they missed, by result (hit, miss, reset).", "result")
	r := &Recorder{
		publications: counter("publications_total", "Publications and broadcasts."),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help: "nes requests, by route id (\"other\" for paths) and status.", Buckets: o.RequestBuckets}, []string{"route", "status"}),
		brokerPub: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "broker_publish_duration_seconds",
			Help: "Publications through the broker.", Buckets: prometheus.DefBuckets}),
		brokerErrs: counter("broker_publish_errors_total", "Publications through the broker that failed."),
		brokerGaps: counter("broker_discontinuities_total", "Gaps in what the broker delivered."),
		deflateIn:  counter("deflate_in_bytes_total", "Bytes of messages before permessage-deflate."),
		deflateOut: counter("deflate_out_bytes_total", "Bytes of messages after permessage-deflate."),
	}
	r.collectors = []prometheus.Collector{conns, connects, disconnects, msgsIn, msgsOut, bytesIn, bytesOut, queue, resumes, deliveries,
		r.publications, r.requests, r.brokerPub, r.brokerErrs, r.brokerGaps, r.deflateIn, r.deflateOut}
	r.flushes = map[int]func(){}
	r.requestObs.Store(&map[requestKey]prometheus.Observer{})
	if err := reg.Register(r); err != nil {
		return nil, err
	}
	// The children of bounded labels are made once: recording is then an atomic add.
	for t := range metrics.NumTransports {
		l := t.String()
		r.conns[t] = conns.WithLabelValues(l)
		r.connects[t] = connects.WithLabelValues(l)
		for reason := range metrics.NumReasons {
			r.disconnects[t][reason] = disconnects.WithLabelValues(l, reason.String())
		}
		r.msgsIn[t] = msgsIn.WithLabelValues(l)
		r.msgsOut[t] = msgsOut.WithLabelValues(l)
		r.bytesIn[t] = bytesIn.WithLabelValues(l)
		r.bytesOut[t] = bytesOut.WithLabelValues(l)
		r.queue[t] = queue.WithLabelValues(l)
		r.deliveries[t] = deliveries.WithLabelValues(l)
	}
	for res := range metrics.NumResumes {
		r.resumes[res] = resumes.WithLabelValues(res.String())
	}
	return r, nil
}

// Describe describes herald's collectors (prometheus.Collector): New registers the Recorder
// itself, so that each scrape first collects the counts that connections keep (see
// metrics.Flusher).
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range r.collectors {
		c.Describe(ch)
	}
}

// Collect collects herald's metrics (prometheus.Collector), after the counts that connections
// keep to themselves have been handed over.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.flushMu.Lock()
	fns := make([]func(), 0, len(r.flushes))
	for _, fn := range r.flushes {
		fns = append(fns, fn)
	}
	r.flushMu.Unlock()
	for _, fn := range fns {
		fn()
	}
	for _, c := range r.collectors {
		c.Collect(ch)
	}
}

// AddFlush registers fn to run before each scrape (metrics.Flusher).
func (r *Recorder) AddFlush(fn func()) (remove func()) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.flushID++
	id := r.flushID
	r.flushes[id] = fn
	return func() {
		r.flushMu.Lock()
		defer r.flushMu.Unlock()
		delete(r.flushes, id)
	}
}

// AddCounts adds message counts in bulk (metrics.Flusher).
func (r *Recorder) AddCounts(t metrics.Transport, c metrics.Counts) {
	if t >= metrics.NumTransports {
		return
	}
	if c.MessagesIn != 0 {
		r.msgsIn[t].Add(float64(c.MessagesIn))
		r.bytesIn[t].Add(float64(c.BytesIn))
	}
	if c.MessagesOut != 0 {
		r.msgsOut[t].Add(float64(c.MessagesOut))
		r.bytesOut[t].Add(float64(c.BytesOut))
	}
	if c.Deliveries != 0 {
		r.deliveries[t].Add(float64(c.Deliveries))
	}
}

// Handler serves the metrics that g gathers (prometheus.DefaultGatherer when nil) in
// Prometheus's text format: mount it at /metrics.
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// ConnOpened counts an opened connection: herald_connects_total, and herald_connections up by
// one (metrics.Recorder).
func (r *Recorder) ConnOpened(t metrics.Transport) {
	if t < metrics.NumTransports {
		r.conns[t].Inc()
		r.connects[t].Inc()
	}
}

// ConnClosed counts a closed connection by reason: herald_disconnects_total, and
// herald_connections down by one.
func (r *Recorder) ConnClosed(t metrics.Transport, reason metrics.Reason) {
	if t < metrics.NumTransports && reason < metrics.NumReasons {
		r.conns[t].Dec()
		r.disconnects[t][reason].Inc()
	}
}

// MessageIn counts a message from a client and its bytes: herald_messages_received_total,
// herald_received_bytes_total.
func (r *Recorder) MessageIn(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.msgsIn[t].Inc()
		r.bytesIn[t].Add(float64(n))
	}
}

// MessageOut counts a message to a client and its bytes: herald_messages_sent_total,
// herald_sent_bytes_total.
func (r *Recorder) MessageOut(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.msgsOut[t].Inc()
		r.bytesOut[t].Add(float64(n))
	}
}

// QueueDepth observes a connection's send queue in herald_send_queue_bytes.
func (r *Recorder) QueueDepth(t metrics.Transport, n int) {
	if t < metrics.NumTransports {
		r.queue[t].Observe(float64(n))
	}
}

// Published counts a publication or broadcast made on this node: herald_publications_total.
func (r *Recorder) Published() { r.publications.Inc() }

// Delivered counts a publication or broadcast message sent to a connection:
// herald_deliveries_total.
func (r *Recorder) Delivered(t metrics.Transport) {
	if t < metrics.NumTransports {
		r.deliveries[t].Inc()
	}
}

// Request observes a nes request in herald_request_duration_seconds, by route and status
// ("other" outside 100-599).
func (r *Recorder) Request(route string, status int, d time.Duration) {
	if status < 100 || status >= 600 {
		status = 0 // one child, status="other", for them all
	}
	k := requestKey{route, status}
	o, ok := (*r.requestObs.Load())[k]
	if !ok {
		o = r.requestChild(k)
	}
	o.Observe(d.Seconds())
}

// requestChild returns the request histogram's child for k, adding it to the map that
// Request reads without a lock (copied on each addition: the children are few).
func (r *Recorder) requestChild(k requestKey) prometheus.Observer {
	r.requestsMu.Lock()
	defer r.requestsMu.Unlock()
	old := *r.requestObs.Load()
	if o, ok := old[k]; ok {
		return o
	}
	o := r.requests.WithLabelValues(k.route, statusLabel(k.status))
	m := maps.Clone(old)
	m[k] = o
	r.requestObs.Store(&m)
	return o
}

// requestKey names a child of the request histogram. status is 0 for every code outside
// 100-599, whose child has status "other".
type requestKey struct {
	route  string
	status int
}

// Resumed counts a resume by result: herald_resumes_total.
func (r *Recorder) Resumed(res metrics.Resume) {
	if res < metrics.NumResumes {
		r.resumes[res].Inc()
	}
}

// BrokerPublish observes a publication through the broker in
// herald_broker_publish_duration_seconds, and counts it in herald_broker_publish_errors_total
// if it failed.
func (r *Recorder) BrokerPublish(d time.Duration, err error) {
	r.brokerPub.Observe(d.Seconds())
	if err != nil {
		r.brokerErrs.Inc()
	}
}

// BrokerDiscontinuity counts a discontinuity, once whatever its topics:
// herald_broker_discontinuities_total.
func (r *Recorder) BrokerDiscontinuity(int) { r.brokerGaps.Inc() }

// Compressed adds a compressed message's bytes to herald_deflate_in_bytes_total and
// herald_deflate_out_bytes_total.
func (r *Recorder) Compressed(in, out int) {
	r.deflateIn.Add(float64(in))
	r.deflateOut.Add(float64(out))
}

// statusLabel returns status's label value. It is called once per child of the request
// histogram (requestChild), never on the hot path.
func statusLabel(status int) string {
	if status >= 100 && status < 600 {
		return strconv.Itoa(status)
	}
	return "other"
}
