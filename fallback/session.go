package fallback

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
	"unsafe"

	"github.com/herald-go/herald/eventsource"
)

// Session is one client's two-way message channel: messages down an event stream (or a
// long-poll), messages up in POSTs. It carries whole text messages, as a WebSocket does, and
// outlives the requests that carry it: a stream that drops is resumed, within the grace
// period, with every message it missed.
//
// It has the shape of herald's Transport: one goroutine calls Receive, one at a time calls
// Send, and Close may be called from any goroutine.
type Session struct {
	srv        *Server
	id         [sessionIDLen]byte
	key        string // the table's key: the id in base64url
	ticket     string
	req        *http.Request // the request that opened the session, without its body
	origin     string        // the Origin it was opened from ("" for none)
	binding    string        // the value of Options.BindCookie it was opened with
	remoteAddr string

	mu sync.Mutex
	// Downstream: the messages not yet acknowledged, oldest first, with consecutive seqs.
	ring      []entry
	ringBytes int
	nextSeq   uint64        // the seq of the next message; the first is 1
	acked     uint64        // the client has every message up to this one
	sent      uint64        // the last message handed to the attached stream
	stream    sink          // the attached stream: an EventSource here, or a relay (cluster.go)
	streamOut int           // bytes written to the attached stream, for its rotation
	poll      chan struct{} // closed to answer the waiting poll; nil while none waits
	polling   bool          // a poll is being answered
	pollGen   uint64        // counts polls: a poll that a newer one replaced answers empty
	// Upstream.
	inSeq      uint64 // the seq the next POST must carry; the first is 1
	posting    bool
	inbox      [][]byte
	inboxBytes int
	inboxWake  chan struct{} // a signal to Receive, capacity 1
	// Life.
	closed    bool
	closeErr  error
	closeCode closeCode
	done      chan struct{}
	grace     *time.Timer
}

// sink is where a session's events go down: the EventSource of a stream this node serves, or
// a relay to the node that serves it (cluster.go). Its methods do not wait for the client.
type sink interface {
	Send(data string, ev eventsource.Event) error
	SetRetry(d time.Duration) error
	Close() error
}

// entry is one message down, with its sequence number.
type entry struct {
	seq  uint64
	data string
}

// ErrClosed is returned by Receive and Send once the session has ended.
var ErrClosed = errors.New("fallback: session closed")

// ErrExpired ends a session whose client was gone for longer than Options.Grace.
var ErrExpired = errors.New("fallback: the client did not come back within the grace period")

// ErrBufferFull ends a session whose client does not take its messages: more than
// Options.BufferMessages or BufferBytes wait for it.
var ErrBufferFull = errors.New("fallback: the client is not taking its messages; its buffer is full (Options.BufferMessages, BufferBytes)")

func newSession(srv *Server, r *http.Request) *Session {
	s := &Session{
		srv:        srv,
		id:         newSessionID(),
		req:        bodyless(r),
		origin:     r.Header.Get("Origin"),
		binding:    srv.bindingOf(r),
		remoteAddr: r.RemoteAddr,
		nextSeq:    1,
		inSeq:      1,
		inboxWake:  make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	s.key = keyOf(s.id)
	s.ticket = srv.signer.sign(srv.opts.Node, s.id)
	return s
}

// bodyless copies the request that opened a session for the session's lifetime: its body
// belongs to the handler.
func bodyless(r *http.Request) *http.Request {
	c := r.Clone(context.Background())
	c.Body = http.NoBody
	c.ContentLength = 0
	return c
}

// Request returns the request that opened the session (its body removed): its headers,
// cookies and URL, as a WebSocket's handshake request.
func (s *Session) Request() *http.Request { return s.req }

// RemoteAddr names the client's end of the request that opened the session.
func (s *Session) RemoteAddr() string { return s.remoteAddr }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Detached reports whether the client is away: no stream attached and no poll waiting. A
// detached session lives on for Options.Grace; herald's heartbeat does not count a ping the
// client cannot receive yet as missed.
func (s *Session) Detached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream == nil && !s.polling && !s.closed
}

// Receive returns the next message the client sent, in the order it sent them.
func (s *Session) Receive(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.inbox) > 0 {
			m := s.inbox[0]
			s.inbox[0] = nil
			s.inbox = s.inbox[1:]
			s.inboxBytes -= len(m)
			s.mu.Unlock()
			return m, nil
		}
		if s.closed {
			err := s.closeErr
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-s.inboxWake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Send queues one message for the client: written at once to its stream when one is
// attached, kept for the next poll or the resumed stream otherwise. It never waits for the
// client. It fails with ErrBufferFull, ending the session, when the messages waiting for the
// client pass the buffer's bounds.
//
// Send keeps msg itself, not a copy, until the client has confirmed it: the caller must not
// modify msg afterward. herald's nes server never does: it encodes each message once, and a
// publication's bytes go as they are to every socket, so that a thousand sessions hold one
// copy of it.
func (s *Session) Send(ctx context.Context, msg []byte) error {
	// Streams and polls write a string: this one is msg's bytes, which nothing modifies.
	data := unsafe.String(unsafe.SliceData(msg), len(msg))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	e := entry{seq: s.nextSeq, data: data}
	s.nextSeq++
	s.ring = append(s.ring, e)
	s.ringBytes += len(data)
	// Past the bounds, drop the oldest messages that have already gone down a stream: the
	// client most likely has them, and a resume from before them gets a reset, never a gap.
	for len(s.ring) > 0 && s.ring[0].seq <= s.sent && s.overBuffer() {
		s.dropOldest()
	}
	if s.overBuffer() {
		s.mu.Unlock()
		s.end(ErrBufferFull, closeBufferFull)
		return ErrBufferFull
	}
	if s.stream != nil {
		s.write(e)
	}
	s.wakePoll()
	s.mu.Unlock()
	return nil
}

func (s *Session) overBuffer() bool {
	o := &s.srv.opts
	return len(s.ring) > o.BufferMessages || s.ringBytes > o.BufferBytes
}

func (s *Session) dropOldest() {
	s.ringBytes -= len(s.ring[0].data)
	s.ring[0] = entry{}
	s.ring = s.ring[1:]
}

// ack drops what the client confirmed having, up to seq. s.mu is held.
func (s *Session) ack(seq uint64) {
	if seq >= s.nextSeq {
		seq = s.nextSeq - 1
	}
	if seq <= s.acked {
		return
	}
	s.acked = seq
	n := 0
	for n < len(s.ring) && s.ring[n].seq <= seq {
		s.ringBytes -= len(s.ring[n].data)
		n++
	}
	clear(s.ring[:n]) // the messages go
	if n == len(s.ring) {
		s.ring = s.ring[:0] // every one confirmed (the usual case): the next ones reuse the array
	} else {
		s.ring = s.ring[n:]
	}
}

// canResume reports whether every message after last is still buffered. s.mu is held.
func (s *Session) canResume(last uint64) bool {
	if last >= s.nextSeq {
		return false // the client claims messages that were never sent
	}
	oldest := s.nextSeq
	if len(s.ring) > 0 {
		oldest = s.ring[0].seq
	}
	return last+1 >= oldest
}

// write hands one message to the attached stream. s.mu is held.
func (s *Session) write(e entry) {
	if err := s.stream.Send(e.data, eventsource.Event{ID: s.eventID(e.seq)}); err != nil {
		s.detachLocked(s.stream) // the stream fell behind or ended: the client resumes
		return
	}
	s.sent = e.seq
	s.streamOut += len(e.data)
	if o := s.srv.opts.MaxStreamBytes; o > 0 && s.streamOut > o {
		s.rotate()
	}
}

// eventID is a message's event id: the ticket and the seq, so that the browser's own
// reconnection resumes the session with its Last-Event-ID header and no secret ever travels in
// a URL.
func (s *Session) eventID(seq uint64) string {
	return s.ticket + "." + formatSeq(seq)
}

// rotate ends the attached stream on purpose (a stream that has lived long enough): the client
// resumes at once. s.mu is held.
func (s *Session) rotate() {
	es := s.stream
	// A browser's EventSource cannot be told to reconnect at once, only how long to wait: a
	// short wait for this reconnection (the next stream sets the usual one again).
	_ = es.SetRetry(rotateRetry)
	_ = es.Send(`{}`, eventsource.Event{Type: EventRotate})
	s.detachLocked(es)
	go func() { _ = es.Close() }()
}

// rotateRetry is the retry time a stream asks for just before it ends on purpose.
const rotateRetry = 100 * time.Millisecond

// wakePoll answers the waiting poll. s.mu is held.
func (s *Session) wakePoll() {
	if s.poll != nil {
		close(s.poll)
		s.poll = nil
	}
}

// detachLocked lets go of a stream that ended; the grace period starts. s.mu is held.
func (s *Session) detachLocked(es sink) {
	if s.stream != es {
		return
	}
	s.stream = nil
	s.streamOut = 0
	s.startGrace()
}

func (s *Session) detach(es sink) {
	s.mu.Lock()
	s.detachLocked(es)
	s.mu.Unlock()
}

// startGrace starts the grace period of a session with no stream and no poll. s.mu is held.
func (s *Session) startGrace() {
	if s.closed || s.stream != nil || s.polling {
		return
	}
	if s.grace != nil {
		s.grace.Stop()
	}
	// A timer that fired while a newer grace period was being started must not end the
	// session: only the current one may (t is set before the function can take s.mu).
	var t *time.Timer
	t = time.AfterFunc(s.srv.opts.Grace, func() {
		s.mu.Lock()
		away := s.grace == t && s.stream == nil && !s.polling
		s.mu.Unlock()
		if away {
			s.end(ErrExpired, closeExpired)
		}
	})
	s.grace = t
}

func (s *Session) stopGrace() {
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
}

// Close ends the session: the client hears a close event (with code 1000, or 1011 when
// reason is an error other than a server shutdown, 1001 for herald's ErrServerClosed) and
// does not resume it. It is what herald's nes layer calls when the socket closes.
func (s *Session) Close(reason error) error {
	code := closeNormal
	switch {
	case reason == nil:
	case s.srv.opts.IsShutdown != nil && s.srv.opts.IsShutdown(reason):
		code = closeGoingAway
	default:
		code = closeError
	}
	if reason == nil {
		reason = ErrClosed
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.closeErr = reason
	s.closeCode = code
	s.mu.Unlock()
	s.finish(true)
	return nil
}

// end closes the session once, telling the attached stream or waiting poll.
func (s *Session) end(reason error, c closeCode) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.closeErr = reason
	s.closeCode = c
	s.mu.Unlock()
	s.finish(false)
}

// finish lets go of a session that was just marked closed: its stream hears the close event,
// a waiting poll answers with it, Receive returns what was received and then the reason.
//
// With linger, a session that neither a stream nor a poll can tell (its client is between two
// polls, or resuming its stream) stays in the table, closed, for the grace period: the next
// poll or resumed stream then gets the messages sent before the close, and the close (see
// tell).
func (s *Session) finish(linger bool) {
	s.mu.Lock()
	s.stopGrace()
	es := s.stream
	s.stream = nil
	linger = linger && es == nil && s.poll == nil
	s.wakePoll()
	code := s.closeCode
	if linger {
		s.grace = time.AfterFunc(s.srv.opts.Grace, s.forget)
	}
	s.mu.Unlock()

	if !linger {
		s.srv.sessions.Delete(s.key)
	}
	close(s.done)
	select {
	case s.inboxWake <- struct{}{}:
	default:
	}
	if es != nil {
		_ = es.Send(code.json(), eventsource.Event{Type: EventClose})
		go func() { _ = es.Close() }()
	}
}

// tell returns what the client of a closed session has yet to hear: the messages after last
// that are still buffered, then the close event. s.mu is held.
func (s *Session) tell(last uint64) []pollEvent {
	var events []pollEvent
	for _, e := range s.ring {
		if e.seq > last {
			events = append(events, pollEvent{ID: s.eventID(e.seq), Data: e.data})
		}
	}
	return append(events, pollEvent{Event: EventClose, Data: s.closeCode.json()})
}

// forget takes a closed session out of the table, once its client has heard the close or
// the grace period has passed.
func (s *Session) forget() {
	s.mu.Lock()
	s.stopGrace()
	s.mu.Unlock()
	s.srv.sessions.Delete(s.key)
}
