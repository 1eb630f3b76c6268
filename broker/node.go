package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// NodeOptions configure a Node. The zero value is valid.
type NodeOptions struct {
	// Name is the node's name, unique among the nodes sharing the engine. Zero means a random
	// name ("node-" and 16 hex digits).
	Name string
	// HeartbeatInterval is how often the node tells the others it is alive. Zero means 3 s.
	HeartbeatInterval time.Duration
	// NodeExpiry is how long a node that stopped heartbeating stays in the registry. Zero
	// means 7 s.
	NodeExpiry time.Duration
	// RequestTimeout bounds Request and Survey (the caller's context may end them sooner) and
	// the context given to the handlers of Handle. Zero means 2 s.
	RequestTimeout time.Duration
	// Linger is how long a topic stays subscribed after its last Join left, so that a topic
	// left and joined again soon costs no round trip to the engine. Zero means 1 s; a negative
	// value unsubscribes at once.
	Linger time.Duration
	// MaxHandling bounds the requests of other nodes handled at once; past it, requests are
	// answered with an error at once. Zero means 256.
	MaxHandling int
	// Logger, if set, is told of panics in handlers and of control messages dropped. Nil
	// means no logging.
	Logger *slog.Logger
}

func (o *NodeOptions) fill() {
	if o.Name == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Name = "node-" + hex.EncodeToString(b[:])
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	if o.NodeExpiry <= 0 {
		o.NodeExpiry = 7 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 2 * time.Second
	}
	if o.Linger == 0 {
		o.Linger = time.Second
	}
	if o.MaxHandling <= 0 {
		o.MaxHandling = 256
	}
}

var (
	// ErrUnknownNode is returned by Node.Request when the node is not in the registry: it
	// never heartbeated, its heartbeats stopped, or it said goodbye (even during the request).
	ErrUnknownNode = errors.New("broker: unknown node")
	// ErrTimeout is returned by Node.Request when the node did not answer within
	// NodeOptions.RequestTimeout.
	ErrTimeout = errors.New("broker: request timed out")
)

// RemoteError is returned by Node.Request when the other node's handler failed, or the node
// has no handler for the kind, or was too busy to take the request.
type RemoteError struct {
	Node    string // the node that answered
	Kind    string // the request's kind
	Message string // the handler's error text
}

// noHandler is the error text of a node that has no handler for a request's kind. A survey
// leaves such nodes out (they serve another application on the same broker), rather than
// counting them as missing.
const noHandler = "no handler for this kind"

// isNoHandler reports whether err is a node's answer that it has no handler for the kind.
func isNoHandler(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Message == noHandler
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("broker: node %q failed request %q: %s", e.Node, e.Kind, e.Message)
}

// Node is herald's view of the cluster through a Broker: reference-counted topics with any
// number of handlers each, publication, requests to one node and surveys of every node, and a
// registry of the live nodes kept by heartbeats. Every cluster feature of herald (publish
// across nodes, surveys, the fallback's forwarded POSTs) sits on one Node.
//
// Its methods are safe for concurrent use once Start has returned, and may be called from
// inside its callbacks, except Close (which waits for the callbacks to return).
//
// The handlers given to Join and OnDiscontinuity run on the broker's reader and must not
// block: they hand the work on (herald queues per socket and never waits). The handlers given
// to Handle run on goroutines of their own, at most NodeOptions.MaxHandling at once, and may
// block up to their context's deadline.
type Node struct {
	b    Broker
	opts NodeOptions
	ctx  context.Context // cancelled by Close: handlers' contexts and loops
	stop context.CancelFunc

	mu       sync.RWMutex
	started  bool
	closed   bool
	topics   map[string]*nodeTopic
	handlers map[string]func(ctx context.Context, from string, payload []byte) ([]byte, error)
	peers    map[string]time.Time // other nodes, by the time last heard
	onDisc   []*listener
	calls    map[uint64]*call
	nextID   uint64

	sem    chan struct{} // request handlers running
	outbox chan outgoing // control messages the reader wants sent
	wg     sync.WaitGroup
}

type outgoing struct {
	to  string
	msg []byte
}

// nodeTopic is one topic joined on this node. handlers is replaced, never changed in place,
// so the reader may use it without the lock.
type nodeTopic struct {
	handlers []*joined  // one per Join not yet left
	linger   *lingering // set while the topic lingers after its last leave

	op         sync.Mutex // serializes Subscribe and Unsubscribe of the topic
	subscribed bool       // guarded by op
}

// lingering is a topic's pending unsubscription.
type lingering struct{ timer *time.Timer }

type joined struct {
	fn func(payload []byte, pos Position)
}

// call is a Request or Survey waiting for replies.
type call struct {
	node    string // Request: the node asked; Survey: ""
	kind    string
	replies chan reply
}

type reply struct {
	from    string
	payload []byte
	err     error
}

// NewNode returns a Node over b. b must not be started: Node.Start starts it, and Node.Close
// closes it. opts may be nil.
func NewNode(b Broker, opts *NodeOptions) *Node {
	n := &Node{b: b}
	if opts != nil {
		n.opts = *opts
	}
	n.opts.fill()
	n.ctx, n.stop = context.WithCancel(context.Background())
	n.topics = make(map[string]*nodeTopic)
	n.handlers = make(map[string]func(context.Context, string, []byte) ([]byte, error))
	n.peers = make(map[string]time.Time)
	n.calls = make(map[uint64]*call)
	n.sem = make(chan struct{}, n.opts.MaxHandling)
	n.outbox = make(chan outgoing, 256)
	return n
}

// Name returns the node's name.
func (n *Node) Name() string { return n.opts.Name }

// Broker returns the Broker the node runs over, for its optional interfaces (HistoryReader,
// Leaser). Calling its Subscribe, Unsubscribe or Close bypasses the node: don't.
func (n *Node) Broker() Broker { return n.b }

// Start starts the broker and the node's heartbeats. Handlers for requests (Handle) are best
// registered before, so that no request finds them missing.
//
// The registry (Nodes) fills as the other nodes answer the node's first heartbeat, a round
// trip after Start returns: until then Request to them fails with ErrUnknownNode. A Start that
// failed may be called again. Start fails with ErrClosed once Close has been called, also when
// Close runs while Start waits for the broker.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.started {
		n.mu.Unlock()
		return errors.New("broker: Node started twice")
	}
	n.started = true
	n.mu.Unlock()
	if err := n.b.Start(ctx, n.opts.Name, nodeHandler{n}); err != nil {
		n.mu.Lock()
		n.started = false // Start may be tried again (herald retries until the broker answers)
		n.mu.Unlock()
		return fmt.Errorf("broker: node %q: %w", n.opts.Name, err)
	}
	// Close may have run while the broker started: it waited for no goroutine, so none may
	// start now. The check and the Add are under the lock that Close sets closed under.
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("broker: node %q: %w (Close was called during Start)", n.opts.Name, ErrClosed)
	}
	n.wg.Add(2)
	go n.heartbeat()
	go n.send()
	return nil
}

// Err reports the state of the node's link: nil while it is up, an error wrapping
// ErrUnavailable while it is down, ErrClosed after Close.
func (n *Node) Err() error {
	n.mu.RLock()
	closed := n.closed
	n.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return n.b.Err()
}

// Close tells the other nodes this one is leaving, closes the broker and waits for the
// node's goroutines, request handlers included (their contexts are cancelled).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	for _, t := range n.topics {
		if t.linger != nil && t.linger.timer.Stop() {
			n.wg.Done()
		}
		t.linger = nil
	}
	n.mu.Unlock()
	if started && n.b.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.b.Send(ctx, "", appendControl(nil, control{Type: controlHeartbeat, Flags: heartbeatBye}))
		cancel()
	}
	n.stop()
	err := n.b.Close()
	n.wg.Wait()
	n.mu.Lock()
	for id, c := range n.calls {
		delete(n.calls, id)
		select {
		case c.replies <- reply{err: ErrClosed}:
		default:
		}
	}
	n.mu.Unlock()
	return err
}

// Join makes fn hear the messages published on topic from now until leave is called. The
// first Join of a topic subscribes the node to it and returns once the engine confirmed;
// later ones return at once. The last leave unsubscribes, after NodeOptions.Linger.
//
// fn is called on the broker's reader, one message at a time in the order the node heard
// them, and must not block. payload is fn's to keep but not to change (other handlers of the
// topic see the same bytes). leave may be called any number of times, from anywhere.
func (n *Node) Join(ctx context.Context, topic string, fn func(payload []byte, pos Position)) (leave func(), err error) {
	j := &joined{fn: fn}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	t := n.topics[topic]
	if t == nil {
		t = &nodeTopic{}
		n.topics[topic] = t
	}
	t.handlers = append(slices.Clip(t.handlers), j)
	if t.linger != nil && t.linger.timer.Stop() {
		n.wg.Done()
	}
	t.linger = nil
	n.mu.Unlock()

	t.op.Lock()
	if !t.subscribed {
		err = n.b.Subscribe(ctx, topic)
		t.subscribed = err == nil
	}
	t.op.Unlock()
	var once sync.Once
	leave = func() { once.Do(func() { n.leave(topic, t, j) }) }
	if err != nil {
		leave()
		return nil, fmt.Errorf("broker: join %q: %w", topic, err)
	}
	return leave, nil
}

func (n *Node) leave(topic string, t *nodeTopic, j *joined) {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := slices.Index(t.handlers, j)
	if i < 0 {
		return
	}
	t.handlers = slices.Delete(slices.Clone(t.handlers), i, i+1)
	if len(t.handlers) > 0 || n.closed {
		return
	}
	linger := max(n.opts.Linger, 0)
	n.wg.Add(1)
	l := &lingering{}
	l.timer = time.AfterFunc(linger, func() {
		defer n.wg.Done()
		n.unsubscribe(topic, t, l)
	})
	t.linger = l
}

// unsubscribe runs when topic's linger ends.
func (n *Node) unsubscribe(topic string, t *nodeTopic, l *lingering) {
	n.mu.Lock()
	if t.linger != l || len(t.handlers) > 0 || n.closed {
		n.mu.Unlock()
		return
	}
	t.linger = nil
	n.mu.Unlock()

	t.op.Lock()
	defer t.op.Unlock()
	n.mu.Lock()
	if len(t.handlers) > 0 {
		// Joined again while we waited for op: it found the topic subscribed.
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
	err := n.b.Unsubscribe(ctx, topic)
	cancel()
	if err != nil && n.opts.Logger != nil && n.ctx.Err() == nil {
		n.opts.Logger.Warn("broker: unsubscribe failed; the node keeps hearing the topic until its link is reset", "topic", topic, "err", err)
	}
	t.subscribed = false
	n.mu.Lock()
	if len(t.handlers) == 0 && n.topics[topic] == t {
		delete(n.topics, topic)
	}
	n.mu.Unlock()
}

// Topics returns the topics the node has joined, sorted.
func (n *Node) Topics() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, len(n.topics))
	for topic, t := range n.topics {
		if len(t.handlers) > 0 {
			out = append(out, topic)
		}
	}
	sort.Strings(out)
	return out
}

// Publish publishes payload on topic through the broker: every node that joined the topic
// hears it, this one included. See Broker.Publish.
func (n *Node) Publish(ctx context.Context, topic string, payload []byte, opts PublishOptions) (Position, error) {
	if err := n.usable(); err != nil {
		return Position{}, err
	}
	return n.b.Publish(ctx, topic, payload, opts)
}

func (n *Node) usable() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	switch {
	case n.closed:
		return ErrClosed
	case !n.started:
		return errors.New("broker: Node used before Start")
	}
	return nil
}

// OnDiscontinuity registers fn to hear that the node's link was lost and is back: messages on
// the listed topics (nil: every topic) may have been missed. fn runs on the broker's reader
// and must not block. remove unregisters fn (a user that lives shorter than the node, a
// stream say, must call it); it may be called any number of times.
func (n *Node) OnDiscontinuity(fn func(topics []string, err error)) (remove func()) {
	l := &listener{fn: fn}
	n.mu.Lock()
	n.onDisc = append(slices.Clip(n.onDisc), l)
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		if i := slices.Index(n.onDisc, l); i >= 0 {
			n.onDisc = slices.Delete(slices.Clone(n.onDisc), i, i+1)
		}
		n.mu.Unlock()
	}
}

// listener is one OnDiscontinuity registration. onDisc is replaced, never changed in place,
// so the reader may use it without the lock.
type listener struct {
	fn func(topics []string, err error)
}

// Handle registers fn to answer the requests of kind that other nodes make with Request and
// Survey (and this node too). A later Handle for the same kind replaces fn.
//
// fn runs on a goroutine of its own; ctx ends after NodeOptions.RequestTimeout or when the
// node closes. from is the asking node's name. A returned error reaches the asker as a
// *RemoteError with the error's text.
func (n *Node) Handle(kind string, fn func(ctx context.Context, from string, payload []byte) ([]byte, error)) {
	n.mu.Lock()
	n.handlers[kind] = fn
	n.mu.Unlock()
}

// Nodes returns the names of the live nodes, this one included, sorted: those heard from
// within NodeOptions.NodeExpiry.
func (n *Node) Nodes() []string {
	now := time.Now()
	n.mu.RLock()
	out := []string{n.opts.Name}
	for name, last := range n.peers {
		if now.Sub(last) <= n.opts.NodeExpiry {
			out = append(out, name)
		}
	}
	n.mu.RUnlock()
	sort.Strings(out)
	return out
}

func (n *Node) alive(name string) bool {
	n.mu.RLock()
	last, ok := n.peers[name]
	n.mu.RUnlock()
	return ok && time.Since(last) <= n.opts.NodeExpiry
}

// Request asks node to handle payload as kind and returns its answer. It fails at once with
// ErrUnknownNode when node is not in the registry, with ErrTimeout when no answer came within
// NodeOptions.RequestTimeout, and with a *RemoteError when the node's handler failed. A
// request to this node runs its handler directly.
func (n *Node) Request(ctx context.Context, node, kind string, payload []byte) ([]byte, error) {
	if err := n.usable(); err != nil {
		return nil, err
	}
	if len(kind) > maxKindLen {
		return nil, fmt.Errorf("broker: request kind of %d bytes (at most %d)", len(kind), maxKindLen)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.opts.RequestTimeout, errRequestTimeout)
	defer cancel()
	if node == n.opts.Name {
		return n.handleLocal(ctx, kind, payload)
	}
	if !n.alive(node) {
		return nil, fmt.Errorf("%w: %q (not heard from within %v)", ErrUnknownNode, node, n.opts.NodeExpiry)
	}
	id, c := n.register(node, kind, 1)
	defer n.unregister(id)
	if err := n.b.Send(ctx, node, appendControl(nil, control{Type: controlRequest, ID: id, Kind: kind, Payload: payload})); err != nil {
		return nil, fmt.Errorf("broker: request %q to node %q: %w", kind, node, err)
	}
	select {
	case r := <-c.replies:
		return r.payload, r.err
	case <-ctx.Done():
		if context.Cause(ctx) != errRequestTimeout {
			return nil, fmt.Errorf("broker: request %q to node %q: %w", kind, node, ctx.Err())
		}
		return nil, fmt.Errorf("%w: node %q did not answer %q within %v (NodeOptions.RequestTimeout)", ErrTimeout, node, kind, n.opts.RequestTimeout)
	}
}

// errRequestTimeout is the cause of a request's context ending after RequestTimeout.
var errRequestTimeout = errors.New("broker: RequestTimeout passed")

func (n *Node) handleLocal(ctx context.Context, kind string, payload []byte) ([]byte, error) {
	n.mu.RLock()
	fn := n.handlers[kind]
	n.mu.RUnlock()
	if fn == nil {
		return nil, &RemoteError{Node: n.opts.Name, Kind: kind, Message: noHandler}
	}
	out, err := n.run(ctx, fn, n.opts.Name, payload)
	if err != nil {
		return nil, &RemoteError{Node: n.opts.Name, Kind: kind, Message: err.Error()}
	}
	return out, nil
}

// run calls fn, turning a panic into an error.
func (n *Node) run(ctx context.Context, fn func(context.Context, string, []byte) ([]byte, error), from string, payload []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
			if n.opts.Logger != nil {
				n.opts.Logger.Error("broker: request handler panicked", "from", from, "panic", p)
			}
		}
	}()
	return fn(ctx, from, payload)
}

func (n *Node) register(node, kind string, size int) (uint64, *call) {
	c := &call{node: node, kind: kind, replies: make(chan reply, size)}
	n.mu.Lock()
	n.nextID++
	id := n.nextID
	n.calls[id] = c
	n.mu.Unlock()
	return id, c
}

func (n *Node) unregister(id uint64) {
	n.mu.Lock()
	delete(n.calls, id)
	n.mu.Unlock()
}

// Survey asks every live node (this one included) to handle payload as kind, and returns the
// answers by node name once every node answered, or RequestTimeout passed, or ctx ended.
// missing names the nodes of the registry that did not answer in time, answered with an
// error, or left during the survey; a node that has no handler for kind (another application
// sharing the broker) is in neither. err is set only when the survey could not be sent, or
// this node closed during it (ErrClosed): replies then holds the answers it had.
func (n *Node) Survey(ctx context.Context, kind string, payload []byte) (replies map[string][]byte, missing []string, err error) {
	if err := n.usable(); err != nil {
		return nil, nil, err
	}
	if len(kind) > maxKindLen {
		return nil, nil, fmt.Errorf("broker: survey kind of %d bytes (at most %d)", len(kind), maxKindLen)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.RequestTimeout)
	defer cancel()
	expected := n.Nodes()
	id, c := n.register("", kind, 2*len(expected)+16)
	defer n.unregister(id)
	replies = make(map[string][]byte, len(expected))
	failed := make(map[string]bool)
	if len(expected) > 1 {
		err = n.b.Send(ctx, "", appendControl(nil, control{Type: controlRequest, ID: id, Kind: kind, Payload: payload}))
		if err != nil {
			err = fmt.Errorf("broker: survey %q: %w", kind, err)
		}
	}
	skipped := make(map[string]bool)
	if out, lerr := n.handleLocal(ctx, kind, payload); lerr == nil {
		replies[n.opts.Name] = out
	} else {
		failed[n.opts.Name] = true
		skipped[n.opts.Name] = isNoHandler(lerr)
	}
	pending := len(expected) - 1
	if err != nil {
		pending = 0
	}
	for pending > 0 {
		select {
		case r := <-c.replies:
			if r.from == "" && errors.Is(r.err, ErrClosed) { // from Close: no more answers
				err = fmt.Errorf("broker: survey %q: %w", kind, r.err)
				pending = 0
				continue
			}
			if _, dup := replies[r.from]; dup || failed[r.from] {
				continue
			}
			if r.err != nil {
				failed[r.from] = true
				skipped[r.from] = isNoHandler(r.err)
			} else {
				replies[r.from] = r.payload
			}
			if slices.Contains(expected, r.from) {
				pending--
			}
		case <-ctx.Done():
			pending = 0
		}
	}
	for _, name := range expected {
		if _, ok := replies[name]; !ok && !skipped[name] {
			missing = append(missing, name)
		}
	}
	return replies, missing, err
}

// heartbeat tells the other nodes this one is alive, and forgets those gone quiet.
func (n *Node) heartbeat() {
	defer n.wg.Done()
	n.sendControl("", control{Type: controlHeartbeat, Flags: heartbeatHello})
	tick := time.NewTicker(n.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		n.sendControl("", control{Type: controlHeartbeat})
		now := time.Now()
		n.mu.Lock()
		for name, last := range n.peers {
			if now.Sub(last) > n.opts.NodeExpiry {
				delete(n.peers, name)
			}
		}
		n.mu.Unlock()
	}
}

func (n *Node) sendControl(to string, c control) {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
	defer cancel()
	if err := n.b.Send(ctx, to, appendControl(nil, c)); err != nil && n.opts.Logger != nil && n.ctx.Err() == nil {
		n.opts.Logger.Debug("broker: control message not sent", "to", to, "type", c.Type, "err", err)
	}
}

// send sends what the reader queued on the outbox.
func (n *Node) send() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case o := <-n.outbox:
			ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
			_ = n.b.Send(ctx, o.to, o.msg)
			cancel()
		}
	}
}

// queue hands a control message to the sender without blocking the reader.
func (n *Node) queue(to string, c control) {
	select {
	case n.outbox <- outgoing{to: to, msg: appendControl(nil, c)}:
	default:
		if n.opts.Logger != nil {
			n.opts.Logger.Warn("broker: control outbox full; message dropped", "to", to, "type", c.Type)
		}
	}
}

// nodeHandler is the Handler a Node gives its Broker.
type nodeHandler struct{ n *Node }

func (h nodeHandler) HandleMessage(topic string, payload []byte, pos Position) {
	n := h.n
	n.mu.RLock()
	t := n.topics[topic]
	var hs []*joined
	if t != nil {
		hs = t.handlers
	}
	n.mu.RUnlock()
	for _, j := range hs {
		j.fn(payload, pos)
	}
}

func (h nodeHandler) HandleDiscontinuity(topics []string, err error) {
	n := h.n
	n.mu.RLock()
	fns := n.onDisc
	n.mu.RUnlock()
	for _, l := range fns {
		l.fn(topics, err)
	}
	// The registry may be stale: ask the others to say they are there.
	n.queue("", control{Type: controlHeartbeat, Flags: heartbeatHello})
}

func (h nodeHandler) HandleNode(from string, payload []byte) {
	n := h.n
	c, err := parseControl(payload)
	if err != nil {
		if n.opts.Logger != nil {
			n.opts.Logger.Warn("broker: malformed control message dropped", "from", from, "err", err)
		}
		return
	}
	switch c.Type {
	case controlHeartbeat:
		n.heard(from, c.Flags)
	case controlRequest:
		if from == n.opts.Name {
			return // this node's own survey: it answered directly
		}
		n.touch(from)
		n.handleRemote(from, c)
	case controlReply, controlError:
		n.touch(from)
		n.mu.RLock()
		call := n.calls[c.ID]
		n.mu.RUnlock()
		if call == nil || (call.node != "" && call.node != from) {
			return // late, or not from the node asked
		}
		r := reply{from: from, payload: c.Payload}
		if c.Type == controlError {
			r = reply{from: from, err: &RemoteError{Node: from, Kind: call.kind, Message: string(c.Payload)}}
		}
		select {
		case call.replies <- r:
		default:
		}
	}
}

// touch marks from as alive if it is known: a message is as good as a heartbeat.
func (n *Node) touch(from string) {
	n.mu.Lock()
	if _, ok := n.peers[from]; ok {
		n.peers[from] = time.Now()
	}
	n.mu.Unlock()
}

func (n *Node) heard(from string, flags byte) {
	if from == n.opts.Name {
		return
	}
	n.mu.Lock()
	if flags&heartbeatBye != 0 {
		delete(n.peers, from)
		for _, c := range n.calls {
			// The Requests to from, and every Survey: from will not answer (a Survey that
			// had its answer skips this one).
			if c.node == from || c.node == "" {
				select {
				case c.replies <- reply{from: from, err: fmt.Errorf("%w: %q left during the request", ErrUnknownNode, from)}:
				default:
				}
			}
		}
		n.mu.Unlock()
		return
	}
	n.peers[from] = time.Now()
	n.mu.Unlock()
	if flags&heartbeatHello != 0 {
		n.queue(from, control{Type: controlHeartbeat})
	}
}

// handleRemote runs a request of another node on a goroutine of its own.
func (n *Node) handleRemote(from string, c control) {
	n.mu.RLock()
	fn, closed := n.handlers[c.Kind], n.closed
	n.mu.RUnlock()
	if closed {
		return
	}
	if fn == nil {
		n.queue(from, control{Type: controlError, ID: c.ID, Payload: []byte(noHandler)})
		return
	}
	select {
	case n.sem <- struct{}{}:
	default:
		n.queue(from, control{Type: controlError, ID: c.ID, Payload: fmt.Appendf(nil, "node busy: %d requests being handled (NodeOptions.MaxHandling)", n.opts.MaxHandling)})
		return
	}
	payload := c.Payload
	if payload != nil {
		payload = slices.Clone(payload)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.sem }()
		ctx, cancel := context.WithTimeout(n.ctx, n.opts.RequestTimeout)
		defer cancel()
		out, err := n.run(ctx, fn, from, payload)
		rc := control{Type: controlReply, ID: c.ID, Payload: out}
		if err != nil {
			rc = control{Type: controlError, ID: c.ID, Payload: []byte(err.Error())}
		}
		if err := n.b.Send(ctx, from, appendControl(nil, rc)); err != nil && n.opts.Logger != nil && n.ctx.Err() == nil {
			n.opts.Logger.Warn("broker: reply not sent", "to", from, "kind", c.Kind, "err", err)
		}
	}()
}
