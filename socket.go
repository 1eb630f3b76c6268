package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/internal/protocol"
	"github.com/herald-go/herald/internal/writers"
	"github.com/herald-go/herald/websocket"
)

// RawMessage is a JSON value as the client sent it.
type RawMessage = json.RawMessage

// Socket is one client's nes connection.
//
// Its methods are safe for concurrent use, also from inside the server's callbacks and from
// handlers serving the socket's own requests.
type Socket struct {
	// ID identifies the socket: "<ms>:<server id>:<counter>", as the reference's.
	ID string
	// App holds the application's per-socket state.
	App sync.Map

	server     *Server
	t          Transport
	req        *http.Request
	remoteAddr string
	ctx        context.Context
	cancel     context.CancelFunc

	pinged   atomic.Bool // heard from (or successfully sent to) since the last heartbeat check
	inflight chan struct{}
	wg       sync.WaitGroup // message processors and the sender

	authMu sync.Mutex // held while a hello or reauth authenticates: one at a time

	indexedUser string // the user the socket is indexed under (Server.byUser), guarded by Server.mu

	mu         sync.Mutex
	isHelloed  bool // a hello was accepted for processing (a second one is refused)
	ready      bool // the hello succeeded
	auth       authState
	subs       map[string]*subscription // path → its subscription
	pending    map[string]*pendingSub   // path → a sub whose OnSubscribe is running
	processing int
	closing    bool // Disconnect asked: finish in-flight messages, then close
	closed     bool
	closeErr   error
	queue      []outgoing // waiting from queue[head]
	head       int
	queued     int
	flushing   bool
	sending    bool
	authTimer  *time.Timer
	handoff    *time.Timer   // hands reading over to a new goroutine when a message takes long
	reader     *reader       // the goroutine reading now
	deadline   sendDeadline  // the send's deadline, set by whoever runs flush
	sendSeq    atomic.Uint64 // odd while a writer of the pool is in a send: see boundSend
}

// outgoing is a message waiting to be sent.
type outgoing struct {
	data    []byte
	pm      *websocket.PreparedMessage // data prepared once for many sockets, or nil
	ping    bool                       // heartbeat pings don't count as proof of life
	push    bool                       // a publication, broadcast or update: dropped once the socket is closing, and held for a due Verify
	closing bool                       // close the socket once everything before has gone out
	reason  error                      // why, for closing
}

func newSocket(s *Server, t Transport, r *http.Request, id string) *Socket {
	ctx, cancel := context.WithCancel(context.Background())
	sock := &Socket{ID: id, server: s, t: t, req: r, remoteAddr: t.RemoteAddr(), ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, s.opts.MaxInFlight), subs: map[string]*subscription{}, pending: map[string]*pendingSub{}}
	sock.pinged.Store(true)
	return sock
}

// run reads and dispatches the socket's messages until it closes, then cleans up.
func (s *Socket) run() {
	s.armHelloTimeout()
	s.handoff = time.AfterFunc(time.Hour, s.takeOverReading)
	s.handoff.Stop()
	r := &reader{}
	s.mu.Lock()
	s.reader = r
	s.mu.Unlock()
	s.read(r)
}

// reader is the state of a goroutine that reads the socket (guarded by Socket.mu).
type reader struct {
	busy      bool // processing a message it read
	handedOff bool // another goroutine took over reading while it was busy
}

// handoffDelay is how long a message may be processed on the reading goroutine before
// another goroutine takes over reading.
const handoffDelay = time.Millisecond

// read is the socket's reading loop. Messages are processed concurrently, as in the reference
// (replies may come out of order), up to MaxInFlight at once: each is processed on the
// goroutine that read it, and when that takes longer than handoffDelay another goroutine
// takes over reading. Fast requests so cost no goroutine, and a slow one does not hold up
// the messages behind it. Whichever goroutine is reading when the connection ends cleans up.
func (s *Socket) read(r *reader) {
	for {
		data, err := s.t.Receive(s.ctx)
		if err != nil {
			break
		}
		m, handle := s.admit(data)
		if handle == nil {
			continue // nothing to process, or closing: the next Receive fails then
		}
		s.mu.Lock()
		s.processing++
		r.busy = true
		s.mu.Unlock()
		s.handoff.Reset(handoffDelay)
		s.processCounted(m, handle)
		s.mu.Lock()
		r.busy = false
		handedOff := r.handedOff
		s.mu.Unlock()
		<-s.inflight
		if handedOff {
			// Another goroutine reads now, and the timer is its own: stopping it here would
			// leave that reader without a successor if its message takes long too.
			s.wg.Done() // this one was counted when it took over
			return
		}
		s.handoff.Stop() // no longer busy: a timer firing now would find nothing to take over
	}
	s.closeNow(nil)
	s.handoff.Stop()
	s.cleanUp()
}

// armHelloTimeout closes the socket if no hello comes within Options' hello timeout.
func (s *Socket) armHelloTimeout() {
	if d := s.server.helloTimeout(); d > 0 {
		s.mu.Lock()
		s.authTimer = time.AfterFunc(d, func() { s.closeNow(nil) })
		s.mu.Unlock()
	}
}

// admit is what the reading loops (read, receiveIdle) do with a message received: it counts
// as proof of life, is dispatched, and when it needs processing takes a place among
// MaxInFlight. handle is nil when there is nothing to process, or when the socket is closing.
func (s *Socket) admit(data []byte) (*protocol.Message, func(context.Context, *protocol.Message) (any, error)) {
	s.pinged.Store(true)
	if s.isClosing() {
		return nil, nil
	}
	m, handle := s.dispatch(data)
	if handle == nil {
		return nil, nil
	}
	select {
	case s.inflight <- struct{}{}:
		return m, handle
	case <-s.ctx.Done():
		return nil, nil
	}
}

// cleanUp is the end of a socket whose connection has closed and whose reading has stopped:
// once its messages in progress are done, it leaves its subscriptions and the server.
func (s *Socket) cleanUp() {
	s.wg.Wait()
	s.server.subs.removeSocket(s, s.takeSubscriptions())
	s.server.removeSocket(s)
	if fn := s.server.opts.OnDisconnection; fn != nil {
		_ = s.guard("OnDisconnection", func() error { fn(s); return nil })
	}
}

// takeOverReading runs on the handoff timer's goroutine: the reading goroutine is busy with a
// message, so this one becomes the reader.
func (s *Socket) takeOverReading() {
	s.mu.Lock()
	old := s.reader
	if old == nil || !old.busy || old.handedOff || s.closed {
		s.mu.Unlock()
		return // the message was done in time
	}
	old.handedOff = true
	r := &reader{}
	s.reader = r
	s.wg.Add(1) // for the busy goroutine, which calls Done when it finishes its message
	s.mu.Unlock()
	s.read(r)
}

// dispatch checks a message and handles what needs no processing (protocol errors, pings,
// hello, which runs before anything that follows it). It returns the handler for the rest.
func (s *Socket) dispatch(data []byte) (*protocol.Message, func(context.Context, *protocol.Message) (any, error)) {
	m, err := protocol.Decode(data)
	if err != nil {
		s.queueError(errCannotParse, nil, nil)
		return nil, nil
	}
	if !protocol.Truthy(m.Type) {
		s.queueError(errCannotParse, m.Type, m.ID)
		return nil, nil
	}
	if !protocol.Truthy(m.ID) {
		s.queueError(errMissingID, m.Type, m.ID)
		return nil, nil
	}
	if err := s.verifyAuth(s.ctx); err != nil {
		s.queueError(asError(err), m.Type, m.ID)
		s.Disconnect()
		return nil, nil
	}
	typ, _ := protocol.String(m.Type)
	switch {
	case typ == "ping":
		return nil, nil
	case typ == "hello":
		s.process(m, s.processHello)
		return nil, nil
	case !s.helloed():
		s.queueError(errNotInitialized, m.Type, m.ID)
		return nil, nil
	}
	switch typ {
	case "reauth":
		return m, s.processReauth
	case "request":
		return m, s.processRequest
	case "message":
		return m, s.processMessage
	case "sub":
		return m, s.processSub
	case "unsub":
		return m, s.processUnsub
	}
	s.queueError(errUnknownType, m.Type, m.ID)
	return nil, nil
}

// process handles one message on the caller's goroutine.
func (s *Socket) process(m *protocol.Message, handle func(context.Context, *protocol.Message) (any, error)) {
	s.mu.Lock()
	s.processing++
	s.mu.Unlock()
	s.processCounted(m, handle)
}

// processCounted runs a handler whose message was counted in processing, sends its reply, and
// lets a pending Disconnect proceed once nothing is left in flight.
func (s *Socket) processCounted(m *protocol.Message, handle func(context.Context, *protocol.Message) (any, error)) {
	var reply any
	err := s.guard(string(m.Type), func() error {
		var err error
		reply, err = handle(s.ctx, m)
		return err
	})
	if errors.Is(err, errPanic) {
		// Answer, then close with 1011: the reply goes out before the close.
		s.sendError(asError(err), m.Type, m.ID)
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.enqueue(outgoing{closing: true, reason: err})
	} else if err != nil {
		s.sendError(asError(err), m.Type, m.ID)
	} else if reply != nil {
		s.send(reply)
	}
	s.mu.Lock()
	s.processing--
	last := s.closing && s.processing == 0
	s.mu.Unlock()
	if last {
		s.enqueue(outgoing{closing: true})
	}
}

// errPanic marks errors recovered from panics in callbacks.
var errPanic = errors.New("nes: panic in a callback")

// guard runs fn, turning a panic into an error (errPanic) that is logged; the caller closes
// the socket with it (1011).
func (s *Socket) guard(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("herald: panic in a callback; closing the socket", "in", what, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return fn()
}

// helloed reports whether the socket's hello succeeded.
func (s *Socket) helloed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

func (s *Socket) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing || s.closed
}

// send encodes and queues a reply, and sends it from this goroutine when nothing else is being
// sent (replies come from the socket's own goroutines, which may wait for its client).
func (s *Socket) send(v any) {
	if data, ok := s.encodeLogged(v); ok && s.queueMessage(outgoing{data: data}) {
		s.flush()
	}
}

// encodeLogged encodes a message for the socket; it logs a message that cannot be encoded, which
// is then not sent.
func (s *Socket) encodeLogged(v any) ([]byte, bool) {
	data, err := encode(v)
	if err != nil {
		s.logger().Error("herald: cannot encode a message", "err", err)
		return nil, false
	}
	return data, true
}

// sendHelloReply queues the reply of a successful hello and marks the socket ready in one
// step: a broadcast or update either sees the socket not ready (and skips it, as it came
// before the hello) or goes after the reply, and never reaches a client that has its hello
// reply before the socket counts as ready.
func (s *Socket) sendHelloReply(v any) {
	data, ok := s.encodeLogged(v)
	if !ok {
		return
	}
	if s.queueMessageWith(outgoing{data: data}, func() {
		s.ready = true
		if s.authTimer != nil {
			s.authTimer.Stop()
		}
	}) {
		s.flush()
	}
}

// sendPush is send for an update or publication (see outgoing.push).
func (s *Socket) sendPush(v any) {
	if data, ok := s.encodeLogged(v); ok && s.queueMessage(outgoing{data: data, push: true}) {
		s.flush()
	}
}

func (s *Socket) sendError(err *Error, typ, id json.RawMessage) {
	s.send(s.server.newErrorReply(err, typ, id))
}

// queueError is sendError for the messages dispatch refuses: the reply goes to a writer of the
// pool, so the reading goroutine, which no handoff covers while it dispatches, never waits on
// a client that does not read, and such a client is let go at SendQueueLimit as for requests.
func (s *Socket) queueError(err *Error, typ, id json.RawMessage) {
	if data, ok := s.encodeLogged(s.server.newErrorReply(err, typ, id)); ok {
		s.enqueue(outgoing{data: data})
	}
}

// enqueue queues a message without waiting; a writer of the pool (writerPool) sends it,
// unless one of the socket's goroutines is sending already. A socket whose queue would pass
// SendQueueLimit is disconnected: publishing never waits on a slow client.
func (s *Socket) enqueue(m outgoing) {
	if s.queueMessage(m) {
		writerPool.Submit((*socketTask)(s))
	}
}

// queueMessage queues a message. It reports true when the caller must run flush (nobody was
// sending): the caller then owns the sending, and flush's wg slot is already taken.
func (s *Socket) queueMessage(m outgoing) bool {
	return s.queueMessageWith(m, nil)
}

// queueMessageWith is queueMessage, running queued (when not nil) under s.mu once m is queued.
func (s *Socket) queueMessageWith(m outgoing, queued func()) bool {
	s.mu.Lock()
	if s.closed || m.push && s.closing {
		s.mu.Unlock()
		return false
	}
	if s.queued > 0 && s.queued+len(m.data) > s.server.opts.SendQueueLimit {
		s.mu.Unlock()
		s.logger().Warn("herald: disconnecting a slow socket", "queued", s.queued)
		s.closeNow(ErrSlowConsumer)
		return false
	}
	s.queue = append(s.queue, m)
	s.queued += len(m.data)
	s.meterQueue(s.queued, len(m.data))
	if queued != nil {
		queued()
	}
	start := !s.flushing
	if start {
		s.flushing = true
		s.wg.Add(1)
	}
	s.mu.Unlock()
	return start
}

// flush sends queued messages, one at a time, until the queue is empty. One goroutine at a
// time runs it: a socket goroutine that has a reply to send, or a writer of the pool for
// messages queued from elsewhere (publications, broadcasts, pings), only while there is
// something to send.
func (s *Socket) flush() { s.flushOn(nil) }

// flushOn is flush on a writer of the pool (w), which it tells when a write may block; a nil
// w is the socket's own goroutine.
func (s *Socket) flushOn(w *writers.Worker) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if s.closed || s.head == len(s.queue) {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		m := s.queue[s.head]
		s.queue[s.head] = outgoing{}
		if s.head++; s.head == len(s.queue) {
			s.queue, s.head = s.queue[:0], 0 // empty: the array is reused
		}
		s.sending = true
		verify := m.push && s.verifyDueLocked()
		s.mu.Unlock()
		if verify && s.verify(w) != nil {
			// Refused credentials get nothing more: close at once, dropping what is queued.
			s.mu.Lock()
			s.queued -= len(m.data)
			s.sending = false
			s.mu.Unlock()
			s.closeNow(nil)
			continue
		}
		if m.closing {
			s.mu.Lock()
			s.sending, s.flushing = false, false
			s.mu.Unlock()
			s.closeNow(m.reason)
			return
		}
		// On a writer of the pool, the send has no deadline: setting one costs about as
		// much as the rest of a delivery. A send that blocks the writer is bounded once the
		// pool notices (boundSend).
		var ctx context.Context = noDeadline
		if w == nil {
			s.deadline = sendDeadline(time.Now().Add(s.server.opts.SendTimeout))
			ctx = &s.deadline
		} else {
			s.sendSeq.Add(1)
			w.Begin()
		}
		var err error
		if ps, ok := s.t.(preparedSender); ok && m.pm != nil {
			err = ps.SendPrepared(ctx, m.data, m.pm)
		} else {
			err = s.t.Send(ctx, m.data)
		}
		if w != nil {
			w.End()
			s.sendSeq.Add(1)
		}
		s.mu.Lock()
		s.queued -= len(m.data)
		s.sending = false
		s.mu.Unlock()
		if err != nil {
			s.closeNow(err)
			continue
		}
		if !m.ping {
			s.pinged.Store(true)
		}
	}
}

// noDeadline is the context of sends on the pool's writers.
var noDeadline = context.Background()

// errSendTimeout is why a socket closes whose send took longer than SendTimeout.
var errSendTimeout = fmt.Errorf("herald: a send took longer than SendTimeout: %w", context.DeadlineExceeded)

// boundSend runs when a writer of the pool has been blocked in this socket's send for a
// watchdog tick (the pool has moved on without it): if the same send is still going
// SendTimeout from now, the socket is closed, which ends it.
func (s *Socket) boundSend() {
	seq := s.sendSeq.Load()
	if seq%2 == 0 {
		return // not in a send (the writer was blocked elsewhere, or the send just ended)
	}
	time.AfterFunc(s.server.opts.SendTimeout, func() {
		if s.sendSeq.Load() == seq {
			s.logger().Warn("herald: disconnecting a socket whose send took longer than SendTimeout")
			s.closeNow(errSendTimeout)
		}
	})
}

// verify checks the credentials before a push, on a writer of the pool (w) or not.
func (s *Socket) verify(w *writers.Worker) error {
	w.Begin()
	defer w.End()
	return s.verifyAuth(s.ctx)
}

// closeNow closes the socket at once, dropping what is queued. It never waits: the
// transport's closing handshake runs on a goroutine of the socket's, so that a publisher that
// finds a slow socket is not held up by it.
func (s *Socket) closeNow(reason error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.closeErr = reason
	s.queue, s.head, s.queued = nil, 0, 0
	if s.authTimer != nil {
		s.authTimer.Stop()
	}
	s.wg.Add(1) // under mu: run's Wait cannot start before this Add
	s.mu.Unlock()
	s.cancel()
	go func() {
		defer s.wg.Done()
		_ = s.t.Close(reason)
	}()
}

// active reports whether the socket has shown life since the last heartbeat check.
func (s *Socket) active() bool {
	if d, ok := s.t.(interface{ Detached() bool }); ok && d.Detached() {
		return true // a fallback session whose client is reconnecting: its grace period decides
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinged.Load() || s.sending || s.processing > 0
}

// Disconnect closes the socket from the server side: messages already being processed are
// answered first, then the connection closes (the client sees 1005, as with the reference,
// and reconnects if it is set to). Called from a handler serving one of this socket's
// requests, that request's reply still goes out before the close. Publications, broadcasts
// and updates are no longer sent to a socket being disconnected.
func (s *Socket) Disconnect() {
	s.mu.Lock()
	if s.closing || s.closed {
		s.mu.Unlock()
		return
	}
	s.closing = true
	idle := s.processing == 0
	s.mu.Unlock()
	if idle {
		s.enqueue(outgoing{closing: true})
	}
}

// IsOpen reports whether the socket is open and not being disconnected.
func (s *Socket) IsOpen() bool { return !s.isClosing() }

// Done returns a channel closed when the socket starts closing.
func (s *Socket) Done() <-chan struct{} { return s.ctx.Done() }

// Send sends message to this socket as an update (the client's onUpdate).
func (s *Socket) Send(message any) error {
	raw, err := marshalValue(message)
	if err != nil {
		return err
	}
	if !s.IsOpen() {
		return ErrSocketClosed
	}
	s.sendPush(pushUpdate{Type: "update", Message: raw})
	return nil
}

// Publish sends message to this socket as a publication on path, whether or not the socket
// subscribed to it (the client delivers it only to handlers of that exact path).
func (s *Socket) Publish(path string, message any) error {
	raw, err := marshalValue(message)
	if err != nil {
		return err
	}
	if !s.IsOpen() {
		return ErrSocketClosed
	}
	s.sendPush(pushPub{Type: "pub", Path: path, Message: raw})
	return nil
}

// Revoke unsubscribes the socket from path (running OnUnsubscribe) and tells the client,
// with message when it is not nil (the client passes it to its handlers with
// flags.revoked set).
func (s *Socket) Revoke(ctx context.Context, path string, message any) error {
	var raw json.RawMessage
	if message != nil {
		var err error
		if raw, err = marshalValue(message); err != nil {
			return err
		}
	}
	s.unsubscribe(ctx, path)
	if !s.IsOpen() {
		return ErrSocketClosed
	}
	s.send(pushRevoke{Type: "revoke", Path: path, Message: raw})
	return nil
}

// Subscriptions returns the paths the socket is subscribed to, sorted.
func (s *Socket) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	paths := make([]string, 0, len(s.subs))
	for p := range s.subs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Request returns the HTTP request that opened the socket (its body is gone).
func (s *Socket) Request() *http.Request { return s.req }

// RemoteAddr names the client's end of the connection.
func (s *Socket) RemoteAddr() string { return s.remoteAddr }

// ErrSocketClosed is returned by sends to a socket that has closed.
var ErrSocketClosed = errors.New("nes: socket not open")

// marshalValue encodes an application value as JSON the way the reference would.
func marshalValue(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("herald: invalid JSON in a json.RawMessage")
		}
		return raw, nil
	}
	b, err := protocol.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("herald: cannot encode the message: %w", err)
	}
	return b, nil
}

// sendDeadline bounds a send by SendTimeout. It has no Done channel: a socket that closes
// drops its connection (Transport.Close with a reason), which ends a blocked send, so sends
// need neither a timer nor a cancellation callback per message. The socket keeps one
// (Socket.deadline) and passes a pointer to it: a context made per send would be an
// allocation per delivery.
type sendDeadline time.Time

func (d sendDeadline) Deadline() (time.Time, bool) { return time.Time(d), true }
func (sendDeadline) Done() <-chan struct{}         { return nil }
func (d sendDeadline) Err() error {
	if !time.Now().Before(time.Time(d)) {
		return context.DeadlineExceeded
	}
	return nil
}
func (sendDeadline) Value(any) any { return nil }
