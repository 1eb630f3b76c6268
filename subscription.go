package herald

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// SubscriptionOptions configures a subscription.
type SubscriptionOptions struct {
	// Filter decides, socket by socket, what a publication delivers: return false to skip the
	// socket, or true with a non-nil override to send override instead of the message. A
	// panic skips the socket. It runs on Publish's goroutine; with Options.Broker, on the
	// node that holds the socket, on the goroutine that reads the broker, where a slow filter
	// delays the publications behind it: keep it quick, and never wait in it. Nil delivers
	// every publication.
	Filter func(path string, message any, info FilterInfo) (deliver bool, override any)

	// OnSubscribe runs before a socket joins; an error refuses the subscription with it. It
	// runs once per socket and path however many subs of the path arrive at once (the others
	// wait for it).
	OnSubscribe func(ctx context.Context, s *Socket, path string, params map[string]string) error

	// OnUnsubscribe runs after a socket leaves (unsub, revoke, or disconnect), exactly once for
	// every OnSubscribe that succeeded, including when the socket closed or unsubscribed while
	// OnSubscribe ran.
	OnUnsubscribe func(ctx context.Context, s *Socket, path string, params map[string]string)

	// Auth restricts who may subscribe. Nil means anyone.
	Auth *SubscriptionAuth

	// PresenceEvents tells a path's subscribers (on every node, with Options.Broker) who
	// joins and leaves it: each join and leave is published on the path, after the
	// subscriptions it follows, with a PresenceEvent as its message (see PresenceEvent for
	// the shape). The subscriber that joined gets its own join event. The filter does not
	// see these publications. False means no events; Server.Presence works either way.
	PresenceEvents bool
}

// SubscriptionAuth restricts a subscription to authenticated sockets.
type SubscriptionAuth struct {
	// Mode is "required" (the default) or "optional": optional lets anonymous sockets in,
	// while authenticated ones must still pass Scope and Entity.
	Mode string
	// Scope lists the scopes of which the socket's credentials need one. Entries may name
	// path parameters: "user-{id}".
	Scope []string
	// Entity is "user" (credentials with a User), "app" (without one) or "any" (the
	// default).
	Entity string
	// Index keeps subscribers indexed by user, so Publish can target a user.
	Index bool
}

// FilterInfo is what a subscription's filter knows about the socket it decides for.
type FilterInfo struct {
	Socket      *Socket           // the socket the publication would go to
	Credentials *Credentials      // nil for anonymous sockets
	Params      map[string]string // the subscription path's parameters ("id" for /item/{id})
	Internal    any               // PublishOptions.Internal
}

// PublishOptions narrows a publication.
type PublishOptions struct {
	// Internal is passed to the subscription's filter and never sent. With Options.Broker
	// it travels encoded as JSON, and filters (on every node, this one included) see it, as
	// they see the message, decoded from JSON into an any (map[string]any, []any, float64,
	// string, bool or nil), as encoding/json decodes.
	Internal any
	// User, when set, limits the publication to that user's sockets (SubscriptionAuth.Index
	// must be on).
	User string
}

// subscriptions holds the declared subscriptions.
type subscriptions struct {
	mu   sync.RWMutex
	list []*subscription
}

func newSubscriptions() *subscriptions { return &subscriptions{} }

// subscription is one declared subscription and its subscribers.
type subscription struct {
	srv     *Server
	pattern *pattern
	opts    SubscriptionOptions
	scopes  []scopeTemplate

	mu     sync.RWMutex
	items  map[*Socket]*subscriber
	byUser map[string]map[*Socket]*subscriber
}

// subscriber is one socket in a subscription, with the concrete paths it joined through.
type subscriber struct {
	user   string // the socket's user
	paths  []string
	params []map[string]string
}

type scopeTemplate struct {
	text   string
	params bool
}

var scopeParamRE = regexp.MustCompile(`\{(\w+)\}`)

// Subscription declares a subscription path that clients may subscribe to, such as
// "/item/{id}" (see SubscriptionOptions). It panics on a malformed path, as a start-up
// misconfiguration.
func (s *Server) Subscription(path string, opts *SubscriptionOptions) {
	p, err := parsePattern(path)
	if err != nil {
		panic(err)
	}
	sub := &subscription{srv: s, pattern: p, items: map[*Socket]*subscriber{}, byUser: map[string]map[*Socket]*subscriber{}}
	if opts != nil {
		sub.opts = *opts
	}
	if a := sub.opts.Auth; a != nil {
		for _, sc := range a.Scope {
			sub.scopes = append(sub.scopes, scopeTemplate{text: sc, params: scopeParamRE.MatchString(sc)})
		}
	}
	s.subs.mu.Lock()
	s.subs.list = append(s.subs.list, sub)
	s.subs.mu.Unlock()
}

// match finds the most specific subscription for a concrete path.
func (ss *subscriptions) match(path string) (*subscription, map[string]string, bool) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	var best *subscription
	var bestParams map[string]string
	for _, sub := range ss.list {
		params, ok := sub.pattern.match(path)
		if ok && (best == nil || sub.pattern.moreSpecific(best.pattern)) {
			best, bestParams = sub, params
		}
	}
	return best, bestParams, best != nil
}

// removeSocket takes a closed socket out of its subscriptions, running OnUnsubscribe.
func (ss *subscriptions) removeSocket(s *Socket, subs map[string]*subscription) {
	for path, sub := range subs {
		sub.runOnUnsubscribe(context.Background(), s, path, sub.remove(s, path))
	}
}

// runOnUnsubscribe runs OnUnsubscribe, if set, for a socket that left path. A panic is logged
// and goes no further.
func (sub *subscription) runOnUnsubscribe(ctx context.Context, s *Socket, path string, params map[string]string) {
	if fn := sub.opts.OnUnsubscribe; fn != nil {
		_ = s.guard("OnUnsubscribe", func() error { fn(ctx, s, path, params); return nil })
	}
}

// authorize applies the subscription's auth rules to a socket's credentials.
func (sub *subscription) authorize(creds *Credentials, params map[string]string) error {
	a := sub.opts.Auth
	if a == nil {
		return nil
	}
	if creds == nil {
		if a.Mode == "optional" {
			return nil
		}
		return errSubAuthRequired
	}
	if len(sub.scopes) > 0 {
		scopes := make([]string, len(sub.scopes))
		for i, sc := range sub.scopes {
			scopes[i] = sc.text
			if sc.params {
				scopes[i] = scopeParamRE.ReplaceAllStringFunc(sc.text, func(m string) string { return params[m[1:len(m)-1]] })
			}
		}
		if !slices.ContainsFunc(creds.Scope, func(c string) bool { return slices.Contains(scopes, c) }) {
			return NewError(http.StatusForbidden, "Insufficient scope to subscribe, expected any of: "+strings.Join(scopes, ","))
		}
	}
	switch a.Entity {
	case "user":
		if creds.User == "" {
			return NewError(http.StatusForbidden, "Application credentials cannot be used on a user subscription")
		}
	case "app":
		if creds.User != "" {
			return NewError(http.StatusForbidden, "User credentials cannot be used on an application subscription")
		}
	}
	return nil
}

// add joins a socket through path, indexed under user (the socket's user: the caller holds
// the socket's lock, which is taken before a subscription's).
func (sub *subscription) add(s *Socket, path string, params map[string]string, user string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	item := sub.items[s]
	if item == nil {
		item = &subscriber{}
		sub.items[s] = item
		if user != "" && sub.opts.Auth != nil && sub.opts.Auth.Index {
			if sub.byUser[user] == nil {
				sub.byUser[user] = map[*Socket]*subscriber{}
			}
			sub.byUser[user][s] = item
		}
	}
	item.user = user
	item.paths = append(item.paths, path)
	item.params = append(item.params, params)
	if sub.opts.PresenceEvents {
		sub.srv.presenceEvent(path, "join", s.ID, user)
	}
}

// reindex moves a subscriber to another user in the user index, after a reauth changed the
// socket's user. The caller holds the socket's lock.
func (sub *subscription) reindex(s *Socket, user string) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	item := sub.items[s]
	if item == nil {
		return
	}
	item.user = user // for presence, with or without the index
	if sub.opts.Auth == nil || !sub.opts.Auth.Index {
		return
	}
	for u, m := range sub.byUser {
		if delete(m, s); len(m) == 0 {
			delete(sub.byUser, u)
		}
	}
	if user != "" {
		if sub.byUser[user] == nil {
			sub.byUser[user] = map[*Socket]*subscriber{}
		}
		sub.byUser[user][s] = item
	}
}

// remove takes one path of a socket out, returning its parameters. It gives back the path's
// hold on the broker topic (Server.holdPath) and queues the leave's presence event.
func (sub *subscription) remove(s *Socket, path string) map[string]string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	item := sub.items[s]
	if item == nil {
		return nil
	}
	i := slices.Index(item.paths, path)
	if i < 0 {
		return nil
	}
	params := item.params[i]
	sub.srv.releasePath(path)
	if sub.opts.PresenceEvents {
		sub.srv.presenceEvent(path, "leave", s.ID, item.user)
	}
	item.paths = slices.Delete(item.paths, i, i+1)
	item.params = slices.Delete(item.params, i, i+1)
	if len(item.paths) == 0 {
		delete(sub.items, s)
		for user, m := range sub.byUser {
			if delete(m, s); len(m) == 0 {
				delete(sub.byUser, user)
			}
		}
	}
	return params
}

// targets lists the sockets a publication on path reaches.
func (sub *subscription) targets(path, user string) []*Socket {
	sub.mu.RLock()
	defer sub.mu.RUnlock()
	items := sub.items
	if user != "" {
		items = sub.byUser[user]
	}
	out := make([]*Socket, 0, len(items))
	for s, item := range items {
		if sub.pattern.params && !slices.Contains(item.paths, path) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// presence lists the subscribers of path.
func (sub *subscription) presence(path, node string) []PresenceEntry {
	sub.mu.RLock()
	defer sub.mu.RUnlock()
	var out []PresenceEntry
	for s, item := range sub.items {
		if slices.Contains(item.paths, path) {
			out = append(out, PresenceEntry{Node: node, Socket: s.ID, User: item.user})
		}
	}
	return out
}

// Publish sends message to every socket subscribed to path (a concrete path, such as
// "/item/5"), through the subscription's filter. The message is encoded once; publishing
// never waits on a slow socket. Publishing to a path no subscription matches does nothing.
//
// With Options.Broker the publication goes through the broker to every node subscribed to
// the path, this one included, and each runs the filter for its own sockets (see
// PublishOptions.Internal); publications on one path keep their order on every node.
// Publish then fails fast, with an error wrapping broker.ErrUnavailable, while the broker
// link is down.
func (s *Server) Publish(path string, message any, opts *PublishOptions) error {
	if path == "" || path[0] != '/' {
		return fmt.Errorf("herald: invalid publication path %q", path)
	}
	var o PublishOptions
	if opts != nil {
		o = *opts
	}
	sub, params, ok := s.subs.match(path)
	if !ok {
		return nil
	}
	if o.User != "" && (sub.opts.Auth == nil || !sub.opts.Auth.Index) {
		return errors.New("herald: Publish to a user needs SubscriptionAuth.Index on the subscription")
	}
	raw, err := marshalValue(message)
	if err != nil {
		return err
	}
	s.meterPublished()
	if s.cluster != nil {
		e := envelope{kind: kindPub, path: path, user: o.User, message: raw}
		if o.Internal != nil {
			if e.internal, err = marshalValue(o.Internal); err != nil {
				return fmt.Errorf("herald: PublishOptions.Internal: %w", err)
			}
		}
		return s.cluster.publish("p:"+path, &e)
	}
	return s.deliverPublication(sub, path, params, message, raw, o)
}

// RevokeOptions narrows Server.Revoke.
type RevokeOptions struct {
	// User, when set, revokes only that user's subscriptions (SubscriptionAuth.Index must
	// be on).
	User string
}

// Revoke unsubscribes every socket subscribed to path (a concrete path), on every node with
// Options.Broker, running OnUnsubscribe, and tells each client, with message when it is not
// nil (the client passes it to its handlers with flags.revoked set). With a broker the
// revocation travels on the path's topic, in order with its publications, and Revoke fails
// fast while the link is down. It never waits on a slow socket.
func (s *Server) Revoke(path string, message any, opts *RevokeOptions) error {
	if path == "" || path[0] != '/' {
		return fmt.Errorf("herald: invalid revocation path %q", path)
	}
	var user string
	if opts != nil {
		user = opts.User
	}
	sub, _, ok := s.subs.match(path)
	if !ok {
		return nil
	}
	if user != "" && (sub.opts.Auth == nil || !sub.opts.Auth.Index) {
		return errors.New("herald: Revoke of a user needs SubscriptionAuth.Index on the subscription")
	}
	var raw json.RawMessage
	if message != nil {
		var err error
		if raw, err = marshalValue(message); err != nil {
			return err
		}
	}
	if s.cluster != nil {
		return s.cluster.publish("p:"+path, &envelope{kind: kindRevoke, path: path, user: user, message: raw})
	}
	s.revokeLocal(path, raw, user, false)
	return nil
}

// filter runs a subscription filter for one socket; a panic counts as a skip.
func (s *Socket) filter(f func(string, any, FilterInfo) (bool, any), path string, message any, info FilterInfo) (deliver bool, override any, ok bool) {
	err := s.guard("Filter", func() error {
		deliver, override = f(path, message, info)
		return nil
	})
	return deliver, override, err == nil
}

// EachSubscriber calls fn for every socket of this node subscribed to path (a concrete
// path), or only those of user when it is set, until fn returns false. For the subscribers
// of every node, see Presence.
func (s *Server) EachSubscriber(path, user string, fn func(*Socket) bool) {
	sub, _, ok := s.subs.match(path)
	if !ok {
		return
	}
	for _, sock := range sub.targets(path, user) {
		if !fn(sock) {
			return
		}
	}
}
