package herald

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/websocket"
)

// Options configures a Server. A nil *Options means all defaults.
type Options struct {
	// Path restricts nes WebSocket connections to one path. Empty means WebSocket upgrades on
	// every path are nes connections.
	Path string

	// Auth configures authentication. Nil means no authentication: hello messages may not
	// carry auth, and there is no auth endpoint.
	Auth *AuthOptions

	// Headers lists the response headers (lower case) that request replies and errors carry
	// back to the client; "*" lets all through. Nil means none: replies have no headers field.
	Headers []string

	// MaxChunkChars splits WebSocket messages longer than this many UTF-16 code units (as
	// JavaScript counts string length) into chunks, never inside a character. Zero means no
	// chunking.
	MaxChunkChars int

	// HelloTimeout closes a socket that has not said hello this long after connecting,
	// whatever the auth settings: a connection that never speaks nes holds no slot for long.
	// Zero means AuthOptions.Timeout when Auth is set (5 s unless changed there), else 5 s;
	// negative turns it off.
	HelloTimeout time.Duration

	// Heartbeat sets how often the server pings every socket and how long a socket may then
	// stay silent. Nil means an interval of 15 s and a timeout of 5 s; see Heartbeat for how to
	// turn it off.
	Heartbeat *Heartbeat

	// MaxConnections bounds the open nes connections; a connection past it is closed at once.
	// Zero means no bound.
	MaxConnections int

	// Origins lists the origins that browsers may connect from besides the server's own host,
	// for every transport alike: the WebSocket upgrade, the fallback's stream, POSTs and polls,
	// and the auth endpoint (which answers allowed cross-origin requests with CORS headers,
	// credentials included). Requests without an Origin header (non-browser clients) always
	// pass; a browser's request from elsewhere gets 403 with a message naming this option, and
	// Logger gets a line at Info level with the reason. Entries take the forms of
	// websocket.Options.Origins: "https://example.com", "http://localhost:8100",
	// "http://localhost:*" (any port), "example.com" (any scheme), "*.example.com"
	// (subdomains), "*" (every origin). NewServer panics on an invalid entry, naming it and
	// why; check entries read from configuration with websocket.ValidateOrigins first. Nil
	// means the server's own host only.
	Origins []string

	// Origin lists exact origins, such as "https://example.com".
	//
	// Deprecated: use Origins, which takes the same entries and patterns; entries here are
	// added to it.
	Origin []string

	// OnConnection runs when a socket's hello has been authenticated, before its
	// subscriptions. An error fails the hello: the client is answered with it, then the
	// socket is closed.
	OnConnection func(ctx context.Context, s *Socket) error

	// OnDisconnection runs once a socket has closed and left its subscriptions.
	OnDisconnection func(s *Socket)

	// OnMessage answers the client's custom messages (client.message). Its result is sent
	// back as the reply's message; nil sends a reply without one. Nil OnMessage answers 501.
	OnMessage func(ctx context.Context, s *Socket, message RawMessage) (any, error)

	// WebSocket configures the WebSocket connections (extensions such as permessage-deflate,
	// limits, pings). Nil means websocket's defaults. Its MaxLength is replaced by
	// MaxRequestBytes when that is set. Its origin fields join the server's one origin rule,
	// which applies to every transport: Origins and OriginPatterns add to Options.Origins,
	// and CheckOrigin, when set, replaces the rule. Prefer Options.Origins.
	WebSocket *websocket.Options

	// Fallback configures nes over EventSource and POST (and long-polling), for clients whose
	// network blocks WebSocket: the same nes messaging, served beside the WebSocket at the
	// nes path followed by /nes/sse, /nes/send and /nes/poll (see package fallback for the HTTP
	// surface). The server sets its Accept, Path, CheckOrigin (the WebSocket origin rule),
	// BindCookie (the auth cookie) and IsShutdown; MaxBody is MaxRequestBytes unless set; with
	// Broker, its Broker is this server's node when Key is set (the same on every node), so that
	// no sticky sessions are needed. Nil means fallback's defaults.
	Fallback *fallback.Options

	// NoFallback turns the fallback off: nes is served over WebSocket only.
	NoFallback bool

	// MaxRequestBytes bounds one message from a client. Zero means 8 MiB.
	MaxRequestBytes int64

	// MaxResponseBytes bounds the body an application handler may write for one nes request;
	// a larger response is answered with 500. Zero means 8 MiB.
	MaxResponseBytes int

	// MaxInFlight bounds the messages of one socket being processed at once; past it the
	// socket is not read until one finishes. Zero means 32.
	MaxInFlight int

	// IdleMode reads WebSocket sockets with websocket.Conn.Serve in idle mode (Linux, plain
	// TCP; see package websocket's "Idle mode"): a socket whose client sends nothing has no
	// goroutine, and each request is processed on a goroutine of its own, up to MaxInFlight.
	// Over TLS and on other platforms a socket keeps its reading goroutine, as without it.
	// Fallback (EventSource) sockets are not affected.
	IdleMode bool

	// MaxSubscriptions bounds the subscriptions of one socket; past it sub answers 429.
	// Zero means 1024.
	MaxSubscriptions int

	// SendQueueLimit bounds the bytes waiting to be sent to one socket. Publish, Broadcast
	// and every other send never wait: a socket whose queue would pass the bound is
	// disconnected (ErrSlowConsumer). Zero means 4 MiB.
	SendQueueLimit int

	// SendTimeout bounds the writing of one message to a socket; a socket that takes longer
	// is disconnected. Zero means 10 s.
	SendTimeout time.Duration

	// Logger receives the server's log lines (panics in callbacks, dropped sockets). Nil
	// means no logging.
	Logger *slog.Logger

	// Broker links this server to the other nodes of the application (processes behind one
	// load balancer, with no sticky sessions): publications, broadcasts, revocations, user
	// targeting, groups, presence and socket surveys then reach every node's sockets (see
	// package broker for the guarantees, and broker/redis and broker/nats for engines). Each
	// publication goes through the broker and every node, this one included, delivers it to
	// its own sockets; publishing fails fast while the link is down. A node hears a topic
	// only while it has a socket that needs it: a sub, a hello of a user (with
	// AuthOptions.Index) or a Socket.Join that needs a topic the node does not hear yet is
	// answered 503 while the link is down, rather than left deaf. NewServer starts the link
	// (retrying in the background while the broker is unreachable), and Close closes it. Nil
	// means one node, as without a broker, at no extra cost.
	Broker broker.Broker

	// Node names this server among the nodes sharing Broker; names must be unique. Socket
	// ids carry it ("<ms>:<node>:<counter>"), so they are unique across nodes. Empty means a
	// random name (see Server.NodeName).
	Node string

	// CloseOnDiscontinuity closes, with WebSocket status 1012 (service restart), the
	// sockets that may have missed messages when the broker link was lost and restored, so
	// that their clients reconnect and subscribe again. False means they stay open; either
	// way the loss is logged and counted (Server.Discontinuities).
	CloseOnDiscontinuity bool

	// Metrics receives the server's metrics: connections by transport and why they closed,
	// messages and bytes, send queues, publications, requests by route id, resumes (see
	// package metrics; metrics/prometheus and metrics/otel adapt it). The server passes it on
	// to the layers it creates. Nil means none, at no cost.
	Metrics metrics.Recorder
}

// Heartbeat configures the server's pings. The server pings every socket each Interval; a
// socket from which nothing was heard (no message, no successful send, nothing being
// processed) by Timeout after the ping is disconnected. Clients use Interval+Timeout as their
// own silence limit. A socket that has not said hello is not kept alive by the heartbeat:
// Options.HelloTimeout (5 s by default) closes it first, whatever the auth settings.
type Heartbeat struct {
	// Interval is the time between two pings; zero means 15 s.
	Interval time.Duration
	// Timeout is how long a socket may stay silent after a ping; zero means 5 s, or half of
	// Interval when that is less. It must be below Interval.
	Timeout time.Duration
	// Disabled turns heartbeats off; hello replies then say heartbeat: false.
	Disabled bool
}

// Route names a route of the application so that nes requests may use the id instead of a
// path (client.request("hello")).
type Route struct {
	Method string // "*" marks a route for every method, which route ids may not name
	Path   string // the path the application's handler serves, such as "/h"
}

// Server is a nes server wrapped around an application's http.Handler: WebSocket upgrades
// become nes sockets, the auth endpoint is served, and every other request goes to the
// application. nes requests from sockets are served by the same handler, in-process.
//
// Its methods are safe for concurrent use.
type Server struct {
	next       http.Handler
	opts       Options
	wsOpts     *websocket.Options
	heartbeat  *Heartbeat
	headers    map[string]bool
	headersAll bool
	auth       *authenticator
	id         string
	registry   websocket.Registry
	fallback   *fallback.Server // nil with NoFallback

	routesMu sync.RWMutex
	routes   map[string]Route

	subs *subscriptions

	shutdown shutdownState // see Shutdown

	mu      sync.Mutex
	sockets map[*Socket]struct{}
	byUser  map[string][]*Socket // with AuthOptions.Index; a socket is under Socket.indexedUser
	revoked map[string]time.Time // RevokeUser: user → when, kept for AuthOptions.TTL
	counter int
	closed  bool
	wg      sync.WaitGroup // sockets' goroutines

	beat *heartbeater
	log  *slog.Logger

	cluster    *cluster // with Options.Broker
	groups     *groups
	stats      serverStats
	presence   serialQueue // presence events, in order
	presenceWG sync.WaitGroup
	origins    *originRule // set with wsOpts
}

const (
	defaultHeartbeatInterval = 15 * time.Second
	defaultHeartbeatTimeout  = 5 * time.Second
	defaultMaxRequestBytes   = 8 << 20
	defaultMaxResponseBytes  = 8 << 20
	defaultMaxInFlight       = 32
	defaultMaxSubscriptions  = 1024
	defaultSendQueueLimit    = 4 << 20
	defaultSendTimeout       = 10 * time.Second
)

// NewServer returns a nes server in front of next, the application's handler (nil: every
// request that is not nes's is answered 404, for a server of subscriptions only). It panics on
// options that cannot work (a heartbeat timeout not below its interval, token or cookie auth
// without a password of at least 32 bytes, an invalid entry in Origins), as a
// misconfiguration found at start-up.
func NewServer(next http.Handler, opts *Options) *Server {
	if next == nil {
		next = http.NotFoundHandler()
	}
	s := &Server{next: next, routes: map[string]Route{}, sockets: map[*Socket]struct{}{}, byUser: map[string][]*Socket{}, revoked: map[string]time.Time{}}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	orDefault(&o.MaxRequestBytes, defaultMaxRequestBytes)
	orDefault(&o.MaxResponseBytes, defaultMaxResponseBytes)
	orDefault(&o.MaxInFlight, defaultMaxInFlight)
	orDefault(&o.MaxSubscriptions, defaultMaxSubscriptions)
	orDefault(&o.SendQueueLimit, defaultSendQueueLimit)
	orDefault(&o.SendTimeout, defaultSendTimeout)
	s.heartbeat = &Heartbeat{Interval: defaultHeartbeatInterval, Timeout: defaultHeartbeatTimeout}
	if o.Heartbeat != nil {
		hb := *o.Heartbeat
		if !hb.Disabled {
			orDefault(&hb.Interval, defaultHeartbeatInterval)
			orDefault(&hb.Timeout, min(defaultHeartbeatTimeout, hb.Interval/2))
			if hb.Timeout >= hb.Interval {
				panic(fmt.Sprintf("herald: heartbeat timeout %v must be less than its interval %v", hb.Timeout, hb.Interval))
			}
		}
		s.heartbeat = &hb
	}
	if slices.Contains(o.Headers, "*") {
		s.headersAll = true
	} else if len(o.Headers) > 0 {
		s.headers = map[string]bool{}
		for _, h := range o.Headers {
			s.headers[strings.ToLower(h)] = true
		}
	}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.wsOpts = s.websocketOptions()
	s.subs = newSubscriptions()
	s.groups = newGroups()
	s.presence.wg = &s.presenceWG
	if o.Broker != nil {
		s.cluster = newCluster(s, o.Broker, o.Node)
	}
	if o.Auth != nil {
		s.auth = newAuthenticator(s, o.Auth)
	}
	if !o.NoFallback {
		s.fallback = s.fallbackServer()
	}
	host, _ := os.Hostname()
	s.id = host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	if s.cluster != nil {
		s.id = s.cluster.name // unique among the nodes: socket ids are unique across them
	}
	s.counter = socketCounterMin
	if !s.heartbeat.Disabled {
		s.beat = startHeartbeat(s)
	}
	if s.cluster != nil {
		s.cluster.start()
	}
	return s
}

// orDefault sets *v to d unless it is positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// websocketOptions derives the options of nes WebSocket connections.
func (s *Server) websocketOptions() *websocket.Options {
	var w websocket.Options
	if s.opts.WebSocket != nil {
		w = *s.opts.WebSocket
	}
	w.MaxLength = s.opts.MaxRequestBytes
	if w.WriteQueueLimit == 0 {
		w.WriteQueueLimit = int64(s.opts.SendQueueLimit)
	}
	s.applyOriginRule(&w)
	w.Registry = &s.registry
	if w.Metrics == nil {
		w.Metrics = s.layerMetrics()
	}
	return &w
}

// fallbackServer builds the server of nes over EventSource and POST.
func (s *Server) fallbackServer() *fallback.Server {
	var f fallback.Options
	if s.opts.Fallback != nil {
		f = *s.opts.Fallback
	}
	f.Accept = func(session *fallback.Session) { s.serve(session, session.Request()) }
	if s.opts.Path != "" {
		f.Path = strings.TrimSuffix(s.opts.Path, "/") + "/nes"
	} else {
		f.Path = ""
	}
	f.CheckOrigin = func(r *http.Request) bool { return s.originAllowed(r, "fallback") } // ServeHTTP has refused the others
	if s.auth != nil && s.auth.opts.Type == "cookie" {
		f.BindCookie = s.auth.opts.Cookie
	}
	f.IsShutdown = func(reason error) bool { return errors.Is(reason, ErrServerClosed) }
	if f.Metrics == nil {
		f.Metrics = s.opts.Metrics
	}
	if f.MaxBody == 0 {
		f.MaxBody = s.opts.MaxRequestBytes
	}
	if f.Logger == nil {
		f.Logger = s.opts.Logger
	}
	if s.cluster != nil && f.Broker == nil {
		// Without sticky sessions: requests for a session of another node go to it.
		if len(f.Key) > 0 {
			f.Broker = s.cluster.node
		} else {
			s.log.Warn("herald: Options.Broker is set but Options.Fallback.Key is not: a fallback client's requests must reach the node that holds its session (sticky sessions); set a Fallback.Key shared by every node")
		}
	}
	fs, err := fallback.NewServer(&f)
	if err != nil {
		panic(err) // Accept is set above
	}
	return fs
}

// Route gives a route of the application an id that nes requests may name instead of a path.
func (s *Server) Route(id, method, path string) {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	s.routes[id] = Route{Method: strings.ToUpper(method), Path: path}
}

func (s *Server) lookupRoute(id string) (Route, bool) {
	s.routesMu.RLock()
	defer s.routesMu.RUnlock()
	r, ok := s.routes[id]
	return r, ok
}

// ServeHTTP serves nes WebSocket connections, the auth endpoint, and passes everything else
// to the application's handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocket(r) && (s.opts.Path == "" || r.URL.Path == s.opts.Path) {
		s.serveWebSocket(w, r)
		return
	}
	if s.fallback != nil && s.fallback.Endpoint(r) != "" {
		if !s.originAllowed(r, "fallback") {
			s.refuseOrigin(w, r)
			return
		}
		s.fallback.ServeHTTP(w, r)
		return
	}
	if s.auth != nil && s.auth.servesEndpoint(r) {
		s.auth.serveEndpoint(w, r)
		return
	}
	s.next.ServeHTTP(w, r)
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.refuseDraining(w) {
		return
	}
	c, err := websocket.Upgrade(w, r, s.wsOpts)
	if err != nil {
		return
	}
	t := &wsTransport{c: c, maxChunkChars: s.opts.MaxChunkChars}
	if s.opts.IdleMode {
		s.serveIdle(c, t, r) // socket_idle.go
		return
	}
	// Serve on a goroutine of its own and return, so that net/http frees what it holds for
	// the request (see websocket.Upgrade).
	go s.serve(t, r)
}

// serve runs one socket over a transport until it closes. It returns when the socket's
// goroutines have finished.
func (s *Server) serve(t Transport, r *http.Request) {
	t = s.meter(t, r)
	sock, ok := s.addSocket(t, r)
	if !ok {
		_ = t.Close(nil)
		return
	}
	sock.run()
}

// addSocket registers a new socket, unless the server is closed or full.
func (s *Server) addSocket(t Transport, r *http.Request) (*Socket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (s.opts.MaxConnections > 0 && len(s.sockets) >= s.opts.MaxConnections) {
		return nil, false
	}
	id := strconv.FormatInt(time.Now().UnixMilli(), 10) + ":" + s.id + ":" + strconv.Itoa(s.counter)
	if s.counter++; s.counter > socketCounterMax {
		s.counter = socketCounterMin
	}
	sock := newSocket(s, t, r, id)
	s.sockets[sock] = struct{}{}
	s.wg.Add(1)
	return sock, true
}

// Socket ids end with a counter that wraps within these bounds, as the reference's.
const (
	socketCounterMin = 10000
	socketCounterMax = 99999
)

func (s *Server) removeSocket(sock *Socket) {
	s.mu.Lock()
	delete(s.sockets, sock)
	s.unindexLocked(sock)
	s.mu.Unlock()
	s.leaveGroups(sock)
	s.wg.Done()
}

// socketsSnapshot returns the open sockets, or those of one user.
func (s *Server) socketsSnapshot(user string) []*Socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if user != "" {
		return slices.Clone(s.byUser[user])
	}
	out := make([]*Socket, 0, len(s.sockets))
	for sock := range s.sockets {
		out = append(out, sock)
	}
	return out
}

// Broadcast sends message to every socket (or, with opts.User, to that user's sockets) as an
// update, delivered to the client's onUpdate. It never waits for a slow socket.
func (s *Server) Broadcast(message any, opts *BroadcastOptions) error {
	var user string
	if opts != nil {
		user = opts.User
		if user != "" && (s.auth == nil || !s.auth.opts.Index) {
			return fmt.Errorf("herald: Broadcast to a user needs AuthOptions.Index")
		}
	}
	raw, err := marshalValue(message)
	if err != nil {
		return err
	}
	s.meterPublished()
	if s.cluster != nil {
		topic := "b"
		if user != "" {
			topic = "u:" + user
		}
		return s.cluster.publish(topic, &envelope{kind: kindUpdate, user: user, message: raw})
	}
	return s.deliverBroadcast(raw, user)
}

// BroadcastOptions narrows a broadcast.
type BroadcastOptions struct {
	// User, when set, limits the broadcast to that user's sockets (AuthOptions.Index must be
	// on).
	User string
}

// EachSocket calls fn for every open socket until fn returns false.
func (s *Server) EachSocket(fn func(*Socket) bool) {
	for _, sock := range s.socketsSnapshot("") {
		if !fn(sock) {
			return
		}
	}
}

// Close stops the heartbeat, closes every socket with 1001 (going away) and waits for their
// goroutines. The server refuses new sockets afterwards. Pass it to
// http.Server.RegisterOnShutdown (it needs no context: each close is bounded by the
// WebSocket close timeout).
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	s.mu.Unlock()
	if s.beat != nil {
		s.beat.stop()
	}
	s.registry.Shutdown()
	if s.cluster != nil {
		defer s.cluster.close() // last (deferred first): after the sockets and the fallback
	}
	if s.fallback != nil {
		defer s.fallback.Close() // after the sockets: each tells its client 1001 first
	}
	defer s.presenceWG.Wait() // the sockets' leave events, before the broker link closes
	for _, sock := range s.socketsSnapshot("") {
		sock.closeNow(ErrServerClosed)
	}
	s.wg.Wait()
}

// ErrServerClosed is why sockets close when the server does.
var ErrServerClosed = fmt.Errorf("nes: server closed")

func joinHeader(v []string) string { return strings.Join(v, ", ") }

// helloTimeout is how long a socket may stay without a hello (Options.HelloTimeout).
func (s *Server) helloTimeout() time.Duration {
	switch {
	case s.opts.HelloTimeout != 0:
		return s.opts.HelloTimeout
	case s.auth != nil:
		return s.auth.opts.Timeout
	}
	return 5 * time.Second
}
