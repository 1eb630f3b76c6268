package herald

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/internal/protocol"
	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/websocket"
)

// meteredTransport is a socket's Transport reporting to Options.Metrics: the connection's
// opening and closing (with the reason), and the messages and bytes both ways. The server
// wraps every socket's transport in one when Options.Metrics is set, and in nothing
// otherwise.
type meteredTransport struct {
	Transport
	// With a metrics.Flusher, the counts are kept here, as running totals that only the
	// sending goroutine (out: one at a time) or the reading one (in) writes, with plain
	// stores; a flush hands over what grew since the last one. The sender's are next to
	// what Send reads first, on one cache line.
	out, outBytes, delivers atomic.Int64
	peak                    atomic.Int64 // the deepest backlog since the last flush (written under Socket.mu)
	batch                   metrics.Flusher
	prepared                preparedSender // the inner transport, when it sends prepared messages
	kind                    metrics.Transport

	rec         metrics.Recorder
	in, inBytes atomic.Int64
	why         atomic.Uint32 // 1 + the metrics.Reason learnt before the close, 0 for none
	closed      atomic.Bool
	flushMu     sync.Mutex
	flushed     metrics.Counts // handed over so far, guarded by flushMu
}

// bump adds n to a running total that one goroutine writes: no atomic read-modify-write.
func bump(v *atomic.Int64, n int64) { v.Store(v.Load() + n) }

// transportKind tells what carries a socket whose transport t was opened by r: a WebSocket,
// or the fallback's EventSource stream or long poll.
func (s *Server) transportKind(t Transport, r *http.Request) metrics.Transport {
	if _, ok := t.(*wsTransport); ok {
		return metrics.WebSocket
	}
	if s.fallback != nil && s.fallback.Endpoint(r) == fallback.EndpointPoll {
		return metrics.Poll
	}
	return metrics.SSE
}

// meter wraps a new socket's transport t (opened by r) when the server has a Recorder.
func (s *Server) meter(t Transport, r *http.Request) Transport {
	rec := s.opts.Metrics
	if rec == nil {
		return t
	}
	m := &meteredTransport{Transport: t, rec: rec, kind: s.transportKind(t, r)}
	if f, ok := rec.(metrics.Flusher); ok {
		m.batch = f
		s.shutdown.flushOnce.Do(func() { s.shutdown.unflush = f.AddFlush(s.flushMetrics) })
	}
	m.prepared, _ = t.(preparedSender)
	rec.ConnOpened(m.kind)
	return m
}

func (t *meteredTransport) Receive(ctx context.Context) ([]byte, error) {
	data, err := t.Transport.Receive(ctx)
	if err != nil {
		t.learn(receiveReason(err))
		return data, err
	}
	t.received(data)
	return data, nil
}

// received counts a message read from the client (by Receive, or by Serve in idle mode).
func (t *meteredTransport) received(data []byte) {
	if t.batch != nil {
		bump(&t.in, 1)
		bump(&t.inBytes, int64(len(data)))
	} else {
		t.rec.MessageIn(t.kind, len(data))
	}
}

func (t *meteredTransport) Send(ctx context.Context, msg []byte) error {
	err := t.Transport.Send(ctx, msg)
	if err == nil {
		t.sent(msg)
	}
	return err
}

// SendPrepared sends a message prepared for many sockets through the inner transport when it
// can, as Send otherwise.
func (t *meteredTransport) SendPrepared(ctx context.Context, msg []byte, pm *websocket.PreparedMessage) error {
	var err error
	if t.prepared != nil {
		err = t.prepared.SendPrepared(ctx, msg, pm)
	} else {
		err = t.Transport.Send(ctx, msg)
	}
	if err == nil {
		t.sent(msg)
	}
	return err
}

// pushPrefixes begin the messages of publications and broadcasts, as encode writes them.
var (
	pubPrefix    = []byte(`{"type":"pub"`)
	updatePrefix = []byte(`{"type":"update"`)
)

func (t *meteredTransport) sent(msg []byte) {
	push := bytes.HasPrefix(msg, pubPrefix) || bytes.HasPrefix(msg, updatePrefix)
	if t.batch != nil {
		bump(&t.out, 1)
		bump(&t.outBytes, int64(len(msg)))
		if push {
			bump(&t.delivers, 1)
		}
		return
	}
	t.rec.MessageOut(t.kind, len(msg))
	if push {
		t.rec.Delivered(t.kind)
	}
}

// flush hands the counts kept on the connection over to the Recorder (metrics.Flusher).
func (t *meteredTransport) flush() {
	if t.batch == nil {
		return
	}
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	now := metrics.Counts{MessagesIn: t.in.Load(), BytesIn: t.inBytes.Load(),
		MessagesOut: t.out.Load(), BytesOut: t.outBytes.Load(), Deliveries: t.delivers.Load()}
	d := metrics.Counts{MessagesIn: now.MessagesIn - t.flushed.MessagesIn, BytesIn: now.BytesIn - t.flushed.BytesIn,
		MessagesOut: now.MessagesOut - t.flushed.MessagesOut, BytesOut: now.BytesOut - t.flushed.BytesOut,
		Deliveries: now.Deliveries - t.flushed.Deliveries}
	if d != (metrics.Counts{}) {
		t.flushed = now
		t.batch.AddCounts(t.kind, d)
	}
	if peak := t.peak.Swap(0); peak > 0 {
		t.rec.QueueDepth(t.kind, int(peak))
	}
}

// flushMetrics hands every socket's counts over to the Recorder, before it is read; once the
// server is closed, it takes itself off the Recorder.
func (s *Server) flushMetrics() {
	for _, sock := range s.socketsSnapshot("") {
		if m, ok := sock.t.(*meteredTransport); ok {
			m.flush()
		}
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		s.shutdown.flushOnce.Do(func() {}) // unflush was set within the first Do: see it
		s.shutdown.unflush()
	}
}

// Close reports the close once, with its reason: the one given, else the one learnt before
// (a heartbeat timeout, a shutdown, a protocol error the client made), else a normal close.
// For a shutdown (Server.Shutdown) it closes a WebSocket with 1012 (service restart).
func (t *meteredTransport) Close(reason error) error {
	if t.closed.CompareAndSwap(false, true) {
		t.flush()
		r := closeReason(reason)
		if r == metrics.Normal {
			if w := t.why.Load(); w != 0 {
				r = metrics.Reason(w - 1)
			}
		}
		t.rec.ConnClosed(t.kind, r)
	}
	return t.Transport.Close(reason)
}

// Detached reports whether a fallback session's client is away (see Socket.active).
func (t *meteredTransport) Detached() bool {
	d, ok := t.Transport.(interface{ Detached() bool })
	return ok && d.Detached()
}

// learn notes why the connection is about to close, unless a reason was noted before.
func (t *meteredTransport) learn(r metrics.Reason) {
	if r != metrics.Normal {
		t.why.CompareAndSwap(0, uint32(r)+1)
	}
}

// closeReason is the metrics.Reason of a reason given to Transport.Close.
func closeReason(reason error) metrics.Reason {
	switch {
	case reason == nil:
		return metrics.Normal
	case errors.Is(reason, ErrServerClosed):
		return metrics.Shutdown
	case errors.Is(reason, ErrSlowConsumer), errors.Is(reason, websocket.ErrWriteQueueFull),
		errors.Is(reason, fallback.ErrBufferFull), errors.Is(reason, context.DeadlineExceeded):
		return metrics.SlowConsumer
	}
	return receiveReason(reason)
}

// receiveReason is the metrics.Reason of the error that ended a connection's reading.
func receiveReason(err error) metrics.Reason {
	var pe *websocket.ProtocolError
	switch {
	case errors.As(err, &pe):
		return metrics.ProtocolError
	case errors.Is(err, websocket.ErrPongTimeout), errors.Is(err, fallback.ErrExpired):
		return metrics.HeartbeatTimeout
	case errors.Is(err, fallback.ErrBufferFull):
		return metrics.SlowConsumer
	}
	return metrics.Normal
}

// noteClose records why a socket is about to be closed, for its disconnect's reason.
func (s *Socket) noteClose(r metrics.Reason) {
	if m, ok := s.t.(*meteredTransport); ok {
		m.learn(r)
	}
}

// meterQueue observes the bytes queued for the socket (Recorder.QueueDepth), n in all with a
// message of size bytes just queued, when the message waits behind others: a socket that
// keeps up costs nothing here, and the figures describe the backlogs that form. With a
// metrics.Flusher, only the socket's deepest backlog between two flushes is observed.
func (s *Socket) meterQueue(n, size int) {
	if n <= size {
		return
	}
	if m, ok := s.t.(*meteredTransport); ok {
		if m.batch == nil {
			m.rec.QueueDepth(m.kind, n)
		} else if int64(n) > m.peak.Load() {
			m.peak.Store(int64(n)) // s.mu is held: one writer at a time
		}
	}
}

// meterRequest reports a nes request that started at start (Recorder.Request): its route id
// when it named a route, else "other"; its status, from its reply or its error.
func (s *Socket) meterRequest(m *protocol.Message, start time.Time, reply any, err error) {
	d := time.Since(start)
	route := "other"
	status := http.StatusOK
	p, _ := protocol.String(m.Path)
	isID := p != "" && p[0] != '/'
	switch {
	case err != nil:
		status = asError(err).StatusCode
		if isID {
			if _, known := s.server.lookupRoute(p); known {
				route = p
			}
		}
	case reply != nil:
		if r, ok := reply.(requestReply); ok {
			status = r.StatusCode
		}
		if isID {
			route = p // answered: the id named a route
		}
	}
	s.server.opts.Metrics.Request(route, status, d)
}

// meterPublished counts a publication or broadcast made on this node.
func (s *Server) meterPublished() {
	if rec := s.opts.Metrics; rec != nil {
		rec.Published()
	}
}

// compressionOnly is the Recorder the server gives the WebSocket layer: the nes layer counts
// connections, messages and its send queues itself (with reasons the WebSocket layer cannot
// know), so only permessage-deflate's figures come from below.
type compressionOnly struct {
	metrics.Nop
	rec metrics.Recorder
}

func (c compressionOnly) Compressed(in, out int) { c.rec.Compressed(in, out) }

// layerMetrics returns what the server passes to the layers below it.
func (s *Server) layerMetrics() metrics.Recorder {
	if s.opts.Metrics == nil {
		return nil
	}
	return compressionOnly{rec: s.opts.Metrics}
}

// noteHeartbeatTimeout records that the heartbeat is closing the socket.
func (s *Socket) noteHeartbeatTimeout() { s.noteClose(metrics.HeartbeatTimeout) }
