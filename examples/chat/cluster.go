package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/broker/nats"
	"github.com/herald-go/herald/broker/redis"
)

// fallbackKeyEnv names the environment variable that holds the key signing the fallback's
// tickets. Every node of one chat must be given the same.
const fallbackKeyEnv = "HERALD_FALLBACK_KEY"

// chatTopic is the broker topic on which the nodes tell each other of messages and of the
// people present: every node joins it for as long as it runs.
const chatTopic = "chat.events"

// pruneEvery is how often a node forgets the people present through nodes that died, and
// nodeExpiry how long a node may be quiet before it counts as dead (and how long after its
// last event a node not, or no longer, in the registry is kept).
const (
	pruneEvery = time.Second
	nodeExpiry = 3 * time.Second
)

// newBroker returns a link to the broker that -redis or -nats names, or nil for one node.
// Giving both is a mistake. The nes server and the chat's own node each have a link, with
// prefixes of their own ("herald-chat-demo" and "herald-chat-demo-app"), so that each hears
// only its kind of node: the nes servers survey every node of their prefix.
func newBroker(redisAddr, natsURL, prefix string) (broker.Broker, error) {
	switch {
	case redisAddr != "" && natsURL != "":
		return nil, errors.New("-redis and -nats are exclusive: give one of them, or neither for one node")
	case redisAddr != "":
		b, err := redis.New(redis.Options{Addrs: []string{redisAddr}, Prefix: prefix + ":"})
		if err != nil {
			return nil, fmt.Errorf("-redis %s: %w", redisAddr, err)
		}
		return b, nil
	case natsURL != "":
		return nats.New(natsURL, &nats.Options{Prefix: prefix}), nil
	}
	return nil, nil
}

// fallbackKey returns the key that signs the fallback's tickets on every node: the value of
// HERALD_FALLBACK_KEY, or, when it is unset, one derived from the demo's fixed password (fine
// for the demo, whose cookie password is in its source anyway; never in production), which
// logger is told of.
func fallbackKey(logger *slog.Logger) []byte {
	if k := os.Getenv(fallbackKeyEnv); k != "" {
		return []byte(k)
	}
	logger.Warn(fallbackKeyEnv + " is unset: the nodes sign the fallback's tickets with a key derived from the demo's public password; set it to a secret shared by every node")
	sum := sha256.Sum256([]byte("fallback key: " + password))
	return sum[:]
}

// event is what a node tells the others on chatTopic.
type event struct {
	Kind string `json:"kind"` // "message", "join", "leave", "hello" (a node started) or "state"
	Node string `json:"node"` // the node that tells
	Room string `json:"room,omitempty"`
	User string `json:"user,omitempty"`
	// Message is the message posted, with "message".
	Message *message `json:"message,omitempty"`
	// Rooms are the people present through the node, room by room, with "state": the answer
	// to a "hello", which replaces what the others knew of the node.
	Rooms map[string][]string `json:"rooms,omitempty"`
}

// peers is the chat's link to the other nodes: its own broker.Node (beside the nes server's),
// on which it shares messages, for every node to keep the same history, and who is present
// through which node, for every node to show the same members and head counts.
type peers struct {
	node    *broker.Node
	history *broker.HistoryPolicy // with a broker that keeps history (Redis): messages are kept there too
	reader  broker.HistoryReader
	linked  atomic.Bool     // the node started and joined chatTopic (link): share publishes from then on
	started bool            // the node started; link's, which runs once at a time
	leave   func()          // set by link; read by closePeers after wg.Wait
	events  chan []byte     // heard on chatTopic, applied by run
	resync  chan struct{}   // the link was lost and is back: events may have been missed
	ctx     context.Context // ends with closePeers: a link under way gives up
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup
	log     *slog.Logger
}

// errUnlinked is what share returns before the chat's node has linked up with the others.
var errUnlinked = fmt.Errorf("chat: %w: not linked to the other nodes yet", broker.ErrUnavailable)

// isLinked reports whether the chat's node has linked up with the others (link). p may be
// nil (one node), which is linked.
func (p *peers) isLinked() bool { return p == nil || p.linked.Load() }

// startPeers starts the chat's node on b, links it to the other nodes (link) and returns. A
// broker that does not answer yet is tried again in the background, every 100 ms at first and
// every 5 s at most, until it does or closePeers, as the nes server does with its own link:
// the chat serves meanwhile, alone (share does nothing).
func (c *chat) startPeers(b broker.Broker, name string, logger *slog.Logger) {
	// Heartbeats every second, a node quiet for 3 s is gone: the people of a node that died
	// are announced as gone within about 5 s.
	n := broker.NewNode(b, &broker.NodeOptions{Name: name, Logger: logger, HeartbeatInterval: time.Second, NodeExpiry: nodeExpiry})
	p := &peers{node: n, events: make(chan []byte, 4096), resync: make(chan struct{}, 1), done: make(chan struct{}), log: logger}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	n.OnDiscontinuity(func([]string, error) {
		select {
		case p.resync <- struct{}{}:
		default:
		}
	})
	if hr, ok := b.(broker.HistoryReader); ok && c.cfg.history > 0 {
		p.reader = hr
		p.history = &broker.HistoryPolicy{Size: min(c.cfg.history*c.cfg.maxRooms, 10000), TTL: 24 * time.Hour}
	}
	c.peers = p
	ctx, cancel := context.WithTimeout(p.ctx, linkTimeout)
	err := c.link(ctx, false)
	cancel()
	if err == nil {
		return
	}
	if !errors.Is(err, broker.ErrUnavailable) {
		// The nes server's log line says why an unreachable broker is, and the 5 s warning
		// what to do: anything else is said here.
		logger.Warn("chat: cannot link the chat's node to the other nodes; retrying", "err", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		delay := 100 * time.Millisecond
		for {
			select {
			case <-p.done:
				return
			case <-time.After(delay):
			}
			ctx, cancel := context.WithTimeout(p.ctx, linkTimeout)
			err := c.link(ctx, true)
			cancel()
			if err == nil {
				return
			}
			delay = min(2*delay, 5*time.Second)
		}
	}()
}

// linkTimeout bounds one attempt of link.
const linkTimeout = 10 * time.Second

// link starts the chat's node (once), joins chatTopic, replays the messages the broker keeps
// (Redis), and says hello so that the other nodes tell who is present through them. late, for
// a node that has served alone meanwhile, tells them also who is present through it.
func (c *chat) link(ctx context.Context, late bool) error {
	p := c.peers
	if !p.started {
		if err := p.node.Start(ctx); err != nil {
			return fmt.Errorf("chat: starting the chat's node: %w", err)
		}
		p.started = true
	}
	leave, err := p.node.Join(ctx, chatTopic, func(payload []byte, _ broker.Position) {
		select {
		case p.events <- payload:
		default:
			p.log.Warn("chat: an event from another node was dropped (too many at once)")
		}
	})
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	p.leave = leave
	_ = c.replay(ctx)
	p.linked.Store(true)
	p.wg.Add(1)
	go c.runPeers()
	if late {
		c.mu.Lock()
		_ = c.share(event{Kind: "state", Rooms: c.localPresence()})
		c.mu.Unlock()
	}
	_ = c.share(event{Kind: "hello"})
	return nil
}

// replay reads the messages the broker keeps (Redis) into the rooms' history: those this
// node has already are kept once.
func (c *chat) replay(ctx context.Context) error {
	p := c.peers
	if p.reader == nil {
		return nil
	}
	records, _, err := p.reader.History(ctx, chatTopic, broker.Position{}, p.history.Size)
	if err != nil {
		p.log.Warn("chat: cannot read the rooms' history from the broker", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range records {
		c.applyLocked(r.Payload, true)
	}
	return err
}

// resync runs once the link is back after a loss: the node reads the broker's history again
// (Redis), tells the others who is present through it, and asks them to do the same. The
// link may fail a moment longer (a connection that broke while idle): it tries again, every
// resyncRetry, up to resyncTries times.
func (c *chat) resync() {
	for try := 0; try < resyncTries; try++ {
		if try > 0 {
			select {
			case <-c.peers.done:
				return
			case <-time.After(resyncRetry):
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.replay(ctx)
		cancel()
		c.mu.Lock()
		err = errors.Join(err, c.share(event{Kind: "state", Rooms: c.localPresence()}), c.share(event{Kind: "hello"}))
		c.mu.Unlock()
		if err == nil {
			return
		}
	}
}

// resync's retries.
const (
	resyncTries = 20
	resyncRetry = 250 * time.Millisecond
)

// closePeers leaves the other nodes, or stops trying to link up with them. The nes server has
// closed its sockets before.
func (c *chat) closePeers() {
	p := c.peers
	if p == nil {
		return
	}
	close(p.done)
	p.cancel()
	p.wg.Wait()
	if p.leave != nil {
		p.leave()
	}
	_ = p.node.Close()
}

// runPeers applies the events of the other nodes and forgets those that died.
func (c *chat) runPeers() {
	p := c.peers
	defer p.wg.Done()
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case payload := <-p.events:
			c.mu.Lock()
			c.applyLocked(payload, false)
			c.mu.Unlock()
		case <-p.resync:
			c.resync()
		case <-tick.C:
			c.prune()
		}
	}
}

// share tells every node of e (this one hears it too, and ignores it). Without a broker it
// does nothing; before the chat's node has linked up (startPeers), it returns errUnlinked.
// c.mu may be held: publishing never waits long (the broker fails fast while its link is
// down).
func (c *chat) share(e event) error {
	p := c.peers
	if p == nil {
		return nil
	}
	if !p.linked.Load() {
		return errUnlinked // serving alone until link succeeds, which then tells the others
	}
	e.Node = p.node.Name()
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var opts broker.PublishOptions
	if e.Kind == "message" {
		opts.History = p.history
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.node.Publish(ctx, chatTopic, payload, opts); err != nil {
		p.log.Warn("chat: cannot tell the other nodes", "kind", e.Kind, "err", err)
		return err
	}
	return nil
}

// applyLocked applies an event heard on chatTopic (or read from its history, replay). c.mu is
// held. A node's own events were applied when they happened, except replayed messages.
func (c *chat) applyLocked(payload []byte, replay bool) {
	var e event
	if json.Unmarshal(payload, &e) != nil || e.Node == "" {
		return
	}
	self := c.peers.node.Name()
	if e.Node == self && !replay {
		return
	}
	if e.Node != self {
		c.heard[e.Node] = time.Now()
	}
	switch e.Kind {
	case "message":
		if e.Message == nil || !roomNameRE.MatchString(e.Message.Room) {
			return
		}
		c.last = max(c.last, e.Message.ID)
		if r := c.roomFor(e.Message.Room); r != nil {
			r.record(*e.Message, c.cfg.history)
		}
	case "join":
		if r := c.roomFor(e.Room); r != nil {
			r.remoteSet(e.Node)[e.User] = true
		}
	case "leave":
		if r := c.rooms[e.Room]; r != nil && r.remote[e.Node] != nil {
			delete(r.remote[e.Node], e.User)
			c.dropIfIdle(r)
		}
	case "hello":
		_ = c.share(event{Kind: "state", Rooms: c.localPresence()})
	case "state":
		before := map[*room]map[string]bool{}
		for _, r := range c.rooms {
			before[r] = r.remote[e.Node]
			delete(r.remote, e.Node)
		}
		for name, users := range e.Rooms {
			if r := c.roomFor(name); r != nil {
				set := r.remoteSet(e.Node)
				for _, u := range users {
					set[u] = true
				}
			}
		}
		c.departed(before, e.Node)
	}
}

// departed announces the users who were present through another node (before: by room) and
// are no longer in the room at all: their leaving was missed (the link was down, or the node
// died). The first of the live nodes by name but the one the news is about (which knows its
// own people) announces, so that each departure is published once. c.mu is held.
func (c *chat) departed(before map[*room]map[string]bool, about string) {
	alive := slices.DeleteFunc(c.peers.node.Nodes(), func(n string) bool { return n == about })
	announce := len(alive) > 0 && alive[0] == c.peers.node.Name()
	changed := false
	for r, users := range before {
		for u := range users {
			if !r.present(u) && announce {
				if c.publishPresence(r, "leave", u) != nil {
					c.announceLater(r, u)
				}
				changed = true
			}
		}
		c.dropIfIdle(r)
	}
	if changed {
		c.publishLobby()
	}
}

// announceLater tries again, a few times, to announce that user left r: right after the link
// came back, a publication may still fail for a moment, and this news comes only once. The
// tries wait outside c.mu, so the rest of the chat goes on meanwhile; a user who is back in
// the room by then is not announced. c.mu is held (by the caller, not by the tries).
func (c *chat) announceLater(r *room, user string) {
	p := c.peers
	p.wg.Add(1) // closePeers waits for the tries too
	go func() {
		defer p.wg.Done()
		for try := 0; try < announceTries; try++ {
			select {
			case <-p.done:
				return
			case <-time.After(announceRetry):
			}
			if c.announceLeft(r, user) {
				return
			}
		}
	}()
}

// announceLeft is one of announceLater's tries: it reports whether it is over (announced, or
// the user is back).
func (c *chat) announceLeft(r *room, user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.present(user) {
		return true
	}
	if c.publishPresence(r, "leave", user) != nil {
		return false
	}
	c.publishLobby()
	return true
}

// announceLater's tries.
const (
	announceTries = 5
	announceRetry = 200 * time.Millisecond
)

// roomFor returns the room, creating it for another node's event unless the name is wrong or
// there are -max-rooms rooms already. c.mu is held.
func (c *chat) roomFor(name string) *room {
	if r := c.rooms[name]; r != nil {
		return r
	}
	if !roomNameRE.MatchString(name) || len(c.rooms) >= c.cfg.maxRooms {
		return nil
	}
	r := c.newRoom(name, false)
	c.rooms[name] = r
	return r
}

// localPresence lists the users present through this node, room by room. c.mu is held.
func (c *chat) localPresence() map[string][]string {
	out := map[string][]string{}
	for name, r := range c.rooms {
		for u := range r.users {
			out[name] = append(out[name], u)
		}
	}
	return out
}

// prune forgets the people present through nodes that stopped heartbeating (they died
// without saying goodbye), announcing those who are then gone.
func (c *chat) prune() {
	alive := c.peers.node.Nodes()
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, last := range c.heard {
		if slices.Contains(alive, n) || time.Since(last) < nodeExpiry {
			continue
		}
		delete(c.heard, n)
		before := map[*room]map[string]bool{}
		for _, r := range c.rooms {
			before[r] = r.remote[n]
			delete(r.remote, n)
		}
		c.departed(before, n)
	}
}
