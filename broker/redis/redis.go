package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/herald-go/herald/broker"
)

// Broker is a broker.Broker on Redis. It is also a broker.HistoryReader and a broker.Leaser.
// Once Start has returned, its methods are safe for concurrent use.
type Broker struct {
	opts Options

	mu      sync.Mutex
	started bool
	closed  bool
	node    string
	h       broker.Handler
	client  rueidis.Client
	parts   []*partition
	stop    chan struct{} // closed to stop the goroutines of the running Start
	wg      sync.WaitGroup
	dropped atomic.Uint64
	lost    atomic.Uint64
}

// Assert that Broker implements what it says.
var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.HistoryReader = (*Broker)(nil)
	_ broker.Leaser        = (*Broker)(nil)
)

// New returns a Broker that connects with opts when Start is called. It fails only when opts
// are incomplete.
func New(opts Options) (*Broker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Broker{opts: o}, nil
}

// Start connects to Redis, subscribes to the channels of node (its own and the broadcast
// one) and starts delivering to h. It returns once every subscribed connection is up, or
// with an error (wrapping broker.ErrUnavailable when Redis cannot be reached), after which
// Start may be called again. It does not retry itself: one attempt to connect decides,
// within Options.DialTimeout and Options.Timeout (or ctx, if sooner).
func (b *Broker) Start(ctx context.Context, node string, h broker.Handler) error {
	if node == "" || h == nil {
		return errors.New("broker/redis: Start needs a node name and a Handler")
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	if b.started {
		b.mu.Unlock()
		return errors.New("broker/redis: started twice")
	}
	b.started = true
	b.mu.Unlock()

	client, err := rueidis.NewClient(b.opts.clientOption(node))
	if err != nil {
		b.mu.Lock()
		b.started = false
		b.mu.Unlock()
		return fmt.Errorf("broker/redis: connect: %w: %w", broker.ErrUnavailable, err)
	}
	b.mu.Lock()
	if b.closed { // Close was called meanwhile
		b.mu.Unlock()
		client.Close()
		return broker.ErrClosed
	}
	b.node, b.h, b.client = node, h, client
	b.stop = make(chan struct{})
	b.parts = make([]*partition, b.opts.Partitions)
	for i := range b.parts {
		b.parts[i] = newPartition(b, i, b.stop, client)
	}
	parts := b.parts
	for _, p := range parts {
		b.wg.Add(2)
		go p.supervise()
		go p.work()
	}
	b.mu.Unlock()

	for _, p := range parts {
		select {
		case err = <-p.first:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			b.stopRun(false)
			return fmt.Errorf("broker/redis: start: %w", err)
		}
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return broker.ErrClosed
	}
	b.logInfo("broker/redis: link up", "node", node)
	return nil
}

// stopRun stops the goroutines and the client of the running Start, and marks the broker
// closed, or (after a failed Start) ready to start again.
func (b *Broker) stopRun(closing bool) {
	b.mu.Lock()
	if closing {
		b.closed = true
	} else if b.closed {
		b.mu.Unlock()
		return // Close does it
	}
	stop, client := b.stop, b.client
	b.stop, b.client = nil, nil
	if !closing {
		b.parts, b.started = nil, false
	}
	b.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	b.wg.Wait()
	if client != nil {
		client.Close()
	}
}

// Close unsubscribes, disconnects and stops the broker's goroutines. The Handler is no longer
// called once it returns. Calling it again does nothing.
func (b *Broker) Close() error {
	b.stopRun(true)
	return nil
}

// Err reports the state of the link: nil while every subscribed connection is up, else an
// error wrapping broker.ErrUnavailable (and broker.ErrClosed after Close).
func (b *Broker) Err() error {
	b.mu.Lock()
	closed, parts := b.closed, b.parts
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("broker/redis: %w: %w", broker.ErrUnavailable, broker.ErrClosed)
	}
	if parts == nil {
		return fmt.Errorf("broker/redis: %w: not started", broker.ErrUnavailable)
	}
	for _, p := range parts {
		if err := p.state(); err != nil {
			return err
		}
	}
	return nil
}

// Dropped returns how many messages were heard but dropped because the Handler fell behind
// by more than Options.QueueSize (the Handler was told of a discontinuity on their topics;
// messages sent with Send have none, and are only counted).
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }

// Losses returns how many times a subscribed connection was lost.
func (b *Broker) Losses() uint64 { return b.lost.Load() }

// ready returns the partitions and the client, or an error when the broker is not running.
func (b *Broker) ready() (rueidis.Client, []*partition, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, broker.ErrClosed
	}
	if b.parts == nil {
		return nil, nil, errors.New("broker/redis: not started")
	}
	return b.client, b.parts, nil
}

// Subscribe makes this node hear topics. It returns once Redis has confirmed the
// subscriptions, or with an error wrapping broker.ErrUnavailable while the link is down.
func (b *Broker) Subscribe(ctx context.Context, topics ...string) error {
	_, parts, err := b.ready()
	if err != nil {
		return err
	}
	for i, group := range b.byPartition(topics) {
		if len(group) == 0 {
			continue
		}
		if err := parts[i].subscribe(ctx, group); err != nil {
			return b.fail(ctx, "subscribe", err)
		}
	}
	return nil
}

// Unsubscribe stops this node hearing topics. Messages already heard on them are dropped.
// While the link is down it only forgets them: the restored link does not subscribe them.
func (b *Broker) Unsubscribe(ctx context.Context, topics ...string) error {
	_, parts, err := b.ready()
	if err != nil {
		return err
	}
	for i, group := range b.byPartition(topics) {
		if len(group) > 0 {
			parts[i].unsubscribe(ctx, group)
		}
	}
	return nil
}

// Publish sends payload to every node subscribed to topic. With opts.History the message is
// appended to the topic's history (a Redis Stream) and published in one Lua script, and its
// Position is returned. It fails fast, with an error wrapping broker.ErrUnavailable, while
// the link is down.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte, opts broker.PublishOptions) (broker.Position, error) {
	client, parts, err := b.ready()
	if err != nil {
		return broker.Position{}, err
	}
	part := b.partitionOf(topic)
	if err := parts[part].state(); err != nil {
		return broker.Position{}, fmt.Errorf("broker/redis: publish: %w", err)
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	channel := b.name(part, kindTopic, topic)
	if opts.History == nil {
		if err := b.publish(ctx, client, channel, envelopePlain(payload)); err != nil {
			return broker.Position{}, b.fail(ctx, "publish", err)
		}
		return broker.Position{}, nil
	}
	if opts.History.Size <= 0 {
		return broker.Position{}, errors.New("broker/redis: publish: HistoryPolicy.Size must be at least 1")
	}
	pos, err := b.publishHistory(ctx, client, part, topic, channel, payload, opts.History)
	if err != nil {
		return broker.Position{}, b.fail(ctx, "publish", err)
	}
	return pos, nil
}

// Send sends payload to the node named node, or to every node (this one included) when node
// is "". A node that is not connected does not receive it, and Send does not say so.
func (b *Broker) Send(ctx context.Context, node string, payload []byte) error {
	client, parts, err := b.ready()
	if err != nil {
		return err
	}
	if err := parts[0].state(); err != nil {
		return fmt.Errorf("broker/redis: send: %w", err)
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	channel := b.name(0, kindAll, "")
	if node != "" {
		channel = b.name(0, kindNode, node)
	}
	if err := b.publish(ctx, client, channel, envelopeNode(b.node, payload)); err != nil {
		return b.fail(ctx, "send", err)
	}
	return nil
}

// publish sends msg on channel: SPUBLISH in a Cluster, PUBLISH elsewhere.
func (b *Broker) publish(ctx context.Context, client rueidis.Client, channel, msg string) error {
	var cmd rueidis.Completed
	if b.opts.Cluster {
		cmd = client.B().Spublish().Channel(channel).Message(msg).Build()
	} else {
		cmd = client.B().Publish().Channel(channel).Message(msg).Build()
	}
	return client.Do(ctx, cmd).Error()
}

// withTimeout bounds ctx by Options.Timeout.
func (b *Broker) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.opts.Timeout)
}

// fail wraps err from a command: the caller's own cancellation as it is, a Redis error reply
// that says the server cannot serve (LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN) or
// any other failure to get an answer as broker.ErrUnavailable, other error replies as they are.
func (b *Broker) fail(ctx context.Context, op string, err error) error {
	if errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrClosed) {
		return fmt.Errorf("broker/redis: %s: %w", op, err)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("broker/redis: %s: %w", op, err)
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("broker/redis: %s: %w: %w", op, broker.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("broker/redis: %s: %w", op, err)
	}
	return fmt.Errorf("broker/redis: %s: %w: %w", op, broker.ErrUnavailable, err)
}

// The kinds of keys and channels.
const (
	kindTopic  = 't' // channel: a topic's messages
	kindNode   = 'n' // channel: the messages sent to one node
	kindAll    = 'a' // channel: the messages sent to every node
	kindMeta   = 'm' // hash: a topic's history epoch and last offset
	kindStream = 's' // stream: a topic's history
	kindLease  = 'l' // sorted set: a lease set
)

// name returns the key or channel of kind for name in partition part: prefix, the hash tag of
// the partition (Cluster only), the kind and name.
func (b *Broker) name(part int, kind byte, name string) string {
	var s strings.Builder
	s.Grow(len(b.opts.Prefix) + len(name) + 8)
	s.WriteString(b.opts.Prefix)
	if b.opts.Cluster {
		s.WriteByte('{')
		s.WriteString(strconv.Itoa(part))
		s.WriteByte('}')
	}
	s.WriteByte(kind)
	s.WriteByte(':')
	s.WriteString(name)
	return s.String()
}

// parseName is the inverse of name: the kind and name of a channel.
func (b *Broker) parseName(channel string) (kind byte, name string, ok bool) {
	rest, ok := strings.CutPrefix(channel, b.opts.Prefix)
	if !ok {
		return 0, "", false
	}
	if b.opts.Cluster {
		i := strings.IndexByte(rest, '}')
		if i < 0 {
			return 0, "", false
		}
		rest = rest[i+1:]
	}
	if len(rest) < 2 || rest[1] != ':' {
		return 0, "", false
	}
	return rest[0], rest[2:], true
}

// partitionOf returns the partition of a topic or lease set.
func (b *Broker) partitionOf(name string) int {
	if b.opts.Partitions == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(b.opts.Partitions))
}

// byPartition groups topics by partition.
func (b *Broker) byPartition(topics []string) [][]string {
	groups := make([][]string, b.opts.Partitions)
	for _, t := range topics {
		p := b.partitionOf(t)
		groups[p] = append(groups[p], t)
	}
	return groups
}

func (b *Broker) logInfo(msg string, args ...any) {
	if b.opts.Logger != nil {
		b.opts.Logger.Info(msg, args...)
	}
}

func (b *Broker) logWarn(msg string, args ...any) {
	if b.opts.Logger != nil {
		b.opts.Logger.Warn(msg, args...)
	}
}
