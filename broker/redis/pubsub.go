package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/herald-go/herald/broker"
)

// A partition is one subscribed connection (a rueidis dedicated client) and the topics it
// carries: every topic without Cluster, the topics hashed to its slot with Cluster. The node
// and broadcast channels are on partition 0.
//
// Three goroutines touch it: rueidis's reader, which calls onMessage and must never block
// (it queues, or drops and remembers the topic); work, which hands the queue to the Handler
// in order; and supervise, which (re)connects, subscribes everything, and reports losses.
type partition struct {
	b      *Broker
	idx    int
	stop   chan struct{} // closed when the broker closes, or its Start fails
	client rueidis.Client
	queue  chan heard
	first  chan error    // the result of the first connection, then nothing
	kick   chan struct{} // a lost subscription (Cluster's sunsubscribe): reconnect

	mu     sync.Mutex
	topics map[string]struct{}
	conn   rueidis.DedicatedClient // nil while down
	down   error                   // nil while up
	// What the Handler must be told of a discontinuity: lostAll (every topic) or the topics
	// in lost, because of err.
	lostAll bool
	lost    map[string]struct{}
	lostErr error
	notify  chan struct{} // 1-buffered: a discontinuity is pending
	pending atomic.Bool   // a discontinuity is pending: work reports it before the next message
	// A link loss to report as soon as the connection of generation heldGen (or a later one)
	// is subscribed, or delivers a message, whichever comes first: so that the Handler hears
	// of the loss before any message heard on a connection made since. heldGen is the first
	// connection made after the loss, not the latest: a connection whose subscriptions failed
	// halfway may have delivered messages already.
	heldErr error
	heldGen atomic.Uint64 // 0: nothing held
}

// heard is a message heard on the connection of generation gen.
type heard struct {
	gen uint64
	msg rueidis.PubSubMessage
}

// errQueueFull is the cause given to the Handler for messages dropped from a full queue.
var errQueueFull = errors.New("broker/redis: queue full, messages dropped (see Options.QueueSize)")

// errMasterMoved is the cause of a reconnection after a Sentinel failover.
var errMasterMoved = errors.New("broker/redis: the master moved (Sentinel failover)")

// sentinelCheck is how often, with Sentinel, a partition checks that its subscribed
// connection is to the master that commands go to: after a failover that left the old master
// running (a forced failover, a network partition), nothing closes the connection to it, and
// the Sentinel demotes it only some ten seconds later.
const sentinelCheck = time.Second

// sameServer reports whether conn and the broker's commands reach the same Redis server (the
// same run_id). It says yes when it cannot tell: a broken conn is noticed otherwise.
func (p *partition) sameServer(conn rueidis.DedicatedClient) bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.Timeout)
	defer cancel()
	mine, err := conn.Do(ctx, conn.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return true
	}
	theirs, err := p.client.Do(ctx, p.client.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return true
	}
	return runID(mine) == runID(theirs)
}

// runID returns the run_id of an INFO reply.
func runID(info string) string {
	_, rest, _ := strings.Cut(info, "run_id:")
	id, _, _ := strings.Cut(rest, "\r")
	return strings.TrimSpace(id)
}

// errSubscriptionLost is the cause of a reconnection after Redis dropped a subscription.
var errSubscriptionLost = errors.New("broker/redis: subscription dropped by Redis")

func newPartition(b *Broker, idx int, stop chan struct{}, client rueidis.Client) *partition {
	return &partition{
		b:      b,
		idx:    idx,
		stop:   stop,
		client: client,
		queue:  make(chan heard, b.opts.QueueSize),
		first:  make(chan error, 1),
		kick:   make(chan struct{}, 1),
		topics: map[string]struct{}{},
		lost:   map[string]struct{}{},
		notify: make(chan struct{}, 1),
		down:   fmt.Errorf("broker/redis: %w: connecting", broker.ErrUnavailable),
	}
}

// state returns nil while the partition's link is up, else an error wrapping
// broker.ErrUnavailable.
func (p *partition) state() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// supervise connects, subscribes and waits for the link to break, again and again until the
// broker stops.
func (p *partition) supervise() {
	defer p.b.wg.Done()
	var check <-chan time.Time // with Sentinel: time to check the master (see sameServer)
	if p.b.opts.SentinelMaster != "" {
		ticker := time.NewTicker(sentinelCheck)
		defer ticker.Stop()
		check = ticker.C
	}
	firstDone := false
	var lostErr error // set after a loss: reported once the link is back
	var gen uint64
	for {
		gen++
		g := gen
		conn, release := p.client.Dedicate()
		errs := conn.SetPubSubHooks(rueidis.PubSubHooks{
			OnMessage:      func(m rueidis.PubSubMessage) { p.onMessage(g, m) },
			OnSubscription: p.onSubscription,
		})
		if lostErr != nil {
			p.hold(g, fmt.Errorf("%w: %w", broker.ErrUnavailable, lostErr))
		}
		subscribed, err := p.subscribeAll(conn)
		if err == nil && lostErr != nil {
			p.flushStale()
		}
		if err == nil {
			err = p.up(conn, subscribed)
		}
		if err == nil {
			if !firstDone {
				firstDone = true
				p.first <- nil
			}
			if lostErr != nil {
				p.b.logInfo("broker/redis: link restored", "partition", p.idx, "cause", lostErr)
				if p.unhold(g) {
					p.wake()
				}
				lostErr = nil
			}
			for err == nil {
				select {
				case err = <-errs:
					if err == nil {
						err = rueidis.ErrClosing
					}
				case <-p.kick:
					err = errSubscriptionLost
				case <-check:
					if !p.sameServer(conn) {
						err = errMasterMoved
					}
				case <-p.stop:
					p.mu.Lock()
					p.conn = nil
					p.down = fmt.Errorf("broker/redis: %w: %w", broker.ErrUnavailable, broker.ErrClosed)
					p.mu.Unlock()
					conn.Close()
					release()
					return
				}
			}
			p.b.lost.Add(1)
			lostErr = err
			p.b.logWarn("broker/redis: link lost", "partition", p.idx, "err", err)
		} else if lostErr == nil && firstDone {
			lostErr = err
		}
		p.mu.Lock()
		p.conn = nil
		p.down = fmt.Errorf("broker/redis: %w: %w", broker.ErrUnavailable, err)
		p.mu.Unlock()
		conn.Close()
		release()
		if !firstDone {
			p.first <- p.down
			return
		}
		select {
		case <-p.stop:
			return
		case <-time.After(p.b.opts.ReconnectDelay):
		}
	}
}

// flushStale runs a few read-only commands through the shared client after the link came
// back, so that the pipelined connections that broke while idle (Redis restarted) are found
// broken and replaced now, rather than by failing the next publications (rueidis retries a
// read-only command on a fresh connection; a publication it cannot retry). With one server,
// every command goes through one connection, and the first EXISTS replaces it. With Cluster,
// rueidis picks one of a node's connections at random for each keyed command; 32 commands
// leave a given connection of four unvisited with a chance of 1 in 10,000.
//
// A command sent before the broker noticed the loss (Err still nil) goes into the dead
// connection and fails with it: that publication was made while the link was down.
func (p *partition) flushStale() {
	ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.Timeout)
	defer cancel()
	key := p.b.name(p.idx, kindMeta, "")
	for range 32 {
		_ = p.client.Do(ctx, p.client.B().Exists().Key(key).Build()).Error()
	}
}

// subscribeAll subscribes conn to the partition's channels, waits for Redis to confirm, and
// returns the topics it subscribed.
func (p *partition) subscribeAll(conn rueidis.DedicatedClient) ([]string, error) {
	var channels []string
	if p.idx == 0 {
		channels = append(channels, p.b.name(0, kindNode, p.b.node), p.b.name(0, kindAll, ""))
	}
	p.mu.Lock()
	topics := make([]string, 0, len(p.topics))
	for t := range p.topics {
		topics = append(topics, t)
		channels = append(channels, p.b.name(p.idx, kindTopic, t))
	}
	p.mu.Unlock()
	if len(channels) == 0 {
		// Bind the connection now (with Cluster, to the node owning the partition's slot),
		// so that a broken link is seen even with nothing subscribed.
		ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.Timeout)
		defer cancel()
		return topics, p.ping(ctx, conn)
	}
	for len(channels) > 0 {
		n := min(len(channels), 1000)
		ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.Timeout)
		err := p.send(ctx, conn, true, channels[:n])
		cancel()
		if err != nil {
			return nil, err
		}
		channels = channels[n:]
	}
	return topics, nil
}

// up marks the link up on conn, which subscribeAll subscribed to topics. While the link is
// down, Unsubscribe only forgets a topic: one it forgot after subscribeAll read the topics is
// unsubscribed on conn first, else conn would carry its messages (for deliver to drop, taking
// room in the queue) until the next reconnection. No topic can be added meanwhile (Subscribe
// fails while the link is down), so none is unsubscribed that is wanted.
func (p *partition) up(conn rueidis.DedicatedClient, topics []string) error {
	for {
		var stale []string
		p.mu.Lock()
		for _, t := range topics {
			if _, ok := p.topics[t]; !ok {
				stale = append(stale, t)
			}
		}
		if len(stale) == 0 {
			p.conn, p.down = conn, nil
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		gone := make(map[string]struct{}, len(stale))
		channels := make([]string, len(stale))
		for i, t := range stale {
			gone[t] = struct{}{}
			channels[i] = p.b.name(p.idx, kindTopic, t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.b.opts.Timeout)
		err := p.send(ctx, conn, false, channels)
		cancel()
		if err != nil {
			return err
		}
		topics = slices.DeleteFunc(topics, func(t string) bool {
			_, ok := gone[t]
			return ok
		})
	}
}

// ping sends PING on conn and waits for the answer: the commands sent before it on conn are
// then processed. With Cluster the PING carries the partition's hash tag, so that the
// connection is bound to the node owning the slot.
func (p *partition) ping(ctx context.Context, conn rueidis.DedicatedClient) error {
	if p.b.opts.Cluster {
		// No keyless command routes by slot; EXISTS of a key in the partition's slot does.
		return conn.Do(ctx, conn.B().Exists().Key(p.b.name(p.idx, kindMeta, "")).Build()).Error()
	}
	return conn.Do(ctx, conn.B().Ping().Build()).Error()
}

// send subscribes (or unsubscribes) conn to channels and waits until Redis has done it.
func (p *partition) send(ctx context.Context, conn rueidis.DedicatedClient, sub bool, channels []string) error {
	var cmd rueidis.Completed
	switch {
	case sub && p.b.opts.Cluster:
		cmd = conn.B().Ssubscribe().Channel(channels...).Build()
	case sub:
		cmd = conn.B().Subscribe().Channel(channels...).Build()
	case p.b.opts.Cluster:
		cmd = conn.B().Sunsubscribe().Channel(channels...).Build()
	default:
		cmd = conn.B().Unsubscribe().Channel(channels...).Build()
	}
	if err := conn.Do(ctx, cmd).Error(); err != nil {
		return err
	}
	return p.ping(ctx, conn)
}

// subscribe adds topics to the partition and subscribes them.
func (p *partition) subscribe(ctx context.Context, topics []string) error {
	p.mu.Lock()
	conn, down := p.conn, p.down
	if down != nil {
		p.mu.Unlock()
		return down
	}
	var added []string
	for _, t := range topics {
		if _, ok := p.topics[t]; !ok {
			p.topics[t] = struct{}{}
			added = append(added, t)
		}
	}
	p.mu.Unlock()
	channels := make([]string, len(topics))
	for i, t := range topics {
		channels[i] = p.b.name(p.idx, kindTopic, t)
	}
	ctx, cancel := p.b.withTimeout(ctx)
	defer cancel()
	if err := p.send(ctx, conn, true, channels); err != nil {
		p.mu.Lock()
		for _, t := range added {
			delete(p.topics, t)
		}
		p.mu.Unlock()
		return err
	}
	return nil
}

// unsubscribe removes topics from the partition and unsubscribes them when the link is up.
func (p *partition) unsubscribe(ctx context.Context, topics []string) {
	p.mu.Lock()
	for _, t := range topics {
		delete(p.topics, t)
	}
	conn := p.conn
	p.mu.Unlock()
	if conn == nil {
		return
	}
	channels := make([]string, len(topics))
	for i, t := range topics {
		channels[i] = p.b.name(p.idx, kindTopic, t)
	}
	ctx, cancel := p.b.withTimeout(ctx)
	defer cancel()
	// An error leaves the channels subscribed on a connection that is broken or about to be
	// replaced without them; meanwhile work drops their messages.
	_ = p.send(ctx, conn, false, channels)
}

// hold records a link loss to report once the connection of generation gen is up, or the
// connection of an earlier generation still held.
func (p *partition) hold(gen uint64, err error) {
	p.mu.Lock()
	p.heldErr = err
	if p.heldGen.Load() == 0 {
		p.heldGen.Store(gen)
	}
	p.mu.Unlock()
}

// unhold turns a loss held for generation gen or earlier into a pending discontinuity of
// every topic, and reports whether there was one.
func (p *partition) unhold(gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.heldGen.Load(); g == 0 || g > gen {
		return false
	}
	p.lostAll = true
	clear(p.lost)
	p.lostErr = p.heldErr
	p.heldErr = nil
	// pending before heldGen: work reads both without the lock, and must not see the loss
	// neither held nor pending.
	p.pending.Store(true)
	p.heldGen.Store(0)
	return true
}

// wake tells work that a discontinuity is pending.
func (p *partition) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// onMessage is called by rueidis's reader: it queues, never blocks. A message dropped from a
// full queue is a discontinuity on its topic; a node's message (Send) has none, and its loss
// is only counted: Node's requests time out, its heartbeats come again, and no topic lost
// anything, so no topic's subscribers are reset.
func (p *partition) onMessage(gen uint64, m rueidis.PubSubMessage) {
	select {
	case p.queue <- heard{gen, m}:
		return
	default:
	}
	p.b.dropped.Add(1)
	if kind, name, ok := p.b.parseName(m.Channel); ok && kind == kindTopic {
		p.discontinuity([]string{name}, errQueueFull)
	}
}

// onSubscription watches for subscriptions that Redis Cluster drops on its own (a slot that
// moved): the connection is then replaced.
func (p *partition) onSubscription(s rueidis.PubSubSubscription) {
	if s.Kind != "sunsubscribe" {
		return
	}
	kind, name, ok := p.b.parseName(s.Channel)
	if !ok || kind != kindTopic {
		return
	}
	p.mu.Lock()
	_, still := p.topics[name]
	p.mu.Unlock()
	if still {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// discontinuity records that the Handler must be told of a discontinuity on topics (nil:
// every topic) and wakes work.
func (p *partition) discontinuity(topics []string, err error) {
	p.mu.Lock()
	if topics == nil {
		p.lostAll = true
		clear(p.lost)
	} else if !p.lostAll {
		for _, t := range topics {
			if _, ok := p.topics[t]; ok {
				p.lost[t] = struct{}{}
			}
		}
	}
	if p.lostErr == nil || topics == nil {
		p.lostErr = err
	}
	p.pending.Store(true)
	p.mu.Unlock()
	p.wake()
}

// work hands what the partition heard to the Handler, in order, until the broker stops. A
// discontinuity pending when a message is taken from the queue is reported before it: select
// picks at random between the queue and notify when both are ready, and a message heard on
// the restored connection must not overtake the discontinuity that supervise released.
func (p *partition) work() {
	defer p.b.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case h := <-p.queue:
			if g := p.heldGen.Load(); g != 0 && h.gen >= g {
				p.unhold(h.gen)
			}
			if p.pending.Load() {
				p.reportDiscontinuity()
			}
			p.deliver(h.msg)
		case <-p.notify:
			p.reportDiscontinuity()
		}
	}
}

// reportDiscontinuity tells the Handler of the pending discontinuity.
func (p *partition) reportDiscontinuity() {
	p.mu.Lock()
	all, err := p.lostAll, p.lostErr
	var topics []string
	if !all {
		for t := range p.lost {
			topics = append(topics, t)
		}
	}
	p.lostAll, p.lostErr = false, nil
	clear(p.lost)
	p.pending.Store(false)
	p.mu.Unlock()
	if err == nil || (!all && len(topics) == 0) {
		return
	}
	if all && p.b.opts.Partitions > 1 {
		// Only this partition's topics were affected (and, on partition 0, the node
		// messages, which the Handler cannot recover anyway).
		p.mu.Lock()
		for t := range p.topics {
			topics = append(topics, t)
		}
		p.mu.Unlock()
		if topics == nil {
			topics = []string{}
		}
	}
	p.b.h.HandleDiscontinuity(topics, err)
}

// deliver hands one message to the Handler.
func (p *partition) deliver(m rueidis.PubSubMessage) {
	kind, name, ok := p.b.parseName(m.Channel)
	if !ok {
		return
	}
	switch kind {
	case kindTopic:
		p.mu.Lock()
		_, subscribed := p.topics[name]
		p.mu.Unlock()
		if !subscribed {
			return
		}
		payload, pos, ok := parseTopicMessage(m.Message)
		if ok {
			p.b.h.HandleMessage(name, payload, pos)
		}
	case kindNode, kindAll:
		from, payload, ok := parseNodeMessage(m.Message)
		if ok {
			p.b.h.HandleNode(from, payload)
		}
	}
}
