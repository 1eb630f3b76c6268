package eventsource

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
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
// Stream's history and are written by a writer goroutine that exists only while there is
// something to write (a Stream's writers wait 100 to 200 ms for more work before they end, and serve
// any of its subscribers), each write bounded by Options.WriteTimeout. An idle EventSource
// holds no goroutine of its own besides the handler that is waiting on Done.
//
// The handler that called New must not return before Done is closed (or Close has returned):
// net/http forbids using the ResponseWriter after that, and events may still be being written.
type EventSource struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	h2     bool // HTTP/2: the write deadline must be cleared after each write
	req    *http.Request
	lastID string

	writeTimeout time.Duration
	pingInterval time.Duration
	queueLimit   int

	mu        sync.Mutex
	queue     [][]byte // direct sends and pings waiting for the writer
	queued    int      // bytes in queue
	pending   bool     // something may be waiting: set by every notification, cleared by the writer before it looks
	writing   bool     // a writer goroutine owns w
	closed    bool     // no more writes; done closes when the writer is gone
	err       error    // why it ended
	sub       *subscription
	lastWrite time.Time // when the last batch was written, for pings
	deadline  time.Time // the write deadline set last (by the writer only)
	ping      *time.Timer
	stopCtx   func() bool
	done      chan struct{}
}

// New starts an event stream in answer to r: the response headers (200,
// Content-Type: text/event-stream, Cache-Control: no-cache, X-Accel-Buffering: no, and
// Options.Header) and the retry field are sent and flushed at once, so the client's
// EventSource opens without waiting for an event. It works over HTTP/1.x and HTTP/2.
//
// New returns ErrNotSupported, having written nothing, when w cannot flush (a middleware that
// wraps the ResponseWriter without Unwrap or Flush). Otherwise the handler must keep w until
// Done is closed; see EventSource.
func New(w http.ResponseWriter, r *http.Request, opts *Options) (*EventSource, error) {
	o := opts.withDefaults()
	rc := http.NewResponseController(w)
	if !canFlush(w) {
		return nil, ErrNotSupported
	}
	h := w.Header()
	for k, vs := range o.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)

	es := &EventSource{
		w:            w,
		rc:           rc,
		req:          r,
		h2:           r.ProtoMajor >= 2,
		lastID:       lastEventID(r),
		writeTimeout: o.WriteTimeout,
		pingInterval: o.PingInterval,
		queueLimit:   o.QueueLimit,
		done:         make(chan struct{}),
	}
	es.mu.Lock()
	if o.PingInterval > 0 {
		es.ping = time.AfterFunc(o.PingInterval, es.onPing)
	}
	es.stopCtx = context.AfterFunc(r.Context(), func() { es.closeWith(ErrClientGone) })
	// The headers and the retry field go out at once, written by the writer goroutine like
	// everything else: the handler's goroutine, which lives as long as the stream, never runs
	// the write path and keeps a small stack.
	first := []byte{} // an empty write: just the flush
	if o.Retry > 0 {
		first = retryLine(o.Retry)
	}
	es.queue = append(es.queue, first)
	es.notifyLocked()
	es.mu.Unlock()
	return es, nil
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

// Request returns the request the stream answers.
func (es *EventSource) Request() *http.Request { return es.req }

// Send queues one event, whose data may span lines (CRLF, CR and LF each end a line, and the
// client joins them with LF). It returns a *FieldError when ev.ID or ev.Type contains CR, LF
// or NUL, ErrClosed after the stream has ended, and ErrSlowClient when the event would take
// the queue past Options.QueueLimit, in which case the stream ends.
//
// Send returns once the event is queued; Done tells when the stream ends. Events from one
// goroutine are written in order.
func (es *EventSource) Send(data string, ev Event) error {
	b, err := encode(data, ev)
	if err != nil {
		return err
	}
	return es.enqueue(b)
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
	es.notifyLocked()
	es.mu.Unlock()
	return nil
}

// wake tells es's writer that s has a new event, unless es's next event from s is older than
// first (it has left the history): then wake reports true and wakes nothing.
func (es *EventSource) wake(s *Stream, first uint64) (behind bool) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.sub != nil && es.sub.stream == s && es.sub.next.Load() < first {
		return true
	}
	es.notifyLocked()
	return false
}

// notifyLocked wakes the writer (something may be waiting); es.mu is held.
func (es *EventSource) notifyLocked() {
	es.pending = true
	if !es.writing && !es.closed {
		es.writing = true
		es.startWriterLocked()
	}
}

// startWriterLocked runs es.run on a writer of es's Stream that is idle, or on a new
// goroutine.
func (es *EventSource) startWriterLocked() {
	if es.sub != nil && es.sub.stream.writers.handoff(es) {
		return
	}
	if es.sub != nil {
		go es.sub.stream.writers.work(es)
		return
	}
	go es.run(nil)
}

// maxBatch bounds the events one write takes from a Stream's history.
const maxBatch = 256

// run writes what is waiting until nothing is, then returns: the writer exists only while
// there is something to write. Only one runs at a time (es.writing). scratch is a buffer for
// the batches, returned for the next run (possibly grown).
func (es *EventSource) run(scratch [][]byte) [][]byte {
	var wrote time.Time
	more := false
	for {
		es.mu.Lock()
		if !wrote.IsZero() {
			es.lastWrite, wrote = wrote, time.Time{}
		}
		if more {
			es.pending = true
		}
		if es.closed {
			batch, graceful := es.queue, es.err == nil
			es.queue, es.queued = nil, 0
			es.mu.Unlock()
			if graceful && len(batch) > 0 {
				_, _ = es.write(batch) // what was sent before Close
			}
			es.mu.Lock()
			es.writing = false
			es.mu.Unlock()
			es.finish()
			return scratch
		}
		if !es.pending {
			es.writing = false
			es.mu.Unlock()
			return scratch
		}
		es.pending = false
		queue := es.queue
		es.queue, es.queued = nil, 0
		sub := es.sub
		es.mu.Unlock()

		batch := append(scratch[:0], queue...)
		more = false
		lost := false
		if sub != nil {
			batch, more, lost = sub.stream.read(sub, batch)
		}
		if lost {
			es.closeWith(ErrSlowClient)
		} else if len(batch) > 0 {
			var err error
			if wrote, err = es.write(batch); err != nil {
				es.closeWith(fmt.Errorf("eventsource: writing to the client: %w", err))
			}
		}
		clear(batch) // keep no event alive through the buffer
		scratch = batch[:0]
	}
}

// write sends a batch and flushes it, within the write timeout.
func (es *EventSource) write(batch [][]byte) (time.Time, error) {
	// On HTTP/1 a deadline stays set between writes (see below), so it is moved only when
	// less than half the timeout is left: most writes skip the cost of moving it.
	now := time.Now()
	if es.h2 || es.deadline.Sub(now) < es.writeTimeout/2 {
		es.deadline = now.Add(es.writeTimeout)
		_ = es.rc.SetWriteDeadline(es.deadline)
	}
	var err error
	for _, b := range batch {
		if _, err = es.w.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = es.rc.Flush()
	}
	if es.h2 {
		// HTTP/2 resets the stream when a deadline passes, even with nothing being written.
		// HTTP/1 only fails writes past it, and every write sets a new one first; finish
		// clears it for what net/http writes after the handler returns.
		_ = es.rc.SetWriteDeadline(time.Time{})
	}
	return now, err
}

// onPing runs PingInterval after the last write and queues a comment; when something was
// written since it was set, it sets itself again for PingInterval after that write.
func (es *EventSource) onPing() {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.closed {
		return
	}
	idle := time.Since(es.lastWrite)
	if idle < es.pingInterval-es.pingInterval/64 {
		es.ping.Reset(es.pingInterval - idle)
		return
	}
	if es.queued == 0 {
		es.queue = append(es.queue, pingComment)
		es.queued += len(pingComment)
		es.notifyLocked()
	}
	es.ping.Reset(es.pingInterval)
}

// Done returns a channel that is closed when the stream has ended, by Close, because the
// client went away, or because writing failed or fell too far behind (see Err), and nothing
// is being written any more: the handler may then return.
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
// is being written (each write is bounded by WriteTimeout); the handler should then return,
// which ends the response. The client sees the end of the stream and reconnects after its
// retry time; a client on a Stream then resumes with what it has not received yet. Close is
// idempotent.
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
			// closed and finishes. This happens under es.mu, while the writer still holds w
			// (it takes es.mu before it lets the handler return).
			_ = es.rc.SetWriteDeadline(time.Now())
		}
		es.mu.Unlock()
		return
	}
	if len(es.queue) > 0 {
		es.writing = true // to write what was queued before Close
		es.startWriterLocked()
		es.mu.Unlock()
		return
	}
	es.mu.Unlock()
	es.finish()
}

// finish releases what the stream holds, once it is closed and no writer runs.
func (es *EventSource) finish() {
	// net/http writes the end of the response after the handler returns: bound that write
	// too, failing it at once when the stream ended badly (a client that does not read would
	// otherwise hold the connection forever). The handler still runs: w is still ours.
	es.mu.Lock()
	failed := es.err != nil
	es.mu.Unlock()
	switch {
	case failed:
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
	close(es.done)
}
