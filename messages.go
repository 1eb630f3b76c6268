package herald

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/herald-go/herald/internal/protocol"
)

// processHello answers hello: version, authentication, OnConnection, then subs in order. A
// hello that fails once it was accepted (auth refused, the per-user limit, OnConnection, a
// sub) is answered, then the socket is closed: it is never left open half-initialized. The
// hello timer runs until the hello has succeeded.
func (s *Socket) processHello(ctx context.Context, m *protocol.Message) (any, error) {
	versionOK := false
	if v, ok := protocol.String(m.Version); ok && v == protocol.Version {
		versionOK = true
	}
	s.mu.Lock()
	already := s.isHelloed
	if !already && versionOK {
		// The socket counts as initialized before auth runs: a second hello is refused, and a
		// failed hello is final.
		s.isHelloed = true
	}
	s.mu.Unlock()
	if already {
		return nil, errAlreadyInit
	}
	if !versionOK {
		// Nothing changed: as with the reference, the client may say hello again (until the
		// hello timer closes the socket).
		received := "none"
		if protocol.Truthy(m.Version) {
			received = protocol.JSString(m.Version)
			if len(received) > maxEchoedVersion { // a megabyte of version is not echoed whole
				received = strings.ToValidUTF8(received[:maxEchoedVersion], "") + "..."
			}
		}
		return nil, NewError(400, "Incorrect protocol version (expected "+protocol.Version+" but received "+received+")")
	}
	reply, err := s.hello(ctx, m)
	if err != nil {
		s.Disconnect() // after the error reply
		return nil, err
	}
	s.sendHelloReply(reply)
	return nil, nil
}

// hello runs an accepted hello.
func (s *Socket) hello(ctx context.Context, m *protocol.Message) (any, error) {
	if err := s.authenticate(ctx, m, false); err != nil {
		return nil, err
	}
	if fn := s.server.opts.OnConnection; fn != nil {
		if err := fn(ctx, s); err != nil {
			return nil, err
		}
	}
	if protocol.Truthy(m.Subs) {
		var subs []json.RawMessage
		if err := json.Unmarshal(m.Subs, &subs); err != nil {
			return nil, errCannotParse
		}
		for _, raw := range subs {
			path, _ := protocol.String(raw)
			if err := s.subscribe(ctx, path); err != nil {
				e := *asError(err)
				e.path = protocol.JSString(raw)
				return nil, &e
			}
		}
	}
	var hb any = false
	if h := s.server.heartbeat; !h.Disabled {
		hb = heartbeatSettings{Interval: h.Interval.Milliseconds(), Timeout: h.Timeout.Milliseconds()}
	}
	return helloReply{Type: "hello", ID: m.ID, Heartbeat: hb, Socket: s.ID}, nil
}

// processReauth replaces the socket's credentials. A failure is answered, then the socket is
// disconnected.
func (s *Socket) processReauth(ctx context.Context, m *protocol.Message) (any, error) {
	if err := s.authenticate(ctx, m, true); err != nil {
		s.Disconnect()
		return nil, err
	}
	s.reauthorize(ctx)
	return idReply{Type: "reauth", ID: m.ID}, nil
}

// processMessage hands a custom message to OnMessage.
func (s *Socket) processMessage(ctx context.Context, m *protocol.Message) (any, error) {
	fn := s.server.opts.OnMessage
	if fn == nil {
		return nil, errNotImplemented
	}
	result, err := fn(ctx, s, m.Message)
	if err != nil {
		return nil, err
	}
	reply := messageReply{Type: "message", ID: m.ID}
	if raw, ok := result.(json.RawMessage); ok && len(raw) == 0 {
		result = nil // the message echoed from a message without one: undefined, as in the reference
	}
	if result != nil {
		if reply.Message, err = marshalValue(result); err != nil {
			return nil, err
		}
	}
	return reply, nil
}

// processSub subscribes the socket to a path.
func (s *Socket) processSub(ctx context.Context, m *protocol.Message) (any, error) {
	path, _ := protocol.String(m.Path)
	if err := s.subscribe(ctx, path); err != nil {
		return nil, err
	}
	return subReply{Type: "sub", ID: m.ID, Path: path}, nil
}

// processUnsub unsubscribes the socket; unknown paths succeed. A path that is not a string
// is turned into one, as the reference looks it up as a property name (["/a"] is "/a").
func (s *Socket) processUnsub(ctx context.Context, m *protocol.Message) (any, error) {
	path := protocol.JSString(m.Path)
	s.unsubscribe(ctx, path)
	return idReply{Type: "unsub", ID: m.ID}, nil
}

// pendingSub is a subscription of the socket whose OnSubscribe is running. Messages are
// processed concurrently: a second sub of the path waits for it, and an unsub cancels it.
type pendingSub struct {
	done      chan struct{} // closed once it is settled
	cancelled bool          // an unsub came while it was pending: undo it once OnSubscribe returns
}

// subscribe adds the socket to the subscription matching path. The path is reserved under the
// socket's lock before anything runs, so that concurrent subs of one path join once and run
// OnSubscribe once, and concurrent subs of different paths cannot pass MaxSubscriptions
// together. Every OnSubscribe that succeeds is paired with exactly one OnUnsubscribe: on
// unsub, revoke, or the socket's close, including a close while OnSubscribe ran.
func (s *Socket) subscribe(ctx context.Context, path string) error {
	if strings.Contains(path, "?") {
		return errSubQuery
	}
	var p *pendingSub
	for p == nil {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrSocketClosed
		}
		if _, already := s.subs[path]; already {
			s.mu.Unlock()
			return nil
		}
		if other := s.pending[path]; other != nil {
			s.mu.Unlock()
			select {
			case <-other.done:
				continue // settled: look again
			case <-ctx.Done():
				return ErrSocketClosed
			}
		}
		if len(s.subs)+len(s.pending) >= s.server.opts.MaxSubscriptions {
			s.mu.Unlock()
			return errTooManySubs
		}
		p = &pendingSub{done: make(chan struct{})}
		s.pending[path] = p
		s.mu.Unlock()
	}
	joined := false
	defer func() {
		if !joined {
			s.mu.Lock()
			delete(s.pending, path)
			s.mu.Unlock()
		}
		close(p.done)
	}()
	sub, params, ok := s.server.subs.match(path)
	if !ok {
		return errSubNotFound
	}
	creds := s.credentials()
	if err := sub.authorize(creds, params); err != nil {
		return err
	}
	if fn := sub.opts.OnSubscribe; fn != nil {
		if err := fn(ctx, s, path, params); err != nil {
			return err
		}
	}
	if err := s.server.holdPath(ctx, path); err != nil { // with a broker: hear the path first
		sub.runOnUnsubscribe(context.WithoutCancel(ctx), s, path, params)
		return err
	}
	var refused error
	for {
		s.mu.Lock()
		if now := s.auth.credentials; now != creds && !s.closed && !p.cancelled {
			// A reauth replaced the credentials while OnSubscribe ran: they must pass too.
			s.mu.Unlock()
			creds = now
			if refused = sub.authorize(creds, params); refused != nil {
				break
			}
			continue
		}
		delete(s.pending, path)
		if !s.closed && !p.cancelled {
			s.subs[path] = sub
			sub.add(s, path, params, s.userLocked())
			joined = true
		}
		s.mu.Unlock()
		break
	}
	if !joined {
		// Closed, unsubscribed or refused while OnSubscribe ran: it never joined, but
		// OnSubscribe accepted it, so OnUnsubscribe runs as for any subscription that ends.
		s.mu.Lock()
		delete(s.pending, path)
		closed := s.closed
		s.mu.Unlock()
		joined = true // the pending entry is gone already
		s.server.releasePath(path)
		sub.runOnUnsubscribe(context.WithoutCancel(ctx), s, path, params)
		switch {
		case refused != nil:
			return refused
		case closed:
			return ErrSocketClosed
		}
	}
	return nil
}

// reauthorize re-applies the subscriptions' auth rules after a reauth: a subscription the new
// credentials may not have is revoked (the client is told, without a message).
func (s *Socket) reauthorize(ctx context.Context) {
	s.mu.Lock()
	creds := s.auth.credentials
	paths := make(map[string]*subscription, len(s.subs))
	for path, sub := range s.subs {
		paths[path] = sub
	}
	s.mu.Unlock()
	for path, sub := range paths {
		if sub.opts.Auth == nil {
			continue
		}
		params, _ := sub.pattern.match(path)
		if sub.authorize(creds, params) != nil {
			_ = s.Revoke(ctx, path, nil)
		}
	}
}

// unsubscribe removes the socket from path's subscription, running OnUnsubscribe. A sub of the
// path still running is cancelled: it ends unsubscribed, its OnUnsubscribe paired with its
// OnSubscribe. It never waits, so OnSubscribe may revoke its own path.
func (s *Socket) unsubscribe(ctx context.Context, path string) {
	s.mu.Lock()
	if p := s.pending[path]; p != nil {
		p.cancelled = true
	}
	sub, ok := s.subs[path]
	var params map[string]string
	if ok {
		delete(s.subs, path)
		params = sub.remove(s, path)
	}
	s.mu.Unlock()
	if ok {
		sub.runOnUnsubscribe(ctx, s, path, params)
	}
}

// takeSubscriptions empties the socket's subscriptions, for cleanup after it closed.
func (s *Socket) takeSubscriptions() map[string]*subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	subs := s.subs
	s.subs = map[string]*subscription{}
	return subs
}

// maxEchoedVersion bounds the part of a wrong protocol version that its error echoes: the
// reference echoes it whole, which lets a large hello get a larger error back.
const maxEchoedVersion = 64
