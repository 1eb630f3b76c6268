package websocket

import (
	"net/http"
	"time"

	"github.com/herald-go/herald/extensions"
	"github.com/herald-go/herald/metrics"
)

// Options configures a connection made by Upgrade or Handler. A nil *Options is valid and means
// all defaults. Options may be shared by many connections and must not be changed while in use.
type Options struct {
	// Protocols lists the subprotocols the server speaks. The first entry of the client's
	// Sec-WebSocket-Protocol list that appears here is selected. When none matches, or the
	// client offers none, the handshake succeeds without a Sec-WebSocket-Protocol header and
	// Conn.Protocol returns "". A client that offered protocols decides what happens next:
	// browsers and Node's ws fail the connection, faye-websocket carries on.
	Protocols []string

	// Header holds extra headers for the 101 response, added to those already set on the
	// http.ResponseWriter's Header before Upgrade was called.
	Header http.Header

	// MaxLength is the largest message, in bytes, that Read accepts (after any extension has
	// decoded it). A larger one fails the connection with 1009 (message too big) as soon as its
	// frame header announces the size, or, for a compressed message, as soon as it inflates
	// past MaxLength. Compressed frames may be larger than the message they carry (peers
	// compress random data too, and it grows a little): they are refused only past what deflate
	// can make of a MaxLength message, MaxLength plus an eighth and a bit, so a connection
	// reading a compressed message may hold up to about 2.2 times MaxLength while it inflates.
	// Zero means 1<<26 - 1 (64 MiB - 1), as faye-websocket.
	MaxLength int64

	// PingInterval is how often the connection pings the peer; a ping not answered within
	// PongTimeout closes the connection with ErrPongTimeout. Pongs are read by Read, so a
	// connection with automatic pings must be read from. Zero means 30 seconds; a negative
	// value turns automatic pings off.
	PingInterval time.Duration

	// PongTimeout is how long an automatic ping may wait for its pong. Zero means 20 seconds.
	PongTimeout time.Duration

	// CloseTimeout bounds the closing handshake: how long Close waits to send its close frame
	// and to receive the peer's. Zero means 5 seconds.
	CloseTimeout time.Duration

	// HandshakeTimeout bounds writing the 101 response. Zero means 10 seconds. The request
	// itself is read by net/http before Upgrade runs: set http.Server.ReadHeaderTimeout to
	// guard it.
	HandshakeTimeout time.Duration

	// FirstFrameTimeout is how long, after the handshake, the peer may take to send its first
	// frame whole, header and payload (a pong to an automatic ping counts), before the
	// connection is failed with 1008: it stops clients that open connections and send nothing,
	// or send a frame header and then dribble its payload. A first message sent in one frame
	// must arrive within it, so keep it above what the largest first message takes on the
	// slowest link served. Zero means 60 seconds; negative turns the limit off. With automatic
	// pings on, a live peer always answers within PingInterval plus its round trip, so keep
	// this longer than PingInterval.
	FirstFrameTimeout time.Duration

	// WriteQueueLimit bounds the bytes of data messages waiting to be written (see
	// Conn.BufferedAmount). A write that would take the queue past it fails at once with
	// ErrWriteQueueFull, unless the queue is empty. Zero means 16 MiB.
	//
	// What a consumer dropped for a full queue sees: Close's frame goes out right after the
	// frame being written, ahead of every message still waiting (their writes return
	// ErrCloseSent), so a peer that still reads, however slowly, gets every message whose write
	// succeeded and then the close code. A frame cannot be interrupted, so a peer that has
	// stopped reading cannot be sent one: Close gives up after CloseTimeout and drops the
	// connection, and the peer, if it reads again, finds the whole frames the socket held, then
	// the end of the connection without a close frame (1006). CloseNow drops it at once.
	WriteQueueLimit int64

	// Origins lists the origins that browsers may connect from besides the request's own host
	// (an Origin header whose host and port are the request's Host). A browser's request from
	// anywhere else is refused with 403, which stops cross-site WebSocket hijacking; requests
	// without an Origin header (non-browser clients) always pass. Each entry is one of:
	//
	//	"*"                           every origin
	//	"https://example.com"         that scheme and host, on the scheme's default port
	//	"http://localhost:8100"       that scheme, host and port
	//	"http://localhost:*"          that scheme and host, on any port
	//	"example.com", "example.com:8443"   that host (and port), whatever the scheme
	//	"*.example.com"               every subdomain of example.com (not example.com itself),
	//	                              with or without a scheme and port
	//
	// Hosts compare without regard to case and a trailing "/" is ignored. An invalid entry (a
	// path, user info, a wildcard elsewhere, "null") fails every upgrade that carries an Origin
	// header with 500 and an error naming the entry; ValidateOrigins checks a list beforehand.
	// Nil means the request's own host only. CheckOrigin, when set, replaces this check.
	Origins []string

	// OriginPatterns lists host patterns in path.Match syntax ("example.com", "*.example.com",
	// "localhost:*") matched against the Origin header's host and port, whatever its scheme.
	//
	// Deprecated: use Origins, which takes these patterns (and origins with a scheme) too.
	// OriginPatterns still works, beside Origins.
	OriginPatterns []string

	// CheckOrigin decides whether a request's origin is acceptable, replacing the default
	// same-host-or-Origins check; it is called only for requests with an Origin header.
	// Return true to allow every origin.
	CheckOrigin func(r *http.Request) bool

	// Verify runs before anything is hijacked or allocated, after the handshake headers have
	// been checked. A non-nil error refuses the upgrade: an *HTTPError sets the status, body and
	// headers of the response; any other error gives 403 with the error's text.
	Verify func(r *http.Request) error

	// Extensions are the extensions the server can negotiate, such as permessage-deflate
	// (package extensions/deflate). The client's offers are considered in its order. Nil
	// means none: a frame with a reserved bit set then fails the connection with 1002.
	Extensions []Extension

	// Registry, when set, tracks the connection from upgrade to close, so that
	// Registry.Shutdown can close it with 1001 when the server stops.
	Registry *Registry

	// Metrics receives the connections' figures: opened and closed (with why), messages and
	// bytes both ways, permessage-deflate's bytes before and after (see package metrics).
	// Nil means none, at no cost.
	Metrics metrics.Recorder
}

const (
	defaultMaxLength         = 1<<26 - 1
	defaultPingInterval      = 30 * time.Second
	defaultPongTimeout       = 20 * time.Second
	defaultCloseTimeout      = 5 * time.Second
	defaultHandshakeTimeout  = 10 * time.Second
	defaultFirstFrameTimeout = 60 * time.Second
	defaultWriteQueueLimit   = 16 << 20
)

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() *Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.MaxLength <= 0 {
		c.MaxLength = defaultMaxLength
	}
	if c.PingInterval == 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = defaultPongTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.FirstFrameTimeout == 0 {
		c.FirstFrameTimeout = defaultFirstFrameTimeout
	}
	if c.WriteQueueLimit <= 0 {
		c.WriteQueueLimit = defaultWriteQueueLimit
	}
	return &c
}

// Extension is a WebSocket extension that Options and DialOptions can list; see package
// extensions.
type Extension = extensions.Extension
