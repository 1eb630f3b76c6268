// Command chat is herald's chat demo: a page where people sign in with a name, join rooms and
// talk, over WebSocket or, where WebSocket does not get through, over EventSource and POSTs or
// long-polls, all from plain net/http handlers.
//
//	go run ./examples/chat [-addr 127.0.0.1:8000] [-rooms general,random,herald] [-history 50] [-max-rooms 100] [-redis HOST:PORT | -nats URL]
//
// Its first line on standard output is "listening on http://ADDR" (-addr with port 0 picks a
// free port); open that address in a browser. What goes wrong at start is said on standard
// error, with what to do: a usage error exits 2 with the usage line (-h lists the flags, and
// exits 0), an address it cannot listen on (a port in use) exits 1. ?transport=sse or
// ?transport=poll forces a transport (?transport=websocket too); the page shows the one in
// use. SIGINT or SIGTERM shuts it down gracefully (herald.Server.Shutdown, then
// http.Server.Shutdown): GET /readyz answers 503 from then on, WebSockets are closed with 1012
// (service restart: reconnect, to another node behind a proxy), fallback sessions with 1001
// (going away), and the process exits 0.
//
// # Several nodes
//
// With -redis HOST:PORT (a Redis server) or -nats URL (a NATS server; not both), the process is
// one node of a chat that several processes serve behind a load balancer, which needs no sticky
// sessions. Messages, presence (joins, leaves, members, head counts in the lobby) and rooms
// reach the people of every node: the nes server publishes through the broker
// (herald.Options.Broker), and the nodes tell each other, on a broker topic every node joins
// (chat.events, through a broker.Node of the chat's own), of each message and of who is
// present through them, so that every node keeps the same history and shows the same members.
// A node that starts asks the others who is present through them; after its link to the
// broker was lost and restored, it tells them again and asks again (a leave missed meanwhile
// is then announced). A node that dies without a goodbye is forgotten within about 5 s, and
// its people are announced as gone.
//
// History across nodes: with Redis, messages are also kept in the broker's history (a Redis
// stream, for 24 hours, at most -history × -max-rooms messages, 10,000 at most), so a node that
// starts later, or restarts, shows the history the others show. NATS keeps no history: a node
// shows the messages posted since it started (a node started later begins with empty rooms),
// and a message posted while a node's link to NATS was down is missing from its history.
//
// The fallback (EventSource and POSTs, long-polls) works behind a proxy that spreads its
// requests over the nodes when every node signs its tickets with the same key: set
// HERALD_FALLBACK_KEY to the same secret (32 bytes or more) for every node. Without it the
// nodes derive a key from the demo's public password, and say so on standard error.
//
// A broker that has not answered 5 s after the start is named on standard error, with the
// command that starts one; the node serves meanwhile (GET /readyz answering 503, publications
// failing: a message posted is kept in its room's history but reaches nobody live) and links
// up by itself once the broker answers.
//
//	redis-server --port 6379 --save '' --appendonly no &
//	export HERALD_FALLBACK_KEY=$(head -c 32 /dev/urandom | base64)
//	go run ./examples/chat -addr 127.0.0.1:8001 -redis 127.0.0.1:6379 &
//	go run ./examples/chat -addr 127.0.0.1:8002 -redis 127.0.0.1:6379 &
//
// docs/several-nodes-demo.md puts nginx in front of them (one address, round-robin).
//
// # Metrics and health
//
//	GET /metrics   the server's metrics in Prometheus's text format, every name prefixed
//	               herald_ (see package metrics/prometheus)
//	GET /stats     a few of them as JSON, of this node, for the page's live view:
//	               {"connections": {"websocket", "sse", "poll"}, "messagesIn", "messagesOut",
//	               "publications", "deliveries"}
//	GET /readyz    readiness: 200 "ready"; 503 while draining or while the broker is down
//	GET /livez     liveness: 200 "ok" while the process serves HTTP
//
// The page shows the numbers of /stats at its foot, read every 3 seconds.
//
// # The page
//
// The page (embedded, no build step) imports herald's browser nes client from
// /herald/client.js, connects, and asks GET /me who it is. Signing in is a GET of the nes auth
// endpoint, /nes/auth?name=NAME, which sets the sealed "nes" cookie (cookie authentication);
// the page then connects again so that the new connection carries it. There is no password: a
// name is all it takes (1 to 24 letters, digits, spaces and - _ . '). Signing out is POST
// /signout, which clears the cookie.
//
// # Rooms
//
// A room is the nes subscription /rooms/{room}; room names are 1 to 32 of a-z, 0-9, - and _,
// starting with a letter or digit. The rooms of -rooms always exist; subscribing to any other name
// creates it (up to -max-rooms rooms), and a room nobody is in and nobody wrote in goes away.
// Its subscribers receive:
//
//	{"type":"message","id":ID,"room":ROOM,"user":USER,"text":TEXT,"time":RFC3339}
//	{"type":"presence","room":ROOM,"seq":SEQ,"event":"join"|"leave","user":USER,"members":[USER...]}
//
// ids and seqs grow across the whole server (and across restarts: they start from the clock),
// so a client orders messages by id and keeps the presence of the highest seq. A connection's
// own joining is not sent to it (OnSubscribe runs before it is subscribed): it reads GET
// /rooms/{room}/members, whose seq places the answer among the changes. A user is in a
// room while at least one of their connections is subscribed to it: a second tab does not join
// twice, and closing one of two does not leave.
//
// The subscription /rooms is the lobby: {"type":"rooms","seq":SEQ,"rooms":[{"name","members"}]}
// whenever a room appears, goes or changes its head count.
//
// # Routes
//
// Over nes (client.request) or plain HTTP, each for a signed-in user only (401 otherwise); over
// plain HTTP, ?name=NAME stands for the cookie, as at sign-in:
//
//	GET  /me                      {"user": NAME}
//	GET  /rooms                   the lobby: {"type": "rooms", "seq", "rooms": [{"name", "members"}]}
//	GET  /rooms/{room}/messages   {"room", "messages": [...]}: the last -history messages, oldest first
//	GET  /rooms/{room}/members    {"room", "seq", "members": [USER...]}
//	POST /rooms/{room}/messages   {"text": TEXT}: stamps the user and the time, publishes the
//	                              message to the room, answers 201 with it. 400 for text that is
//	                              empty, longer than 1000 characters or holds control characters
//	                              other than newline and tab; 404 for a room that does not exist;
//	                              413 past 8 KiB; 415 for a body that is not JSON.
//
// and POST /signout, which clears the cookie (204). So curl can join in:
//
//	curl -H 'Content-Type: application/json' -d '{"text": "hi from curl"}' \
//	    'http://127.0.0.1:8000/rooms/general/messages?name=curl'
//
// Unsafe requests from other origins are refused (http.CrossOriginProtection), so that no other
// site can post or sign out in a visitor's name.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-go/herald/internal/demo"
	"github.com/herald-go/herald/metrics"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "address to listen on")
	rooms := flag.String("rooms", "general,random,herald", "the rooms that always exist, comma-separated; the first is where newcomers start")
	var cfg config
	flag.IntVar(&cfg.history, "history", 50, "messages each room keeps for those who join later")
	flag.IntVar(&cfg.maxRooms, "max-rooms", 100, "how many rooms may exist at once")
	redisAddr := flag.String("redis", "", "join the chat's nodes that share the Redis server at this host:port")
	natsURL := flag.String("nats", "", "join the chat's nodes that share the NATS server at this URL")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		usageError("unexpected argument %q: everything is a flag", flag.Arg(0))
	}
	for _, name := range strings.Split(*rooms, ",") {
		if name = strings.TrimSpace(name); name != "" {
			cfg.rooms = append(cfg.rooms, name)
		}
	}
	if err := cfg.check(); err != nil {
		usageError("%v", err)
	}
	b, err := newBroker(*redisAddr, *natsURL, "herald-chat-demo")
	if err != nil {
		usageError("%v", err)
	}
	if b != nil {
		cfg.broker = b
		cfg.chatBroker, _ = newBroker(*redisAddr, *natsURL, "herald-chat-demo-app")
		cfg.brokerName, cfg.brokerStart = demo.BrokerName(*redisAddr, *natsURL)
	}
	if err := run(*addr, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "chat: %v\n", err)
		os.Exit(1)
	}
}

// usage is the first line of -h and of usage errors.
const usage = "usage: go run ./examples/chat [-addr HOST:PORT] [-rooms A,B,C] [-history N] [-max-rooms N] [-redis HOST:PORT | -nats URL]"

// usageError reports a command-line mistake, with the usage line and the flags, and exits
// with status 2, as flag does.
func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chat: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

// run serves the chat on addr until SIGINT or SIGTERM, then shuts down: it stops accepting,
// closes every nes connection with 1001 and waits for both.
func run(addr string, cfg config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return demo.ListenError(addr, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec, reg, err := newMetrics()
	if err != nil {
		return err
	}
	cfg.metrics, cfg.gatherer = rec, reg
	if cfg.broker != nil {
		cfg.broker = metrics.Broker(cfg.broker, rec) // herald_broker_publish_duration_seconds and friends
		cfg.fallbackKey = fallbackKey(logger)
	}
	c := newChat(cfg, logger)
	defer c.nes.Close()
	if cfg.chatBroker != nil {
		// A broker that does not answer yet is tried again in the background: the chat
		// serves meanwhile, alone.
		c.startPeers(cfg.chatBroker, c.nes.NodeName()+"-chat", logger)
		defer c.closePeers()
	}
	srv := &http.Server{Handler: c.nes, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.broker != nil {
		ready := func() bool { return demo.Ready(c.nes.ReadyHandler()) && c.peers.isLinked() }
		go demo.WarnUnlinked(ctx, os.Stderr, "chat", ready, cfg.brokerName, cfg.brokerStart, demo.BrokerWait)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Drain nes first: http.Server.Shutdown does not wait for hijacked connections
		// (WebSockets, event streams), and it waits for long-polls to end; Server.Shutdown
		// closes both, telling each client to reconnect.
		if err := c.nes.Shutdown(shutdown); err != nil {
			logger.Warn("shutdown", "err", err)
		}
		if err := srv.Shutdown(shutdown); err != nil {
			logger.Warn("shutdown", "err", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-stopped
	return nil
}
