package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/eventsource"
)

// Several nodes without sticky sessions.
//
// A session lives on the node that opened it (its owner, named in its ticket). A request for
// it that lands on another node is carried to the owner through Options.Broker:
//
//   - a POST to send: the batch is forwarded (kindSend), the owner applies it as its own (in
//     order, a retry dropped) and the answer's status is the owner's;
//   - a poll: forwarded (kindPoll), the owner waits for messages as for its own polls;
//   - a resumed stream: this node serves the stream and the owner relays the session's events
//     to it (kindAttach, then kindRelay batches, each acknowledged, in order); this node asks
//     every KeepAlive whether it still is the session's stream (kindCheck), and tells the owner
//     when its stream ends (kindDetach).
//
// When the owner cannot be asked (it left the cluster) the answer is the one for a session
// that ended: 404 for a POST or a poll, a reset event and a new session for a stream. When it
// does not answer in time: 503 for a POST or a poll (the client retries), a reset for a
// stream. Never a stream that stays open and silent.

// The kinds of the requests nodes send each other for the fallback's sessions.
const (
	kindSend   = "fallback.send"
	kindPoll   = "fallback.poll"
	kindAttach = "fallback.attach"
	kindDetach = "fallback.detach"
	kindCheck  = "fallback.check"
	kindRelay  = "fallback.relay"
)

// clusterNode is what a Server needs of its Options.Broker.
type clusterNode interface {
	Name() string
	Handle(kind string, fn func(ctx context.Context, from string, payload []byte) ([]byte, error))
	Request(ctx context.Context, node, kind string, payload []byte) ([]byte, error)
}

var _ clusterNode = (*broker.Node)(nil)

// forward is a request for a session, sent to its owner.
type forward struct {
	Key     string `json:"key"`
	Origin  string `json:"origin,omitempty"`
	Binding string `json:"binding,omitempty"`
	Batch   *batch `json:"batch,omitempty"` // kindSend
	Last    uint64 `json:"last,omitempty"`  // kindPoll, kindAttach: the last message the client has
	Wait    int64  `json:"wait,omitempty"`  // kindPoll: how long to wait for a message, in ms
	Relay   string `json:"relay,omitempty"` // kindAttach, kindDetach, kindCheck: the relayed stream
}

// forwardReply is the owner's answer.
type forwardReply struct {
	Status   int         `json:"status"`             // as the owner would answer the client
	Expected uint64      `json:"expected,omitempty"` // 409: the seq the session needs
	Events   []pollEvent `json:"events,omitempty"`   // kindPoll
	Reset    bool        `json:"reset,omitempty"`    // kindPoll, kindAttach: resume impossible, the session ended
}

// relayBatch is a batch of events the owner relays to the node that serves the stream.
type relayBatch struct {
	Relay  string       `json:"relay"`
	Events []relayEvent `json:"events"`
}

// relayEvent is one thing to do to a relayed stream: send an event, set the retry time, or
// end the stream.
type relayEvent struct {
	Event string `json:"event,omitempty"`
	ID    string `json:"id,omitempty"`
	Data  string `json:"data,omitempty"`
	Retry int64  `json:"retry,omitempty"` // ms; SetRetry
	Close bool   `json:"close,omitempty"`
}

// relayAnswer is the answer to a relayBatch.
type relayAnswer struct {
	Gone bool `json:"gone,omitempty"` // the stream has ended: stop relaying
}

// cluster is a Server's side of the cluster: the handlers of the other nodes' requests, and
// the relayed streams this node serves.
type cluster struct {
	srv  *Server
	node clusterNode

	mu     sync.Mutex
	relays map[string]*relayIn // the relayed streams this node serves, by relay id
	closed bool                // wait was called: no new goroutine
	wg     sync.WaitGroup      // relay pushers and relayed streams' goroutines
}

// goroutine adds a goroutine to wait for, and reports false after wait was called.
func (c *cluster) goroutine() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

func newCluster(srv *Server, node clusterNode) *cluster {
	c := &cluster{srv: srv, node: node, relays: map[string]*relayIn{}}
	node.Handle(kindSend, c.handleSend)
	node.Handle(kindPoll, c.handlePoll)
	node.Handle(kindAttach, c.handleAttach)
	node.Handle(kindDetach, c.handleDetach)
	node.Handle(kindCheck, c.handleCheck)
	node.Handle(kindRelay, c.handleRelay)
	return c
}

// ask sends a request to the owner of a session and decodes its answer. A failure is given
// as the status to answer the client: 404 when the owner is not in the cluster (any more),
// 503 when it did not answer in time or the broker is down.
func (c *cluster) ask(ctx context.Context, owner, kind string, f *forward, timeout time.Duration) (forwardReply, int, error) {
	b, _ := json.Marshal(f)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := c.node.Request(ctx, owner, kind, b)
	if err != nil {
		if unknownNode(err) {
			return forwardReply{}, http.StatusNotFound, err
		}
		return forwardReply{}, http.StatusServiceUnavailable, err
	}
	var reply forwardReply
	if err := json.Unmarshal(raw, &reply); err != nil || reply.Status == 0 {
		return forwardReply{}, http.StatusServiceUnavailable, fmt.Errorf("fallback: invalid answer from node %q: %q", owner, raw)
	}
	return reply, 0, nil
}

// lookupFor finds the session a forwarded request is for, as lookup does for a request
// made here.
func (c *cluster) lookupFor(f *forward) (*Session, int) {
	s := c.srv.sessions.Load(f.Key)
	switch {
	case s == nil:
		return nil, http.StatusGone
	case !sameOrigin(s.origin, f.Origin) || s.binding != f.Binding:
		return nil, http.StatusForbidden
	}
	return s, 0
}

func reply(r forwardReply) ([]byte, error) { return json.Marshal(r) }

func decodeForward(payload []byte) (*forward, error) {
	var f forward
	if err := json.Unmarshal(payload, &f); err != nil || f.Key == "" {
		return nil, errors.New("fallback: invalid forwarded request")
	}
	return &f, nil
}

// forwardOf is what a request made here says of the session, for its owner.
func (srv *Server) forwardOf(r *http.Request, key string) *forward {
	return &forward{Key: key, Origin: r.Header.Get("Origin"), Binding: srv.bindingOf(r)}
}

// --- POST send ---------------------------------------------------------------------------

// sendRemote forwards a POST's batch to the session's owner and answers with the owner's
// status.
func (c *cluster) sendRemote(w http.ResponseWriter, r *http.Request, owner, key string) {
	srv := c.srv
	var b batch
	if !srv.readJSON(w, r, &b) {
		return
	}
	if len(b.Messages) > srv.opts.MaxMessages {
		srv.answerSend(w, r, http.StatusRequestEntityTooLarge, 0)
		return
	}
	f := srv.forwardOf(r, key)
	f.Batch = &b
	rep, status, err := c.ask(r.Context(), owner, kindSend, f, srv.opts.ForwardTimeout)
	if status != 0 {
		srv.refuseRemote(w, r, status, owner, err)
		return
	}
	srv.answerSend(w, r, rep.Status, rep.Expected)
}

// refuseRemote answers a request whose session's owner could not be asked.
func (srv *Server) refuseRemote(w http.ResponseWriter, r *http.Request, status int, owner string, err error) {
	if status == http.StatusNotFound {
		srv.refuse(w, r, status, "unknown session: the node that held it ("+owner+") has left; open a new one")
		return
	}
	if srv.opts.Logger != nil {
		srv.opts.Logger.Debug("fallback: the owner of a session did not answer", "node", owner, "err", err)
	}
	w.Header().Set("Retry-After", "1")
	srv.refuse(w, r, status, "the node that holds the session ("+owner+") did not answer: retry the same request shortly")
}

func (c *cluster) handleSend(_ context.Context, _ string, payload []byte) ([]byte, error) {
	f, err := decodeForward(payload)
	if err != nil || f.Batch == nil {
		return nil, errors.New("fallback: invalid forwarded batch")
	}
	s, status := c.lookupFor(f)
	if s == nil {
		return reply(forwardReply{Status: status})
	}
	if len(f.Batch.Messages) > c.srv.opts.MaxMessages {
		return reply(forwardReply{Status: http.StatusRequestEntityTooLarge})
	}
	if !s.beginPost() {
		return reply(forwardReply{Status: http.StatusTooManyRequests})
	}
	defer s.endPost()
	status, expected := s.apply(f.Batch)
	return reply(forwardReply{Status: status, Expected: expected})
}

// --- POST poll ---------------------------------------------------------------------------

// pollRemote forwards a poll to the session's owner. When the owner cannot resume it, the
// client gets a reset and a new session of this node's.
func (c *cluster) pollRemote(w http.ResponseWriter, r *http.Request, owner, key string) {
	srv := c.srv
	var body struct {
		Last uint64 `json:"last"`
	}
	if !srv.readJSON(w, r, &body) {
		return
	}
	f := srv.forwardOf(r, key)
	f.Last = body.Last
	// The owner waits for messages a round at a time, each shorter than a request to it may
	// last, until PollTimeout has passed.
	round := srv.opts.ForwardTimeout / 2
	f.Wait = round.Milliseconds()
	end := time.Now().Add(srv.opts.PollTimeout)
	var rep forwardReply
	var status int
	var err error
	for {
		if left := time.Until(end); left < round {
			f.Wait = max(left.Milliseconds(), 1)
		}
		rep, status, err = c.ask(r.Context(), owner, kindPoll, f, srv.opts.ForwardTimeout)
		if status != 0 || rep.Reset || rep.Status != http.StatusOK || len(rep.Events) > 0 ||
			time.Until(end) <= 0 || r.Context().Err() != nil {
			break
		}
	}
	switch {
	case status != 0:
		srv.refuseRemote(w, r, status, owner, err)
	case rep.Reset:
		writePoll(w, srv.resetPoll(r))
	case rep.Status != http.StatusOK:
		srv.refuseStatus(w, r, rep.Status)
	default:
		writePoll(w, rep.Events)
	}
}

func (c *cluster) handlePoll(ctx context.Context, _ string, payload []byte) ([]byte, error) {
	f, err := decodeForward(payload)
	if err != nil {
		return nil, err
	}
	s, status := c.lookupFor(f)
	if s == nil {
		return reply(forwardReply{Status: status})
	}
	wait := min(time.Duration(f.Wait)*time.Millisecond, c.srv.opts.PollTimeout)
	events, resumable := s.waitPoll(ctx, f.Last, wait)
	if !resumable {
		s.end(ErrReset, closeNormal)
		return reply(forwardReply{Status: http.StatusOK, Reset: true})
	}
	return reply(forwardReply{Status: http.StatusOK, Events: events})
}

// refuseStatus answers a status the owner gave, with the words this node would use.
func (srv *Server) refuseStatus(w http.ResponseWriter, r *http.Request, status int) {
	switch status {
	case http.StatusGone:
		srv.refuse(w, r, status, "session ended: open a new one and say hello again")
	case http.StatusForbidden:
		srv.refuse(w, r, status, "the session belongs to another origin or another cookie")
	default:
		srv.refuse(w, r, status, http.StatusText(status))
	}
}

// --- a resumed stream, relayed -------------------------------------------------------------

// relayIn is a stream this node serves for a session another node owns.
type relayIn struct {
	mu      sync.Mutex
	es      *eventsource.EventSource // nil until the owner has agreed
	pending []relayEvent             // what came before that
	size    int
	ended   bool
}

// maxPending bounds what a relayed stream takes before its EventSource exists.
func (c *cluster) maxPending() int {
	return c.srv.opts.BufferBytes + 256*c.srv.opts.BufferMessages
}

// streamRemote serves a stream resumed here for a session that owner holds: the owner relays
// the session's events to it. It reports false, having answered nothing, when the owner cannot
// resume the session (the caller then sends a reset and opens a new session), with why.
func (c *cluster) streamRemote(w http.ResponseWriter, r *http.Request, owner, key string, last uint64, esOpts *eventsource.Options) (ok bool, why string) {
	srv := c.srv
	id := keyOf(newSessionID())
	in := &relayIn{}
	c.mu.Lock()
	c.relays[id] = in
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.relays, id)
		c.mu.Unlock()
	}
	f := srv.forwardOf(r, key)
	f.Last, f.Relay = last, id
	rep, status, err := c.ask(r.Context(), owner, kindAttach, f, srv.opts.ForwardTimeout)
	switch {
	case status == http.StatusNotFound:
		forget()
		return false, "the node that held the session (" + owner + ") has left"
	case status != 0:
		forget()
		if srv.opts.Logger != nil {
			srv.opts.Logger.Debug("fallback: the owner of a session did not answer a resume", "node", owner, "err", err)
		}
		return false, "the node that holds the session (" + owner + ") did not answer"
	case rep.Status == http.StatusForbidden:
		forget()
		srv.refuse(w, r, rep.Status, "the session belongs to another origin or another cookie")
		return true, ""
	case rep.Reset:
		forget()
		return false, "the messages after the last one received are no longer buffered"
	case rep.Status != http.StatusOK:
		forget()
		return false, "session ended: open a new one and say hello again"
	}
	es, err := eventsource.New(w, r, esOpts)
	if err != nil { // answered (503 while shutting down)
		forget()
		c.detach(owner, key, id)
		return true, ""
	}
	in.mu.Lock()
	in.es = es
	for _, e := range in.pending {
		in.apply(e)
	}
	if in.ended { // more came before the stream existed than it could hold: resume
		go func() { _ = es.Close() }()
	}
	in.pending, in.size = nil, 0
	in.mu.Unlock()

	var rotation *time.Timer
	if srv.opts.MaxStreamAge > 0 {
		rotation = time.AfterFunc(srv.opts.MaxStreamAge, func() {
			_ = es.SetRetry(rotateRetry)
			_ = es.Send(`{}`, eventsource.Event{Type: EventRotate})
			_ = es.Close()
		})
	}
	serve := func() {
		defer func() {
			if rotation != nil {
				rotation.Stop()
			}
			in.mu.Lock()
			in.ended = true
			in.mu.Unlock()
			forget()
			c.detach(owner, key, id)
		}()
		// Ask the owner, every KeepAlive, whether this is still the session's stream: a
		// stream the owner stopped relaying to (it left, or gave up on this node) ends, and the
		// client resumes.
		t := time.NewTicker(srv.opts.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-es.Done():
				return
			case <-t.C:
			}
			rep, status, _ := c.ask(context.Background(), owner, kindCheck, &forward{Key: key, Relay: id}, srv.opts.ForwardTimeout)
			if status != 0 || rep.Status != http.StatusNoContent {
				_ = es.Close()
				<-es.Done()
				return
			}
		}
	}
	if es.Hijacked() && c.goroutine() {
		go func() {
			defer c.wg.Done()
			serve()
		}()
		return true, ""
	}
	serve()
	return true, ""
}

// detach tells the owner that a relayed stream has ended, so that the session's grace period
// starts; the owner finds out by itself at its next relay when this is lost.
func (c *cluster) detach(owner, key, id string) {
	_, _, _ = c.ask(context.Background(), owner, kindDetach, &forward{Key: key, Relay: id}, c.srv.opts.ForwardTimeout)
}

// apply does one relayed thing to the stream. in.mu is held and in.es is set.
func (in *relayIn) apply(e relayEvent) bool {
	switch {
	case e.Close:
		es := in.es
		in.ended = true
		go func() { _ = es.Close() }()
		return true
	case e.Retry > 0:
		return in.es.SetRetry(time.Duration(e.Retry)*time.Millisecond) == nil
	}
	return in.es.Send(e.Data, eventsource.Event{Type: e.Event, ID: e.ID}) == nil
}

// handleRelay takes a batch of events from a session's owner for a stream this node serves.
func (c *cluster) handleRelay(_ context.Context, _ string, payload []byte) ([]byte, error) {
	var b relayBatch
	if err := json.Unmarshal(payload, &b); err != nil {
		return nil, errors.New("fallback: invalid relay batch")
	}
	c.mu.Lock()
	in := c.relays[b.Relay]
	c.mu.Unlock()
	gone, _ := json.Marshal(relayAnswer{Gone: true})
	if in == nil {
		return gone, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, e := range b.Events {
		if in.ended {
			return gone, nil
		}
		if in.es == nil {
			in.pending = append(in.pending, e)
			in.size += len(e.Data) + len(e.ID) + 64
			if in.size > c.maxPending() {
				in.ended = true
				return gone, nil
			}
			continue
		}
		if !in.apply(e) {
			in.ended = true
			go func() { _ = in.es.Close() }()
			return gone, nil
		}
	}
	return json.Marshal(relayAnswer{})
}

func (c *cluster) handleAttach(_ context.Context, from string, payload []byte) ([]byte, error) {
	f, err := decodeForward(payload)
	if err != nil || f.Relay == "" {
		return nil, errors.New("fallback: invalid forwarded resume")
	}
	s, status := c.lookupFor(f)
	if s == nil {
		return reply(forwardReply{Status: status})
	}
	out := &relayOut{c: c, s: s, node: from, id: f.Relay}
	if !s.attach(out, f.Last, true) {
		s.end(ErrReset, closeNormal)
		return reply(forwardReply{Status: http.StatusOK, Reset: true})
	}
	return reply(forwardReply{Status: http.StatusOK})
}

func (c *cluster) handleDetach(_ context.Context, from string, payload []byte) ([]byte, error) {
	f, err := decodeForward(payload)
	if err != nil {
		return nil, err
	}
	if s := c.srv.sessions.Load(f.Key); s != nil {
		s.mu.Lock()
		if out, ok := s.stream.(*relayOut); ok && out.node == from && out.id == f.Relay {
			s.detachLocked(out)
			out.stop()
		}
		s.mu.Unlock()
	}
	return reply(forwardReply{Status: http.StatusNoContent})
}

func (c *cluster) handleCheck(_ context.Context, from string, payload []byte) ([]byte, error) {
	f, err := decodeForward(payload)
	if err != nil {
		return nil, err
	}
	status := http.StatusGone
	if s := c.srv.sessions.Load(f.Key); s != nil {
		s.mu.Lock()
		if out, ok := s.stream.(*relayOut); ok && out.node == from && out.id == f.Relay && !s.closed {
			status = http.StatusNoContent
		}
		s.mu.Unlock()
	}
	return reply(forwardReply{Status: status})
}

// relayOut is, on a session's owner, the stream another node serves for it: what the session
// sends it is queued, and one goroutine at a time relays the queue to that node in batches,
// each acknowledged before the next, so that events arrive in order. A batch the node does not
// acknowledge (it left, it did not answer in time, its stream ended) detaches the session from
// it, as a stream that ends does; the client resumes and gets what it missed from the buffer.
type relayOut struct {
	c    *cluster
	s    *Session
	node string // the node that serves the stream
	id   string // the stream's id there

	mu      sync.Mutex
	queue   []relayEvent
	size    int
	running bool
	closed  bool // Close was called: nothing more is queued
	failed  bool
}

// errRelayFailed is what a relayed stream's Send returns once relaying to it has failed.
var errRelayFailed = errors.New("fallback: the node serving the stream did not take its events")

func (o *relayOut) Send(data string, ev eventsource.Event) error {
	return o.push(relayEvent{Event: ev.Type, ID: ev.ID, Data: data})
}

func (o *relayOut) SetRetry(d time.Duration) error {
	return o.push(relayEvent{Retry: max(d.Milliseconds(), 1)})
}

// Close ends the relayed stream, after what was queued.
func (o *relayOut) Close() error {
	err := o.push(relayEvent{Close: true})
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return err
}

// stop drops what is queued without telling the stream (it has ended).
func (o *relayOut) stop() {
	o.mu.Lock()
	o.closed, o.queue, o.size = true, nil, 0
	o.mu.Unlock()
}

func (o *relayOut) push(e relayEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failed {
		return errRelayFailed
	}
	if o.closed {
		return eventsource.ErrClosed
	}
	o.queue = append(o.queue, e)
	o.size += len(e.Data) + len(e.ID) + 64
	if o.size > o.c.maxPending() {
		o.failed, o.queue, o.size = true, nil, 0
		return eventsource.ErrSlowClient
	}
	if !o.running {
		if !o.c.goroutine() { // the server has closed
			o.failed, o.queue, o.size = true, nil, 0
			return errRelayFailed
		}
		o.running = true
		go o.run()
	}
	return nil
}

// relayBatchBytes bounds one relayed batch.
const relayBatchBytes = 256 << 10

// run relays the queue until it is empty.
func (o *relayOut) run() {
	defer o.c.wg.Done()
	for {
		o.mu.Lock()
		n, size := 0, 0
		for n < len(o.queue) && (n == 0 || size+len(o.queue[n].Data) <= relayBatchBytes) {
			size += len(o.queue[n].Data) + len(o.queue[n].ID) + 64
			n++
		}
		if n == 0 || o.failed {
			o.running = false
			o.mu.Unlock()
			return
		}
		events := append([]relayEvent(nil), o.queue[:n]...)
		o.queue = o.queue[n:]
		o.size -= size
		if len(o.queue) == 0 {
			o.queue = nil
		}
		o.mu.Unlock()

		b, _ := json.Marshal(relayBatch{Relay: o.id, Events: events})
		ctx, cancel := context.WithTimeout(context.Background(), o.c.srv.opts.ForwardTimeout)
		raw, err := o.c.node.Request(ctx, o.node, kindRelay, b)
		cancel()
		var answer relayAnswer
		if err == nil {
			err = json.Unmarshal(raw, &answer)
		}
		if err != nil || answer.Gone {
			o.mu.Lock()
			o.failed, o.queue, o.size, o.running = true, nil, 0, false
			o.mu.Unlock()
			o.s.detach(o)
			if err != nil && !unknownNode(err) {
				// The node may still serve the stream (it answered late): tell it to end, so
				// that its client resumes rather than waits on a stream nobody feeds.
				b, _ := json.Marshal(relayBatch{Relay: o.id, Events: []relayEvent{{Close: true}}})
				ctx, cancel := context.WithTimeout(context.Background(), o.c.srv.opts.ForwardTimeout)
				_, _ = o.c.node.Request(ctx, o.node, kindRelay, b)
				cancel()
			}
			return
		}
	}
}

// wait waits for the relays' goroutines, each bounded by ForwardTimeout per request, and
// starts no more.
func (c *cluster) wait() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}

// unknownNode reports whether a request failed because its node is not in the cluster.
func unknownNode(err error) bool {
	return errors.Is(err, broker.ErrUnknownNode)
}
