package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-go/herald/broker/internal/epoch"
)

// MemoryHub is an engine that lives in one process: the Brokers it makes (one per node) hear
// each other as nodes sharing a Redis or NATS server would. It keeps history per topic
// (HistoryReader) and leases (Leaser), so that tests of several nodes, and the conformance
// suite in broker/brokertest, run without a server.
//
// A hub can also play the engine's failures: Disconnect and Reconnect cut and restore one
// node's link; Kill and Restart stop and start the whole engine, losing history and leases
// as a Redis server without persistence does.
//
// Delivery in a hub is synchronous with Publish up to each node's queue (4096 events): a node
// whose Handler falls that far behind loses the overflow, and hears of it through
// Handler.HandleDiscontinuity.
//
// A MemoryHub's methods are safe for concurrent use. The zero MemoryHub is not: use
// NewMemoryHub.
type MemoryHub struct {
	mu      sync.Mutex
	down    bool
	nodes   map[string]*memoryBroker // started, not closed
	history map[string]*memoryHistory
	leases  map[string]map[string]time.Time // set -> holder -> expiry
}

// NewMemoryHub returns an engine for the nodes of one process.
func NewMemoryHub() *MemoryHub {
	return &MemoryHub{
		nodes:   make(map[string]*memoryBroker),
		history: make(map[string]*memoryHistory),
		leases:  make(map[string]map[string]time.Time),
	}
}

// Broker returns a new link to the hub, for one node. It is not started. Besides Broker it
// implements HistoryReader and Leaser.
func (hub *MemoryHub) Broker() Broker {
	return &memoryBroker{hub: hub, topics: make(map[string]struct{}), wake: make(chan struct{}, 1)}
}

// Disconnect cuts the link of b (a Broker made by this hub): until Reconnect, b's calls fail
// with ErrUnavailable and b hears nothing. It panics when b is not a Broker of this hub (a
// mistake in the test that calls it).
func (hub *MemoryHub) Disconnect(b Broker) {
	mb := hub.own(b)
	hub.mu.Lock()
	mb.cut = true
	hub.mu.Unlock()
}

// Reconnect restores the link of b, which then hears a discontinuity for every topic. Like
// Disconnect, it panics when b is not a Broker of this hub.
func (hub *MemoryHub) Reconnect(b Broker) {
	mb := hub.own(b)
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if !mb.cut {
		return
	}
	mb.cut = false
	if !hub.down {
		mb.enqueue(memoryEvent{kind: eventDiscontinuity, err: errors.New("broker: memory link restored after Disconnect")})
	}
}

func (hub *MemoryHub) own(b Broker) *memoryBroker {
	mb, ok := b.(*memoryBroker)
	if !ok || mb.hub != hub {
		panic(fmt.Sprintf("broker: MemoryHub.Disconnect or Reconnect of a %T that this hub did not make (pass the Broker that MemoryHub.Broker returned, not a wrapper)", b))
	}
	return mb
}

// Kill stops the engine: every link is down, and history and leases are lost.
func (hub *MemoryHub) Kill() {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	hub.down = true
	clear(hub.history)
	clear(hub.leases)
}

// Restart starts the engine again after Kill. Every node's link comes back and hears a
// discontinuity for every topic; topics' history starts over in a new epoch.
func (hub *MemoryHub) Restart() {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if !hub.down {
		return
	}
	hub.down = false
	for _, mb := range hub.nodes {
		if !mb.cut {
			mb.enqueue(memoryEvent{kind: eventDiscontinuity, err: errors.New("broker: memory engine restarted")})
		}
	}
}

type memoryHistory struct {
	epoch   string
	offset  uint64
	records []Record // oldest first; at most the last policy's Size
	expires time.Time
}

const memoryQueueSize = 4096

type eventKind uint8

const (
	eventMessage eventKind = iota
	eventNode
	eventDiscontinuity
)

type memoryEvent struct {
	kind    eventKind
	topic   string // message; node: the sender
	payload []byte
	pos     Position
	err     error
}

// memoryBroker is one node's link to a MemoryHub. Fields below hub are guarded by hub.mu,
// except those of the queue, guarded by qmu.
type memoryBroker struct {
	hub *MemoryHub

	name    string
	h       Handler
	started bool
	closed  bool
	cut     bool
	topics  map[string]struct{}

	qmu   sync.Mutex
	queue []memoryEvent
	lost  bool // events were dropped since the reader last looked
	wake  chan struct{}
	done  chan struct{} // closed by Close: the reader stops
	wg    sync.WaitGroup
}

// enqueue hands ev to the node's reader; it never blocks. hub.mu is held.
func (mb *memoryBroker) enqueue(ev memoryEvent) {
	mb.qmu.Lock()
	if len(mb.queue) >= memoryQueueSize {
		mb.lost = true
	} else {
		mb.queue = append(mb.queue, ev)
	}
	mb.qmu.Unlock()
	select {
	case mb.wake <- struct{}{}:
	default:
	}
}

func (mb *memoryBroker) read() {
	defer mb.wg.Done()
	var batch []memoryEvent
	for {
		select {
		case <-mb.done:
			return
		case <-mb.wake:
		}
		for {
			mb.qmu.Lock()
			batch, mb.queue = mb.queue, batch[:0]
			lost := mb.lost
			mb.lost = false
			mb.qmu.Unlock()
			if len(batch) == 0 && !lost {
				break
			}
			for i, ev := range batch {
				select {
				case <-mb.done:
					return
				default:
				}
				switch ev.kind {
				case eventMessage:
					mb.h.HandleMessage(ev.topic, ev.payload, ev.pos)
				case eventNode:
					mb.h.HandleNode(ev.topic, ev.payload)
				case eventDiscontinuity:
					mb.h.HandleDiscontinuity(nil, ev.err)
				}
				batch[i] = memoryEvent{}
			}
			if lost {
				mb.h.HandleDiscontinuity(nil, fmt.Errorf("broker: memory queue of node %q overflowed (%d events): the handler is too slow", mb.name, memoryQueueSize))
			}
		}
	}
}

// check reports why mb cannot be used now. hub.mu is held.
func (mb *memoryBroker) check() error {
	switch {
	case mb.closed:
		return ErrClosed
	case !mb.started:
		return errors.New("broker: memory broker used before Start")
	case mb.hub.down:
		return fmt.Errorf("%w: memory engine killed", ErrUnavailable)
	case mb.cut:
		return fmt.Errorf("%w: memory link of node %q disconnected", ErrUnavailable, mb.name)
	}
	return nil
}

func (mb *memoryBroker) Start(ctx context.Context, node string, h Handler) error {
	if node == "" || h == nil {
		return errors.New("broker: Start needs a node name and a Handler")
	}
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	switch {
	case mb.closed:
		return ErrClosed
	case mb.started:
		return errors.New("broker: memory broker started twice")
	case hub.down:
		return fmt.Errorf("%w: memory engine killed", ErrUnavailable)
	}
	if _, taken := hub.nodes[node]; taken {
		return fmt.Errorf("broker: node name %q is taken on this hub", node)
	}
	mb.name, mb.h, mb.started = node, h, true
	mb.done = make(chan struct{})
	hub.nodes[node] = mb
	mb.wg.Add(1)
	go mb.read()
	return nil
}

func (mb *memoryBroker) Subscribe(ctx context.Context, topics ...string) error {
	mb.hub.mu.Lock()
	defer mb.hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return err
	}
	for _, t := range topics {
		mb.topics[t] = struct{}{}
	}
	return nil
}

func (mb *memoryBroker) Unsubscribe(ctx context.Context, topics ...string) error {
	mb.hub.mu.Lock()
	defer mb.hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return err
	}
	for _, t := range topics {
		delete(mb.topics, t)
	}
	return nil
}

func (mb *memoryBroker) Publish(ctx context.Context, topic string, payload []byte, opts PublishOptions) (Position, error) {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return Position{}, err
	}
	p := append([]byte(nil), payload...)
	var pos Position
	if hp := opts.History; hp != nil {
		if hp.Size <= 0 {
			return Position{}, fmt.Errorf("broker: HistoryPolicy.Size is %d; it must be positive", hp.Size)
		}
		now := time.Now()
		hist := hub.liveHistory(topic, now)
		if hist == nil {
			hist = &memoryHistory{epoch: epoch.New()}
			hub.history[topic] = hist
		}
		hist.offset++
		pos = Position{Epoch: hist.epoch, Offset: hist.offset}
		hist.records = append(hist.records, Record{Payload: p, Pos: pos})
		if over := len(hist.records) - hp.Size; over > 0 {
			hist.records = append(hist.records[:0], hist.records[over:]...)
		}
		hist.expires = time.Time{}
		if hp.TTL > 0 {
			hist.expires = now.Add(hp.TTL)
		}
	}
	for _, n := range hub.nodes {
		if _, ok := n.topics[topic]; ok && !n.cut {
			n.enqueue(memoryEvent{kind: eventMessage, topic: topic, payload: p, pos: pos})
		}
	}
	return pos, nil
}

// liveHistory returns topic's history, dropping it when it expired. hub.mu is held.
func (hub *MemoryHub) liveHistory(topic string, now time.Time) *memoryHistory {
	hist := hub.history[topic]
	if hist != nil && !hist.expires.IsZero() && now.After(hist.expires) {
		delete(hub.history, topic)
		return nil
	}
	return hist
}

func (mb *memoryBroker) Send(ctx context.Context, node string, payload []byte) error {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return err
	}
	p := append([]byte(nil), payload...)
	ev := memoryEvent{kind: eventNode, topic: mb.name, payload: p}
	if node != "" {
		if n := hub.nodes[node]; n != nil && !n.cut {
			n.enqueue(ev)
		}
		return nil
	}
	for _, n := range hub.nodes {
		if !n.cut {
			n.enqueue(ev)
		}
	}
	return nil
}

func (mb *memoryBroker) Err() error {
	mb.hub.mu.Lock()
	defer mb.hub.mu.Unlock()
	return mb.check()
}

func (mb *memoryBroker) Close() error {
	hub := mb.hub
	hub.mu.Lock()
	if mb.closed {
		hub.mu.Unlock()
		return nil
	}
	mb.closed = true
	started := mb.started
	if started {
		delete(hub.nodes, mb.name)
	}
	hub.mu.Unlock()
	if started {
		close(mb.done)
		mb.wg.Wait()
	}
	return nil
}

// History implements HistoryReader.
func (mb *memoryBroker) History(ctx context.Context, topic string, after Position, limit int) ([]Record, Position, error) {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return nil, Position{}, err
	}
	hist := hub.liveHistory(topic, time.Now())
	if hist == nil {
		if !after.IsZero() {
			return nil, Position{}, fmt.Errorf("%w: topic %q has no history now", ErrEpochChanged, topic)
		}
		return nil, Position{}, nil
	}
	latest := Position{Epoch: hist.epoch, Offset: hist.offset}
	if !after.IsZero() {
		if after.Epoch != hist.epoch || after.Offset > hist.offset {
			return nil, latest, fmt.Errorf("%w: topic %q is in epoch %q, not %q", ErrEpochChanged, topic, hist.epoch, after.Epoch)
		}
		if oldest := hist.records[0].Pos.Offset; after.Offset+1 < oldest {
			return nil, latest, fmt.Errorf("%w: topic %q keeps offsets from %d, after %d was asked", ErrTrimmed, topic, oldest, after.Offset)
		}
	}
	var out []Record
	for _, r := range hist.records {
		if r.Pos.Offset <= after.Offset {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, Record{Payload: append([]byte(nil), r.Payload...), Pos: r.Pos})
	}
	return out, latest, nil
}

// Acquire implements Leaser.
func (mb *memoryBroker) Acquire(ctx context.Context, set, holder string, max int, ttl time.Duration) (bool, error) {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return false, err
	}
	now := time.Now()
	leases := hub.leases[set]
	for h, exp := range leases {
		if !exp.After(now) {
			delete(leases, h)
		}
	}
	if _, held := leases[holder]; !held && len(leases) >= max {
		return false, nil
	}
	if leases == nil {
		leases = make(map[string]time.Time)
		hub.leases[set] = leases
	}
	leases[holder] = now.Add(ttl)
	return true, nil
}

// Renew implements Leaser. Holders without an unexpired lease are left out.
func (mb *memoryBroker) Renew(ctx context.Context, set string, holders []string, ttl time.Duration) error {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return err
	}
	now := time.Now()
	leases := hub.leases[set]
	for _, h := range holders {
		if exp, ok := leases[h]; ok && exp.After(now) {
			leases[h] = now.Add(ttl)
		}
	}
	return nil
}

// Release implements Leaser.
func (mb *memoryBroker) Release(ctx context.Context, set, holder string) error {
	hub := mb.hub
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if err := mb.check(); err != nil {
		return err
	}
	delete(hub.leases[set], holder)
	if len(hub.leases[set]) == 0 {
		delete(hub.leases, set)
	}
	return nil
}
