package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Update is one delivery to a subscription handler.
type Update struct {
	// Path is the subscription's path.
	Path string
	// Message is the publication; nil only for a revocation without a message.
	Message json.RawMessage
	// Revoked is set when the subscription ended without the client asking: the server
	// revoked it (Message is its last message, if any), or the server refused it when the
	// client resubscribed on a reconnect (Err says why). No update follows a revoked one.
	Revoked bool
	// Err is the server's refusal of the resubscription, for a revocation by the client's
	// reconnect; nil otherwise.
	Err error
}

// Handler receives a subscription's updates. The handlers of one Subscribe call run one at a
// time, in order, on a goroutine of the client's (never the one that reads the connection);
// each has its own queue, so a slow handler delays only its own updates. Past
// Options.HandlerQueue waiting updates, updates are dropped and OnError hears
// ErrHandlerQueueFull.
type Handler func(Update)

// Subscription is one handler subscribed to a path, as Subscribe returned it.
type Subscription struct {
	c       *Client
	path    string
	handler Handler
	queue   *callbackQueue
	active  bool // Subscribe returned it: a refusal at a reconnect is told to its handler
}

// pathSubs is a subscribed path: its handlers and whether the server has confirmed it.
type pathSubs struct {
	path     string
	handlers []*Subscription
	ready    chan struct{} // closed once the server confirmed or refused the path
	err      error         // the refusal
}

func (p *pathSubs) confirm(err error) {
	select {
	case <-p.ready:
	default:
		p.err = err
		close(p.ready)
	}
}

// Path returns the subscription's path.
func (s *Subscription) Path() string { return s.path }

// Subscribe subscribes handler to path's publications. While the client is connected it
// returns once the server has confirmed the subscription, or with its refusal (an *Error of
// kind KindServer: 404 for a path the server has no subscription for, 401 or 403 when auth
// forbids it). While it is reconnecting, it waits for the reconnection (bounded by ctx). Before
// the first Connect, and after Disconnect, it only records the subscription for the next
// hello; if the server refuses it there, the path is dropped, its handlers hear Revoked with
// the refusal, and the connection carries on without it.
//
// The subscription lasts across reconnections: every hello resubscribes every path. Several
// handlers may subscribe to one path; each gets every update. Subscription.Unsubscribe removes
// one handler, Client.Unsubscribe all of a path's.
func (c *Client) Subscribe(ctx context.Context, path string, handler Handler) (*Subscription, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, newError(KindUser, "Invalid path", nil)
	}
	if handler == nil {
		return nil, newError(KindUser, "nil handler", nil)
	}
	s := &Subscription{c: c, path: path, handler: handler, queue: newCallbackQueue(c.opts.HandlerQueue, &c.runners)}
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	p := c.subs[path]
	first := p == nil
	if first {
		p = &pathSubs{path: path, ready: make(chan struct{})}
		c.subs[path] = p
	}
	p.handlers = append(p.handlers, s)
	c.mu.Unlock()

	var err error
	if first {
		err = c.confirm(ctx, p)
	} else {
		select {
		case <-p.ready:
			err = p.err
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		p.handlers = slices.DeleteFunc(p.handlers, func(h *Subscription) bool { return h == s })
		if len(p.handlers) == 0 && c.subs[path] == p {
			delete(c.subs, path)
		}
		return nil, err
	}
	s.active = true
	return s, nil
}

// confirm has the server confirm a new path: by a sub message while connected, or by the
// hello of the connection being made.
func (c *Client) confirm(ctx context.Context, p *pathSubs) error {
	for {
		c.mu.Lock()
		if c.subs[p.path] != p { // refused in a hello, or unsubscribed meanwhile
			c.mu.Unlock()
			select {
			case <-p.ready:
				return p.err
			default:
				return newError(KindUser, "unsubscribed before the subscription was confirmed", nil)
			}
		}
		select {
		case <-p.ready: // a hello carried it
			c.mu.Unlock()
			return p.err
		default:
		}
		st, cn, change := c.state, c.conn, c.change
		if st == stateIdle {
			p.confirm(nil) // the next hello carries it
		}
		c.mu.Unlock()
		switch st {
		case stateClosed:
			return ErrClosed
		case stateIdle:
			return nil
		case stateConnected:
			_, err := cn.call(ctx, &outMessage{Type: "sub", Path: p.path}, c.opts.Timeout)
			if errors.Is(err, ErrDisconnected) {
				continue // the reconnect's hello carries it
			}
			var e *Error
			if errors.As(err, &e) && e.Path == "" {
				e.Path = p.path
			}
			c.mu.Lock()
			if err != nil && c.subs[p.path] == p {
				delete(c.subs, p.path)
			}
			p.confirm(err)
			c.mu.Unlock()
			return err
		}
		select {
		case <-change:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dropSubscription removes a path the server refused in a hello, telling the handlers whose
// Subscribe call had returned. It reports whether the path was subscribed.
func (c *Client) dropSubscription(path string, refusal *Error) bool {
	c.mu.Lock()
	p := c.subs[path]
	if p == nil {
		c.mu.Unlock()
		return false
	}
	delete(c.subs, path)
	p.confirm(refusal)
	handlers := p.handlers
	c.mu.Unlock()
	for _, s := range handlers {
		if s.active {
			s.deliver(Update{Path: path, Revoked: true, Err: refusal})
		}
	}
	return true
}

// deliverPublication hands a pub or revoke to the path's handlers.
func (c *Client) deliverPublication(path string, message json.RawMessage, revoked bool) {
	c.mu.Lock()
	p := c.subs[path]
	if p == nil {
		c.mu.Unlock()
		return // unsubscribed meanwhile, as the reference ignores it
	}
	if revoked {
		delete(c.subs, path)
	}
	handlers := slices.Clone(p.handlers)
	c.mu.Unlock()
	if !revoked && message == nil {
		return // a pub without a message, which the reference ignores too
	}
	u := Update{Path: path, Message: message, Revoked: revoked}
	for _, s := range handlers {
		s.deliver(u)
	}
}

func (s *Subscription) deliver(u Update) {
	if !s.queue.push(func() { s.handler(u) }, u.Revoked) {
		s.c.reportError(fmt.Errorf("%w (path %s)", ErrHandlerQueueFull, u.Path))
	}
}

// Unsubscribe removes this one handler. When it was the path's last, the client unsubscribes
// from the path on the server, and returns the server's answer.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	p := c.subs[s.path]
	if p == nil || !slices.Contains(p.handlers, s) {
		c.mu.Unlock()
		return nil
	}
	p.handlers = slices.DeleteFunc(p.handlers, func(h *Subscription) bool { return h == s })
	last := len(p.handlers) == 0
	if last {
		delete(c.subs, s.path)
	}
	c.mu.Unlock()
	if !last {
		return nil
	}
	return c.unsub(ctx, s.path)
}

// Unsubscribe removes every handler of path and unsubscribes from it on the server. The
// handlers get nothing more, whatever the server answers.
func (c *Client) Unsubscribe(ctx context.Context, path string) error {
	if !strings.HasPrefix(path, "/") {
		return newError(KindUser, "Invalid path", nil)
	}
	c.mu.Lock()
	_, ok := c.subs[path]
	delete(c.subs, path)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	return c.unsub(ctx, path)
}

// unsub tells the server, when connected.
func (c *Client) unsub(ctx context.Context, path string) error {
	cn, err := c.current()
	if err != nil {
		return nil // the next hello leaves the path out
	}
	_, err = cn.call(ctx, &outMessage{Type: "unsub", Path: path}, c.opts.Timeout)
	return err
}

// Subscriptions returns the subscribed paths, sorted.
func (c *Client) Subscriptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	paths := make([]string, 0, len(c.subs))
	for path := range c.subs {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	return paths
}
