package eventsource

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herald-go/herald/metrics"
)

// ErrClientGone is what Err reports when the client closed the connection (or the request's
// context ended for another reason, such as the server shutting down).
var ErrClientGone = errors.New("eventsource: the client went away")

// IsEventSource reports whether r asks for an event stream: a GET whose Accept header lists
// text/event-stream, as browsers' and Node's EventSource send. It checks nothing else.
func IsEventSource(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// EventSource is the server side of one event stream: the response to one request, held open
// while events are written to it.
//
// Send, Ping and Close are safe for concurrent use, and so is subscribing it to a Stream. They
// never block on the client: events wait in a bounded queue (Options.QueueLimit) or in the
// Stream's history, each write is bounded by Options.WriteTimeout, and a client that stops
// reading holds up no one else.
//
// # Connections taken over
//
// Over HTTP/1.x, New takes the connection over from net/http (it hijacks it), so that an
// idle stream costs only what it needs: about 5.7 KiB with its connection, where keeping
// net/http's serving goroutine and buffers costs about 24 KiB. The handler may then return at
// once (Hijacked reports it), and the stream lives on until it ends. Writes need no goroutine: an event is
// written by whoever sent or published it, without waiting (the socket takes it or not), and
// only a client whose socket is full gets a writer goroutine, which waits for it within
// WriteTimeout. One goroutine per stream, parked with a small stack, notices the client
// leaving.
//
// Over HTTP/2, or when the ResponseWriter cannot be hijacked (a middleware that wraps it
// without Unwrap), New answers through the ResponseWriter and the handler must not return
// before Done is closed: net/http forbids using the ResponseWriter after that. Waiting on Done
// is always correct; [Handler] does the right thing on both paths.
type EventSource struct {
	// What a delivery touches comes first, to share as few cache lines as can be.
	mu        sync.Mutex
	writing   bool // a writer owns the output (and rest)
	pending   bool // something may be waiting: set by every notification, cleared by the writer before it looks
	closed    bool // no more writes; done closes when the writer is gone
	watching  bool // watch runs
	finished  bool // finish has run: nothing will be written any more
	sub       *subscription
	rest      [][]byte  // written before anything else: the response head, or what a write left
	queue     [][]byte  // direct sends and pings waiting for the writer
	queued    int       // bytes in queue
	fd        int       // conn's socket, for writes that never wait (see tryWrite); -1 when there is none
	lastWrite time.Time // when the last batch was written, for pings
	err       error     // why it ended

	// The connection, when New took it over (nil otherwise).
	conn net.Conn

	// The ResponseWriter, when New could not take the connection over.
	w  http.ResponseWriter
	rc *http.ResponseController
	h2 bool // HTTP/2: the write deadline must be cleared after each write

	req    *http.Request
	lastID string

	writeTimeout time.Duration
	pingInterval time.Duration
	queueLimit   int

	deadline time.Time // the write deadline set last (by the writer only)
	ping     *time.Timer
	stopCtx  func() bool
	done     chan struct{}
	registry *Registry // nil unless Options.Registry was set
	metrics  metrics.Recorder
}

// New starts an event stream in answer to r: the response headers (200, Content-Type:
// text/event-stream, Cache-Control: no-cache, no-transform (so that no proxy compresses or
// rewrites it), X-Accel-Buffering: no, the headers already set on w's Header, and
// Options.Header) and the retry field are sent at once, so the client's EventSource opens
// without waiting for an event. It works over HTTP/1.x and HTTP/2.
//
// Over HTTP/1.x New takes the connection over when w can be hijacked (see EventSource): the
// response then ends by closing the connection (Connection: close), w and r's body must no
// longer be used, and the handler may return at once. Otherwise, the handler must keep w until
// Done is closed. Hijacked tells which happened.
//
// Nothing may have been written to w before New: it writes the whole response.
//
// New returns ErrNotSupported, having written nothing, when w can be neither hijacked nor
// flushed (a middleware that wraps the ResponseWriter without Unwrap, Hijack or Flush), and
// ErrShuttingDown once Options.Registry has been shut down (see ErrShuttingDown).
func New(w http.ResponseWriter, r *http.Request, opts *Options) (*EventSource, error) {
	o := opts.withDefaults()
	rc := http.NewResponseController(w)
	es := &EventSource{
		req:          r,
		lastID:       lastEventID(r),
		writeTimeout: o.WriteTimeout,
		pingInterval: o.PingInterval,
		queueLimit:   o.QueueLimit,
		fd:           -1,
		done:         make(chan struct{}),
		registry:     o.Registry,
		metrics:      o.Metrics,
	}
	if o.Registry != nil && o.Registry.isShutdown() {
		http.Error(w, ErrShuttingDown.Error(), http.StatusServiceUnavailable)
		return nil, ErrShuttingDown
	}
	if r.ProtoMajor == 1 {
		switch conn, _, err := rc.Hijack(); {
		case err == nil:
			es.takeOver(conn, w.Header(), r, o)
			return es.register()
		case !errors.Is(err, http.ErrNotSupported):
			return nil, fmt.Errorf("eventsource: taking over the connection: %w", err)
		}
	}
	if !canFlush(w) {
		return nil, ErrNotSupported
	}
	streamHeader(w.Header(), o.Header)
	w.WriteHeader(http.StatusOK)

	es.w, es.rc, es.h2 = w, rc, r.ProtoMajor >= 2
	es.mu.Lock()
	es.startPingLocked()
	es.stopCtx = context.AfterFunc(r.Context(), func() { es.closeWith(ErrClientGone) })
	// The headers and the retry field go out at once, written by a writer goroutine like
	// everything else on this path: the handler's goroutine, which lives as long as the
	// stream, never runs the write path and keeps a small stack.
	es.rest = [][]byte{firstWrite(nil, o.Retry)} // with no retry field, an empty write: just the flush
	start := es.notifyLocked()
	es.mu.Unlock()
	if start {
		es.startWriter(nil)
	}
	return es.register()
}

// register puts es, fully started, in its Registry, if it has one. Were the Registry shut down
// meanwhile, es would escape Shutdown: it is closed instead (its client sees a stream that
// ends at once), and New reports ErrShuttingDown.
func (es *EventSource) register() (*EventSource, error) {
	es.meterOpen()
	g := es.registry
	if g == nil {
		return es, nil
	}
	if !g.streams.Add(es) {
		_ = es.Close()
		return nil, ErrShuttingDown
	}
	// A stream that has already ended may have left the Registry before it was added
	// (finish removes it after closeWith marks it closed): take it out again.
	es.mu.Lock()
	closed := es.closed
	es.mu.Unlock()
	if closed {
		g.remove(es)
	}
	return es, nil
}

// streamHeader adds extra to h, then sets the headers of an event stream.
func streamHeader(h, extra http.Header) {
	for k, vs := range extra {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	h.Del("Content-Length")
}

// startPingLocked starts the keep-alive timer, unless pings are off; es.mu is held.
func (es *EventSource) startPingLocked() {
	if es.pingInterval > 0 {
		es.ping = time.AfterFunc(es.pingInterval, es.onPing)
	}
}

// canFlush reports whether w, or a ResponseWriter it wraps, can flush (as
// http.ResponseController finds out).
func canFlush(w http.ResponseWriter) bool {
	for {
		switch w.(type) {
		case interface{ FlushError() error }, http.Flusher:
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// lastEventID is the Last-Event-ID header, or else the lastEventId query parameter.
func lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get("lastEventId")
}

// LastEventID returns the id of the last event the client received before it reconnected:
// the Last-Event-ID request header or, when that is absent, the lastEventId query parameter
// (for clients and proxies that drop the header). It is empty on a first connection.
func (es *EventSource) LastEventID() string { return es.lastID }

// URL returns the absolute URL of the request, with the scheme and host it was made to.
func (es *EventSource) URL() *url.URL {
	u := *es.req.URL
	u.Host = es.req.Host
	u.Scheme = "http"
	if es.req.TLS != nil {
		u.Scheme = "https"
	}
	return &u
}

// Request returns the request the stream answers. On a connection New took over, it is a copy
// that keeps the method, URL, protocol, headers, host, addresses and TLS state, but not the
// request's context (which net/http ends when the handler returns) nor its body.
func (es *EventSource) Request() *http.Request { return es.req }

// Hijacked reports whether New took the connection over from net/http: the handler may then
// return at once, and the stream goes on. When it is false, the handler must wait for Done.
func (es *EventSource) Hijacked() bool { return es.conn != nil }

// Send queues one event, whose data may span lines (CRLF, CR and LF each end a line, and the
// client joins them with LF). It returns a *FieldError when ev.ID or ev.Type contains CR, LF
// or NUL, ErrClosed after the stream has ended, and ErrSlowClient when the event would take
// the queue past Options.QueueLimit, in which case the stream ends.
//
// Send never waits for the client; Done tells when the stream ends. On a connection New took
// over, Send writes the event itself when nothing else is being written and the socket takes
// it at once. Events from one goroutine are written in order.
func (es *EventSource) Send(data string, ev Event) error {
	b, err := encode(data, ev)
	if err != nil {
		return err
	}
	return es.meterSent(len(b), es.enqueue(b))
}

// SetRetry queues a "retry:" field: from then on the client waits d before it reconnects
// (Options.Retry sets the first). A server that is about to end a stream on purpose can ask
// for a prompt reconnection this way. It fails as Send does.
func (es *EventSource) SetRetry(d time.Duration) error {
	if d < 0 {
		d = 0
	}
	return es.enqueue(appendRetry(nil, d))
}

// Ping queues a comment line, which clients ignore: a keep-alive. Options.PingInterval sends
// one by itself when the stream is idle.
func (es *EventSource) Ping() error { return es.enqueue(pingComment) }

// enqueue adds b to the queue and wakes the writer.
func (es *EventSource) enqueue(b []byte) error {
	es.mu.Lock()
	if es.closed {
		es.mu.Unlock()
		return ErrClosed
	}
	if es.queued > 0 && es.queued+len(b) > es.queueLimit {
		es.mu.Unlock()
		es.closeWith(ErrSlowClient)
		return ErrSlowClient
	}
	es.queue = append(es.queue, b)
	es.queued += len(b)
	start := es.notifyLocked()
	es.mu.Unlock()
	if start {
		es.startWriter(nil)
	}
	return nil
}

// onPing runs PingInterval after the last write and queues a comment; when something was
// written since it was set, it sets itself again for PingInterval after that write.
func (es *EventSource) onPing() {
	es.mu.Lock()
	if es.closed {
		es.mu.Unlock()
		return
	}
	idle := time.Since(es.lastWrite)
	if idle < es.pingInterval-es.pingInterval/64 {
		es.ping.Reset(es.pingInterval - idle)
		es.mu.Unlock()
		return
	}
	start := false
	if es.queued == 0 {
		es.queue = append(es.queue, pingComment)
		es.queued += len(pingComment)
		start = es.notifyLocked()
	}
	es.ping.Reset(es.pingInterval)
	es.mu.Unlock()
	if start {
		es.startWriter(nil)
	}
}

// Done returns a channel that is closed when the stream has ended, by Close, because the
// client went away, or because writing failed or fell too far behind (see Err), and nothing
// is being written any more: a handler that waits for it may then return.
func (es *EventSource) Done() <-chan struct{} { return es.done }

// Err returns why the stream ended: nil while it is open and after Close, ErrClientGone when
// the client closed the connection, ErrSlowClient when it fell behind, or the write error
// (which wraps os.ErrDeadlineExceeded when the client read nothing for WriteTimeout).
func (es *EventSource) Err() error {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.err
}

// Close ends the stream after writing what Send and Ping had queued, and waits until nothing
// is being written (each write is bounded by WriteTimeout); on a connection New took over, the
// connection is then closed, and otherwise the handler should return, which ends the
// response. The client sees the end of the stream and reconnects after its retry time; a
// client on a Stream then resumes with what it has not received yet. Close is idempotent.
func (es *EventSource) Close() error {
	es.closeWith(nil)
	<-es.done
	return nil
}

// closeWith ends the stream with err as the reason, unless it has already ended.
func (es *EventSource) closeWith(err error) {
	es.mu.Lock()
	if es.closed {
		es.mu.Unlock()
		return
	}
	es.closed = true
	es.err = err
	if err != nil {
		es.queue, es.queued = nil, 0
	}
	if es.writing {
		if err != nil {
			// Cut a write that is stuck on a client that does not read; the writer then sees
			// closed and finishes. This happens under es.mu, while the writer still holds the
			// output (it takes es.mu before it lets go of it).
			es.setWriteDeadline(time.Now())
		}
		es.mu.Unlock()
		return
	}
	if len(es.queue) > 0 || len(es.rest) > 0 {
		es.writing = true // to write what was queued before Close
		es.mu.Unlock()
		es.startWriter(nil)
		return
	}
	es.mu.Unlock()
	es.finish()
}

// finish releases what the stream holds, once it is closed and no writer runs.
func (es *EventSource) finish() {
	es.mu.Lock()
	failed := es.err != nil
	es.mu.Unlock()
	switch {
	case es.conn != nil:
		es.closeConn(failed)
	case failed:
		// net/http writes the end of the response after the handler returns: bound that
		// write too, failing it at once when the stream ended badly (a client that does not
		// read would otherwise hold the connection forever). The handler still runs: w is
		// still ours.
		_ = es.rc.SetWriteDeadline(time.Now())
	case !es.h2:
		_ = es.rc.SetWriteDeadline(time.Now().Add(es.writeTimeout))
	}
	es.mu.Lock()
	if es.ping != nil {
		es.ping.Stop()
	}
	stop := es.stopCtx
	sub := es.sub
	es.sub = nil
	es.mu.Unlock()
	if stop != nil {
		stop()
	}
	if sub != nil {
		sub.stream.remove(es)
	}
	es.unregister()
	es.meterClose()
	close(es.done)
}

// unregister takes es out of its Registry, if it is in one.
func (es *EventSource) unregister() {
	if es.registry != nil {
		es.registry.remove(es)
	}
}
