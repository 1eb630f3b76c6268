package herald

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/broker"
)

// What crosses nodes when Options.Broker is set. Every publication, broadcast, revocation and
// group broadcast is published on a broker topic and delivered by every node that hears it,
// this one included, to its own sockets: every node sees one order per topic, and filters run
// where the sockets are.
//
//	p:<path>   publications and revocations of one concrete path, and its presence events;
//	           joined while this node has a subscriber on the path
//	u:<user>   broadcasts and disconnections of one user (AuthOptions.Index); joined while
//	           this node has a socket of the user
//	g:<group>  broadcasts to a group; joined while this node has a member
//	b          broadcasts to every socket and RevokeUser; joined by every node
//
// Topics are held by reference counting: the first socket that needs one joins it (and its
// sub's acknowledgement waits for the join), the last one that leaves lets it go.

// cluster is a Server's link to the other nodes.
type cluster struct {
	s    *Server
	node *broker.Node // the fallback uses it too
	name string

	leaser      broker.Leaser // with AuthOptions.MaxConnectionsPerUserCluster
	leaseTTL    time.Duration
	stopRenewal chan struct{}
	started     atomic.Bool // the node started

	mu     sync.Mutex
	topics map[string]*topicRef
	users  map[*Socket]*userHold // sockets indexed under a user with a lease or a held u: topic
	closed bool

	work serialQueue // lease releases and revocations' OnUnsubscribe, off the callers' locks and the broker's reader
	wg   sync.WaitGroup
}

// topicRef is one topic this node holds.
type topicRef struct {
	n     int           // holders, including those waiting for the join
	ready chan struct{} // closed once the join settled
	err   error         // why the join failed
	leave func()
}

// serverStats counts what the cluster saw: the hook point for metrics and health checks.
type serverStats struct {
	discontinuities  atomic.Uint64         // broker links lost and restored
	presenceDropped  atomic.Uint64         // presence events dropped (queue full, or not published)
	discontinuityErr atomic.Pointer[error] // the last discontinuity's cause
}

// Discontinuities returns how many times the broker link (Options.Broker) was lost and
// restored since the server started. Each time, messages published meanwhile may have been
// lost to this node's sockets (see Options.CloseOnDiscontinuity).
func (s *Server) Discontinuities() uint64 { return s.stats.discontinuities.Load() }

// ErrServiceRestart is why sockets close, with WebSocket status 1012 (service restart), when
// the broker link was lost and Options.CloseOnDiscontinuity is set: clients reconnect and
// subscribe again.
var ErrServiceRestart = errors.New("nes: broker link lost and restored; reconnect to resubscribe")

// Envelope kinds.
const (
	kindPub        = 'p' // a publication on path
	kindRevoke     = 'r' // a revocation of path (user: only that user's sockets)
	kindUpdate     = 'u' // a broadcast (user: only that user's sockets)
	kindGroup      = 'g' // a broadcast to group (in path)
	kindPresence   = 'e' // a presence event on path (message: the event)
	kindRevokeUser = 'R' // RevokeUser(user)
	kindDisconnect = 'D' // DisconnectUser(user)
)

// envelope is what travels on a topic: a kind byte, then path, user, internal and message,
// each as a uvarint length and its bytes. It is decoded without copying.
type envelope struct {
	kind     byte
	path     string
	user     string
	internal []byte
	message  []byte
}

func (e *envelope) encode() []byte {
	n := 1 + 4*binary.MaxVarintLen64 + len(e.path) + len(e.user) + len(e.internal) + len(e.message)
	b := make([]byte, 0, n)
	b = append(b, e.kind)
	for _, f := range [][]byte{[]byte(e.path), []byte(e.user), e.internal, e.message} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

var errBadEnvelope = errors.New("herald: malformed message from the broker")

func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) == 0 {
		return e, errBadEnvelope
	}
	e.kind, b = b[0], b[1:]
	var fields [4][]byte
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return e, errBadEnvelope
		}
		fields[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	e.path, e.user, e.internal, e.message = string(fields[0]), string(fields[1]), fields[2], fields[3]
	return e, nil
}

// Timeouts of the cluster's own calls to the broker.
const (
	clusterStartTimeout   = 5 * time.Second
	clusterPublishTimeout = 5 * time.Second
	clusterLeaveTimeout   = 5 * time.Second
	defaultSurveyTimeout  = 2 * time.Second
)

// Survey kinds, handled by every node.
const (
	surveySockets  = "herald.sockets"
	surveyPresence = "herald.presence"
)

// newNodeName returns a random node name.
func newNodeName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "herald-" + hex.EncodeToString(b[:])
}

// newCluster links s to the other nodes through b. It does not start the link.
func newCluster(s *Server, b broker.Broker, name string) *cluster {
	if name == "" {
		name = newNodeName()
	}
	c := &cluster{s: s, name: name, topics: map[string]*topicRef{}, users: map[*Socket]*userHold{}}
	c.node = broker.NewNode(b, &broker.NodeOptions{Name: name, Logger: s.opts.Logger})
	c.work.wg = &c.wg
	if a := s.opts.Auth; a != nil && a.MaxConnectionsPerUserCluster > 0 {
		if !a.Index {
			panic("herald: AuthOptions.MaxConnectionsPerUserCluster needs AuthOptions.Index")
		}
		l, ok := b.(broker.Leaser)
		if !ok {
			panic(fmt.Sprintf("herald: AuthOptions.MaxConnectionsPerUserCluster needs a broker that holds leases (broker.Leaser); %T does not", b))
		}
		c.leaser = l
		c.leaseTTL = 3 * s.heartbeat.Interval
		if s.heartbeat.Disabled {
			c.leaseTTL = 3 * defaultHeartbeatInterval
		}
	}
	return c
}

// start starts the link and joins topic b. On failure it logs and tries again in the
// background until the server closes; meanwhile brokerErr reports it.
func (c *cluster) start() {
	c.node.Handle(surveySockets, c.answerSockets)
	c.node.Handle(surveyPresence, c.answerPresence)
	c.node.OnDiscontinuity(c.discontinuity)
	c.stopRenewal = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	err := c.tryStart(ctx)
	cancel()
	if err == nil {
		c.startRenewal()
		return
	}
	c.s.log.Error("herald: cannot start the broker link; retrying", "node", c.name, "err", err)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		delay := 100 * time.Millisecond
		for {
			select {
			case <-c.stopRenewal:
				return
			case <-time.After(delay):
			}
			ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
			err := c.tryStart(ctx)
			cancel()
			if err == nil {
				c.s.log.Info("herald: broker link started", "node", c.name)
				c.startRenewal()
				return
			}
			delay = min(2*delay, 5*time.Second)
		}
	}()
}

var errNotStarted = fmt.Errorf("%w: herald's broker link has not started yet", broker.ErrUnavailable)

// tryStart starts the node (once) and joins b.
func (c *cluster) tryStart(ctx context.Context) error {
	if !c.started.Load() {
		if err := c.node.Start(ctx); err != nil {
			return err
		}
		c.started.Store(true)
	}
	return c.hold(ctx, "b")
}

// startRenewal renews the leases of the per-user limit every heartbeat interval.
func (c *cluster) startRenewal() {
	if c.leaser == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-c.stopRenewal:
				return
			case <-t.C:
				c.renewLeases()
			}
		}
	}()
}

// close stops the link once the server's sockets are gone: it waits for pending leaves and
// lease releases, then closes the node.
func (c *cluster) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stopRenewal)
	c.work.stop() // no Add to c.wg after this, so that Wait cannot race one
	c.wg.Wait()
	if err := c.node.Close(); err != nil {
		c.s.log.Warn("herald: closing the broker link", "node", c.name, "err", err)
	}
}

// err reports the state of the link: nil while it is up.
func (c *cluster) err() error {
	if !c.started.Load() {
		return errNotStarted
	}
	if err := c.node.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.topics["b"]; r == nil || !isClosed(r.ready) || r.err != nil {
		return errNotStarted
	}
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// brokerErr reports the broker link's state for readiness checks: nil without a broker or
// while the link is up, an error wrapping broker.ErrUnavailable while it is down.
func (s *Server) brokerErr() error {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.err()
}

// NodeName returns this server's node name among those sharing Options.Broker (Options.Node,
// or the random name given when it is empty). Without a broker it is empty.
func (s *Server) NodeName() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.name
}

// Node returns the server's link to the other nodes (nil without Options.Broker), for an
// application's own cluster traffic: its own topics (Join, Publish) and requests (Handle,
// Request, Survey). Sharing the server's Node costs no second connection to the engine and
// keeps the node registry to one entry per process. herald's topics start with "p:", "b:",
// "u:", "g:" and "s:", and its request kinds with "herald." and "fallback.": name yours apart,
// with a prefix such as "app:". The Node is the server's: do not Close it.
func (s *Server) Node() *broker.Node {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.node
}

// hold makes this node hear topic, joining it on first use, and returns once the join is
// confirmed. Each successful hold is paired with one release.
func (c *cluster) hold(ctx context.Context, topic string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrServerClosed
	}
	r := c.topics[topic]
	if r != nil {
		r.n++
		c.mu.Unlock()
		select {
		case <-r.ready:
		case <-ctx.Done():
			c.releaseRef(topic, r)
			return ctx.Err()
		}
		if r.err != nil {
			return r.err // the ref is gone from the map, with the holders that waited for it
		}
		return nil
	}
	r = &topicRef{n: 1, ready: make(chan struct{})}
	c.topics[topic] = r
	c.mu.Unlock()
	// The join serves every holder that waits for it: the first one's cancellation (its
	// socket closing) must not fail the others.
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clusterPublishTimeout)
	leave, err := c.node.Join(jctx, topic, func(payload []byte, _ broker.Position) { c.receive(topic, payload) })
	cancel()
	c.mu.Lock()
	r.leave = leave
	if err != nil {
		// The holders that waited for this join fail with it and release nothing.
		r.err = fmt.Errorf("herald: joining broker topic %q: %w", topic, err)
		err = r.err
		if c.topics[topic] == r {
			delete(c.topics, topic)
		}
	}
	close(r.ready)
	c.mu.Unlock()
	return err
}

// release gives back a hold of topic. It never waits.
func (c *cluster) release(topic string) {
	c.mu.Lock()
	r := c.topics[topic]
	c.mu.Unlock()
	if r != nil {
		c.releaseRef(topic, r)
	}
}

func (c *cluster) releaseRef(topic string, r *topicRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.n--
	if r.n > 0 || !isClosed(r.ready) || r.err != nil {
		// Still held; or the join is running, and its caller holds the topic until then.
		return
	}
	if c.topics[topic] == r {
		delete(c.topics, topic)
	}
	// Under c.mu, so that a new join of the topic cannot add its handler before this one's
	// is gone (each message would then be delivered twice). The node's leave never waits:
	// it unsubscribes after its linger, on a timer.
	r.leave()
}

// receive handles a message heard on topic. It runs on the broker's reader and never waits
// on a socket.
func (c *cluster) receive(topic string, payload []byte) {
	e, err := decodeEnvelope(payload)
	if err != nil {
		c.s.log.Warn("herald: dropping a malformed broker message", "topic", topic, "err", err)
		return
	}
	s := c.s
	switch e.kind {
	case kindPub:
		s.receivePublication(e)
	case kindRevoke:
		s.revokeLocal(e.path, e.message, e.user, true)
	case kindUpdate:
		_ = s.deliverBroadcast(e.message, e.user)
	case kindGroup:
		s.deliverGroup(e.path, e.message)
	case kindPresence:
		s.deliverPresence(e.path, e.message)
	case kindRevokeUser:
		s.revokeUserLocal(e.user)
	case kindDisconnect:
		s.disconnectUserLocal(e.user)
	default:
		c.s.log.Warn("herald: dropping a broker message of an unknown kind", "topic", topic, "kind", e.kind)
	}
}

// publish sends an envelope on topic.
func (c *cluster) publish(topic string, e *envelope) error {
	if err := c.err(); err != nil {
		return fmt.Errorf("herald: cannot publish on the broker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterPublishTimeout)
	defer cancel()
	if _, err := c.node.Publish(ctx, topic, e.encode(), broker.PublishOptions{}); err != nil {
		return fmt.Errorf("herald: cannot publish on the broker: %w", err)
	}
	return nil
}

// receivePublication delivers a publication heard from the broker to this node's sockets.
// The filter sees the message and Internal decoded from JSON.
func (s *Server) receivePublication(e envelope) {
	sub, params, ok := s.subs.match(e.path)
	if !ok {
		return
	}
	o := PublishOptions{User: e.user}
	var message any
	if sub.opts.Filter != nil {
		if err := json.Unmarshal(e.message, &message); err != nil {
			s.log.Warn("herald: dropping a publication whose message is not JSON", "path", e.path, "err", err)
			return
		}
		if len(e.internal) > 0 {
			if err := json.Unmarshal(e.internal, &o.Internal); err != nil {
				s.log.Warn("herald: dropping a publication whose Internal is not JSON", "path", e.path, "err", err)
				return
			}
		}
	}
	if err := s.deliverPublication(sub, e.path, params, message, json.RawMessage(e.message), o); err != nil {
		s.log.Warn("herald: cannot deliver a publication", "path", e.path, "err", err)
	}
}

// revokeLocal revokes path for this node's subscribers of it (only user's when set), telling
// each client with message (nil: none). With async, OnUnsubscribe runs off the caller's
// goroutine (the broker's reader never waits on an application callback).
func (s *Server) revokeLocal(path string, message []byte, user string, async bool) {
	sub, _, ok := s.subs.match(path)
	if !ok {
		return
	}
	data, err := encode(pushRevoke{Type: "revoke", Path: path, Message: message})
	if err != nil {
		s.log.Error("herald: cannot encode a revocation", "path", path, "err", err)
		return
	}
	for _, sock := range sub.targets(path, user) {
		sock.mu.Lock()
		if p := sock.pending[path]; p != nil {
			p.cancelled = true
		}
		cur, joined := sock.subs[path]
		var params map[string]string
		if joined {
			delete(sock.subs, path)
			params = cur.remove(sock, path)
		}
		sock.mu.Unlock()
		if !joined {
			continue
		}
		sock.enqueue(outgoing{data: data})
		if cur.opts.OnUnsubscribe == nil {
			continue
		}
		if !async || s.cluster == nil {
			cur.runOnUnsubscribe(context.Background(), sock, path, params)
			continue
		}
		s.cluster.work.push(func() { cur.runOnUnsubscribe(context.Background(), sock, path, params) })
	}
}

// DisconnectUser disconnects every socket of user (AuthOptions.Index), on every node with
// Options.Broker: messages already being processed are answered first, as with
// Socket.Disconnect, and clients may reconnect. Unlike RevokeUser it refuses nothing
// afterwards. With a broker it fails while the link is down.
func (s *Server) DisconnectUser(user string) error {
	if user == "" {
		return errors.New("herald: DisconnectUser needs a user (Credentials.User)")
	}
	if s.auth == nil || !s.auth.opts.Index {
		return errors.New("herald: DisconnectUser needs AuthOptions.Index")
	}
	if s.cluster != nil {
		return s.cluster.publish("u:"+user, &envelope{kind: kindDisconnect, user: user})
	}
	s.disconnectUserLocal(user)
	return nil
}

func (s *Server) disconnectUserLocal(user string) {
	for _, sock := range s.socketsSnapshot(user) {
		sock.Disconnect()
	}
}

// discontinuity is told by the node that its link was lost and is back.
func (c *cluster) discontinuity(topics []string, err error) {
	if c.leaser != nil {
		// The engine may have lost the leases (a Redis restart without persistence): take
		// them again, so that the limit keeps counting this node's sockets.
		c.work.push(c.reacquireLeases)
	}
	c.s.stats.discontinuityErr.Store(&err)
	c.s.stats.discontinuities.Add(1)
	c.s.log.Warn("herald: broker link lost and restored: messages may have been missed", "node", c.name, "topics", len(topics), "err", err)
	if !c.s.opts.CloseOnDiscontinuity {
		return
	}
	for _, sock := range c.s.affectedSockets(topics) {
		sock.closeNow(ErrServiceRestart)
	}
}

// affectedSockets lists the sockets that may have missed messages on topics (nil: all).
func (s *Server) affectedSockets(topics []string) []*Socket {
	if topics == nil {
		return s.socketsSnapshot("")
	}
	seen := map[*Socket]struct{}{}
	var out []*Socket
	add := func(socks []*Socket) {
		for _, sock := range socks {
			if _, dup := seen[sock]; !dup {
				seen[sock] = struct{}{}
				out = append(out, sock)
			}
		}
	}
	for _, t := range topics {
		switch {
		case t == "b":
			return s.socketsSnapshot("")
		case len(t) > 2 && t[:2] == "p:":
			if sub, _, ok := s.subs.match(t[2:]); ok {
				add(sub.targets(t[2:], ""))
			}
		case len(t) > 2 && t[:2] == "u:":
			add(s.socketsSnapshot(t[2:]))
		case len(t) > 2 && t[:2] == "g:":
			add(s.groups.members(t[2:]))
		}
	}
	return out
}

// holdPath makes this node hear publications on path before a socket joins it (a no-op
// without a broker). Each successful hold is paired with releasePath, which sub.remove calls.
func (s *Server) holdPath(ctx context.Context, path string) error {
	if s.cluster == nil {
		return nil
	}
	if err := s.cluster.hold(ctx, "p:"+path); err != nil {
		return &Error{StatusCode: 503, Message: "Service Unavailable", err: err}
	}
	return nil
}

// releasePath gives back a holdPath. It never waits.
func (s *Server) releasePath(path string) {
	if s.cluster != nil {
		s.cluster.release("p:" + path)
	}
}

// serialQueue runs functions one at a time, in order, on a goroutine that exists only while
// there is work. push never waits.
type serialQueue struct {
	mu      sync.Mutex
	q       []func()
	running bool
	stopped bool // after stop: pushes are dropped
	wg      *sync.WaitGroup
	idle    chan struct{} // closed when the queue empties, for drain
}

// maxQueuedWork bounds the functions waiting in a serialQueue; past it pushOrDrop drops.
const maxQueuedWork = 1 << 16

func (w *serialQueue) push(fn func()) { w.pushOrDrop(fn, false) }

// pushOrDrop queues fn; with droppable it drops fn (reporting false) when the queue is full.
// After stop, every fn is dropped.
func (w *serialQueue) pushOrDrop(fn func(), droppable bool) bool {
	w.mu.Lock()
	if w.stopped || (droppable && len(w.q) >= maxQueuedWork) {
		w.mu.Unlock()
		return false
	}
	w.q = append(w.q, fn)
	start := !w.running
	if start {
		w.running = true
		w.idle = make(chan struct{})
		w.wg.Add(1)
	}
	w.mu.Unlock()
	if start {
		go w.run()
	}
	return true
}

func (w *serialQueue) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.q) == 0 {
			w.running = false
			close(w.idle)
			w.q = nil
			w.mu.Unlock()
			return
		}
		fn := w.q[0]
		w.q[0] = nil
		w.q = w.q[1:]
		w.mu.Unlock()
		fn()
	}
}

// stop drops the functions pushed from now on, and waits until those queued ran: the
// queue's goroutine is then gone for good (a late push, from the broker's reader or a
// socket's hello finishing, would otherwise start one as its owner closes).
func (w *serialQueue) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.drain()
}

// drain waits until the queue is empty.
func (w *serialQueue) drain() {
	w.mu.Lock()
	idle, running := w.idle, w.running
	w.mu.Unlock()
	if running {
		<-idle
	}
}

// userHold is what a socket indexed under a user holds across nodes: the user's u: topic,
// and a lease with MaxConnectionsPerUserCluster.
type userHold struct {
	user   string
	holder string // the lease's holder: the socket's id
	lease  bool
}

// holdUser prepares the indexing of sock under user (AuthOptions.Index): it takes a lease of
// the user's cluster-wide limit and joins the user's topic. It returns nil when there is
// nothing to hold (no broker, no user, or sock is indexed under user already). The hold is
// then given to settleUser once the credentials are bound (or not).
func (s *Server) holdUser(ctx context.Context, sock *Socket, user string) (*userHold, error) {
	c := s.cluster
	if c == nil || user == "" || s.auth == nil || !s.auth.opts.Index {
		return nil, nil
	}
	s.mu.Lock()
	same := sock.indexedUser == user
	s.mu.Unlock()
	if same {
		return nil, nil
	}
	h := &userHold{user: user, holder: sock.ID}
	if c.leaser != nil {
		ok, err := c.leaser.Acquire(ctx, leaseSet(user), h.holder, s.auth.opts.MaxConnectionsPerUserCluster, c.leaseTTL)
		switch {
		case err != nil && !s.auth.opts.ClusterLimitFailOpen:
			s.log.Warn("herald: cannot check a user's cluster-wide connection limit; refusing", "user", user, "err", err)
			return nil, errLimitUnavailable
		case err != nil:
			s.log.Warn("herald: cannot check a user's cluster-wide connection limit; admitting", "user", user, "err", err)
		case !ok:
			return nil, errTooManyForUser
		default:
			h.lease = true
		}
	}
	if err := c.hold(ctx, "u:"+user); err != nil {
		c.releaseUser(h)
		return nil, &Error{StatusCode: 503, Message: "Service Unavailable", err: err}
	}
	return h, nil
}

var errLimitUnavailable = NewError(503, "Cannot check the connection limit now")

// leaseSet names the lease set of a user's cluster-wide limit.
func leaseSet(user string) string { return "herald:user:" + user }

// settleUser keeps h for sock when sock is now indexed under h's user, else gives it back.
func (s *Server) settleUser(sock *Socket, h *userHold) {
	if h == nil {
		return
	}
	s.mu.Lock()
	_, open := s.sockets[sock]
	keep := open && sock.indexedUser == h.user
	if keep {
		c := s.cluster
		c.mu.Lock()
		old := c.users[sock]
		c.users[sock] = h
		c.mu.Unlock()
		if old != nil { // cannot happen: unindexing drops it
			c.releaseUser(old)
		}
	}
	s.mu.Unlock()
	if !keep {
		s.cluster.releaseUser(h)
	}
}

// dropUserLocked gives back what sock held for its user, when it leaves the user index.
// s.mu is held; it never waits.
func (s *Server) dropUserLocked(sock *Socket) {
	c := s.cluster
	if c == nil {
		return
	}
	c.mu.Lock()
	h := c.users[sock]
	delete(c.users, sock)
	c.mu.Unlock()
	if h != nil {
		c.releaseUser(h)
	}
}

// releaseUser gives back a user hold. It never waits.
func (c *cluster) releaseUser(h *userHold) {
	c.release("u:" + h.user)
	if h.lease {
		c.work.push(func() {
			ctx, cancel := context.WithTimeout(context.Background(), clusterLeaveTimeout)
			defer cancel()
			if err := c.leaser.Release(ctx, leaseSet(h.user), h.holder); err != nil {
				c.s.log.Warn("herald: cannot release a connection lease; it expires by itself", "user", h.user, "err", err)
			}
		})
	}
}

// reacquireLeases takes again the leases of this node's sockets, after a discontinuity. A
// lease refused now (the limit filled meanwhile) leaves its socket open.
func (c *cluster) reacquireLeases() {
	type lease struct{ user, holder string }
	var leases []lease
	c.mu.Lock()
	for _, h := range c.users {
		if h.lease {
			leases = append(leases, lease{h.user, h.holder})
		}
	}
	c.mu.Unlock()
	max := c.s.auth.opts.MaxConnectionsPerUserCluster
	for _, l := range leases {
		ctx, cancel := context.WithTimeout(context.Background(), clusterLeaveTimeout)
		_, err := c.leaser.Acquire(ctx, leaseSet(l.user), l.holder, max, c.leaseTTL)
		cancel()
		if err != nil {
			c.s.log.Warn("herald: cannot take a connection lease again", "user", l.user, "err", err)
		}
	}
}

// renewLeases renews the leases of this node's sockets.
func (c *cluster) renewLeases() {
	byUser := map[string][]string{}
	c.mu.Lock()
	for _, h := range c.users {
		if h.lease {
			byUser[h.user] = append(byUser[h.user], h.holder)
		}
	}
	c.mu.Unlock()
	for user, holders := range byUser {
		ctx, cancel := context.WithTimeout(context.Background(), clusterLeaveTimeout)
		err := c.leaser.Renew(ctx, leaseSet(user), holders, c.leaseTTL)
		cancel()
		if err != nil {
			c.s.log.Warn("herald: cannot renew connection leases", "user", user, "err", err)
		}
	}
}

// SocketsQuery narrows Server.Sockets. The zero SocketsQuery lists every socket.
type SocketsQuery struct {
	// User, when set, lists only that user's sockets (AuthOptions.Index must be on).
	User string
	// Group, when set, lists only the members of that group.
	Group string
	// CountOnly counts the sockets without listing them.
	CountOnly bool
}

// SocketsSurvey is what Server.Sockets found on every node.
type SocketsSurvey struct {
	// Nodes holds what each node that answered has, by node name, this one included (under
	// "" without a broker).
	Nodes map[string]NodeSockets
	// Missing lists the nodes known to be alive that did not answer in time: their sockets
	// are not counted. A node that died is neither here nor in Nodes once the broker's node
	// registry has forgotten it.
	Missing []string
}

// NodeSockets is what one node has.
type NodeSockets struct {
	Count   int          `json:"count"`             // the node's open sockets
	Sockets []SocketInfo `json:"sockets,omitempty"` // empty with CountOnly
}

// SocketInfo describes a socket on some node.
type SocketInfo struct {
	ID     string   `json:"id"`               // the socket's id (Socket.ID)
	User   string   `json:"user,omitempty"`   // its Credentials.User; empty for an anonymous socket
	Groups []string `json:"groups,omitempty"` // the groups it joined (Socket.Join)
}

// Count returns the sockets counted on every node that answered.
func (v SocketsSurvey) Count() int {
	n := 0
	for _, ns := range v.Nodes {
		n += ns.Count
	}
	return n
}

// Sockets surveys the open sockets (those that said hello) of every node sharing
// Options.Broker, or of this server without one. It waits for every node known alive to
// answer, or for ctx (without a deadline, 2 s), and says which nodes did not answer. Each
// node's answer is one broker message: NATS refuses those past its max_payload (1 MiB by
// default), about 15,000 sockets listed, and such a node is then Missing; count them
// (CountOnly) or narrow the query. For a synchronous walk of this node's sockets, use
// EachSocket.
func (s *Server) Sockets(ctx context.Context, q *SocketsQuery) (SocketsSurvey, error) {
	var query SocketsQuery
	if q != nil {
		query = *q
	}
	if query.User != "" && (s.auth == nil || !s.auth.opts.Index) {
		return SocketsSurvey{}, errors.New("herald: Sockets of a user needs AuthOptions.Index")
	}
	if s.cluster == nil {
		return SocketsSurvey{Nodes: map[string]NodeSockets{"": s.localSockets(query)}}, nil
	}
	payload, err := json.Marshal(query)
	if err != nil {
		return SocketsSurvey{}, err
	}
	replies, missing, err := s.cluster.survey(ctx, surveySockets, payload)
	if err != nil {
		return SocketsSurvey{}, err
	}
	out := SocketsSurvey{Nodes: map[string]NodeSockets{}, Missing: missing}
	for node, raw := range replies {
		var ns NodeSockets
		if err := json.Unmarshal(raw, &ns); err != nil {
			out.Missing = append(out.Missing, node)
			continue
		}
		out.Nodes[node] = ns
	}
	return out, nil
}

// localSockets answers a sockets query for this node.
func (s *Server) localSockets(q SocketsQuery) NodeSockets {
	var socks []*Socket
	if q.Group != "" {
		socks = s.groups.members(q.Group)
		if q.User != "" {
			socks = slices.DeleteFunc(socks, func(x *Socket) bool { return x.user() != q.User })
		}
	} else {
		socks = s.socketsSnapshot(q.User)
	}
	var out NodeSockets
	for _, sock := range socks {
		if !sock.helloed() {
			continue
		}
		out.Count++
		if !q.CountOnly {
			out.Sockets = append(out.Sockets, SocketInfo{ID: sock.ID, User: sock.user(), Groups: s.groups.of(sock)})
		}
	}
	return out
}

// answerSockets answers another node's Sockets survey.
func (c *cluster) answerSockets(_ context.Context, _ string, payload []byte) ([]byte, error) {
	var q SocketsQuery
	if err := json.Unmarshal(payload, &q); err != nil {
		return nil, err
	}
	return json.Marshal(c.s.localSockets(q))
}

// survey asks every node, this one included.
func (c *cluster) survey(ctx context.Context, kind string, payload []byte) (map[string][]byte, []string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultSurveyTimeout)
		defer cancel()
	}
	replies, missing, err := c.node.Survey(ctx, kind, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("herald: survey of the nodes: %w", err)
	}
	return replies, missing, nil
}
