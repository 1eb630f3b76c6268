// Package broker is what herald's nodes share when they run as several processes: topics that
// every node subscribed to them hears, messages sent to one node or to all, and optionally a
// history per topic (for exact replay on any node) and cluster-wide leases (for per-user
// connection limits).
//
// A Broker is the link to one engine. herald ships two, each in its own package so that the
// core imports neither client library: broker/redis (Redis through rueidis: single server,
// Sentinel, Cluster; history in Redis Streams) and broker/nats (core NATS; no history).
// NewMemoryHub returns an engine that links the nodes of one process, for tests.
//
// # Guarantees
//
// Every Broker herald ships keeps these, and broker/brokertest checks them:
//
//   - Delivery across nodes is at most once: a message published while a node's link is down
//     is lost to that node, and the node hears of it through Handler.HandleDiscontinuity once
//     its link is back. Nothing is delivered twice.
//   - Messages on one topic from one publisher arrive in the order they were published, on
//     every node, the publisher's own included (a node hears its own publications).
//   - Publish and Send fail fast, with an error wrapping ErrUnavailable, while the link is
//     down: nothing is buffered without bound to be sent later. Err says the same, for
//     readiness checks.
//   - The broker's reader never blocks on a Handler: Handlers hand the work on; a node whose
//     queue of received messages overflows loses messages and hears a discontinuity.
//
// # Node
//
// A Node is herald's view of the cluster over a Broker, and what every cluster feature is
// built on: topics joined by any number of handlers (subscribed on first use, unsubscribed
// after the last), publication, requests to one node and surveys of all (over Send, with
// correlation ids and timeouts), and a registry of the live nodes kept by heartbeats.
//
// Most applications never call a Broker or a Node themselves: they pass a Broker to
// herald.Options.Broker and the server does the rest (a fallback used on its own takes a Node,
// fallback.Options.Broker).
package broker

import (
	"context"
	"errors"
	"time"
)

// Position is where a message sits in its topic's history. The zero Position means "no
// history" (the message was published without a HistoryPolicy, or the broker keeps none).
//
// Offsets count from 1 within an epoch; a topic's epoch changes when its history is lost (a
// Redis restart without persistence, an expired stream), so a position from an older epoch can
// never be resumed from.
type Position struct {
	Epoch  string
	Offset uint64
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p.Epoch == "" && p.Offset == 0 }

// Handler receives what a Broker hears. The broker calls it from its own goroutines: calls for
// one topic are made one at a time, in order; calls for different topics may run at once.
// A Handler must not block: it hands the work on (herald queues per socket and never waits).
type Handler interface {
	// HandleMessage is called for a message published on a topic this node subscribed to,
	// including the node's own publications. pos is zero unless the publication kept history.
	// payload is the handler's to keep, not to change (a broker may share it among nodes).
	HandleMessage(topic string, payload []byte, pos Position)
	// HandleNode is called for a message sent with Send to this node (or to every node).
	// from is the sending node's name.
	HandleNode(from string, payload []byte)
	// HandleDiscontinuity is called when the link to the engine was lost and is back: messages
	// on the listed topics (nil: every topic) may have been missed. err says what happened.
	HandleDiscontinuity(topics []string, err error)
}

// Broker is a link from one node to the engine that carries messages between nodes.
//
// Subscribe, Unsubscribe, Publish and Send are safe for use from many goroutines once Start has
// returned. They fail fast with an error wrapping ErrUnavailable while the link is down, rather
// than buffering without bound.
type Broker interface {
	// Start connects, names this node (unique among the nodes sharing the engine) and starts
	// delivering to h. It returns once the link is up, or with an error (wrapping
	// ErrUnavailable when the engine cannot be reached), after which Start may be called
	// again: herald retries until the engine answers.
	Start(ctx context.Context, node string, h Handler) error
	// Subscribe makes this node hear the topics. It returns once the engine has confirmed the
	// subscriptions. Subscribing to a topic twice is the same as once.
	Subscribe(ctx context.Context, topics ...string) error
	// Unsubscribe stops this node hearing the topics.
	Unsubscribe(ctx context.Context, topics ...string) error
	// Publish sends payload to every node subscribed to topic, this one included. With
	// opts.History the message is also appended to the topic's history (if the broker keeps
	// history; else the error wraps ErrHistoryUnsupported) and its Position is returned.
	Publish(ctx context.Context, topic string, payload []byte, opts PublishOptions) (Position, error)
	// Send sends payload to one node by name, or to every node (this one included) when node
	// is "".
	Send(ctx context.Context, node string, payload []byte) error
	// Err reports the state of the link: nil while it is up, an error wrapping ErrUnavailable
	// while it is down. A readiness check calls it.
	Err() error
	// Close disconnects and stops every goroutine of the broker's. Calls to h have ended when
	// it returns.
	Close() error
}

// PublishOptions are the options of a publication.
type PublishOptions struct {
	// History, when set, appends the message to the topic's history.
	History *HistoryPolicy
}

// HistoryPolicy bounds a topic's history.
type HistoryPolicy struct {
	// Size is the number of messages kept (the oldest are trimmed).
	Size int
	// TTL is how long the history is kept after the last publication; 0 keeps it until trimmed.
	TTL time.Duration
}

// HistoryReader is implemented by brokers that keep history (broker/redis and NewMemoryHub's;
// not broker/nats).
type HistoryReader interface {
	// History returns up to limit messages of topic published after position after, oldest
	// first, and the topic's current (latest) position. A zero after reads from the oldest
	// message kept. It fails with ErrEpochChanged when after belongs to an older epoch and with
	// ErrTrimmed when messages after it are no longer kept: the reader must then reset.
	History(ctx context.Context, topic string, after Position, limit int) ([]Record, Position, error)
}

// Record is one message of a topic's history.
type Record struct {
	Payload []byte
	Pos     Position
}

// Leaser is implemented by brokers that can hold cluster-wide leases (broker/redis and
// NewMemoryHub's): herald uses it for per-user connection limits across nodes. A lease not
// renewed within its ttl expires, so the leases of a node that died free themselves.
type Leaser interface {
	// Acquire takes a lease for holder in set if set holds fewer than max unexpired leases,
	// and reports whether it did.
	Acquire(ctx context.Context, set, holder string, max int, ttl time.Duration) (bool, error)
	// Renew extends the leases of holders in set by ttl.
	Renew(ctx context.Context, set string, holders []string, ttl time.Duration) error
	// Release gives a lease back.
	Release(ctx context.Context, set, holder string) error
}

var (
	// ErrUnavailable is wrapped by every error that comes from the link being down.
	ErrUnavailable = errors.New("broker: unavailable")
	// ErrHistoryUnsupported is returned when history is asked of a broker that keeps none.
	ErrHistoryUnsupported = errors.New("broker: history unsupported")
	// ErrEpochChanged is returned by History when the position belongs to an older epoch.
	ErrEpochChanged = errors.New("broker: history epoch changed")
	// ErrTrimmed is returned by History when messages after the position are no longer kept.
	ErrTrimmed = errors.New("broker: history trimmed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("broker: closed")
)
