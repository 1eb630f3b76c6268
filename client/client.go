package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-go/herald/internal/protocol"
)

// Client is a nes client: one connection to a nes server (herald's, or hapi's with
// @hapi/nes), kept up across network failures and server restarts.
//
// All its methods are safe for concurrent use, also from inside its callbacks and
// subscription handlers. Cancelling the context given to a call ends that call, never the
// connection.
type Client struct {
	url     string
	opts    Options
	ids     atomic.Uint64 // message ids: counted up from 1, never reset (as the reference)
	events  *callbackQueue
	runners runnerSet
	random  func() float64 // the backoff's jitter source

	mu     sync.Mutex
	state  state
	conn   *conn // the connection while connected
	id     string
	auth   *Auth
	subs   map[string]*pathSubs
	change chan struct{} // closed and replaced whenever state or conn changes
	// stop ends the reconnection loop and any connection attempt in progress: cancelled by
	// Disconnect and Close.
	stop       context.Context
	cancelStop context.CancelFunc
	loopDone   chan struct{} // closed when the reconnection loop ends; nil while none runs
	upSince    time.Time     // when the current connection's hello succeeded
	backoffN   int           // the backoff's exponent: attempts since a connection last stayed up
	wg         sync.WaitGroup
}

type state int

const (
	stateIdle state = iota // never connected, disconnected, or given up
	stateConnecting
	stateConnected
	stateReconnecting
	stateClosed
)

// New returns a client for the nes server at rawURL (ws://, wss://, or http:// and https://
// for the same). It does not connect: call Connect. A nil opts means all defaults.
func New(rawURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, newError(KindUser, "invalid URL", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return nil, newError(KindUser, fmt.Sprintf("invalid URL %q: the scheme must be ws, wss, http or https", rawURL), nil)
	}
	c := &Client{url: rawURL, opts: opts.withDefaults(), random: rand.Float64,
		subs: map[string]*pathSubs{}, change: make(chan struct{})}
	c.auth = c.opts.Auth
	c.events = newCallbackQueue(c.opts.HandlerQueue, &c.runners)
	return c, nil
}

// Connect connects to the server and says hello, with the auth and every subscription made so
// far. It returns when the server has answered the hello: that, not the WebSocket handshake,
// is being connected. It makes one attempt, bounded by ctx and Options.ConnectTimeout; once it
// has succeeded, a lost connection is re-established by itself (see Options.Backoff).
//
// A subscription the server refuses in the hello is dropped (its handlers hear Revoked, with
// the error) and the hello is sent again without it; any other refusal is returned, as an
// *Error of kind KindServer.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch c.state {
	case stateClosed:
		c.mu.Unlock()
		return ErrClosed
	case stateIdle:
	default:
		c.mu.Unlock()
		return newError(KindUser, "Already connected", nil)
	}
	c.stop, c.cancelStop = context.WithCancel(context.Background())
	c.setState(stateConnecting)
	stop := c.stop
	c.mu.Unlock()

	err := c.open(ctx, stop, false)
	if err != nil {
		c.mu.Lock()
		if c.state == stateConnecting && c.stop == stop {
			c.setState(stateIdle)
		}
		c.mu.Unlock()
	}
	return err
}

// setState changes the state and wakes whoever waits for a change. c.mu is held.
func (c *Client) setState(s state) {
	c.state = s
	close(c.change)
	c.change = make(chan struct{})
}

// open makes connection attempts until one succeeds, fails for a reason other than a refused
// subscription, or stop is cancelled.
func (c *Client) open(ctx context.Context, stop context.Context, reconnect bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(stop, cancel)()
	for {
		err := c.dialOnce(ctx, stop, reconnect)
		var e *Error
		if err == nil || !errors.As(err, &e) || e.Kind != KindServer || e.Path == "" || !c.dropSubscription(e.Path, e) {
			if stop.Err() != nil && err != nil {
				return ErrClosed
			}
			return err
		}
	}
}

// dialOnce makes one connection: each transport in turn until one reaches the hello reply,
// and makes it the client's.
func (c *Client) dialOnce(ctx context.Context, stop context.Context, reconnect bool) error {
	budget := c.opts.ConnectTimeout + time.Duration(len(c.opts.Transports)-1)*c.opts.FallbackTimeout
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	auth, err := c.helloAuth(ctx)
	if err != nil {
		return err
	}
	var failed transportErrors // why each transport tried so far failed
	for i, name := range c.opts.Transports {
		tctx, tcancel := ctx, context.CancelFunc(func() {})
		if i < len(c.opts.Transports)-1 {
			tctx, tcancel = context.WithTimeout(ctx, c.opts.FallbackTimeout)
		}
		err := c.tryTransport(tctx, stop, name, auth, reconnect)
		tcancel()
		var e *Error
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrClosed), errors.As(err, &e) && (e.Kind == KindServer || e.Kind == KindUser):
			return err // the server answered, or the client is closing: no other transport helps
		case ctx.Err() != nil:
			if stop.Err() == nil {
				return newError(KindTimeout, "Connection timed out", append(failed, err).cause())
			}
			return err
		}
		failed = append(failed, err)
	}
	if len(failed) == 1 {
		return failed[0]
	}
	return newError(KindTransport, "no transport reached the server", failed)
}

// tryTransport connects over one transport and says hello; on success the connection is the
// client's.
func (c *Client) tryTransport(ctx context.Context, stop context.Context, name string, auth *Auth, reconnect bool) error {
	var t transport
	var err error
	switch name {
	case TransportWebSocket:
		t, err = dialWebSocket(ctx, c.url, c.opts.Dial, c.opts.Jar)
	case TransportSSE, TransportPoll:
		base := c.opts.FallbackURL
		if base == "" {
			base, _ = fallbackURL(c.url)
		}
		openTimeout := c.opts.ConnectTimeout // ctx has this transport's deadline
		if d, ok := ctx.Deadline(); ok {
			openTimeout = time.Until(d)
		}
		t, err = dialFallback(ctx, name, base, &c.opts, openTimeout)
	default:
		return newError(KindUser, fmt.Sprintf("unknown transport %q in Options.Transports", name), nil)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return newError(KindTimeout, "Connection timed out over "+name, err)
		}
		return newError(KindTransport, "cannot connect over "+name, err)
	}
	cn := newConn(c, t)
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		t.close(ErrClosed)
		return ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		cn.readLoop()
	}()

	subs := c.Subscriptions()
	rep, err := cn.call(ctx, &outMessage{Type: "hello", Version: protocol.Version, Auth: auth, Subs: subs}, 0)
	if err != nil {
		cn.end(err)
		<-cn.readerDone
		var e *Error
		if errors.As(err, &e) && (e.Kind == KindDisconnect || e.Kind == KindTimeout) && ctx.Err() != nil {
			return newError(KindTimeout, "no hello reply over "+name, ctx.Err())
		}
		return err
	}
	var hb struct {
		Interval int64 `json:"interval"`
		Timeout  int64 `json:"timeout"`
	}
	_ = json.Unmarshal(rep.Heartbeat, &hb) // false: no heartbeat
	id, _ := protocol.String(rep.Socket)

	c.mu.Lock()
	if stop.Err() != nil || c.state == stateClosed {
		c.mu.Unlock()
		cn.end(errRequested)
		<-cn.readerDone
		return ErrClosed
	}
	c.conn, c.id, c.upSince = cn, id, time.Now()
	for _, path := range subs {
		if e := c.subs[path]; e != nil {
			e.confirm(nil)
		}
	}
	c.setState(stateConnected)
	c.mu.Unlock()

	cn.watchHeartbeat(time.Duration(hb.Interval+hb.Timeout) * time.Millisecond)
	c.emit(func() {
		if c.opts.OnConnect != nil {
			c.opts.OnConnect(ConnectEvent{ID: id, Transport: t.name(), Reconnect: reconnect})
		}
	})
	return nil
}

// helloAuth returns what the next hello presents.
func (c *Client) helloAuth(ctx context.Context) (*Auth, error) {
	if c.opts.AuthFunc != nil {
		auth, err := c.opts.AuthFunc(ctx)
		if err != nil {
			return nil, newError(KindUser, "Options.AuthFunc failed", err)
		}
		return auth, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth, nil
}

// connLost is told by a conn that it ended. For the client's own connection it reports the
// disconnection and starts reconnecting when it should.
func (c *Client) connLost(cn *conn, why error) {
	c.mu.Lock()
	if c.conn != cn {
		c.mu.Unlock()
		return // an attempt that failed, or a connection Disconnect or Close already let go
	}
	c.conn, c.id = nil, ""
	if time.Since(c.upSince) >= c.opts.Backoff.ResetAfter {
		c.backoffN = 0
	}
	willReconnect := !c.opts.NoReconnect
	if willReconnect {
		c.startReconnecting()
	} else {
		c.setState(stateIdle)
	}
	c.mu.Unlock()

	err := why
	if !errors.Is(why, ErrHeartbeatTimeout) {
		err = newError(KindDisconnect, "the connection was lost", why)
	}
	c.emit(func() {
		if c.opts.OnDisconnect != nil {
			c.opts.OnDisconnect(DisconnectEvent{Err: err, WillReconnect: willReconnect})
		}
	})
}

// heartbeatTimeout reports a missed heartbeat, before the connection ends.
func (c *Client) heartbeatTimeout(cn *conn) {
	c.mu.Lock()
	current := c.conn == cn
	c.mu.Unlock()
	if !current {
		return
	}
	c.reportError(newError(KindTimeout, "Disconnecting due to heartbeat timeout", ErrHeartbeatTimeout))
	c.emit(func() {
		if c.opts.OnHeartbeatTimeout != nil {
			c.opts.OnHeartbeatTimeout(!c.opts.NoReconnect)
		}
	})
}

// ID returns the server's id of the current connection's socket, or "" while disconnected.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// Transport names what carries the current connection (TransportWebSocket), or "" while
// disconnected.
func (c *Client) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return ""
	}
	return c.conn.t.name()
}

// Disconnect closes the connection and stops reconnecting. Pending calls fail with
// ErrDisconnected; subscriptions are kept for the next Connect. It returns once the
// connection's goroutines have ended. OnDisconnect hears it with Requested set.
func (c *Client) Disconnect() {
	c.shut(stateIdle)
}

// Close disconnects for good: later calls return ErrClosed. It returns once every goroutine of
// the client has ended and every event queued before it has been handled, except when called
// from a callback or handler, whose own goroutine ends as soon as it returns.
func (c *Client) Close() error {
	if !c.shut(stateClosed) {
		return nil
	}
	c.wg.Wait()
	c.runners.wait()
	return nil
}

// shut ends the connection and reconnection, leaving the client in state to. It reports false
// when the client was already closed.
func (c *Client) shut(to state) bool {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return false
	}
	was, cn, loop := c.state, c.conn, c.loopDone
	c.conn, c.id, c.loopDone = nil, "", nil
	if c.cancelStop != nil {
		c.cancelStop()
	}
	c.setState(to)
	c.mu.Unlock()

	if cn != nil {
		cn.end(errRequested)
		<-cn.readerDone
	}
	if loop != nil {
		<-loop
	}
	if was == stateConnected || was == stateReconnecting {
		c.emit(func() {
			if c.opts.OnDisconnect != nil {
				c.opts.OnDisconnect(DisconnectEvent{Err: ErrClosed, Requested: true})
			}
		})
	}
	return true
}

// emit queues a connection event for the callbacks. Events are never dropped.
func (c *Client) emit(f func()) {
	c.events.push(f, true)
}

// reportError hands an error that belongs to no call to OnError.
func (c *Client) reportError(err error) {
	if c.opts.OnError == nil {
		return
	}
	c.events.push(func() { c.opts.OnError(err) }, false)
}

// deliverUpdate hands a server push that belongs to no subscription to OnUpdate.
func (c *Client) deliverUpdate(message json.RawMessage) {
	if c.opts.OnUpdate == nil {
		return
	}
	if !c.events.push(func() { c.opts.OnUpdate(message) }, false) {
		c.reportError(ErrHandlerQueueFull)
	}
}

// current returns the connection calls go out on, or an ErrDisconnected error.
func (c *Client) current() (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == stateClosed:
		return nil, ErrClosed
	case c.conn == nil:
		return nil, newError(KindDisconnect, "Failed to send message - server disconnected", nil)
	}
	return c.conn, nil
}

// OverrideReconnectionAuth replaces what the next hellos present (Options.Auth), without
// touching the current connection. With Options.AuthFunc set, the function still decides.
func (c *Client) OverrideReconnectionAuth(auth *Auth) {
	c.mu.Lock()
	c.auth = auth
	c.mu.Unlock()
}

// Reauthenticate presents new credentials on the open connection (nes's reauth), and keeps
// them for reconnections. When the server refuses them it closes the connection.
func (c *Client) Reauthenticate(ctx context.Context, auth *Auth) error {
	c.OverrideReconnectionAuth(auth)
	cn, err := c.current()
	if err != nil {
		return err
	}
	_, err = cn.call(ctx, &outMessage{Type: "reauth", Auth: auth}, c.opts.Timeout)
	return err
}
