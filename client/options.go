package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/herald-go/herald/websocket"
)

// Options configures a Client. A nil *Options is valid and means all defaults. The client
// copies the Options: changing them afterwards has no effect.
//
// The callbacks (OnConnect, OnDisconnect, OnReconnect, OnHeartbeatTimeout, OnUpdate, OnError)
// may each be nil. They run one at a time, in order, on a goroutine of the client's, never on
// the goroutine that reads the connection, so a slow callback never delays a reply or a ping.
// They may call any method of the Client, Close included.
type Options struct {
	// Dial configures the WebSocket connection: proxies (nil Proxy means the environment's
	// HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY), TLS, extra handshake headers,
	// permessage-deflate (offered by default), timeouts. Its Proxy, TLSConfig and Header also
	// apply to the fallback transports' requests. Nil means websocket's defaults.
	Dial *websocket.DialOptions

	// Transports lists the transports to try, in order, at every connection:
	// TransportWebSocket, TransportSSE (EventSource down, POSTs up) and TransportPoll
	// (long-polling). A transport counts as up once the server has answered the hello over
	// it; one that fails, or gives no answer within FallbackTimeout, makes way for the next,
	// and every reconnection starts again from the first. Nil means all three, in that order.
	Transports []string

	// FallbackURL is the base of the server's fallback endpoints (FallbackURL+"/sse", "/send",
	// "/poll"). Empty means the nes URL with http or https for its scheme and "/nes" after
	// its path: ws://example.com/ gives http://example.com/nes.
	FallbackURL string

	// FallbackTimeout is how long a transport with another after it may take to reach the
	// hello reply (for the event stream: its open event) before the next is tried: a proxy
	// that passes the WebSocket upgrade and then drops the frames, or one that buffers the
	// stream. Zero means 5 seconds.
	FallbackTimeout time.Duration

	// Jar, when set, supplies the cookies sent with each handshake (and keeps those of the
	// fallback's requests): set it to the Jar of the http.Client that fetched the server's nes
	// cookie (FetchToken) for cookie authentication.
	Jar http.CookieJar

	// Auth is what each hello presents: headers for direct authentication, or a token. Nil
	// means none (a cookie, or no authentication). Reauthenticate and
	// OverrideReconnectionAuth replace it.
	Auth *Auth

	// AuthFunc, when set, is called before every connection, the first and each reconnect, and
	// its result is presented in the hello instead of Auth: return a fresh token when the old
	// one expires. An error fails that attempt (Connect returns it; a reconnect retries later).
	AuthFunc func(ctx context.Context) (*Auth, error)

	// Timeout bounds each request, message, subscribe and unsubscribe, on top of the
	// context's own deadline. Zero means 30 seconds; negative means only the context bounds
	// them.
	Timeout time.Duration

	// ConnectTimeout bounds one connection attempt over the last transport of Transports: the
	// dial, the handshake and the hello reply; each transport before it has FallbackTimeout.
	// Zero means 10 seconds.
	ConnectTimeout time.Duration

	// Backoff sets the delays between reconnection attempts. The zero value means
	// Backoff{Min: 500 ms, Max: 30 s, ResetAfter: 30 s}.
	Backoff Backoff

	// MaxRetries bounds the reconnection attempts of one outage; the count starts again once a
	// connection has stayed up Backoff.ResetAfter. Zero means no bound: the client keeps
	// trying until Disconnect or Close.
	MaxRetries int

	// NoReconnect turns reconnection off: a lost connection stays lost until Connect is
	// called again.
	NoReconnect bool

	// MaxMessageBytes bounds one message from the server, also when it arrives in chunks.
	// Zero means 64 MiB - 1.
	MaxMessageBytes int

	// HandlerQueue bounds the updates waiting for one subscription handler, and the events
	// waiting for the callbacks below. A handler that falls further behind loses updates, and
	// OnError hears ErrHandlerQueueFull. Zero means 1024.
	HandlerQueue int

	// OnConnect runs after each successful hello: the first connection and every reconnect.
	OnConnect func(ConnectEvent)
	// OnDisconnect runs when a connection is lost or closed, and once more, with
	// WillReconnect false, when the client gives up reconnecting.
	OnDisconnect func(DisconnectEvent)
	// OnReconnect runs before each wait between reconnection attempts.
	OnReconnect func(ReconnectEvent)
	// OnHeartbeatTimeout runs when the server has been silent past its heartbeat; the client
	// then disconnects (and reconnects if willReconnect).
	OnHeartbeatTimeout func(willReconnect bool)
	// OnUpdate receives the server's pushes that belong to no subscription: Broadcast and
	// Socket.Send on a herald server, server.broadcast and socket.send on hapi.
	OnUpdate func(message json.RawMessage)
	// OnError hears errors that belong to no call: a message the client could not read, a
	// reply to no request, a failed reconnection attempt, a dropped update.
	OnError func(err error)
}

// Backoff sets the delays between reconnection attempts. The delay before attempt n (from 0)
// is drawn uniformly from [0, min(Max, Min·2ⁿ)]: the jitter is drawn after the cap, so that
// clients that lost the same server do not come back in step, however long the outage.
type Backoff struct {
	// Min is the cap of the first delay. Zero means 500 ms.
	Min time.Duration
	// Max is the largest delay. Zero means 30 s.
	Max time.Duration
	// ResetAfter is how long a connection must stay up for the next outage to start again
	// from Min; a server that accepts and then drops connections at once keeps the delays
	// growing. Zero means 30 s.
	ResetAfter time.Duration
}

// Auth is what a hello presents to authenticate the connection.
type Auth struct {
	// Headers are sent for direct authentication ({"headers": {...}}), such as
	// {"authorization": "Basic ..."}.
	Headers map[string]string
	// Token is a token from the server's auth endpoint (see FetchToken), for token
	// authentication. When set, Headers are ignored.
	Token string
}

// MarshalJSON encodes the auth as the hello carries it: the token as a string, or
// {"headers": {...}}.
func (a *Auth) MarshalJSON() ([]byte, error) {
	if a.Token != "" {
		return json.Marshal(a.Token)
	}
	return json.Marshal(struct {
		Headers map[string]string `json:"headers"`
	}{a.Headers})
}

// ConnectEvent tells OnConnect about a connection.
type ConnectEvent struct {
	// ID is the server's id of the socket (Client.ID).
	ID string
	// Transport names what carries the connection ("websocket").
	Transport string
	// Reconnect is false for the connection Connect made, true for the ones after.
	Reconnect bool
}

// DisconnectEvent tells OnDisconnect why a connection ended.
type DisconnectEvent struct {
	// Err says why: ErrDisconnected wrapping the transport's error for a lost connection
	// (websocket.CloseStatus gives the close code), ErrHeartbeatTimeout, ErrClosed after
	// Disconnect or Close, or the last attempt's error when the client gives up.
	Err error
	// WillReconnect says whether the client will try to connect again.
	WillReconnect bool
	// Requested is true when the application asked for the disconnection.
	Requested bool
}

// ReconnectEvent tells OnReconnect about the wait before the next attempt.
type ReconnectEvent struct {
	// Attempt counts the attempts of this outage, from 1.
	Attempt int
	// Delay is the wait before it.
	Delay time.Duration
	// Err is why the previous attempt failed; nil before the first attempt of an outage.
	Err error
}

// withDefaults returns a copy of opts with every zero field filled.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	orDefault := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	orDefault(&c.Timeout, 30*time.Second)
	orDefault(&c.ConnectTimeout, 10*time.Second)
	orDefault(&c.FallbackTimeout, 5*time.Second)
	if c.Transports == nil {
		c.Transports = []string{TransportWebSocket, TransportSSE, TransportPoll}
	}
	orDefault(&c.Backoff.Min, 500*time.Millisecond)
	orDefault(&c.Backoff.Max, 30*time.Second)
	orDefault(&c.Backoff.ResetAfter, 30*time.Second)
	if c.Backoff.Max < c.Backoff.Min {
		c.Backoff.Max = c.Backoff.Min
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 1<<26 - 1
	}
	if c.HandlerQueue <= 0 {
		c.HandlerQueue = 1024
	}
	return c
}
