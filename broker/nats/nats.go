package nats

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/herald-go/herald/broker"
	natsgo "github.com/nats-io/nats.go"
)

// Options configure a Broker. The zero value is valid.
type Options struct {
	// Prefix starts every subject the broker uses: <Prefix>.t.<topic> for topics,
	// <Prefix>.n.<node> and <Prefix>.all for Send. Nodes that share a prefix hear each other;
	// two applications on one NATS server keep apart with two prefixes. Zero means "herald".
	Prefix string
	// ConnectTimeout bounds the first connection, each reconnection attempt, and the wait
	// for the server to confirm subscriptions when the context given has no deadline. Start's
	// context may end it sooner. Zero means 2 s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnection attempts to one server. Zero means
	// 500 ms.
	ReconnectWait time.Duration
	// PingInterval is how often the link is probed: a server that stopped answering (a
	// black-holed connection) is detected after two unanswered pings. Zero means 5 s.
	PingInterval time.Duration
	// QueueSize bounds the messages received and not yet handed to the Handler. Past it, NATS
	// drops messages and the Handler hears of it (HandleDiscontinuity with the topic). Zero
	// means 65,536.
	QueueSize int
	// TLSConfig, if set, is used to connect with TLS (a tls:// URL also asks for TLS). Nil
	// means the defaults of nats.go.
	TLSConfig *tls.Config
}

func (o *Options) fill() error {
	if o.Prefix == "" {
		o.Prefix = "herald"
	}
	if strings.ContainsAny(o.Prefix, " \t\r\n*>") || strings.HasPrefix(o.Prefix, ".") ||
		strings.HasSuffix(o.Prefix, ".") || strings.Contains(o.Prefix, "..") {
		return fmt.Errorf("broker/nats: Options.Prefix %q is not a valid subject prefix (no spaces, wildcards or empty tokens)", o.Prefix)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = 500 * time.Millisecond
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	return nil
}

// Broker is a broker.Broker over core NATS. It keeps no history (Publish with a
// HistoryPolicy fails with broker.ErrHistoryUnsupported) and holds no leases.
//
// Its methods are safe for concurrent use once Start has returned.
type Broker struct {
	url  string
	opts Options
	err  error // from fill

	// The subjects and subject prefixes made from opts.Prefix, once in New.
	topicPrefix string // <Prefix>.t.
	nodePrefix  string // <Prefix>.n.
	allSubject  string // <Prefix>.all

	mu       sync.RWMutex
	nc       *natsgo.Conn
	h        broker.Handler // set once started
	node     string
	starting bool
	closed   bool
	subs     map[string]*natsgo.Subscription // by topic
	topics   map[*natsgo.Subscription]string // the reverse
	lost     map[string]struct{}             // topics whose messages were dropped (slow consumer)
	lostAll  error                           // the link was lost and is back
	down     bool                            // the link was lost and the subscriptions are not confirmed again yet

	msgs   chan *natsgo.Msg
	signal chan struct{} // lost or lostAll set
	done   chan struct{}
	wg     sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// New returns a Broker that connects to the NATS server at url (nats://host:4222; a
// comma-separated list names the servers of a cluster; credentials go in the URL:
// nats://user:password@host:4222 or nats://token@host:4222). It does not connect until Start.
// opts may be nil.
func New(url string, opts *Options) *Broker {
	b := &Broker{url: url}
	if opts != nil {
		b.opts = *opts
	}
	b.err = b.opts.fill()
	b.topicPrefix = b.opts.Prefix + ".t."
	b.nodePrefix = b.opts.Prefix + ".n."
	b.allSubject = b.opts.Prefix + ".all"
	b.subs = make(map[string]*natsgo.Subscription)
	b.topics = make(map[*natsgo.Subscription]string)
	b.lost = make(map[string]struct{})
	b.msgs = make(chan *natsgo.Msg, b.opts.QueueSize)
	b.signal = make(chan struct{}, 1)
	b.done = make(chan struct{})
	return b
}

// Start connects to NATS and subscribes to the node's subjects. It returns once the server
// has confirmed them, or with an error (the context's, or the connection's, wrapping
// broker.ErrUnavailable when the server cannot be reached); after an error, Start may be
// called again.
func (b *Broker) Start(ctx context.Context, node string, h broker.Handler) error {
	if b.err != nil {
		return b.err
	}
	if node == "" || h == nil {
		return errors.New("broker/nats: Start needs a node name and a Handler")
	}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return broker.ErrClosed
	case b.starting || b.h != nil:
		b.mu.Unlock()
		return errors.New("broker/nats: Broker started twice")
	}
	b.starting = true
	b.node = node
	b.mu.Unlock()

	nc, err := b.connect(ctx, node)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.starting = false
	if err == nil && b.closed { // Close was called meanwhile
		nc.Close()
		err = broker.ErrClosed
	}
	if err != nil {
		for len(b.msgs) > 0 {
			<-b.msgs
		}
		return err
	}
	b.h, b.nc = h, nc
	b.wg.Add(1)
	go b.read()
	return nil
}

// connect connects to NATS and subscribes to the node's subjects.
func (b *Broker) connect(ctx context.Context, node string) (*natsgo.Conn, error) {
	timeout := b.opts.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	options := []natsgo.Option{
		natsgo.Name("herald " + node),
		natsgo.Timeout(timeout),
		natsgo.ReconnectBufSize(-1), // publish fails fast while the link is down
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(b.opts.ReconnectWait),
		natsgo.PingInterval(b.opts.PingInterval),
		natsgo.MaxPingsOutstanding(2),
		natsgo.DisconnectErrHandler(b.disconnected),
		natsgo.ReconnectHandler(b.reconnected),
		natsgo.ErrorHandler(b.asyncError),
	}
	if b.opts.TLSConfig != nil {
		options = append(options, natsgo.Secure(b.opts.TLSConfig))
	}
	nc, err := natsgo.Connect(b.url, options...)
	if err != nil {
		return nil, fmt.Errorf("broker/nats: connect to %s: %w: %w", b.url, broker.ErrUnavailable, err)
	}
	for _, subj := range []string{b.nodeSubject(node), b.allSubject} {
		if _, err := nc.ChanSubscribe(subj, b.msgs); err != nil {
			nc.Close()
			return nil, fmt.Errorf("broker/nats: subscribe to %s: %w", subj, err)
		}
	}
	if err := b.flush(ctx, nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("broker/nats: confirm the node's subscriptions: %w: %w", broker.ErrUnavailable, err)
	}
	return nc, nil
}

// Conn returns the underlying nats.go connection, nil before Start: an escape hatch for
// monitoring (Stats, ConnectedUrl). Publishing or subscribing on it bypasses the broker.
func (b *Broker) Conn() *natsgo.Conn {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.nc
}

func (b *Broker) topicSubject(topic string) string {
	return b.topicPrefix + escapeToken(topic)
}

func (b *Broker) nodeSubject(node string) string {
	return b.nodePrefix + escapeToken(node)
}

// conn returns the connection if the broker may be used.
func (b *Broker) conn() (*natsgo.Conn, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	switch {
	case b.closed:
		return nil, broker.ErrClosed
	case b.nc == nil:
		return nil, errors.New("broker/nats: Broker used before Start")
	}
	return b.nc, nil
}

// wrap says whether a nats.go error comes from the link being down.
func (b *Broker) wrap(op string, nc *natsgo.Conn, err error) error {
	if err == nil {
		return nil
	}
	b.mu.RLock()
	closed := b.closed
	b.mu.RUnlock()
	switch {
	case closed:
		return broker.ErrClosed
	case errors.Is(err, natsgo.ErrReconnectBufExceeded), errors.Is(err, natsgo.ErrConnectionClosed),
		errors.Is(err, natsgo.ErrConnectionReconnecting), errors.Is(err, natsgo.ErrConnectionDraining),
		!nc.IsConnected():
		return fmt.Errorf("broker/nats: %s: %w: %w", op, broker.ErrUnavailable, err)
	}
	return fmt.Errorf("broker/nats: %s: %w", op, err)
}

// Subscribe implements broker.Broker. It returns once the server confirmed the subscriptions.
func (b *Broker) Subscribe(ctx context.Context, topics ...string) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	if !nc.IsConnected() {
		return fmt.Errorf("broker/nats: subscribe: %w: %s", broker.ErrUnavailable, nc.Status())
	}
	b.mu.Lock()
	for _, topic := range topics {
		if _, ok := b.subs[topic]; ok {
			continue
		}
		sub, err := nc.ChanSubscribe(b.topicSubject(topic), b.msgs)
		if err != nil {
			b.mu.Unlock()
			return b.wrap("subscribe to "+fmt.Sprintf("%q", topic), nc, err)
		}
		b.subs[topic] = sub
		b.topics[sub] = topic
	}
	b.mu.Unlock()
	return b.wrap("confirm subscriptions", nc, b.flush(ctx, nc))
}

// flush waits for the server to have processed what was sent, bounded by ConnectTimeout when
// ctx has no deadline.
func (b *Broker) flush(ctx context.Context, nc *natsgo.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.ConnectTimeout)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// Unsubscribe implements broker.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, topics ...string) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	b.mu.Lock()
	var first error
	for _, topic := range topics {
		sub, ok := b.subs[topic]
		if !ok {
			continue
		}
		delete(b.subs, topic)
		delete(b.topics, sub)
		delete(b.lost, topic)
		if err := sub.Unsubscribe(); err != nil && first == nil {
			first = b.wrap(fmt.Sprintf("unsubscribe from %q", topic), nc, err)
		}
	}
	b.mu.Unlock()
	return first
}

// Publish implements broker.Broker. opts.History fails with broker.ErrHistoryUnsupported:
// core NATS keeps no history.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte, opts broker.PublishOptions) (broker.Position, error) {
	if opts.History != nil {
		return broker.Position{}, fmt.Errorf("broker/nats: %w: core NATS keeps no history (use broker/redis for EventSource replay across nodes)", broker.ErrHistoryUnsupported)
	}
	nc, err := b.conn()
	if err != nil {
		return broker.Position{}, err
	}
	return broker.Position{}, b.wrap("publish", nc, nc.Publish(b.topicSubject(topic), payload))
}

// Send implements broker.Broker.
func (b *Broker) Send(ctx context.Context, node string, payload []byte) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	subj := b.allSubject
	if node != "" {
		subj = b.nodeSubject(node)
	}
	msg := make([]byte, 0, binary.MaxVarintLen64+len(b.node)+len(payload))
	msg = binary.AppendUvarint(msg, uint64(len(b.node)))
	msg = append(msg, b.node...)
	msg = append(msg, payload...)
	return b.wrap("send", nc, nc.Publish(subj, msg))
}

// Err implements broker.Broker. After a reconnection, the link counts as up once the server
// has confirmed the node's subscriptions again.
func (b *Broker) Err() error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	if st := nc.Status(); st != natsgo.CONNECTED {
		return fmt.Errorf("broker/nats: %w: link %s", broker.ErrUnavailable, strings.ToLower(st.String()))
	}
	b.mu.RLock()
	down := b.down
	b.mu.RUnlock()
	if down {
		return fmt.Errorf("broker/nats: %w: link back, subscriptions not confirmed yet", broker.ErrUnavailable)
	}
	return nil
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	nc := b.nc
	b.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	close(b.done)
	b.wg.Wait()
	return nil
}

func (b *Broker) disconnected(nc *natsgo.Conn, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || nc != b.nc {
		return // closed, or a connection of a Start that failed
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	b.lostAll = fmt.Errorf("broker/nats: link to NATS lost (%w) and restored", err)
	b.down = true
}

// reconnected runs once nats.go has reconnected and queued the subscriptions again. The link
// counts as up (Err, the discontinuity) only once the server has confirmed them: messages
// published after that are heard.
func (b *Broker) reconnected(nc *natsgo.Conn) {
	for nc.FlushTimeout(b.opts.ConnectTimeout) != nil {
		if !nc.IsConnected() {
			return // lost again: the next reconnection tries again
		}
		// Connected but slow to answer: keep trying, until Close.
		select {
		case <-b.done:
			return
		case <-time.After(b.opts.ReconnectWait):
		}
	}
	b.mu.Lock()
	if b.closed || nc != b.nc {
		b.mu.Unlock()
		return
	}
	if b.lostAll == nil && !b.down { // down with lostAll nil: lossBefore reported the loss
		b.lostAll = errors.New("broker/nats: link to NATS lost and restored")
	}
	b.down = false
	// Signalled before Err can say the link is up: read then reports the loss before any
	// message published after that.
	b.wake()
	b.mu.Unlock()
}

func (b *Broker) asyncError(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
	if sub == nil || !errors.Is(err, natsgo.ErrSlowConsumer) {
		return
	}
	b.mu.Lock()
	topic, ok := b.topics[sub]
	if ok && !b.closed {
		b.lost[topic] = struct{}{}
	}
	b.mu.Unlock()
	if ok {
		b.wake()
	}
}

func (b *Broker) wake() {
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// read hands what NATS delivers to the Handler, one message at a time. A discontinuity
// signalled when a message is taken from the queue is reported before it: select picks at
// random between the queue and the signal when both are ready, and a message heard once the
// link is back must not overtake the discontinuity that reconnected signalled.
func (b *Broker) read() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case <-b.signal:
			b.discontinuity()
		case m := <-b.msgs:
			select {
			case <-b.signal:
				b.discontinuity()
			default:
			}
			b.lossBefore()
			b.deliver(m)
		}
	}
}

// lossBefore reports the link's loss before a message taken from the queue while the link
// still counts as down but nats.go has reconnected: nats.go sent the subscriptions again and
// hears messages before reconnected has confirmed them, and such a message may have been
// published after the loss. (One heard on the old connection is told of it early, which is
// harmless.) reconnected then has nothing more to report.
func (b *Broker) lossBefore() {
	b.mu.RLock()
	held, nc := b.down && b.lostAll != nil, b.nc
	b.mu.RUnlock()
	if !held || nc == nil || !nc.IsConnected() {
		return
	}
	b.mu.Lock()
	all := b.lostAll
	b.lostAll = nil
	b.mu.Unlock()
	if all != nil {
		b.h.HandleDiscontinuity(nil, all)
	}
}

// discontinuity tells the Handler of the topics that lost messages and, once the link is back
// (reconnected), of the link's loss.
func (b *Broker) discontinuity() {
	b.mu.Lock()
	var all error
	if !b.down { // while down, the loss waits for reconnected
		all, b.lostAll = b.lostAll, nil
	}
	var topics []string
	for topic := range b.lost {
		topics = append(topics, topic)
	}
	clear(b.lost)
	b.mu.Unlock()
	if all != nil {
		b.h.HandleDiscontinuity(nil, all)
	} else if len(topics) > 0 {
		b.h.HandleDiscontinuity(topics, fmt.Errorf("broker/nats: messages dropped: the node's queue of %d messages was full (Options.QueueSize)", b.opts.QueueSize))
	}
}

func (b *Broker) deliver(m *natsgo.Msg) {
	b.mu.RLock()
	topic, ok := b.topics[m.Sub]
	b.mu.RUnlock()
	if ok {
		b.h.HandleMessage(topic, m.Data, broker.Position{})
		return
	}
	if !strings.HasPrefix(m.Subject, b.nodePrefix) && m.Subject != b.allSubject {
		return // a topic unsubscribed since
	}
	l, n := binary.Uvarint(m.Data)
	if n <= 0 || l > uint64(len(m.Data)-n) {
		return // not from a herald node
	}
	from := string(m.Data[n : n+int(l)])
	b.h.HandleNode(from, m.Data[n+int(l):])
}

// escapeToken turns any string into one NATS subject token: bytes outside a safe set become
// %XX, and the empty string is "%" (which no escaped string is).
func escapeToken(s string) string {
	if s == "" {
		return "%"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !tokenSafe(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		}
	}
	return sb.String()
}

func tokenSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_/:=@+~!,;", c) >= 0
}
