// Command nes is herald's nes demo: the examples of the @hapi/nes README in one server, for
// the official JavaScript client (or herald's Go client) to talk to.
//
//	go run ./examples/nes -addr 127.0.0.1:8000 [-heartbeat-interval 15s] [-heartbeat-timeout 5s] [-auth direct|token|cookie] [-redis HOST:PORT | -nats URL]
//
// Its first line on standard output is "listening on http://ADDR" (-addr with port 0 picks a
// free port). What goes wrong at start is said on standard error, with what to do: a usage
// error exits 2 with the usage line (-h lists the flags), an address it cannot listen on (a
// port in use) exits 1. The server's warnings and errors (log/slog, Warn level and up) go to
// standard error too. It serves:
//
//	GET  /h           route id "hello": "world!"
//	GET  /auth/h      route id "authhello": "Hello John Doe", with Basic john:secret
//	POST /echo        its JSON payload back
//	POST /publish     {path, message}: publishes, answers {"ok":true}
//	POST /broadcast   {message}: broadcasts, answers {"ok":true}
//	POST /revoke      {path, message}: revokes path (a concrete path, such as /item/5) from every
//	                  socket subscribed to it, with message (left out of the revoke when absent
//	                  or null), answers {"ok":true}; 400 "Expected {path, message}" without a path
//	POST /send        over nes, {message}: sends message to the calling socket only (an update
//	                  push, before the reply), answers {"ok":true}; 400 "Expected {message}"
//	                  without a message, 400 "Only over nes" over plain HTTP
//	POST /drop        over nes: answers {"ok":true}, then closes that socket
//	GET  /boom        500, for error-shape tests; "/wild" is route id "wild" for every method
//	GET  /herald/...  herald's browser modules (package browser): herald-socket.js, client.js
//	GET  /metrics     the server's metrics in Prometheus's text format (herald_connections,
//	                  herald_deliveries_total, ...: see package metrics/prometheus)
//	GET  /readyz      readiness: 200 "ready", 503 while draining or while the broker is down
//	GET  /livez       liveness: 200 "ok" while the process serves HTTP
//
// Subscriptions /item/{id} and /items (authentication optional; a publication whose updater
// is the socket's own username is not sent back to it); custom messages are answered with
// {"echo": message}.
//
// Authentication (-auth) is always optional and always checks Basic john:secret:
//
//   - direct (the default): the hello's auth is {headers: {authorization: "Basic ..."}}.
//   - token: GET /nes/auth with Basic john:secret answers {status: "authenticated", token};
//     the hello's auth is that token.
//   - cookie: the same GET answers {status: "authenticated"} and sets the "nes" cookie
//     (HttpOnly, not Secure, SameSite=Strict), which the WebSocket upgrade request then carries.
//
// Without credentials, GET /nes/auth answers {status: "unauthenticated"}. Tokens and cookies
// are sealed with the same password as internal/testpeers/hapi-nes-server.js's, the reference
// server this demo mirrors.
//
// # Several nodes
//
// With -redis HOST:PORT (a Redis server) or -nats URL (a NATS server; not both), the process is
// one node of a cluster: POST /publish and POST /broadcast on any node reach the subscribers of
// every node, and a fallback client (EventSource and POSTs, long-polls) works behind a proxy
// that spreads its requests over the nodes without sticky sessions, provided every node is
// given the same HERALD_FALLBACK_KEY (a secret of 32 bytes or more; without it, the nodes
// derive one from the demo's public password and say so on standard error). A broker that has
// not answered 5 s after the start is named on standard error; the node serves meanwhile (GET
// /readyz answering 503, publications failing) and links up by itself once it answers. POST /revoke
// revokes on the node that receives it only. Two nodes and Redis:
//
//	redis-server --port 6379 --save '' --appendonly no &
//	export HERALD_FALLBACK_KEY=$(head -c 32 /dev/urandom | base64)
//	go run ./examples/nes -addr 127.0.0.1:8001 -redis 127.0.0.1:6379 &
//	go run ./examples/nes -addr 127.0.0.1:8002 -redis 127.0.0.1:6379 &
//
// docs/several-nodes-demo.md puts nginx in front of them. SIGINT or SIGTERM drains the node:
// GET /readyz answers 503, WebSockets are closed with 1012 (service restart, so that clients
// reconnect, to another node behind a proxy), fallback sessions with 1001, and the process
// exits 0.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald"
	"github.com/herald-go/herald/broker"
	"github.com/herald-go/herald/browser"
	"github.com/herald-go/herald/extensions/deflate"
	"github.com/herald-go/herald/fallback"
	"github.com/herald-go/herald/internal/demo"
	"github.com/herald-go/herald/metrics"
	"github.com/herald-go/herald/websocket"
)

type config struct {
	heartbeatInterval time.Duration
	heartbeatTimeout  time.Duration
	auth              string // direct, token or cookie

	broker      broker.Broker    // nil: one node
	brokerName  string           // with broker: what -redis or -nats named, for messages
	brokerStart string           // with broker: the command that starts one here
	fallbackKey []byte           // with broker: the key every node signs fallback tickets with
	metrics     metrics.Recorder // nil: none
	metricsPage http.Handler     // GET /metrics
}

// password seals tokens and cookies (token and cookie auth); hapi-nes-server.js uses the same.
const password = "herald nes demo: tokens and cookies are sealed with this"

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	var cfg config
	flag.DurationVar(&cfg.heartbeatInterval, "heartbeat-interval", 15*time.Second, "how often the server pings every socket")
	flag.DurationVar(&cfg.heartbeatTimeout, "heartbeat-timeout", 5*time.Second, "how long a socket may stay silent after a ping")
	flag.StringVar(&cfg.auth, "auth", "direct", "nes authentication: direct, token or cookie")
	redisAddr := flag.String("redis", "", "join the nodes sharing the Redis server at this host:port")
	natsURL := flag.String("nats", "", "join the nodes sharing the NATS server at this URL")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	flag.Parse()
	usageError := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "nes: "+format+"\n", a...)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		usageError("unexpected argument %q: everything is a flag", flag.Arg(0))
	}
	switch cfg.auth {
	case "direct", "token", "cookie":
	default:
		usageError("-auth must be direct, token or cookie, not %q", cfg.auth)
	}
	if cfg.heartbeatInterval <= 0 || cfg.heartbeatTimeout <= 0 || cfg.heartbeatTimeout >= cfg.heartbeatInterval {
		usageError("-heartbeat-timeout (%v) must be positive and less than -heartbeat-interval (%v)", cfg.heartbeatTimeout, cfg.heartbeatInterval)
	}
	b, err := newBroker(*redisAddr, *natsURL)
	if err != nil {
		usageError("%v", err)
	}
	rec, page, err := newMetrics()
	if err != nil {
		log.Fatal(err)
	}
	cfg.metrics, cfg.metricsPage = rec, page
	if b != nil {
		cfg.broker = metrics.Broker(b, rec) // herald_broker_publish_duration_seconds and friends
		cfg.brokerName, cfg.brokerStart = demo.BrokerName(*redisAddr, *natsURL)
		cfg.fallbackKey = fallbackKey(func(msg string) { fmt.Fprintln(os.Stderr, "nes: "+msg) })
	}
	if err := run(*addr, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "nes: %v\n", err)
		os.Exit(1)
	}
}

// usage is the first line of -h and of usage errors.
const usage = "usage: go run ./examples/nes [-addr HOST:PORT] [-heartbeat-interval D] [-heartbeat-timeout D] [-auth direct|token|cookie] [-redis HOST:PORT | -nats URL]"

func run(addr string, cfg config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return demo.ListenError(addr, err)
	}
	nes := newServer(cfg)
	srv := &http.Server{Handler: nes, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.broker != nil {
		ready := func() bool { return demo.Ready(nes.ReadyHandler()) }
		go demo.WarnUnlinked(ctx, os.Stderr, "nes", ready, cfg.brokerName, cfg.brokerStart, demo.BrokerWait)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Drain first: readiness fails, WebSockets get 1012 and fallback sessions 1001, so
		// that clients reconnect (elsewhere); then the HTTP server, which waits for plain
		// requests only.
		_ = nes.Shutdown(shutdown)
		_ = srv.Shutdown(shutdown)
		nes.Close() // closes the broker link
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}

// john is the demo's one account.
var john = struct{ username, password, id, name string }{"john", "secret", "2133d32a", "John Doe"}

// basicAuth checks HTTP Basic credentials, as hapi's @hapi/basic strategy does.
func basicAuth(r *http.Request) (*herald.Credentials, error) {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Basic") {
		return nil, nil // no credentials: authentication is optional
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	username, password, ok := strings.Cut(string(raw), ":")
	switch {
	case err != nil || !ok:
		return nil, herald.NewError(http.StatusBadRequest, "Bad header internal syntax")
	case username == "":
		return nil, herald.NewError(http.StatusUnauthorized, "HTTP authentication header missing username")
	case username != john.username || password != john.password:
		return nil, herald.NewError(http.StatusUnauthorized, "Bad username or password")
	}
	return &herald.Credentials{User: john.username, Data: map[string]any{
		"id": john.id, "name": john.name, "username": john.username}}, nil
}

// newServer builds the demo's nes server around its routes.
func newServer(cfg config) *herald.Server {
	mux := http.NewServeMux()
	auth := &herald.AuthOptions{Type: "direct", Authenticate: basicAuth}
	if cfg.auth == "token" || cfg.auth == "cookie" {
		auth = &herald.AuthOptions{Type: cfg.auth, Authenticate: basicAuth, Password: password, CookieInsecure: true}
	}
	var fb *fallback.Options
	if cfg.broker != nil {
		fb = &fallback.Options{Key: cfg.fallbackKey}
	}
	nes := herald.NewServer(mux, &herald.Options{
		// Warnings and errors, such as a broker link that cannot start, with their cause.
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Broker:    cfg.broker,
		Fallback:  fb,
		Metrics:   cfg.metrics,
		Auth:      auth,
		Heartbeat: &herald.Heartbeat{Interval: cfg.heartbeatInterval, Timeout: cfg.heartbeatTimeout},
		OnMessage: func(ctx context.Context, s *herald.Socket, message herald.RawMessage) (any, error) {
			if message == nil {
				return map[string]any{}, nil // as JavaScript drops {echo: undefined}
			}
			return map[string]json.RawMessage{"echo": message}, nil
		},
		WebSocket: &websocket.Options{Extensions: []websocket.Extension{deflate.New(deflate.Options{})}},
	})

	mux.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "world!")
	})
	nes.Route("hello", http.MethodGet, "/h")

	mux.Handle("GET /auth/h", nes.Authenticated(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds := herald.CredentialsFrom(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprintf(w, "Hello %v", creds.Data["name"])
	})))
	nes.Route("authhello", http.MethodGet, "/auth/h")

	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err == nil && len(body) == 0 {
			w.WriteHeader(http.StatusNoContent) // hapi answers a null payload with 204
			return
		}
		if err != nil || !json.Valid(body) {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Invalid request payload JSON format"})
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	})

	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Path    string          `json:"path"`
			Message json.RawMessage `json:"message"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Path == "" {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Expected {path, message}"})
			return
		}
		if err := nes.Publish(in.Path, orNull(in.Message), nil); err != nil {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": err.Error()})
			return
		}
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Message json.RawMessage `json:"message"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		_ = nes.Broadcast(orNull(in.Message), nil)
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]json.RawMessage // exact keys, as JavaScript reads them
		if !readJSON(w, r, &in) {
			return
		}
		var path string
		if json.Unmarshal(in["path"], &path) != nil || path == "" {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Expected {path, message}"})
			return
		}
		var message any // nil: the revoke goes without a message, as the reference's for null
		if m := in["message"]; len(m) > 0 && string(m) != "null" {
			message = m
		}
		var subscribers []*herald.Socket
		nes.EachSubscriber(path, "", func(s *herald.Socket) bool {
			subscribers = append(subscribers, s)
			return true
		})
		for _, s := range subscribers {
			_ = s.Revoke(r.Context(), path, message) // a socket that closed meanwhile is skipped
		}
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /send", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]json.RawMessage
		if !readJSON(w, r, &in) {
			return
		}
		s := herald.SocketFrom(r.Context())
		if s == nil {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Only over nes"})
			return
		}
		message, ok := in["message"]
		if !ok {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Expected {message}"})
			return
		}
		if err := s.Send(message); err != nil {
			replyJSON(w, http.StatusInternalServerError, map[string]any{"statusCode": 500, "error": "Internal Server Error", "message": "An internal server error occurred"})
			return
		}
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		s := herald.SocketFrom(r.Context())
		if s == nil {
			replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Only over nes"})
			return
		}
		s.Disconnect() // after this reply goes out
		replyJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/wild", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "wild")
	})
	nes.Route("wild", "*", "/wild")
	mux.Handle("/herald/", http.StripPrefix("/herald", browser.Handler())) // the browser modules: /herald/herald-socket.js, /herald/client.js
	if cfg.metricsPage != nil {
		mux.Handle("GET /metrics", cfg.metricsPage)
	}
	mux.Handle("GET /readyz", nes.ReadyHandler())
	mux.Handle("GET /livez", nes.LiveHandler())

	skipOwnUpdates := func(path string, message any, info herald.FilterInfo) (bool, any) {
		if info.Credentials == nil {
			return true, nil // anonymous sockets get everything
		}
		var m struct {
			Updater string `json:"updater"`
		}
		if raw, ok := message.(json.RawMessage); ok {
			_ = json.Unmarshal(raw, &m)
		}
		if m.Updater != "" && m.Updater == info.Credentials.Data["username"] {
			return false, nil
		}
		return true, nil
	}
	for _, path := range []string{"/item/{id}", "/items"} {
		nes.Subscription(path, &herald.SubscriptionOptions{
			Filter: skipOwnUpdates,
			Auth:   &herald.SubscriptionAuth{Mode: "optional"},
		})
	}
	return nes
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readJSON decodes the request's JSON body into v, as hapi parses a payload: an empty body
// leaves v as it is, and so does a body of another JSON type than v's (the handler then finds
// its fields missing). Invalid JSON is answered with hapi's 400, and readJSON returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || (len(body) > 0 && !json.Valid(body)) {
		replyJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "Invalid request payload JSON format"})
		return false
	}
	if len(body) > 0 {
		_ = json.Unmarshal(body, v)
	}
	return true
}

// orNull keeps an absent JSON value from turning into invalid JSON.
func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}
